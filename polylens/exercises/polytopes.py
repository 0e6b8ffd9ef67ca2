"""Checks for notebook 01 (polytopes)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from polylens.exercises import ExerciseFailed, as_count, exercise
from polylens.models import MLP
from polylens.plot import plane_grid
from polylens.regions import slice_regions
from polylens.spline import spline_code


def grid_region_count(model: torch.nn.Module, n: int) -> int:
    """Reference answer: distinct spline codes on an n x n grid over [-1, 1]^2."""
    codes = spline_code(model, plane_grid((-1, 1, -1, 1), n=n)).bits
    return len(np.unique(codes, axis=0))


@exercise("grid_region_count", "Count regions by sampling", solution=grid_region_count)
def check_grid_region_count(fn: Callable) -> str:
    model = MLP([2, 6, 6, 1], seed=2)
    exact = len(slice_regions(model, torch.zeros(2), torch.tensor([1.0, 0]), torch.tensor([0, 1.0])))
    first_layer = len(np.unique(spline_code(model, plane_grid(n=150), "relu0").bits, axis=0))
    got = as_count(fn(model, 150), "the number of distinct codes")
    if got > exact:
        raise ExerciseFailed(
            f"you counted {got} regions but there are exactly {exact}: a grid can only miss regions, "
            "never invent them. Did you count distinct grid points or outputs instead of distinct codes?"
        )
    if got == first_layer and first_layer < exact:
        raise ExerciseFailed(
            f"you counted {got}, the regions of the first layer alone; the code must cover every ReLU "
            "layer (relu0 and relu1)"
        )
    want = grid_region_count(model, 150)
    if got != want:
        raise ExerciseFailed(
            f"you counted {got} distinct codes on a 150 x 150 grid; there are {want}. Use the grid over "
            "[-1, 1]^2 and the codes of every ReLU layer (pre-activation > 0)"
        )
    return f"The grid saw {got} of the {exact} exact regions; the rest are smaller than the grid spacing."


def local_affine(model: torch.nn.Module, x0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference answer: (A, c) with model(x) = A x + c on x0's region (one hidden layer)."""
    w1, b1 = model.linear0.weight, model.linear0.bias
    w2, b2 = model.out.weight, model.out.bias
    d = torch.diag((w1 @ x0 + b1 > 0).to(w1.dtype))
    return w2 @ d @ w1, w2 @ d @ b1 + b2


@exercise("local_affine", "The affine map from the code", solution=local_affine)
def check_local_affine(fn: Callable) -> str:
    model = MLP([2, 8, 3], seed=5)
    x0 = torch.tensor([0.3, -0.2])
    with torch.no_grad():
        got = fn(model, x0)
        want_a, want_c = local_affine(model, x0)
        full_a = model.out.weight @ model.linear0.weight
    if not (isinstance(got, tuple) and len(got) == 2):
        raise ExerciseFailed("return a pair (A, c)")
    a, c = (torch.as_tensor(t, dtype=want_a.dtype).detach() for t in got)
    if a.shape != want_a.shape:
        raise ExerciseFailed(f"A has shape {tuple(a.shape)}; it should be (outputs, inputs) = {tuple(want_a.shape)}")
    if c.shape != want_c.shape:
        raise ExerciseFailed(f"c has shape {tuple(c.shape)}; it should be (outputs,) = {tuple(want_c.shape)}")
    if torch.allclose(a, full_a, atol=1e-5) and not torch.allclose(full_a, want_a, atol=1e-5):
        raise ExerciseFailed("your A ignores the ReLU: multiply by D = diag(code) between W2 and W1")
    if not torch.allclose(a, want_a, atol=1e-5):
        raise ExerciseFailed("A is wrong: A = W2 @ diag(code) @ W1, with code = (W1 x0 + b1 > 0)")
    if not torch.allclose(c, want_c, atol=1e-5):
        raise ExerciseFailed("c is wrong: c = W2 @ diag(code) @ b1 + b2 (the first bias goes through D too)")
    near = x0 + 1e-3 * torch.tensor([1.0, -1.0])
    with torch.no_grad():
        err = (model(near) - (a @ near + c)).abs().max().item()
    return f"At a nearby point in the same region, model and affine map differ by {err:.0e}."
