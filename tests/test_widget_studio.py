"""The notebook 06 sunny-duck studio, driven without a browser."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

import polylens.scenes as pl_scenes
from polylens import compose
from polylens.scenes import load_autoencoder, load_probes
from polylens.widgets.studio import SunnyDuckStudio


@pytest.fixture(scope="module")
def studio():
    ae, probes = load_autoencoder(), load_probes()
    sunny, other = pl_scenes.training_scenes(6)
    plans = [("add", [ae.BOTTLENECK]), ("add_if_below", [ae.BOTTLENECK]), ("mask", [ae.BOTTLENECK])]
    methods = {name: compose.prepare(ae, name, layers, sunny, other) for name, layers in plans}
    return SunnyDuckStudio(ae, probes, methods, n_ducks=1, strengths=np.linspace(0, 2, 5), n_thresholds=3)


def test_strength_zero_shows_the_plain_reconstruction(studio):
    for name in studio.methods:
        v = studio.view(0, name, 0.0)
        assert np.array_equal(v.steered, v.original), name
        assert not v.success  # a reconstructed non-sunny duck is not sunny


def test_every_view_matches_the_library_steering_of_that_duck(studio):
    x = studio.data.images[2:3]  # duck 2 alone: the studio's batch must not change a per-example result
    with torch.no_grad(), studio.methods["add"].context(studio.ae, 1.5):
        alone = (studio.ae(x).clamp(0, 1)[0].permute(1, 2, 0).numpy() * 255).round()
    assert np.abs(studio.view(2, "add", 1.5).steered.astype(float) - alone).max() <= 1


def test_the_gate_closes_when_the_threshold_is_below_the_ducks_projection(studio):
    d = studio.methods["add_if_below"].parts["direction"]
    lowest, highest = studio.thresholds[0], studio.thresholds[-1]
    i = int(np.argmax(studio._projection))
    closed = studio.view(i, "add_if_below", 2.0, lowest)
    assert closed.gate_open is False and np.array_equal(closed.steered, closed.original)
    assert "left alone" in closed.readout
    opened = studio.view(i, "add_if_below", 2.0, highest)
    assert opened.gate_open is True and not np.array_equal(opened.steered, opened.original)
    with torch.no_grad():
        h = studio.ae.encoder(studio.data.images[i : i + 1])
    assert studio._projection[i] == pytest.approx(float(d.project(h)), abs=1e-4)


def test_curve_is_the_views_probabilities_and_verdicts_over_strength(studio):
    p_sunny, p_duck, accepted = studio.curve(1, "mask")
    views = [studio.view(1, "mask", s) for s in studio.strengths]
    assert p_sunny == pytest.approx([v.p_sunny for v in views])
    assert list(accepted) == [v.success for v in views]
    assert p_duck[0] > 0.5  # unsteered, the probe sees the duck


def test_the_verdict_is_the_answer_keys_and_says_what_the_picture_looks_like(studio):
    plain = studio.view(0, "mask", 0.0)
    assert not plain.success and plain.nearest.startswith("this duck's scene")  # still its own weather
    assert "Answer key" in plain.readout and plain.nearest in plain.readout
    # The oracle's picture, shown through the same verdict: the key accepts it.
    with torch.no_grad():
        oracle = studio.ae(studio.data.truth)
    assert compose.score(studio.ae, studio.probes, studio.data, oracle)["success"].all()


def test_the_threshold_starts_at_the_methods_own_midpoint(studio):
    own = studio.methods["add_if_below"].parts["threshold"]
    assert studio.default_threshold == pytest.approx(own, abs=1e-4)
    assert studio.view(0, "add_if_below", 1.0).threshold == pytest.approx(own, abs=1e-4)


def test_bad_values_show_a_message_and_update_redraws(studio):
    assert "strength runs from" in studio.view(0, "add", 99).message
    assert "method must be one of" in studio.view(0, "teleport", 1.0).message
    assert "duck must be" in studio.view(99, "add", 1.0).message
    assert "must be a number" in studio.view(0, "add", float("nan")).message
    studio.widget()
    before = studio._readout.value
    view = studio.update(1, "mask", 2.0)
    assert studio._readout.value != before and "mask" in studio._readout.value
    assert studio._threshold.disabled  # the threshold only moves add_if_below's gate
    assert np.array_equal(studio._images[1].get_array(), view.steered)
    plt.close("all")


def test_methods_must_be_prepared_methods():
    with pytest.raises(TypeError, match="compose.Method"):
        SunnyDuckStudio(load_autoencoder(), load_probes(), {"add": "not a method"})


def test_extreme_slider_values_and_numpy_numbers_never_raise(studio):
    """10**400 once raised OverflowError; numpy ints were refused as n_ducks."""
    huge = studio.view(0, "add", 10**400)
    assert "strength runs from" in huge.message and huge.strength == studio.strengths[-1]
    assert studio.view(0, "add", -10**400).strength == studio.strengths[0]
    gated = studio.view(0, "add_if_below", 1.0, 10**400)
    assert "threshold runs from" in gated.message and gated.threshold == studio.thresholds[-1]
    assert "duck must be" in studio.view(True, "add", 1.0).message
    assert studio.view(np.int64(1), "add", np.float32(1.0)).duck == 1


def test_numpy_counts_are_counts():
    ae, probes = load_autoencoder(), load_probes()
    sunny, other = pl_scenes.training_scenes(2)
    methods = {"add_if_below": compose.prepare(ae, "add_if_below", [ae.BOTTLENECK], sunny, other)}
    studio = SunnyDuckStudio(ae, probes, methods, n_ducks=np.int64(1), strengths=[0.0, 1.0], n_thresholds=0)
    assert len(studio.ducks) == 4 and len(studio.thresholds) == 1  # only the method's own threshold
    with pytest.raises(ValueError, match="n_thresholds"):
        SunnyDuckStudio(ae, probes, methods, n_ducks=1, n_thresholds=-1)
