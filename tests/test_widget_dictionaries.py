"""Notebook 05's explorers without a browser: views change with the sliders, bad values give messages."""

import math

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

from polylens import superposition as sp  # noqa: E402
from polylens.superposition.dictionary_sweeps import train_sae_grid  # noqa: E402
from polylens.widgets.dictionaries import CooccurrenceExplorer, DictionaryExplorer  # noqa: E402


@pytest.fixture(scope="module")
def dictionaries():
    torch.set_num_threads(1)
    return DictionaryExplorer(n_features=16, dim=8, avg_active=2.0, l1s=(0.01, 0.3, 3.0), sizes=(8, 32),
                              steps=300, n_samples=2048, seed=0)


@pytest.fixture(scope="module")
def cooc():
    torch.set_num_threads(1)
    return CooccurrenceExplorer(cooccurrences=(0.0, 0.97), steps=1500, n_samples=4096, seed=0)


def test_grid_matches_one_by_one_training():
    data = sp.sparse_activations(500, 12, avg_active=2, seed=0) @ sp.ground_truth_features(12, 6, seed=0)
    one = sp.train_sae(data, 10, l1=0.2, steps=30, seed=3, progress=False)
    grid = train_sae_grid(data, 10, [0.05, 0.2], steps=30, seed=3)
    assert torch.allclose(grid[1].decoder.weight, one.decoder.weight, atol=1e-6)
    assert torch.allclose(grid[1].encoder.bias, one.encoder.bias, atol=1e-6)
    assert sp.l0(grid[0], data) > sp.l0(grid[1], data)  # and the L1 value is each one's own


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda d: train_sae_grid(d, 4, []), "non-empty"),
        (lambda d: train_sae_grid(d, 4, [float("nan")]), "finite"),
        (lambda d: train_sae_grid([d, d], 4, [0.1]), "2 datasets for 1 SAEs"),
        (lambda d: train_sae_grid(d[0], 4, [0.1]), "n_samples, dim"),
        (lambda d: train_sae_grid(d, 0, [0.1]), "n_latents"),
    ],
)
def test_grid_refuses_bad_input(call, words):
    with pytest.raises(ValueError, match=words):
        call(torch.randn(20, 3))


def test_l1_and_size_change_what_is_shown(dictionaries):
    low, good, high = (dictionaries.view(l1, 32) for l1 in (0.01, 0.3, 3.0))
    assert low.l0 > good.l0 > high.l0  # more L1, sparser codes
    assert good.mmcs > low.mmcs and good.mmcs > high.mmcs
    assert high.n_dead > low.n_dead
    assert good.cosines.shape == (16, 32)
    small = dictionaries.view(0.3, 8)
    assert small.cosines.shape == (16, 8) and small.mmcs < good.mmcs  # 8 atoms cannot cover 16 features
    assert "MMCS" in good.readout and not good.message


def test_sorted_heatmap_puts_best_matches_on_the_diagonal(dictionaries):
    v = dictionaries.view(0.3, 32)
    diag = v.cosines[range(16), range(16)]
    assert diag.mean() > 0.7 and abs(diag.mean() - v.mmcs) < 0.05
    assert (v.cosines.max(axis=1) >= diag - 1e-12).all()


@pytest.mark.parametrize("l1, size", [(None, 32), ("lots", 32), (float("nan"), 32), (-1.0, 32), (0.3, 0), (0.3, "x")])
def test_invalid_states_give_a_message(dictionaries, l1, size):
    v = dictionaries.view(l1, size)
    assert v.message and math.isfinite(v.mmcs)


def test_off_grid_snaps_to_nearest(dictionaries):
    v = dictionaries.view(0.25, 30)
    assert (v.l1, v.n_latents) == (0.3, 32) and "nearest" in v.message


def test_update_redraws_the_figure(dictionaries):
    box = dictionaries.widget(l1=0.3, n_latents=32)
    assert box.children
    before = dictionaries._im.get_array().shape
    v = dictionaries.update(3.0, 8)
    assert dictionaries._im.get_array().shape == (16, 8) != before
    assert dictionaries._dead.get_width() == v.n_dead
    assert "MMCS" in dictionaries._readout.value
    dictionaries.update("bad", 8)
    assert "must be" in dictionaries._readout.value


def test_cooccurrence_turns_atoms_into_combinations(cooc):
    free, paired = cooc.view(0.0), cooc.view(0.97)
    assert free.kinds["atomic"] >= 0.8
    assert paired.kinds["combination"] > free.kinds["combination"] + 0.3
    assert free.cosines.shape[1] == 16 and len(free.row_kinds) == free.cosines.shape[0]
    assert "combination" in paired.readout


@pytest.mark.parametrize("value, shown", [(None, "first"), ("high", "first"), (True, "first"), (1.5, "last"),
                                          (-0.1, "first"), (float("inf"), "last")])
def test_cooccurrence_invalid_values_give_a_message(cooc, value, shown):
    """Not a number: the first setting; beyond an end: that end. Either way the readout says so."""
    v = cooc.view(value)
    assert v.message and v.cooccurrence == {"first": min, "last": max}[shown](cooc.cooccurrences)


def test_cooccurrence_update_redraws(cooc):
    cooc.widget(0.0)
    v = cooc.update(0.97)
    assert cooc._im.get_array().shape == v.cosines.shape
    assert cooc._marker.get_x() == pytest.approx(1 - 0.45)
    assert "co-occurrence 0.97" in cooc._readout.value


def test_dead_latents_and_live_mmcs(dictionaries):
    for l1 in dictionaries.l1s:
        for size in dictionaries.sizes:
            v = dictionaries.view(l1, size)
            sae = dictionaries.saes[l1, size]
            dead = sp.dead_latents(sae, dictionaries.data)
            assert v.n_dead == int(dead.sum())
            if v.n_dead < size:
                assert v.mmcs_live == pytest.approx(sp.mmcs(sae.dictionary[~dead], dictionaries.features))
            else:
                assert math.isnan(v.mmcs_live) and "every latent is dead" in v.readout
    # Too much L1: latents that fire on a handful of inputs count as dead, not only the silent ones.
    high = dictionaries.view(3.0, 32)
    silent = sp.dead_latents(dictionaries.saes[3.0, 32], dictionaries.data, threshold=0)
    assert high.n_dead > int(silent.sum())
    assert "live latents only" in high.readout
