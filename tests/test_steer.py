"""polylens.steer: directions, per-example gating, masks, cleanup."""

import numpy as np
import pytest
import torch

import polylens as pl
from polylens import steer
from polylens.models import MLP


def hook_count(model):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


@pytest.fixture
def setup():
    model = MLP([4, 16, 16, 3], seed=0)
    g = torch.Generator().manual_seed(0)
    sunny = torch.randn(64, 4, generator=g) + torch.tensor([2.0, 0, 0, 0])
    other = torch.randn(64, 4, generator=g)
    _, cache = pl.run_with_cache(model, torch.cat([sunny, other]), names_filter="relu0")
    acts = cache["relu0"]
    return model, sunny, other, steer.mean_difference(acts[:64], acts[64:], layer="relu0")


def relu0_after(model, x):
    _, cache = pl.run_with_cache(model, x, names_filter=["relu0", "linear1"])
    return cache["relu0"]


def test_mean_difference_is_a_unit_vector_with_the_data_projections(setup):
    model, sunny, other, d = setup
    assert torch.isclose(d.vector.norm(), torch.tensor(1.0))
    assert d.projections.mean() > d.baseline.mean()
    assert d.quantile(0.0) == pytest.approx(float(d.projections.min()))


def test_add_moves_along_the_direction_and_zero_is_the_identity(setup):
    model, sunny, other, d = setup
    with torch.no_grad():
        plain = model(other)
        with steer.add(model, d, alpha=0.0):
            assert torch.equal(model(other), plain)
        with steer.add(model, d, alpha=1.5):
            steered = model(other)
        h = relu0_after(model, other) + 1.5 * d.vector
        assert torch.allclose(steered, model.out(torch.relu(model.linear1(h))), atol=1e-6)
    assert hook_count(model) == 0


def test_gate_is_decided_per_example_not_per_batch(setup):
    model, sunny, other, d = setup
    batch = torch.cat([sunny[:5], other[:5]])
    proj = d.project(relu0_after(model, batch))
    mid = proj.sort().values
    threshold = float(mid[4] + mid[5]) / 2  # between two examples: no ties to round either way
    gate = steer.dot_below(d, threshold)
    with torch.no_grad(), steer.add(model, d, alpha=3.0, when=gate):
        together = model(batch)
        alone = torch.cat([model(batch[i : i + 1]) for i in range(len(batch))])
    with torch.no_grad():
        plain = model(batch)
    assert torch.allclose(together, alone, atol=1e-6)
    changed = (together - plain).abs().amax(1) > 1e-6
    low = proj < threshold
    assert changed[~low].sum() == 0 and changed[low].any()


def test_add_to_projection_reaches_the_target_and_never_lowers(setup):
    model, sunny, other, d = setup
    target = d.quantile(0.5)
    batch = torch.cat([other[:8], sunny[:8]])
    before = d.project(relu0_after(model, batch))
    with steer.add_to_projection(model, d, quantile=0.5):
        after = d.project(relu0_after(model, batch))
    assert torch.all(after >= target - 1e-5)
    above = before >= target
    assert torch.allclose(after[above], before[above])


def test_hooks_are_removed_after_an_exception(setup):
    model, sunny, other, d = setup
    with pytest.raises(RuntimeError, match="boom"):
        with steer.add(model, d, alpha=1.0):
            raise RuntimeError("boom")
    codes = pl.spline_code(model, sunny)
    mask = steer.steering_mask(codes, 0.9, preacts=steer.preactivations(model, sunny)[0])
    with pytest.raises(RuntimeError, match="boom"):
        with steer.toward_mask(model, mask, strength=1.0):
            raise RuntimeError("boom")
    assert hook_count(model) == 0


def test_wrong_layer_and_bad_values_are_explained(setup):
    model, sunny, other, d = setup
    with pytest.raises(ValueError, match="steer the layer"):
        with steer.add(model, d, alpha=1.0, layer="out"):
            model(other)
    with pytest.raises(ValueError, match="finite"):
        steer.add(model, d, alpha=float("nan")).__enter__()
    with pytest.raises(KeyError, match="relu0"):
        with steer.add(model, d, alpha=1.0, layer="relu_0"):
            pass
    assert hook_count(model) == 0


@pytest.mark.parametrize("layers", [["relu0"], ["relu0", "relu1"]])
def test_mask_at_strength_one_puts_every_masked_unit_in_its_state(setup, layers):
    model, sunny, other, d = setup
    preacts, codes = steer.preactivations(model, sunny, layers)
    mask = steer.steering_mask(codes, agreement=0.8, preacts=preacts)
    assert len(mask) > 0 and mask.magnitude.min() > 0
    assert pl.spline.code_mask(codes, 0.8).neurons.tolist() == mask.neurons.tolist()
    with steer.toward_mask(model, mask, strength=1.0):
        steered = pl.spline_code(model, other, layers)
    assert np.all(steered.bits[:, mask.neurons] == mask.state)
    before = pl.spline_code(model, other, layers)
    assert not np.all(before.bits[:, mask.neurons] == mask.state)  # the test is not vacuous
    with steer.toward_mask(model, mask, strength=0.0), torch.no_grad():
        assert torch.equal(model(other), model.forward(other))


def test_mask_without_magnitudes_asks_for_them(setup):
    model, sunny, other, d = setup
    mask = steer.steering_mask(pl.spline_code(model, sunny), 0.9)
    with pytest.raises(ValueError, match="preacts"):
        with steer.toward_mask(model, mask, strength=1.0):
            pass
    with steer.toward_mask(model, mask, strength=1.0, margin=0.5):
        bits = pl.spline_code(model, other).bits
    assert np.all(bits[:, mask.neurons] == mask.state)


def test_paired_pca_recovers_a_planted_direction():
    g = torch.Generator().manual_seed(1)
    planted = torch.nn.functional.normalize(torch.randn(10, generator=g), dim=0)
    base = torch.randn(200, 10, generator=g)
    shift = (1.0 + 0.2 * torch.rand(200, 1, generator=g)) * planted
    d = steer.paired_pca(base + shift + 0.05 * torch.randn(200, 10, generator=g), base, layer="x")
    assert float(d.vector @ planted) > 0.99


def test_code_directions_and_their_interaction():
    layers = (pl.spline.Layer("a", 0, 4),)
    pos = pl.SplineCode(np.array([[1, 1, 0, 0], [1, 1, 0, 1]], bool), layers)
    neg = pl.SplineCode(np.array([[0, 1, 1, 0], [0, 1, 1, 1]], bool), layers)
    other = pl.SplineCode(np.array([[1, 0, 1, 0], [1, 0, 1, 0]], bool), layers)
    a, b = steer.code_direction(pos, neg), steer.code_direction(other, neg)
    assert a.wants().tolist() == [1, 0, -1, 0]
    assert b.wants().tolist() == [1, -1, 0, -1]
    assert a.interaction(b) == {"only_self": 1, "only_other": 2, "both": 1, "both_agree": 1, "both_conflict": 0}


# ------------------------------------------------------- SAE directions ---


def test_sae_direction_picks_the_latent_that_separates_the_sets():
    from polylens.superposition import SAE

    sae = SAE(dim=4, n_latents=3, seed=0)
    with torch.no_grad():  # latent 2 reads axis 1; the others read axes 0 and 3
        atoms = torch.tensor([[1.0, 0, 0, 0], [0, 0, 0, 1.0], [0, 1.0, 0, 0]])
        sae.decoder.weight.copy_(atoms.T)
        sae.encoder.weight.copy_(atoms)
        sae.encoder.bias.zero_()
    gen = torch.Generator().manual_seed(0)
    neg = torch.rand(50, 4, generator=gen)
    pos = neg.clone()
    pos[:, 1] += 3.0  # only axis 1 tells them apart
    assert int(steer.separation(sae, pos, neg).argmax()) == 2
    d = steer.sae_direction(sae, pos, neg, layer="h")
    assert torch.allclose(d.vector, torch.tensor([0, 1.0, 0, 0]))
    assert d.projections.mean() - d.baseline.mean() == pytest.approx(3.0, abs=1e-5)
    scaled = steer.sae_direction(sae, 10 * pos, 10 * neg, layer="h", scale=10.0)  # trained on data / 10
    assert torch.allclose(scaled.vector, d.vector)
    with pytest.raises(ValueError, match="latent must be"):
        steer.sae_direction(sae, pos, neg, latent=7)
    with pytest.raises(ValueError, match="scale must be positive"):
        steer.sae_direction(sae, pos, neg, scale=0.0)
