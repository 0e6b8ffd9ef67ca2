"""Checks for notebook 04 (toy models of superposition)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from polylens.exercises import ExerciseFailed, exercise
from polylens.superposition import metrics


def tms_forward(W: torch.Tensor, b: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Reference answer: x' = ReLU(W^T W x + b) for a batch. W (hidden, features), b (features,), x (batch, features)."""
    return torch.relu(x @ W.T @ W + b)


def _tensor(got, want: torch.Tensor, what: str) -> torch.Tensor:
    if not isinstance(got, torch.Tensor):
        raise ExerciseFailed(f"return a torch.Tensor, not {type(got).__name__}")
    if got.shape != want.shape:
        raise ExerciseFailed(f"your {what} has shape {tuple(got.shape)}; it should be {tuple(want.shape)}")
    return got.detach().to(want.dtype)


@exercise("tms_forward", "The toy model's forward pass", solution=tms_forward)
def check_tms_forward(fn: Callable) -> str:
    """``fn(W, b, x)`` must return ReLU(W^T W x + b) row by row."""
    gen = torch.Generator().manual_seed(4)
    W = torch.randn(2, 5, generator=gen)
    b = -0.3 * torch.rand(5, generator=gen)
    x = torch.rand(64, 5, generator=gen) * (torch.rand(64, 5, generator=gen) < 0.3)
    want = tms_forward(W, b, x)
    try:
        got = fn(W, b, x)
    except RuntimeError as err:
        if "shape" in str(err) or "size" in str(err):
            raise ExerciseFailed(
                f"the matrix shapes did not fit ({err}). W is (hidden, features) = (2, 5) and x is "
                "(batch, features) = (64, 5): the hidden vectors are x @ W.T, shape (64, 2), and back in "
                "feature space they are h @ W, shape (64, 5)"
            ) from None
        raise
    got = _tensor(got, want, "output")
    pre = x @ W.T @ W + b
    if torch.allclose(got, pre, atol=1e-5):
        raise ExerciseFailed(
            "your output has negative values: that is W^T W x + b before the ReLU. The ReLU at the end is "
            "what cleans up interference (small negative leaks are cut to 0); apply torch.relu"
        )
    if torch.allclose(got, torch.relu(x @ W.T @ W), atol=1e-5):
        raise ExerciseFailed("you left out the bias b: the output is ReLU(W^T W x + b), and the (negative) "
                             "bias is what lets the ReLU cut off small interference")
    if torch.allclose(got, x @ W.T @ W, atol=1e-5):
        raise ExerciseFailed("you left out both the bias and the ReLU: the output is ReLU(W^T W x + b)")
    if torch.allclose(got, torch.relu(x @ W.T @ W) + b, atol=1e-5):
        raise ExerciseFailed("add the bias *before* the ReLU: ReLU(W^T W x + b), not ReLU(W^T W x) + b")
    if torch.allclose(got, torch.relu(x @ W.T) @ W + b, atol=1e-5) or torch.allclose(
            got, torch.relu(torch.relu(x @ W.T) @ W + b), atol=1e-5):
        raise ExerciseFailed("the ReLU belongs on the output only: the hidden layer h = W x is linear in this "
                             "toy model, so negative hidden coordinates must survive")
    if not torch.allclose(got, want, atol=1e-5):
        raise ExerciseFailed("the shape is right but the values are not ReLU(W^T W x + b); for a batch of rows "
                             "x (batch, features) that is torch.relu(x @ W.T @ W + b)")
    absent = x == 0
    leaks = ((x @ W.T @ W != 0) & absent).sum().item()
    left = ((pre > 0) & absent).sum().item()
    return (f"On this batch, {leaks} outputs of absent features received interference; after the bias and "
            f"ReLU only {left} are still non-zero.")


def dimensions_per_feature(W: torch.Tensor) -> torch.Tensor:
    """Reference answer: D* = hidden / ||W||_F^2 for W (hidden, features)."""
    return W.shape[0] / (W**2).sum()


@exercise("dimensions_per_feature", "Dimensions per feature D*", solution=dimensions_per_feature)
def check_dimensions_per_feature(fn: Callable) -> str:
    """``fn(W)`` must return the scalar m / ||W||_F^2."""
    cases = {
        "a pentagon (5 unit features in 2 dims)": metrics.pentagon().float(),
        "an antipodal pair plus a dedicated feature (3 features, 2 dims)": metrics.tegum(metrics.digon(),
                                                                                         metrics.dedicated()).float(),
        "a random (6, 20) matrix": torch.randn(6, 20, generator=torch.Generator().manual_seed(1)),
    }
    for name, W in cases.items():
        want = dimensions_per_feature(W)
        got = fn(W)
        if isinstance(got, (int, float)):
            got = torch.tensor(float(got))
        if not isinstance(got, torch.Tensor):
            raise ExerciseFailed(f"return a number or a 0-d tensor, not {type(got).__name__}")
        if got.numel() != 1:
            raise ExerciseFailed(f"D* is one number for the whole matrix; for {name} you returned shape "
                                 f"{tuple(got.shape)}. Sum the squares over both axes")
        got = got.reshape(()).float()
        m, n = W.shape
        fro2 = (W**2).sum()
        if torch.isclose(got, n / fro2, rtol=1e-4) and m != n:
            raise ExerciseFailed(f"for {name} you divided the number of *features* ({n}) by ||W||_F^2; D* counts "
                                 f"hidden dimensions per feature: use the number of hidden dimensions, W.shape[0] = {m}")
        if torch.isclose(got, fro2 / m, rtol=1e-4):
            raise ExerciseFailed("that is 1/D* (features per dimension): D* = m / ||W||_F^2, not ||W||_F^2 / m")
        if torch.isclose(got, m / fro2.sqrt(), rtol=1e-4):
            raise ExerciseFailed("square the Frobenius norm: D* = m / ||W||_F^2 = m / (W**2).sum()")
        if not torch.isclose(got, want, rtol=1e-4):
            raise ExerciseFailed(f"for {name} D* is {want:.3f}, you returned {got:.3f}; D* = m / ||W||_F^2 with "
                                 "m the number of hidden dimensions")
    return "The pentagon gives 2/5 and the digon plus a dedicated feature 2/3: the sticky fractions."
