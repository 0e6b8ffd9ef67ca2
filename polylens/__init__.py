"""polylens: the polytope lens on neural networks, for learners.

    import polylens as pl
    out, cache = pl.run_with_cache(model, x, names_filter=lambda n: "relu" in n)

See the notebooks in ``notebooks/`` for the curriculum.
"""

from polylens import exercises, models, plot
from polylens.hooks import Cache, HookPoint, capture, hooks, resolve_names, run_with_cache, run_with_hooks

__version__ = "0.1.0"

__all__ = [
    "Cache",
    "HookPoint",
    "capture",
    "hooks",
    "exercises",
    "models",
    "plot",
    "resolve_names",
    "run_with_cache",
    "run_with_hooks",
]
