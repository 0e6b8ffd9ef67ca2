"""Notebook 04's explorer, without a browser, and the shipped sweeps."""

import json
import shutil

import matplotlib
import numpy as np
import pytest
import torch

from polylens.superposition import sweeps
from polylens.widgets.superposition import SuperpositionExplorer

matplotlib.use("Agg", force=False)


@pytest.fixture(scope="module")
def explorer():
    torch.set_num_threads(1)
    return SuperpositionExplorer(sparsities=(0.0, 0.9), decays=(1.0, 0.7), steps=1000)


def test_sparse_features_share_two_dimensions_and_dense_ones_do_not(explorer):
    dense, sparse = explorer.view(0.0, 0.7), explorer.view(0.9, 1.0)
    assert dense.n_represented == 2
    assert sparse.n_represented == 5
    assert sparse.W.shape == (2, 5) and sparse.message == ""
    assert "5 of 5 features" in sparse.readout
    assert not np.allclose(dense.W, sparse.W)
    # Each polytope of the hidden space lets a different set of outputs through.
    assert len(sparse.regions) > len(dense.regions)


def test_shading_has_a_key_and_the_bias_says_which_outputs_are_on(explorer):
    from matplotlib.colors import to_rgba

    from polylens.superposition import plots

    v = explorer.view(0.9, 1.0)
    explorer.widget(0.9, 1.0)
    fig = explorer.area.fig
    bar = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(bar) == 1 and list(bar[0].get_yticks()) == list(range(6))
    coll = explorer._regions
    coll.update_scalarmappable()  # colours are mapped at draw time
    # Each polytope's grey is the colour bar's grey for its count of outputs on.
    cmap, norm = plots._outputs_on_scale(5)
    for face, n_on in zip(coll.get_facecolors(), v.regions.n_on):
        assert np.allclose(face, to_rgba(cmap(norm(n_on))))
    # The view's bias reproduces the polytopes' labels: output i is on where W_i . h + b_i > 0.
    inside = v.regions.interior_points()
    on = inside @ v.W + v.bias > 0
    assert (on.sum(1) == v.regions.n_on).all()


def test_off_grid_and_bad_values_give_a_message(explorer):
    v = explorer.view(0.93, 0.75)
    assert (v.sparsity, v.decay) == (0.9, 0.7) and "nearest" in v.message
    v = explorer.view("lots", None)
    assert "sparsity must be a number" in v.message and "decay must be a number" in v.message
    v = explorer.view(float("nan"), 1.0)
    assert v.message
    v = explorer.view(0.9, 1.0, live=True)
    assert "train live" in v.message


def test_update_redraws_and_live_training(explorer):
    explorer.widget(0.0, 1.0)
    explorer.area.refresh = lambda: explorer.area.fig.canvas.draw()  # no display in tests
    before = explorer._arrows.U.copy()
    v = explorer.update(0.9, 1.0)
    assert not np.allclose(before, explorer._arrows.U)
    assert "5 of 5" in explorer._readout.value
    explorer.train_live(0.9, 1.0, steps=300)
    live = explorer.update(0.9, 1.0, live=True)
    assert "trained live" in live.readout and not np.allclose(live.W, v.W)


def test_shipped_sweeps_load_and_match_their_manifest():
    dstar = sweeps.load("dstar")
    assert dstar.W.shape == (sweeps.DSTAR["n_settings"], sweeps.DSTAR["n_hidden"], sweeps.DSTAR["n_features"])
    phase = sweeps.load("phase_n2")
    grid = sweeps.phase_of(phase)
    assert grid.shape == (sweeps.PHASE["n_density"], sweeps.PHASE["n_importance"])
    # Very sparse, equally important features share the one dimension as an antipodal pair.
    assert grid[0, sweeps.PHASE["n_importance"] // 2] == 2
    for f in sweeps.DATA.iterdir():
        assert f.stat().st_size < 1_000_000


def test_a_corrupted_file_is_refused(tmp_path):
    for f in sweeps.DATA.iterdir():
        shutil.copy(f, tmp_path / f.name)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    path = tmp_path / manifest["dstar"]["file"]
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="corrupt or altered"):
        sweeps.load("dstar", tmp_path)
    with pytest.raises(KeyError, match="dstar"):
        sweeps.load("nope", tmp_path)
