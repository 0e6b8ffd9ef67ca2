"""Checks for notebook 03 (distributions of validity)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from polylens.exercises import ExerciseFailed, as_array, exercise


def scale_along(h0: torch.Tensor, d: torch.Tensor, gap: float, alpha: float) -> torch.Tensor:
    """Reference answer: h0 + alpha * gap * d / |d|, for every row of h0 (batch, dim)."""
    unit = d / d.norm()
    return h0 + alpha * gap * unit


def _case(seed: int) -> tuple[torch.Tensor, torch.Tensor, float, float]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(6, 5, generator=g), 3.0 * torch.randn(5, generator=g), 2.5, 0.8


@exercise("scale_along", "Scale along a feature direction", solution=scale_along)
def check_scale_along(fn: Callable) -> str:
    """``fn(h0, d, gap, alpha)`` must return h(alpha) = h0 + alpha g d for the unit vector d."""
    h0, d, gap, alpha = _case(3)
    want = scale_along(h0, d, gap, alpha)
    got = as_array(fn(h0.clone(), d.clone(), gap, alpha), "your answer")
    if got.dtype.kind not in "fiu":
        raise ExerciseFailed(f"return real numbers (a tensor like h0), not {got.dtype}")
    if got.shape != tuple(h0.shape):
        raise ExerciseFailed(f"return one row per row of h0: shape {tuple(h0.shape)}, not {got.shape}")
    got = got.astype(np.float64)
    if np.allclose(got, (h0 + alpha * gap * d).numpy(), atol=1e-5):
        raise ExerciseFailed("d is not a unit vector here (its length is not 1): divide it by its norm first, "
                             "so that alpha = 1 moves exactly one gap")
    if np.allclose(got, (h0 + alpha * d / d.norm()).numpy(), atol=1e-5):
        raise ExerciseFailed("you moved alpha along the unit vector; the step is alpha times the gap g")
    if not np.allclose(got, want.numpy(), atol=1e-5):
        raise ExerciseFailed("the values differ from h0 + alpha * gap * d / |d|; move every row by the same vector")
    moved = float(((want - h0) @ (d / d.norm())).mean())
    return f"each row moved {moved:.2f} along d: alpha x gap = {alpha} x {gap}."


def inside_range(projections, data_projections, low: float = 0.05, high: float = 0.95) -> np.ndarray:
    """Reference answer: (n,) bool, each projection within the data's [low, high] quantiles (inclusive)."""
    data = np.asarray(data_projections, dtype=np.float64)
    lo, hi = np.quantile(data, low), np.quantile(data, high)
    p = np.asarray(projections, dtype=np.float64)
    return (p >= lo) & (p <= hi)


@exercise("inside_range", "Inside the data's distribution", solution=inside_range)
def check_inside_range(fn: Callable) -> str:
    """``fn(projections, data_projections)`` must say which projections lie in the data's 5%-95% range."""
    rng = np.random.default_rng(0)
    data = rng.normal(2.0, 1.0, 400)
    data[:3] = [40.0, -30.0, 25.0]  # a few outliers: min and max would be far too wide
    probes = np.array([-35.0, 0.0, 0.5, 2.0, 3.5, 3.9, 20.0, np.quantile(data, 0.05)])
    want = inside_range(probes, data)
    got = as_array(fn(probes.copy(), data.copy()), "your answer")
    if got.shape != want.shape:
        raise ExerciseFailed(f"return one answer per projection: shape {want.shape}, not {got.shape}")
    if got.dtype != bool:
        if not set(np.unique(got).tolist()) <= {0, 1}:
            raise ExerciseFailed("return booleans: True where the projection is inside the range")
        got = got.astype(bool)
    if np.array_equal(got, (probes >= data.min()) & (probes <= data.max())):
        raise ExerciseFailed("you used the data's minimum and maximum; a few outliers make that range far too "
                             "wide. Use the 5% and 95% quantiles (np.quantile) instead")
    if np.array_equal(got, ~want):
        raise ExerciseFailed("inside and outside are swapped")
    if not np.array_equal(got, want):
        wrong = np.flatnonzero(got != want)
        raise ExerciseFailed(f"projections {probes[wrong].round(2).tolist()} are judged wrongly; inside means "
                             "between np.quantile(data, 0.05) and np.quantile(data, 0.95), ends included")
    return (f"{int(want.sum())} of {len(want)} projections are inside the data's 5%-95% range "
            f"[{np.quantile(data, 0.05):.2f}, {np.quantile(data, 0.95):.2f}]; the validity explorer draws the same band.")
