"""Interactive explorers for the notebooks.

Each explorer precomputes what its sliders need, has a pure ``view(...)``
that returns the numbers and geometry a state shows (tests call it without a
browser), an ``update(...)`` that also redraws, and ``widget()`` that builds
the ipywidgets controls. Bad slider combinations show a message in the
widget; they never raise in the kernel. ``LiveTrainingExplorer`` trains
as it is watched instead of precomputing: its ``step()`` and ``update()``
are what the Play button and the sliders call.
"""

from polylens.widgets.dictionaries import CooccurrenceExplorer, DictionaryExplorer
from polylens.widgets.polytopes import PolytopeExplorer
from polylens.widgets.scenes import SceneExplorer
from polylens.widgets.spline_codes import PathExplorer
from polylens.widgets.studio import SunnyDuckStudio
from polylens.widgets.superposition import SuperpositionExplorer
from polylens.widgets.training import LiveTrainingExplorer
from polylens.widgets.validity import ValidityExplorer

__all__ = ["CooccurrenceExplorer", "DictionaryExplorer", "LiveTrainingExplorer", "PathExplorer", "PolytopeExplorer", "SceneExplorer", "SunnyDuckStudio", "SuperpositionExplorer", "ValidityExplorer"]
