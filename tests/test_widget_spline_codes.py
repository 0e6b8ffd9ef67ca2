"""The path explorer's pure view and its update, without a browser."""


import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from polylens.models import MLP
from polylens.regions import crossings
from polylens.widgets.spline_codes import PathExplorer

X0, X1 = (-1.5, 0.7), (1.5, -0.4)


@pytest.fixture(scope="module")
def explorer():
    model = MLP([2, 8, 8, 8, 2], seed=5)
    return PathExplorer(model, X0, X1, sample_counts=(4, 16, 256))


def test_exact_total_matches_crossings(explorer):
    v = explorer.view(1.0, 256)
    assert v.exact_total == len(np.unique(crossings(explorer.model, torch.tensor(X0), torch.tensor(X1)).t))
    assert v.exact_so_far == v.exact_total and v.message == ""


def test_sampling_undercounts_and_more_samples_see_more(explorer):
    seen = [explorer.view(1.0, n).sampled_total for n in (4, 16, 256)]
    assert seen == sorted(seen) and seen[-1] <= explorer.view(1.0, 4).exact_total
    assert seen[0] <= 3  # 4 samples have 3 steps


def test_readout_changes_with_each_slider(explorer):
    a, b = explorer.view(0.1, 16), explorer.view(0.9, 16)
    assert a.readout != b.readout and a.exact_so_far <= b.exact_so_far
    assert explorer.view(0.9, 4).readout != explorer.view(0.9, 256).readout


def test_code_at_start_differs_from_nothing(explorer):
    assert sum(explorer.view(0.0, 16).changed_per_layer.values()) == 0
    assert sum(explorer.view(1.0, 16).changed_per_layer.values()) > 0


@pytest.mark.parametrize("t, n", [(-3, 16), (7.5, 16), (float("nan"), 16), ("a", 16), (0.5, 5), (0.5, 10**9),
                                  (0.5, -1), (0.5, None), (0.5, float("inf"))])
def test_bad_values_give_a_message_not_an_exception(explorer, t, n):
    v = explorer.view(t, n)
    assert v.message and 0.0 <= v.t <= 1.0 and v.n_samples in explorer.sample_counts


def test_update_redraws(explorer):
    # How fast it redraws is measured in benchmarks/bench_notebooks.py, never asserted here:
    # a busy machine is slower, not broken.
    explorer.widget(t=0.2, n_samples=16)
    explorer.area.refresh = explorer.area.fig.canvas.draw  # no display outside a notebook
    before = explorer._readout.value
    view = explorer.update(0.8, 256)
    assert explorer._readout.value != before and explorer._readout.value.startswith(view.readout)
    assert np.allclose(explorer._marker.get_offsets()[0], view.point)
    explorer.update(42, 3)  # invalid: shown as a message
    assert "<i>" in explorer._readout.value
    plt.close(explorer.area.fig)


def test_a_path_of_length_zero_is_refused():
    with pytest.raises(ValueError, match="differ"):
        PathExplorer(MLP([2, 4, 2], seed=0), (0.0, 0.0), (0.0, 0.0))


def test_the_regions_on_the_path_have_one_colour_each(explorer):
    """A straight path meets each convex region once: one coloured region per interval between crossings."""
    colors = explorer.region_colors()
    grey = np.all(np.isclose(colors[:, :3], colors[:, :1], atol=0.05), axis=1)
    coloured = colors[~grey]
    assert len(coloured) == len(explorer.interval_bits) == explorer.view(1.0, 4).exact_total + 1
    assert len(np.unique(coloured[:, :3], axis=0)) == len(coloured), "no two path regions share a colour"
    # Each coloured region is one the path really enters: its code is an interval's code.
    interval_codes = {row.tobytes() for row in explorer.interval_bits}
    assert all(explorer.regions.codes.bits[i].tobytes() in interval_codes for i in np.flatnonzero(~grey))
