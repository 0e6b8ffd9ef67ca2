"""Geometry of superposition: norms, interference, feature dimensionality.

All functions take ``W`` of shape (hidden, features) or (instances, hidden,
features): column ``W[..., :, i]`` is feature i's direction. The paper's
"sticky" fractions (1, 3/4, 2/3, 1/2, 2/5, 3/8) are the feature
dimensionalities of the uniform polytopes built below, and of any tegum
product of them (polytopes placed in orthogonal subspaces).
"""

from __future__ import annotations

import math

import torch

from polylens._checks import ArrayLike, weight_matrix, whole_number

__all__ = [
    "digon",
    "dedicated",
    "dimensions_per_feature",
    "feature_dimensionality",
    "feature_norms",
    "interference",
    "pentagon",
    "regular_polygon",
    "square_antiprism",
    "tegum",
    "tetrahedron",
    "triangle",
]


def feature_norms(W: ArrayLike) -> torch.Tensor:
    """||W_i||: (..., hidden, features) -> (..., features). Near 1 = represented."""
    return weight_matrix(W, "W").norm(dim=-2)


def _overlaps(W: torch.Tensor) -> torch.Tensor:
    """(W_i_hat . W_j)^2 for all i, j: (..., features, features), row i = feature i.

    A feature with zero norm has no direction; its row is zero, so it neither
    counts as interfered with nor gets a dimensionality.
    """
    norms = W.norm(dim=-2, keepdim=True)
    W_hat = W / torch.where(norms > 0, norms, torch.ones_like(norms))
    return (W_hat.transpose(-1, -2) @ W) ** 2


def interference(W: ArrayLike) -> torch.Tensor:
    """sum_{j != i} (W_i_hat . W_j)^2: (..., hidden, features) -> (..., features).

    How much the other features leak into feature i's direction; 0 means
    feature i has a direction all to itself.
    """
    ov = _overlaps(weight_matrix(W, "W"))
    return ov.sum(dim=-1) - ov.diagonal(dim1=-2, dim2=-1)


def feature_dimensionality(W: ArrayLike) -> torch.Tensor:
    """D_i = ||W_i||^2 / sum_j (W_i_hat . W_j)^2: (..., hidden, features) -> (..., features).

    The fraction of a dimension feature i gets: 1 for a dedicated direction,
    1/2 for an antipodal pair, 2/5 for a pentagon. Features with zero norm get 0.
    """
    W = weight_matrix(W, "W")
    denom = _overlaps(W).sum(dim=-1)
    sq = W.norm(dim=-2) ** 2
    return torch.where(denom > 0, sq / torch.where(denom > 0, denom, torch.ones_like(denom)), torch.zeros_like(sq))


def dimensions_per_feature(W: ArrayLike) -> torch.Tensor:
    """D* = hidden / ||W||_F^2: (..., hidden, features) -> (...,).

    Hidden dimensions per (unit-norm) learned feature; 1/D* counts features
    per dimension.
    """
    W = weight_matrix(W, "W")
    return W.shape[-2] / (W**2).sum(dim=(-2, -1))


# ----------------------------------------------------------------------------- polytopes
# Each constructor returns unit-norm feature directions as (dims, features), float64.


def dedicated() -> torch.Tensor:
    """One feature with a dimension to itself: (1, 1). Dimensionality 1."""
    return torch.ones(1, 1, dtype=torch.float64)


def digon() -> torch.Tensor:
    """An antipodal pair, two features on one line: (1, 2). Dimensionality 1/2."""
    return torch.tensor([[1.0, -1.0]], dtype=torch.float64)


def regular_polygon(n: int) -> torch.Tensor:
    """n unit vectors at equal angles in the plane: (2, n). Dimensionality 2/n."""
    if whole_number(n, "n (the number of vertices)", low=None) < 3:
        raise ValueError(f"a regular polygon needs an int n >= 3 vertices, got {n!r}")
    n = int(n)
    angles = 2 * math.pi * torch.arange(n, dtype=torch.float64) / n
    return torch.stack([angles.cos(), angles.sin()])


def triangle() -> torch.Tensor:
    """Three features at 120 degrees in 2 dims: (2, 3). Dimensionality 2/3."""
    return regular_polygon(3)


def pentagon() -> torch.Tensor:
    """Five features in 2 dims: (2, 5). Dimensionality 2/5."""
    return regular_polygon(5)


def tetrahedron() -> torch.Tensor:
    """Four features in 3 dims, pairwise cosine -1/3: (3, 4). Dimensionality 3/4."""
    v = torch.tensor([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=torch.float64)
    return (v / math.sqrt(3)).T


def square_antiprism() -> torch.Tensor:
    """Eight features in 3 dims: (3, 8). Dimensionality 3/8.

    Two squares at heights +-z, the lower one turned by 45 degrees. With
    z^2 = 1/3 the eight vectors form a tight frame (sum of w w^T = 8/3 I),
    which is what makes every feature's dimensionality exactly 3/8.
    """
    z = 1 / math.sqrt(3)
    r = math.sqrt(1 - z * z)
    angles = math.pi / 2 * torch.arange(4, dtype=torch.float64)
    top = torch.stack([r * angles.cos(), r * angles.sin(), torch.full((4,), z, dtype=torch.float64)])
    turned = angles + math.pi / 4
    bottom = torch.stack([r * turned.cos(), r * turned.sin(), torch.full((4,), -z, dtype=torch.float64)])
    return torch.cat([top, bottom], dim=1)


def tegum(*polytopes: ArrayLike) -> torch.Tensor:
    """Place polytopes in mutually orthogonal subspaces (block diagonal).

    Args:
        polytopes: each (dims_k, features_k).

    Returns:
        (sum dims_k, sum features_k). Each feature keeps the dimensionality
        it had in its own polytope, because the blocks never interfere.
    """
    if not polytopes:
        raise ValueError("tegum needs at least one polytope, e.g. tegum(triangle(), digon())")
    blocks = []
    for k, p in enumerate(polytopes):
        t = weight_matrix(p, f"polytope {k}", dtype=torch.float64)
        if t.ndim != 2:
            raise ValueError(f"polytope {k} must be 2-D (dims, features); got shape {tuple(t.shape)}")
        blocks.append(t)
    return torch.block_diag(*blocks)
