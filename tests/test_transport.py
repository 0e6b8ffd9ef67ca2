"""Paired transport: per-example starts, per-position displacements, hooks that always come off."""

import numpy as np
import pytest
import torch

import polylens.scenes as pl_scenes
from polylens import capture, compose, steer
from polylens.hooks import collect
from polylens.scenes import SceneAutoencoder


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    ae = SceneAutoencoder(channels=2, width=4, seed=0).eval()
    rest = pl_scenes.split("train", 2, objects=pl_scenes.TRAINING_OBJECTS)
    plan = steer.fit_transport(ae, ae.BOTTLENECK, rest.images, rest.truth, np.array(compose.WEATHERS)[rest.weathers],
                               inputs=["encoder.3", "encoder.5"])
    return ae, rest, plan


def test_strength_zero_is_the_identity_and_hooks_come_off(setup):
    ae, rest, plan = setup
    x = rest.images[:6]
    with torch.no_grad():
        plain = ae(x)
        with steer.transport(ae, plan, 0.0):
            same = ae(x)
        with steer.transport(ae, plan, 1.0):
            moved = ae(x)
    assert torch.allclose(same, plain, atol=1e-7) and (moved - plain).abs().max() > 1e-4
    with pytest.raises(KeyError):
        with steer.transport(ae, plan, 1.0):
            raise KeyError("inside")
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in ae.modules())
    with torch.no_grad():
        assert torch.equal(ae(x), plain)


def test_each_example_is_moved_by_its_own_start(setup):
    ae, rest, plan = setup
    mixed = rest.images[[0, 9, 17, 30]]  # different weathers in one batch
    with torch.no_grad(), steer.transport(ae, plan, 1.0):
        together = ae(mixed)
        alone = torch.cat([ae(mixed[i:i + 1]) for i in range(len(mixed))])
    assert torch.allclose(together, alone, atol=1e-5)
    with torch.no_grad():
        h = ae.encoder(rest.images)
    starts = np.array(plan.starts)[plan.start(h).numpy()]
    assert (starts == np.array(compose.WEATHERS)[rest.weathers]).mean() >= 0.9  # the code says where it starts


def test_each_position_is_moved_by_its_own_neighbourhood(setup):
    ae, rest, plan = setup
    with torch.no_grad():
        acts = collect(ae, rest.images[:2], [ae.BOTTLENECK, *plan.inputs])
    h = acts.pop(ae.BOTTLENECK)
    base = plan.displacement(h, acts).reshape(2, *plan.shape)
    # Change what feeds the top-left patch only (encoder.5 is 8 x 8, like the bottleneck; read with radius 1).
    changed = dict(acts, **{"encoder.5": acts["encoder.5"].clone()})
    changed["encoder.5"][:, :, 0, 0] += 5.0
    moved = plan.displacement(h, changed).reshape(2, *plan.shape)
    assert not torch.allclose(moved[:, :, 0, 0], base[:, :, 0, 0])  # that patch moves differently
    assert torch.allclose(moved[:, :, 2:, :], base[:, :, 2:, :], atol=1e-6)  # patches out of reach do not
    assert torch.allclose(moved[:, :, :, 2:], base[:, :, :, 2:], atol=1e-6)


def test_on_its_training_pairs_it_moves_each_code_toward_its_pair(setup):
    ae, rest, plan = setup
    with torch.no_grad():
        before, after = ae.encoder(rest.images), ae.encoder(rest.truth)
        with steer.transport(ae, plan, 1.0), capture(ae, ae.BOTTLENECK) as cache:
            ae(rest.images)
    moved = cache[ae.BOTTLENECK]
    assert (moved - after).norm() < 0.75 * (before - after).norm()


def test_pairs_that_do_not_change_give_no_displacement(setup):
    ae, rest, _ = setup
    plan = steer.fit_transport(ae, ae.BOTTLENECK, rest.images, rest.images, rest.weathers, inputs=["encoder.5"])
    with torch.no_grad():
        acts = collect(ae, rest.images[:4], [ae.BOTTLENECK, "encoder.5"])
    assert plan.displacement(acts[ae.BOTTLENECK], acts).abs().max() < 1e-4


def test_bad_input_is_explained(setup):
    ae, rest, plan = setup
    with pytest.raises(ValueError, match="same shape"):
        steer.fit_transport(ae, ae.BOTTLENECK, rest.images, rest.truth[:3], rest.weathers)
    with pytest.raises(ValueError, match="one starting state per pair"):
        steer.fit_transport(ae, ae.BOTTLENECK, rest.images, rest.truth, rest.weathers[:3])
    with pytest.raises(ValueError, match="ridge"):
        steer.fit_transport(ae, ae.BOTTLENECK, rest.images, rest.truth, rest.weathers, ridge=0)
    with pytest.raises(TypeError, match="PairedTransport"):
        with steer.transport(ae, "plan", 1.0):
            pass
    with pytest.raises(ValueError, match="strength"):
        with steer.transport(ae, plan, float("nan")):
            pass
    with pytest.raises(ValueError, match="training_scenes"):
        pl_scenes.training_pairs(rest.truth[:3], rest.images)
