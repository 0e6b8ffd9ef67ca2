"""SAELens's metrics and files: hand-checked cases, a round trip, and refusals."""

import json
import math

import numpy as np
import pytest
import torch

from polylens import superposition as sp
from polylens.superposition.sae import CFG_FILE, SAE, WEIGHTS_FILE


def sae_with(atoms: torch.Tensor, encoder: torch.Tensor | None = None, bias: torch.Tensor | None = None) -> SAE:
    """An SAE whose decoder rows are ``atoms`` (n_latents, dim), encoder its transpose unless given."""
    n, dim = atoms.shape
    sae = SAE(dim, n)
    with torch.no_grad():
        sae.decoder.weight.copy_(atoms.T)
        sae.encoder.weight.copy_(atoms if encoder is None else encoder)
        sae.encoder.bias.copy_(torch.zeros(n) if bias is None else bias)
    return sae


def test_mcc_is_one_to_one_where_mmcs_lets_an_atom_match_two_features():
    e1, e2, e3 = torch.eye(3)
    merged = (e1 + e2) / math.sqrt(2)
    atoms = torch.stack([merged, e3])  # one atom halfway between features 1 and 2, one on feature 3
    true = torch.stack([e1, e2])
    assert sp.mmcs(atoms, true) == pytest.approx(1 / math.sqrt(2))  # both features find the merged atom
    # One to one: the merged atom serves one feature (0.71), the other gets e3 (0): mean 0.35.
    assert sp.mcc(atoms, true) == pytest.approx(0.5 / math.sqrt(2))
    assert sp.mcc(torch.eye(3), torch.eye(3)[[2, 0, 1]]) == pytest.approx(1.0)  # a permutation is matched
    assert sp.mcc(-torch.eye(3), torch.eye(3)) == pytest.approx(1.0)  # |cos|, as SAELens takes it
    assert sp.mmcs(-torch.eye(3), torch.eye(3)) == pytest.approx(0.0)  # signed: a flipped atom cannot express f


def test_reconstruction_metrics_by_hand():
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]])
    identity = sae_with(torch.eye(2))  # ReLU(x) of non-negative data: a perfect reconstruction
    assert sp.explained_variance(identity, x) == pytest.approx(1.0)
    assert sp.shrinkage(identity, x) == pytest.approx(1.0)  # the zero sample is left out
    half = sae_with(torch.eye(2), encoder=0.5 * torch.eye(2))  # codes at half size: x_hat = x / 2
    assert sp.shrinkage(half, x) == pytest.approx(0.5)
    # Residual sum 1/4 + 1 = 1.25; total sum of squares about the mean: 2/3 + 8/3 = 10/3.
    assert sp.explained_variance(half, x) == pytest.approx(1 - 1.25 / (10 / 3))


def test_dead_latents_both_ways_and_evaluate_sae():
    x = torch.zeros(1000, 2)
    x[:, 0] = 1.0
    x[0, 1] = 1.0  # latent 1 fires on exactly 1 sample in 1,000: dead at rate 1e-3, alive by SAELens's rule
    sae = sae_with(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]))
    scores = sp.evaluate_sae(sae, x, true_features=torch.eye(2))
    assert scores["dead_latents"] == 1  # latent 2 never fires
    assert scores["dead_latents_at_rate"] == 2 and scores["dead_rate"] == 1e-3
    assert scores["sae_l0"] == pytest.approx(1.001)
    assert scores["mcc"] == pytest.approx(1.0) and scores["mmcs"] == pytest.approx(1.0)
    assert set(scores) >= {"sae_l0", "dead_latents", "shrinkage", "explained_variance", "mcc"}  # SAELens's names
    assert "mcc" not in sp.evaluate_sae(sae, x)


def test_save_and_load_round_trip_in_saelens_layout(tmp_path):
    data = sp.sparse_activations(512, 8, seed=0) @ sp.ground_truth_features(8, 5, seed=0)
    sae = sp.train_sae(data, 12, steps=50, seed=3, progress=False)
    sae.save(tmp_path / "sae")
    cfg = json.loads((tmp_path / "sae" / CFG_FILE).read_text())
    assert cfg["d_in"] == 5 and cfg["d_sae"] == 12 and cfg["architecture"] == "standard"
    from safetensors.torch import load_file

    tensors = load_file(str(tmp_path / "sae" / WEIGHTS_FILE))
    assert {k: tuple(v.shape) for k, v in tensors.items()} == {"W_enc": (5, 12), "b_enc": (12,), "W_dec": (12, 5),
                                                               "b_dec": (5,)}
    again = SAE.load(tmp_path / "sae")
    assert torch.equal(again(data), sae(data))
    with pytest.raises(FileExistsError, match="overwrite=True"):
        sae.save(tmp_path / "sae")
    sae.save(tmp_path / "sae", overwrite=True)


def test_load_refuses_what_it_cannot_load(tmp_path):
    from safetensors.torch import save_file

    sae = SAE(3, 4)
    folder = sae.save(tmp_path / "a")
    with pytest.raises(ValueError, match="missing"):
        SAE.load(tmp_path / "nowhere")
    weights = folder / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[len(data) - 60] ^= 0xFF  # a byte of W_dec flipped
    weights.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="sha256"):
        SAE.load(folder)
    # A file SAELens could have written (no polylens checksum), with a decoder bias this SAE cannot hold.
    folder = tmp_path / "b"
    folder.mkdir()
    (folder / CFG_FILE).write_text(json.dumps({"d_in": 3, "d_sae": 4}))
    tensors = {"W_enc": torch.zeros(3, 4), "b_enc": torch.zeros(4), "W_dec": torch.zeros(4, 3), "b_dec": torch.ones(3)}
    save_file(tensors, str(folder / WEIGHTS_FILE))
    with pytest.raises(ValueError, match="b_dec"):
        SAE.load(folder)
    tensors["b_dec"] = torch.zeros(3)
    tensors["W_enc"] = torch.zeros(4, 3)
    save_file(tensors, str(folder / WEIGHTS_FILE))
    with pytest.raises(ValueError, match="W_enc must have shape"):
        SAE.load(folder)


def test_metrics_refuse_mismatched_input():
    with pytest.raises(ValueError, match="dim"):
        sp.mcc(torch.eye(3), torch.eye(4))
    with pytest.raises(ValueError, match="NaN"):
        sp.mcc(torch.full((2, 2), float("nan")), torch.eye(2))
    with pytest.raises(ValueError, match="variance"):
        sp.explained_variance(SAE(2, 2), torch.ones(4, 2))
    with pytest.raises(ValueError, match="zero"):
        sp.shrinkage(SAE(2, 2), torch.zeros(4, 2))
    assert np.isfinite(sp.mcc(np.eye(2), np.eye(2)))
