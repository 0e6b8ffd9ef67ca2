"""Every explorer, used roughly: extreme and invalid values, many fast changes, bad combinations.

A learner drags sliders to their ends, types odd values into ``update``,
and moves things faster than a figure redraws. Whatever they do, nothing
may raise in the kernel: the explorer shows a valid state, says in its
readout what it adjusted, and after a burst of changes shows the state of
the last one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

import polylens as pl
from polylens import steer
from polylens.scenes import OBJECTS, WEATHERS, load_autoencoder, load_probes, render_batch, to_tensor
from polylens.widgets import (
    CooccurrenceExplorer,
    DictionaryExplorer,
    PathExplorer,
    PolytopeExplorer,
    SceneExplorer,
    SuperpositionExplorer,
    ValidityExplorer,
)

# Invalid for every argument of every explorer: nothing here is a state any slider can show.
BAD = [None, "lots", math.nan, math.inf, -math.inf, -1, 10**400, -(10**400), 1e308, [1], {}, np.array([0.5, 0.7]),
       1 + 2j, np.float64("nan"), torch.tensor([1.0, 2.0])]
BAD_IDS = ["None", "text", "nan", "inf", "-inf", "-1", "huge int", "huge negative int", "1e308", "list", "dict",
           "array", "complex", "numpy nan", "tensor"]


@dataclass
class Rough:
    """One explorer and how to drive it.

    defaults: a valid state, as keyword arguments of ``update``.
    controls: widget description -> ``update`` argument.
    valid: does a view show one of the states the explorer can show?
    values: per argument, valid values to mix with BAD ones in random bursts.
    """

    explorer: object
    defaults: dict
    controls: dict[str, str]
    valid: Callable[[object], bool]
    values: dict[str, list] = field(default_factory=dict)
    box: widgets.Widget | None = None


def _polytopes() -> Rough:
    x, y = pl.datasets.two_moons(200, seed=0)
    e = PolytopeExplorer(x, y, widths=(4, 8), depths=(1, 2), steps=(0, 50), progress=False)
    regions = [sl.regions for sl in e.slices.values()]
    return Rough(
        e, dict(width=8, depth=2, step=50, layer=1, neuron=0, color="code"),
        {"width": "width", "depth": "depth", "train step": "step", "layer": "layer", "neuron": "neuron",
         "colour by": "color"},
        lambda v: any(v.regions is r for r in regions) and "regions" in v.readout,
        dict(width=[4, 8], depth=[1, 2], step=[0, 50], layer=[1, 2], neuron=[0, 3, 7], color=["code", "n_on"]),
    )


def _path() -> Rough:
    e = PathExplorer(pl.models.MLP([2, 8, 8, 2], seed=5), (-1.5, 0.7), (1.5, -0.4), sample_counts=(4, 16, 64))
    return Rough(
        e, dict(t=0.5, n_samples=16), {"t": "t", "samples": "n_samples"},
        lambda v: 0.0 <= v.t <= 1.0 and v.n_samples in e.sample_counts and v.exact_so_far <= v.exact_total,
        dict(t=[0.0, 0.3, 1.0], n_samples=[4, 16, 64]),
    )


def _superposition() -> Rough:
    e = SuperpositionExplorer(sparsities=(0.0, 0.9), decays=(1.0, 0.7), steps=300)
    return Rough(
        e, dict(sparsity=0.9, decay=1.0, live=False),
        {"sparsity S": "sparsity", "importance": "decay", "show live model": "live"},
        lambda v: (v.sparsity, v.decay) in {(s, d) for s in e.sparsities for d in e.decays} and math.isfinite(v.loss),
        dict(sparsity=[0.0, 0.9], decay=[1.0, 0.7], live=[False, True]),
    )


def _dictionaries() -> Rough:
    e = DictionaryExplorer(n_features=16, dim=8, avg_active=2.0, l1s=(0.01, 0.3, 3.0), sizes=(8, 32), steps=100,
                           n_samples=1024, seed=0)
    return Rough(
        e, dict(l1=0.3, n_latents=32), {"L1 λ": "l1", "latents": "n_latents"},
        lambda v: v.l1 in e.l1s and v.n_latents in e.sizes and math.isfinite(v.mmcs),
        dict(l1=[0.01, 0.3, 3.0], n_latents=[8, 32]),
    )


def _cooccurrence() -> Rough:
    e = CooccurrenceExplorer(cooccurrences=(0.0, 0.97), steps=200, n_samples=1024, seed=0)
    return Rough(
        e, dict(cooccurrence=0.0), {"co-occurrence": "cooccurrence"},
        lambda v: v.cooccurrence in e.cooccurrences and len(v.row_kinds) == len(v.cosines),
        dict(cooccurrence=[0.0, 0.97]),
    )


@pytest.fixture(scope="module")
def scene_nets():
    return load_autoencoder(), load_probes()


def _scene_state(view) -> tuple[str, str, int]:
    obj, day, night, seed = re.match(r"(\w+) (?:on an? (\w+) day|at (night)), seed (\d+)", view.readout).groups()
    return obj.lower(), day or night, int(seed)


def _scenes(nets) -> Rough:
    e = SceneExplorer(*nets, max_seed=4)

    def valid(view) -> bool:
        obj, weather, seed = _scene_state(view)
        return obj in OBJECTS and weather in WEATHERS and 0 <= seed <= 4 and view.image.shape == (64, 64, 3)

    return Rough(
        e, dict(obj="duck", weather="overcast", seed=0), {"object": "obj", "weather": "weather", "seed": "seed"},
        valid, dict(obj=["duck", "car"], weather=["sunny", "night"], seed=[0, 4]),
    )


def _validity(nets) -> Rough:
    ae, probes = nets
    objects = ["boat", "house", "tree", "car"]
    with torch.no_grad():
        sunny = ae.encoder(to_tensor(render_batch(objects, "sunny", [0, 1, 2, 3])))
        other = ae.encoder(to_tensor(render_batch(objects, "overcast", [0, 1, 2, 3])))
    direction = steer.mean_difference(sunny, other, layer=ae.BOTTLENECK)
    e = ValidityExplorer(ae, probes, direction, alphas=np.linspace(-0.5, 0.5, 3))
    return Rough(
        e, dict(obj="duck", alpha=0.0), {"scene": "obj", "alpha": "alpha"},
        lambda v: v.alpha in e.alphas and v.image.shape == (64, 64, 3),
        dict(obj=["duck"], alpha=[-0.5, 0.0, 0.5]),
    )


BUILDERS = {"polytopes": _polytopes, "path": _path, "superposition": _superposition,
            "dictionaries": _dictionaries, "cooccurrence": _cooccurrence}
NEEDS_NETS = {"scenes": _scenes, "validity": _validity}
NAMES = list(BUILDERS) + list(NEEDS_NETS)
ARGS = {"polytopes": ["width", "depth", "step", "layer", "neuron", "color"], "path": ["t", "n_samples"],
        "superposition": ["sparsity", "decay", "live"], "dictionaries": ["l1", "n_latents"],
        "cooccurrence": ["cooccurrence"], "scenes": ["obj", "weather", "seed"], "validity": ["obj", "alpha"]}


@pytest.fixture(scope="module")
def built(scene_nets):
    """Explorers (with their widgets) by name, each built the first time a test asks for it."""
    cache: dict[str, Rough] = {}

    def get(name: str) -> Rough:
        if name not in cache:
            torch.set_num_threads(1)
            spec = BUILDERS[name]() if name in BUILDERS else NEEDS_NETS[name](scene_nets)
            spec.box = spec.explorer.widget()
            cache[name] = spec
        return cache[name]

    yield get
    for spec in cache.values():
        plt.close(spec.explorer.area.fig)


@pytest.fixture(params=NAMES)
def rough(request, built) -> Rough:
    """One explorer; tests parametrise it directly, or indirectly by name."""
    return built(request.param)


def _shown(view) -> str:
    """The readout an update with this view must leave in the widget."""
    return view.readout + (f"<br><i>{view.message}</i>" if view.message else "")


def _controls(box: widgets.Widget, names: dict[str, str]) -> dict[str, widgets.ValueWidget]:
    """The widget's controls, by ``update`` argument, found by their descriptions."""
    found, stack = {}, [box]
    while stack:
        w = stack.pop()
        stack.extend(getattr(w, "children", ()))
        if isinstance(w, widgets.ValueWidget) and getattr(w, "description", None) in names:
            found[names[w.description]] = w
    assert set(found) == set(names.values()), f"controls not found: {set(names.values()) - set(found)}"
    return found


# -------------------------------------------------- extreme and invalid ---


BAD_CASES = [pytest.param(name, arg, value, id=f"{name}-{arg}-{vid}")
             for name in NAMES for arg in ARGS[name] for value, vid in zip(BAD, BAD_IDS)]


@pytest.mark.parametrize("rough, arg, value", BAD_CASES, indirect=["rough"])
def test_an_invalid_value_shows_a_valid_state_and_says_so(rough, arg, value):
    view = rough.explorer.update(**{**rough.defaults, arg: value})
    assert rough.valid(view), f"{arg}={value!r} left the explorer in a state it cannot show"
    assert view.message, f"{arg}={value!r} was adjusted silently"
    assert rough.explorer._readout.value == _shown(view)
    assert f"<i>{view.message}</i>" in rough.explorer._readout.value


def test_every_control_at_both_ends_of_its_range(rough):
    controls = _controls(rough.box, rough.controls)
    _sync(rough, controls)
    for arg, control in controls.items():
        for end in _ends(control):
            control.value = end
            values = {a: c.value for a, c in controls.items()}
            view = rough.explorer.view(**_view_args(values))
            assert rough.valid(view)
            assert rough.explorer._readout.value == _shown(view)


def _sync(rough: Rough, controls: dict[str, widgets.ValueWidget]) -> None:
    """Show the controls' state: other tests call ``update`` by hand, which leaves the sliders where they were,
    and setting a slider to the value it already has fires no callback."""
    rough.explorer.update(**{a: c.value for a, c in controls.items()})


def _ends(control: widgets.ValueWidget) -> list:
    if isinstance(control, (widgets.SelectionSlider, widgets.Dropdown)):
        return [control.options[0], control.options[-1]]
    if isinstance(control, widgets.Checkbox):
        return [True, False]
    return [control.min, control.max]


def _view_args(values: dict) -> dict:
    """``view`` takes every argument of ``update`` except the polytope explorer's colour."""
    return {k: v for k, v in values.items() if k != "color"}


# ---------------------------------------------------------- bursts ---


def test_two_hundred_random_updates_end_on_the_last_state(rough):
    rng = np.random.default_rng(0)
    args = list(rough.defaults)
    last = dict(rough.defaults)
    for _ in range(200):
        arg = args[rng.integers(len(args))]
        pool = rough.values[arg] + BAD
        last[arg] = pool[rng.integers(len(pool))]
        view = rough.explorer.update(**last)
        assert rough.valid(view)
        if any(value is bad for value in last.values() for bad in BAD):
            assert view.message, f"{last} was adjusted silently"
    fresh = rough.explorer.view(**_view_args(last))
    assert view.readout == fresh.readout
    assert rough.explorer._readout.value == _shown(view)


def test_two_hundred_slider_moves_through_the_widget_end_on_the_last_value(rough):
    controls = _controls(rough.box, rough.controls)
    _sync(rough, controls)
    rng = np.random.default_rng(1)
    names = list(controls)
    for _ in range(200):
        arg = names[rng.integers(len(names))]
        controls[arg].value = _random_value(controls[arg], rng)
    values = {a: c.value for a, c in controls.items()}
    view = rough.explorer.view(**_view_args(values))
    assert rough.valid(view)
    assert rough.explorer._readout.value == _shown(view)


def _random_value(control: widgets.ValueWidget, rng: np.random.Generator):
    """What a hand on the slider can produce: any option, any step, either end; NaN for a float slider."""
    if isinstance(control, (widgets.SelectionSlider, widgets.Dropdown)):
        return control.options[rng.integers(len(control.options))]
    if isinstance(control, widgets.Checkbox):
        return bool(rng.integers(2))
    if isinstance(control, widgets.IntSlider):
        return int(rng.integers(control.min, control.max + 1))
    if isinstance(control, widgets.FloatSlider):
        return [control.min, control.max, math.nan, float(rng.uniform(control.min, control.max))][rng.integers(4)]
    raise AssertionError(f"no rough values for {type(control).__name__}")


# ---------------------------------------------- invalid combinations ---


@pytest.mark.parametrize("rough", ["polytopes"], indirect=True)
def test_polytopes_layer_and_neuron_beyond_the_network(rough):
    view = rough.explorer.update(width=4, depth=1, step=50, layer=2, neuron=99, color="rainbow")
    assert "1 hidden layer" in view.message and "showing the last" in view.message and "colour by" in view.message
    assert rough.valid(view)
    # The widget lets layer reach 2 while depth is 1: the readout says which layer it shows.
    controls = _controls(rough.box, rough.controls)
    controls["depth"].value, controls["layer"].value = 1, 2
    assert "1 hidden layer; showing layer 1" in rough.explorer._readout.value


@pytest.mark.parametrize("rough", ["scenes"], indirect=True)
def test_scenes_report_every_bad_choice_at_once(rough):
    message = rough.explorer.update("dragon", "foggy", 999).message
    assert "choose an object" in message and "seed must be" in message
    assert f"<i>{message}</i>" in rough.explorer._readout.value


@pytest.mark.parametrize("rough", ["validity"], indirect=True)
def test_validity_reports_every_bad_choice_at_once(rough):
    message = rough.explorer.update("tree", 99).message
    assert "scanned scenes" in message and "alpha runs from" in message
    assert f"<i>{message}</i>" in rough.explorer._readout.value
    off_grid = rough.explorer.update("duck", 0.2)
    assert off_grid.alpha == 0.0 and "was not precomputed" in off_grid.message


@pytest.mark.parametrize("rough", ["superposition"], indirect=True)
def test_train_live_button_then_the_live_checkbox(rough):
    explorer = rough.explorer
    controls = _controls(rough.box, rough.controls)
    controls["live"].value = True  # no live model yet: a message, not an error
    assert "train live" in explorer._readout.value
    button = next(w for w in _all(rough.box) if isinstance(w, widgets.Button))
    button.click()
    assert controls["live"].value and not button.disabled and button.description == "train live"
    assert "trained live" in explorer._readout.value


def _all(box: widgets.Widget) -> list[widgets.Widget]:
    found, stack = [], [box]
    while stack:
        w = stack.pop()
        found.append(w)
        stack.extend(getattr(w, "children", ()))
    return found
