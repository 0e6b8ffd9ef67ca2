"""The notebook 01 explorer, driven without a browser."""

import re

import matplotlib.pyplot as plt
import pytest

import polylens as pl
from polylens.widgets import PolytopeExplorer


@pytest.fixture(scope="module")
def explorer():
    x, y = pl.datasets.two_moons(200, seed=0)
    return PolytopeExplorer(x, y, widths=(4, 8), depths=(1, 2), steps=(0, 100), progress=False)


def test_every_state_is_precomputed_and_exact(explorer):
    assert set(explorer.slices) == {(w, d, s) for w in (4, 8) for d in (1, 2) for s in (0, 100)}
    for sl in explorer.slices.values():
        assert abs(sl.regions.areas.sum() - 9.0) < 1e-9


def test_moving_a_slider_changes_geometry_and_readout(explorer):
    small, big = explorer.view(4, 1, 100), explorer.view(8, 2, 100)
    assert len(big.regions) > len(small.regions)
    assert small.readout != big.readout and f"{len(big.regions)} regions" in big.readout
    trained, init = explorer.view(8, 2, 100), explorer.view(8, 2, 0)
    assert "step 100" in trained.readout and "step 0" in init.readout
    assert explorer.slices[8, 2, 100].accuracy > explorer.slices[8, 2, 0].accuracy


def test_first_layer_hyperplanes_are_straight_deeper_ones_bend(explorer):
    first = [explorer.view(8, 2, 100, layer=1, neuron=j).highlight for j in range(8)]
    second = [explorer.view(8, 2, 100, layer=2, neuron=j).highlight for j in range(8)]
    from polylens.widgets.polytopes import _pieces

    assert all(_pieces(s) <= 1 for s in first)
    assert max(_pieces(s) for s in second) > 1


def test_invalid_combinations_show_a_message_instead_of_raising(explorer):
    view = explorer.view(4, 1, 100, layer=3, neuron=99)
    assert view.message and "showing the last" in view.message
    assert explorer.view(1000, -5, 10**6).regions is explorer.slices[8, 1, 100].regions


def test_update_redraws_the_figure_and_readout(explorer):
    explorer.widget(width=4, depth=1)
    ax = explorer.area.fig.axes[0]
    explorer.update(4, 1, 100, 1, 0, "code")
    n_polys = len(ax.collections[1].get_paths())
    text = explorer._readout.value
    explorer.update(8, 2, 100, 2, 3, "output")
    assert len(ax.collections[1].get_paths()) != n_polys
    assert explorer._readout.value != text
    plt.close(explorer.area.fig)


def test_the_neuron_slider_only_visits_neurons_that_cross_the_square(explorer):
    views = [explorer.view(8, 2, 100, layer=2, neuron=k) for k in range(8)]
    shown = [v for v in views if not v.message]
    assert all(len(v.highlight) > 0 for v in shown)
    assert len({v.highlight.tobytes() for v in shown}) == len(shown)  # each step shows another neuron


def test_distinct_colors_give_every_region_its_own_colour():
    # Notebook 00 asks learners to count regions by colour: no colour may repeat.
    import numpy as np

    for n in (0, 1, 22, 60, 150):
        colours = pl.plot.distinct_colors(n)
        assert colours.shape == (n, 4)
        assert len(np.unique(colours.round(4), axis=0)) == n


def test_readout_counts_in_english(explorer):
    from polylens.widgets.polytopes import _count

    assert (_count(1, "straight piece"), _count(2, "straight piece")) == ("1 straight piece", "2 straight pieces")
    for layer in (1, 2):
        for k in range(8):
            assert not re.search(r"\b1 straight pieces", explorer.view(8, 2, 100, layer=layer, neuron=k).readout)
    assert "1 hidden layer;" in explorer.view(4, 1, 100, layer=2).message
