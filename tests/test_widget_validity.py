"""The notebook 03 validity explorer, driven without a browser."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

import polylens.scenes as pl_scenes
from polylens import steer
from polylens.regions import crossings
from polylens.scenes import load_autoencoder, load_probes, render
from polylens.widgets.validity import ValidityExplorer


@pytest.fixture(scope="module")
def explorer():
    ae, probes = load_autoencoder(), load_probes()
    sunny, other = pl_scenes.training_scenes(4)
    with torch.no_grad():
        d = steer.mean_difference(ae.encoder(sunny), ae.encoder(other), layer=ae.BOTTLENECK)
    return ValidityExplorer(ae, probes, d, alphas=np.linspace(-0.5, 1.5, 5))


def test_alpha_zero_is_the_plain_reconstruction(explorer):
    view = explorer.view("duck", 0.0)
    assert view.crossed == 0 and view.negative_units == 0
    assert "inside" in view.readout or "outside" in view.readout


def test_crossing_counts_match_exact_crossings_along_the_path(explorer):
    d = explorer.d.vector
    x = torch.from_numpy(render("duck", "overcast", 2)).permute(2, 0, 1)[None]
    with torch.no_grad():
        h0 = explorer.ae.encoder(x)[0]
    step = 1.5 * explorer.gap
    exact = len(crossings(explorer.ae.decoder, h0, h0 + step * d).t)
    assert explorer.view("duck", 1.5).crossed == exact
    counts = [explorer.view("duck", a).crossed for a in (0.0, 0.5, 1.0, 1.5)]
    assert counts == sorted(counts) and counts[-1] > 0


def test_projection_moves_by_the_gap_per_unit_alpha(explorer):
    p0, p1 = explorer.view("duck", 0.0).projection, explorer.view("duck", 1.0).projection
    assert p1 - p0 == pytest.approx(explorer.gap, rel=1e-4)


def test_bad_values_show_a_message_and_update_redraws(explorer):
    assert "alpha runs from" in explorer.view("duck", 99).message
    assert "scanned scenes" in explorer.view("tree", 0.0).message
    explorer.widget()
    explorer.update("duck", 0.0)
    text, img = explorer._readout.value, explorer._image.get_array().copy()
    explorer.update("duck", 1.5)
    assert explorer._readout.value != text and not np.array_equal(img, explorer._image.get_array())
    plt.close(explorer.area.fig)
