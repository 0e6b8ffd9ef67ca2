"""polylens.superposition: sparse dictionaries recover ground truth; feature geometry."""

from __future__ import annotations

import pytest
import torch

from polylens import superposition as sp

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def ground_truth():
    features = sp.ground_truth_features(128, 64, seed=0)
    data = sp.sparse_activations(20000, 128, avg_active=5, seed=1) @ features
    return features, data


def test_mmcs_peaks_at_a_good_l1(ground_truth):
    features, data = ground_truth
    score = {}
    for l1 in (0.01, 0.3, 3.0):
        sae = sp.train_sae(data, 256, l1=l1, steps=1500, lr=1e-3, batch_size=256, seed=0, progress=False)
        score[l1] = sp.mmcs(sae, features)
        if l1 == 3.0:
            assert sp.l0(sae, data) < 1  # too much L1 silences latents (true: 5 active)
        if l1 == 0.01:
            assert sp.l0(sae, data) > 50  # too little leaves codes dense
    assert score[0.3] >= 0.9, score
    assert score[0.01] < score[0.3] - 0.2 and score[3.0] < score[0.3] - 0.2, score


def test_sae_shapes_and_unit_decoder(ground_truth):
    _, data = ground_truth
    sae = sp.train_sae(data[:500], 32, steps=5, seed=0, progress=False)
    assert isinstance(sae.relu, torch.nn.ReLU) and isinstance(sae.encoder, torch.nn.Linear)
    assert sae.encode(data[:7]).shape == (7, 32) and (sae.encode(data[:7]) >= 0).all()
    assert sae(data[:7]).shape == (7, 64)
    assert torch.allclose(sae.dictionary.norm(dim=1), torch.ones(32), atol=1e-5)
    again = sp.train_sae(data[:500], 32, steps=5, seed=0, progress=False)
    assert torch.equal(sae.dictionary, again.dictionary)


def test_mmcs_convention():
    true = torch.eye(3)
    assert sp.mmcs(true, true) == pytest.approx(1.0)
    # Signed: an atom pointing at -f does not count as recovering f.
    assert sp.mmcs(-true, true) == pytest.approx(0.0)
    # Per *true* feature: extra learned atoms do not lower the score.
    assert sp.mmcs(torch.cat([true, torch.ones(5, 3)]), true) == pytest.approx(1.0)
    assert sp.mmcs(true[:1], true) == pytest.approx(1 / 3 + 2 / 3 * 0.0)


def test_sparse_activations_decay_and_correlate():
    acts = sp.sparse_activations(40000, 20, avg_active=4, decay=2.0, seed=0)
    rate = (acts > 0).float().mean(0)
    assert rate.sum().item() == pytest.approx(4, rel=0.05)
    assert rate[0] > 2 * rate[-1]
    corr = sp.sparse_activations(40000, 20, avg_active=4, correlated=True, seed=0) > 0
    c = torch.corrcoef(corr.float().T)
    assert c[~torch.eye(20, dtype=torch.bool)].abs().mean() > 0.05
    base = torch.corrcoef((acts > 0).float().T)
    assert base[~torch.eye(20, dtype=torch.bool)].abs().mean() < 0.02


def test_objects_conditions_atomic_when_independent_combined_when_cooccurring():
    n_latents = 16  # one per object plus one per condition
    independent = sp.objects_conditions(8, 8, cooccurrence=0.0, seed=0)
    sae = sp.train_sae(independent.data, n_latents, l1=0.1, steps=2000, seed=0, progress=False)
    result = sp.atomic_vs_combination(sae, independent)
    assert result["atomic"] >= 0.8 and result["combination"] <= 0.1, result

    paired = sp.objects_conditions(8, 8, cooccurrence=0.95, seed=0)
    assert (paired.condition_index == paired.partner[paired.object_index]).float().mean() > 0.9
    sae = sp.train_sae(paired.data, n_latents, l1=0.1, steps=2000, seed=0, progress=False)
    result = sp.atomic_vs_combination(sae, paired)
    assert result["combination"] >= 0.4 and result["combination"] > result["atomic"], result


def test_animals_recovered_but_attributes_not_carried_by_any_latent():
    world = sp.animals_in_attribute_space(100, 50, n_samples=20000, avg_active=3, seed=0)
    assert torch.allclose(world.attributes @ world.attributes.T, torch.eye(50), atol=1e-5)
    assert torch.allclose(world.animal_attributes @ world.attributes, world.animals, atol=1e-5)
    sae = sp.train_sae(world.data, 200, l1=0.3, steps=2000, lr=3e-3, seed=0, progress=False)
    assert sp.mmcs(sae, world.animals) > 0.95
    assert sp.mmcs(sae, world.attributes) < 0.6
    assert sp.animal_readout_error(sae, world) < 0.2
    assert sp.attribute_readout_error(sae, world) > 0.8


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: sp.train_sae(torch.ones(5), 4, progress=False), ValueError, "n_samples, dim"),
        (lambda: sp.train_sae(torch.full((5, 2), float("nan")), 4, progress=False), ValueError, "NaN"),
        (lambda: sp.train_sae(torch.ones(5, 2), 4, l1=-1.0, progress=False), ValueError, "l1"),
        (lambda: sp.train_sae(torch.ones(5, 2), 0, progress=False), ValueError, "n_latents"),
        (lambda: sp.mmcs(torch.ones(3, 4), torch.ones(3, 5)), ValueError, "dim"),
        (lambda: sp.sparse_activations(10, 5, avg_active=9), ValueError, "avg_active"),
        (lambda: sp.objects_conditions(cooccurrence=1.5), ValueError, "cooccurrence"),
        (lambda: sp.animals_in_attribute_space(10, 20, dim=5), ValueError, "dim"),
        (lambda: sp.ground_truth_features(4, 2, seed="a"), TypeError, "seed"),
    ],
)
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_dead_latents_counts_rare_firing_as_dead():
    # Latent 0 fires on every sample, latent 1 on 3 of 10,000, latent 2 never.
    sae = sp.SAE(2, 3, seed=0)
    with torch.no_grad():
        sae.encoder.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]]))
        sae.encoder.bias.copy_(torch.tensor([1.0, 0.0, -1.0]))
    data = torch.zeros(10_000, 2)
    data[:3, 0] = 1.0
    assert sp.dead_latents(sae, data).tolist() == [False, True, True]  # default: at most 1 in 1,000
    assert sp.dead_latents(sae, data, threshold=0).tolist() == [False, False, True]  # never fires
    assert sp.dead_latents(sae, data, threshold=1e-4).tolist() == [False, False, True]
    for bad in (-0.1, 1.0, float("nan")):
        with pytest.raises(ValueError, match="threshold"):
            sp.dead_latents(sae, data, threshold=bad)
