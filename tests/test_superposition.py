"""polylens.superposition: toy models reproduce the paper; metrics are exact."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from polylens import superposition as sp

torch.set_num_threads(1)


def angle_gaps(W2: torch.Tensor) -> torch.Tensor:
    """Sorted angular gaps in degrees between the columns of a (2, n) matrix."""
    angles = torch.sort(torch.rad2deg(torch.atan2(W2[1], W2[0]))).values
    return torch.diff(torch.cat([angles, angles[:1] + 360]))


@pytest.fixture(scope="module")
def sparse_pentagon() -> sp.ToyModel:
    return sp.train_tms(5, 2, 0.05, n_instances=16, steps=2000, lr=1e-2, batch_size=1024, seed=0, progress=False)


@pytest.fixture(scope="module")
def dense_model() -> sp.ToyModel:
    importance = 0.9 ** torch.arange(5.0)
    return sp.train_tms(5, 2, 1.0, importance, n_instances=16, steps=2000, seed=0, progress=False)


# ----------------------------------------------------------------------------- the paper's facts


def test_sparse_features_form_a_pentagon(sparse_pentagon):
    W = sparse_pentagon.W.detach()
    norms = sp.feature_norms(W)

    def is_pentagon(k: int) -> bool:
        gaps = angle_gaps(W[k])
        return bool((norms[k] - 1.1).abs().max() < 0.15) and bool(((gaps - 72).abs() < 5).all())

    best = int(sparse_pentagon.loss.argmin())
    assert is_pentagon(best), (norms[best], angle_gaps(W[best]))
    assert sum(is_pentagon(k) for k in range(16)) >= 12
    # A pentagon gives each feature 2/5 of a dimension.
    assert torch.allclose(sp.feature_dimensionality(W[best]), torch.full((5,), 0.4), atol=0.03)


def test_dense_features_keep_two_orthogonal(dense_model):
    W = dense_model.W.detach()
    best = int(dense_model.loss.argmin())
    norms = sp.feature_norms(W[best])
    represented = (norms > 0.5).nonzero().flatten()
    assert represented.tolist() == [0, 1], norms  # the two most important
    a, b = W[best][:, 0], W[best][:, 1]
    assert abs(float(a @ b)) / float(a.norm() * b.norm()) < 0.05

    # Analytic optimum: features 0 and 1 reconstructed exactly; each dropped
    # feature i is best predicted by its mean 1/2 (via the bias), costing
    # importance_i * Var(U[0, 1]) = 0.9**i / 12. The loss averages over 5 features.
    analytic = sum(Fraction(9, 10) ** i for i in range(2, 5)) * Fraction(1, 12) / 5
    assert abs(float(analytic) - 0.0366) < 1e-4
    assert float(dense_model.loss.min()) > float(analytic) - 1e-3  # nobody beats the optimum
    assert abs(float(dense_model.loss.median()) - float(analytic)) < 1e-3
    assert sum(sp.feature_norms(W[k])[2:].max() < 0.2 for k in range(16)) >= 12


# ----------------------------------------------------------------------------- metrics


STICKY = [
    (sp.dedicated, Fraction(1)),
    (sp.tetrahedron, Fraction(3, 4)),
    (sp.triangle, Fraction(2, 3)),
    (sp.digon, Fraction(1, 2)),
    (sp.pentagon, Fraction(2, 5)),
    (sp.square_antiprism, Fraction(3, 8)),
]


@pytest.mark.parametrize("make, fraction", STICKY, ids=[m.__name__ for m, _ in STICKY])
def test_sticky_fraction_of_each_polytope(make, fraction):
    W = make()
    assert torch.allclose(sp.feature_norms(W), torch.ones(W.shape[1], dtype=torch.float64), atol=1e-12)
    assert abs(float(sp.dimensions_per_feature(W)) - float(fraction)) < 1e-9
    assert (sp.feature_dimensionality(W) - float(fraction)).abs().max() < 1e-9


def test_tegum_keeps_every_features_fraction():
    W = sp.tegum(*(make() for make, _ in STICKY))
    expected = torch.cat([torch.full((make().shape[1],), float(f), dtype=torch.float64) for make, f in STICKY])
    assert W.shape == (1 + 3 + 2 + 1 + 2 + 3, 1 + 4 + 3 + 2 + 5 + 8)
    assert (sp.feature_dimensionality(W) - expected).abs().max() < 1e-9
    total = sum(Fraction(make().shape[0]) for make, _ in STICKY) / sum(make().shape[1] for make, _ in STICKY)
    assert abs(float(sp.dimensions_per_feature(W)) - float(total)) < 1e-9
    # Orthogonal blocks never interfere across blocks.
    assert abs(float(sp.interference(sp.tegum(sp.dedicated(), sp.dedicated())).max())) < 1e-12


def test_interference_of_a_triangle():
    # Each neighbour at 120 degrees leaks cos^2 = 1/4.
    assert torch.allclose(sp.interference(sp.triangle()), torch.full((3,), 0.5, dtype=torch.float64))


def test_metrics_batch_over_instances():
    W = torch.stack([sp.pentagon(), sp.regular_polygon(5) * 2])
    assert sp.feature_dimensionality(W).shape == (2, 5)
    assert sp.dimensions_per_feature(W).shape == (2,)
    assert torch.allclose(sp.feature_norms(W)[1], torch.full((5,), 2.0, dtype=torch.float64))


def test_unrepresented_feature_has_zero_dimensionality():
    W = torch.tensor([[1.0, 0.0]])
    assert sp.feature_dimensionality(W).tolist() == [1.0, 0.0]


# ----------------------------------------------------------------------------- model plumbing


def test_hidden_to_output_matches_the_model(sparse_pentagon):
    model = sparse_pentagon
    x = sp.generate_features(64, 5, 0.3, n_instances=16, seed=3)
    with torch.no_grad():
        h = model.hidden(x)
        out = model(x)
        for k in (0, 7):
            module = sp.hidden_to_output(model, k)
            assert isinstance(module[0], torch.nn.Linear) and isinstance(module[1], torch.nn.ReLU)
            assert torch.allclose(module(h[:, k]), out[:, k], atol=1e-6)


def test_save_load_roundtrip(tmp_path, sparse_pentagon):
    path = tmp_path / "tms.safetensors"
    sparse_pentagon.save(path)
    loaded = sp.ToyModel.load(path)
    for name in ("W", "b", "loss", "feature_probability", "importance"):
        assert torch.equal(getattr(loaded, name), getattr(sparse_pentagon, name))
    assert path.read_bytes()[:1] != b"\x80"  # not a pickle


def test_same_seed_same_model_and_per_instance_settings():
    probs = torch.tensor([0.01, 0.1, 1.0])
    a = sp.train_tms(4, 2, probs, importance=[1, 1, 0.5, 0.5], n_instances=3, steps=20, progress=False)
    b = sp.train_tms(4, 2, probs, importance=[1, 1, 0.5, 0.5], n_instances=3, steps=20, progress=False)
    assert torch.equal(a.W, b.W) and torch.equal(a.loss, b.loss)
    assert a.feature_probability[:, 0].tolist() == pytest.approx(probs.tolist())
    assert a.importance[2].tolist() == [1, 1, 0.5, 0.5]
    assert a.W.shape == (3, 2, 4) and a.b.shape == (3, 4) and a.loss.shape == (3,)


def test_correlated_and_anticorrelated_pairs():
    x = sp.generate_features(20000, 4, 0.2, correlation="correlated", seed=0)[:, 0] > 0
    assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 2], x[:, 3])
    assert abs(x[:, 0].float().mean().item() - 0.2) < 0.02
    assert not torch.equal(x[:, 0], x[:, 2])
    y = sp.generate_features(20000, 4, 0.2, correlation="anticorrelated", seed=0)[:, 0] > 0
    assert not (y[:, 0] & y[:, 1]).any() and not (y[:, 2] & y[:, 3]).any()
    assert abs(y[:, 0].float().mean().item() - 0.2) < 0.02
    values = sp.generate_features(20000, 4, 0.2, seed=0)[:, 0]
    z = values > 0
    assert abs(z.float().mean().item() - 0.2) < 0.01
    assert abs((z[:, 0] & z[:, 1]).float().mean().item() - 0.04) < 0.01
    assert abs(values[z].mean().item() - 0.5) < 0.02 and values.max() < 1  # U[0, 1) when present
    signed = sp.generate_features(20000, 4, 0.2, signed=True, seed=0)
    assert abs(signed[signed != 0].mean().item()) < 0.02 and signed.min() < -0.95


def test_abs_model_computes_absolute_values():
    # |x| = ReLU(x) + ReLU(-x): two hidden neurons per feature suffice.
    model = sp.train_abs_tms(3, 6, 0.3, n_instances=4, steps=1500, lr=1e-2, seed=0, progress=False)
    x = sp.generate_features(4096, 3, 0.3, n_instances=4, signed=True, seed=9)
    assert (x < 0).any()
    baseline = (x.abs() ** 2).mean()  # predicting 0
    # Some instances lose a neuron to a dead ReLU; the best one computes |x|.
    assert (model.loss < baseline).all() and model.loss.min() < 0.01 * baseline, model.loss
    h = model.hidden(x)
    assert torch.allclose(sp.hidden_to_output(model, 1)(h[:, 1]), model(x)[:, 1], atol=1e-6)


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(feature_probability=-0.1), "feature_probability must lie in"),
        (dict(feature_probability=1.5), "feature_probability must lie in"),
        (dict(feature_probability=float("nan")), "NaN or inf"),
        (dict(feature_probability=[0.1, 0.2]), "one value per instance"),
        (dict(feature_probability=0.1, importance=[1.0, 2.0]), "one value per feature"),
        (dict(feature_probability=0.1, importance=np.ones((3, 5))), r"\(n_instances, n_features\)"),
        (dict(feature_probability=0.1, importance=float("inf")), "NaN or inf"),
        (dict(feature_probability=0.1, importance=-1.0), "non-negative"),
        (dict(feature_probability=0.1, activation="tanh"), "activation must be one of"),
        (dict(feature_probability=0.1, correlation="anticorrelated"), "even"),
        (dict(feature_probability=0.1, lr=float("nan")), "lr must be"),
    ],
)
def test_bad_input_raises_a_helpful_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sp.train_tms(5, 2, n_instances=4, steps=1, progress=False, **kwargs)


def test_bad_geometry_input():
    with pytest.raises(ValueError, match="shape"):
        sp.feature_norms(torch.ones(5))
    with pytest.raises(ValueError, match="NaN"):
        sp.feature_dimensionality(torch.tensor([[math.nan, 1.0]]))
    with pytest.raises(ValueError, match="at least one"):
        sp.tegum()
    with pytest.raises(TypeError, match="seed"):
        sp.generate_features(4, 2, 0.1, seed=1.5)
    with pytest.raises(ValueError, match="x must have shape"):
        sp.train_tms(5, 2, 0.1, n_instances=2, steps=1, progress=False)(torch.zeros(3, 5))
