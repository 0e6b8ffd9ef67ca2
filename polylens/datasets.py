"""Two-dimensional toy tasks, so every input space can be drawn.

Each returns ``(x, y)``: x is (n, 2) float32 inside roughly [-1, 1]^2 and y is
(n,) int64 class labels. Everything is drawn from a ``numpy`` generator
seeded by ``seed``.
"""

from __future__ import annotations

import numpy as np
import torch

from polylens._checks import finite_number, whole_number
from polylens.spline import refuse_if_too_big

__all__ = ["two_moons", "spirals"]


def _check(n: int, noise: float, seed: int) -> tuple[int, float, int]:
    """(n, noise, seed) as Python numbers; numpy and 0-d torch numbers accepted, bools refused."""
    n = whole_number(n, "n", low=2)
    # About 64 bytes a point while drawing (angles, coordinates, noise, the tensors returned).
    refuse_if_too_big(64 * n, f"a data set of {n} points", "pass a smaller n (the notebooks use 512)")
    return n, finite_number(noise, "noise", low=0), whole_number(seed, "seed")


def two_moons(n: int = 512, noise: float = 0.08, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two interleaving half circles (classes 0 and 1), scaled into [-1, 1]^2.

    Shapes: x (n, 2) float32, y (n,) int64 with n // 2 points of class 0.
    """
    n, noise, seed = _check(n, noise, seed)
    rng = np.random.default_rng(seed)
    n0 = n // 2
    angle = rng.uniform(0.0, np.pi, size=n)
    upper = np.stack([np.cos(angle[:n0]), np.sin(angle[:n0])], axis=1)
    lower = np.stack([1.0 - np.cos(angle[n0:]), 0.5 - np.sin(angle[n0:])], axis=1)
    x = np.concatenate([upper, lower]) + noise * rng.standard_normal((n, 2))
    x = (x - [0.5, 0.25]) / 1.6  # centre the moons and fit them in the unit square
    y = np.repeat([0, 1], [n0, n - n0])
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.int64)


def spirals(
    n: int = 512, turns: float = 1.5, noise: float = 0.03, classes: int = 2, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``classes`` interleaved spiral arms from the centre out to radius 0.9.

    Shapes: x (n, 2) float32, y (n,) int64 in [0, classes).
    """
    n, noise, seed = _check(n, noise, seed)
    classes = whole_number(classes, "classes", low=2)
    turns = finite_number(turns, "turns", above=0)
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    r = np.sqrt(rng.uniform(0.0025, 1.0, size=n)) * 0.9  # sqrt: even density in area
    angle = 2 * np.pi * (turns * r / 0.9 + y / classes)
    x = np.stack([r * np.cos(angle), r * np.sin(angle)], axis=1) + noise * rng.standard_normal((n, 2))
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.int64)
