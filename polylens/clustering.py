"""Clustering on a precomputed distance matrix, small enough to read.

The polytope lens paper (Black et al., arXiv:2211.12312) clusters inputs by
their spline codes with a Hamming metric, and compares that with clustering
their activations. Both only need a distance matrix, so one k-medoids works
for both:

    d = pl.hamming(codes)                         # (n, n) bits that differ
    result = kmedoids(d, k=4, seed=0)
    result.labels, result.medoids, result.cost

    d_act = euclidean(acts)                       # (n, n) for activations
    purity(result.labels, y)                      # how well clusters match classes

numpy only; meant for up to a few thousand points (the matrix is n x n).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from polylens._checks import real_array, whole_number
from polylens.spline import refuse_if_too_big

__all__ = ["KMedoids", "euclidean", "kmedoids", "purity"]


@dataclass(eq=False)
class KMedoids:
    """A k-medoids clustering.

    Attributes:
        labels: (n,) int64 cluster of each point, 0..k-1.
        medoids: (k,) int64 index of each cluster's medoid (a real data point).
        cost: sum over points of the distance to their medoid.
        iterations: assignment/update rounds until nothing changed.
    """

    labels: np.ndarray
    medoids: np.ndarray
    cost: float
    iterations: int


def _check_distances(d: Any) -> np.ndarray:
    d = real_array(d, "distances")
    if d.ndim != 2 or d.shape[0] != d.shape[1]:
        raise ValueError(f"distances must be a square (n, n) matrix, got shape {d.shape}")
    if not np.all(np.isfinite(d)) or np.any(d < 0):
        raise ValueError("distances must be finite and >= 0")
    if not np.allclose(d, d.T):
        raise ValueError("distances must be symmetric (d[i, j] == d[j, i])")
    return d


def _init(d: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-medoids++: each next medoid drawn with probability ~ distance to the nearest one."""
    medoids = [int(np.argmin(d.sum(axis=1)))]  # the most central point: deterministic start
    nearest = d[medoids[0]].copy()
    for _ in range(1, k):
        total = nearest.sum()
        if total == 0:  # fewer distinct points than k: take any unused one
            unused = np.setdiff1d(np.arange(len(d)), medoids)
            medoids.append(int(unused[0]))
        else:
            medoids.append(int(rng.choice(len(d), p=nearest / total)))
        nearest = np.minimum(nearest, d[medoids[-1]])
    return np.array(medoids, dtype=np.int64)


def kmedoids(distances: Any, k: int, seed: int = 0, max_iter: int = 100, n_init: int = 4) -> KMedoids:
    """Cluster n points into k groups from their (n, n) pairwise distances.

    Alternates "assign every point to its nearest medoid" and "move each
    medoid to the member with the smallest summed distance to its cluster"
    until nothing changes; the best of ``n_init`` seeded starts is kept.
    Any metric works (Hamming for spline codes, Euclidean for activations).

    Args:
        distances: (n, n) symmetric, >= 0 (numpy, torch or nested lists).
        k: number of clusters, 1 <= k <= n.
        seed: seeds the k-medoids++ starts; same seed, same answer.
        max_iter, n_init: rounds per start, and how many starts.

    Returns:
        :class:`KMedoids` (labels (n,), medoids (k,), cost, iterations).
    """
    d = _check_distances(distances)
    n = len(d)
    if not 1 <= whole_number(k, "k", low=None) <= n:
        raise ValueError(f"k must be an int between 1 and the number of points ({n}), got {k!r}")
    k = int(k)
    max_iter = whole_number(max_iter, "max_iter", low=1)
    n_init = whole_number(n_init, "n_init", low=1)
    rng = np.random.default_rng(whole_number(seed, "seed"))
    best = None
    for _ in range(n_init):
        medoids = _init(d, int(k), rng)
        for it in range(1, max_iter + 1):
            labels = np.argmin(d[:, medoids], axis=1)
            new = medoids.copy()
            for c in range(k):
                members = np.flatnonzero(labels == c)
                if len(members):
                    within = d[np.ix_(members, members)].sum(axis=1)
                    new[c] = members[np.argmin(within)]
            if np.array_equal(new, medoids):
                break
            medoids = new
        labels = np.argmin(d[:, medoids], axis=1)
        cost = float(d[np.arange(n), medoids[labels]].sum())
        if best is None or cost < best.cost - 1e-12:
            best = KMedoids(labels.astype(np.int64), medoids, cost, it)
    return best


def euclidean(x: Any) -> np.ndarray:
    """(n, n) Euclidean distances between the rows of ``x`` (n, features), float64."""
    x = real_array(x, "x")
    if x.ndim != 2:
        raise ValueError(f"x must be (n, features), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("x contains NaN or inf; distances need finite activations")
    # Three (n, n) float64 arrays exist at once (squared distances, distances, the symmetric copy).
    refuse_if_too_big(3 * 8 * len(x) ** 2, f"pairwise distances of {len(x)} points",
                      "cluster a sample of the points (a few thousand)")
    sq = (x * x).sum(axis=1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * x @ x.T
    d = np.sqrt(np.maximum(d2, 0.0))
    np.fill_diagonal(d, 0.0)
    return 0.5 * (d + d.T)  # exactly symmetric despite rounding


def purity(labels: Any, classes: Any) -> float:
    """Fraction of points whose class is the majority class of their cluster (1.0 = pure)."""
    labels, classes = np.asarray(labels).ravel(), np.asarray(classes).ravel()
    if labels.shape != classes.shape:
        raise ValueError(f"labels and classes must have one length, got {len(labels)} and {len(classes)}")
    if len(labels) == 0:
        raise ValueError("purity needs at least one point")
    if labels.dtype.kind not in "iub":
        raise TypeError(f"labels must be cluster indices (ints), e.g. kmedoids(...).labels; got {labels.dtype}")
    total = 0
    for c in np.unique(labels):
        total += np.bincount(np.unique(classes, return_inverse=True)[1][labels == c]).max()
    return total / len(labels)
