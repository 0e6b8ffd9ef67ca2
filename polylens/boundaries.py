"""Exact boundaries on a 2D slice, drawn from its regions.

Two kinds of line live on a slice:

* a neuron's *bent hyperplane*, where its pre-activation is zero. Every such
  line is made of region edges (that is how the regions were cut), so it is
  found as the edges on which the pre-activation vanishes at both ends;
* a *level set* of the output, such as a decision boundary. The output is
  affine on each region, so on each polygon it is one straight segment.

Both come back as (m, 2, 2) arrays of segments in (s, t) coordinates, ready
for ``matplotlib.collections.LineCollection``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from polylens._checks import finite_number, real_array, whole_number
from polylens.hooks import capture
from polylens.regions import Regions
from polylens.regions.slices import check_plane
from polylens.regions.support import float64_copy, relu_calls

__all__ = ["decision_boundary", "level_set", "neuron_boundaries", "preactivations_at_vertices"]


def _check_regions(regions: Any) -> Regions:
    if not isinstance(regions, Regions):
        raise TypeError(
            f"regions must be a Regions object from polylens.regions.slice_regions, got {type(regions).__name__}"
        )
    return regions


def _vertex_values(values: Any, regions: Regions, shape: str, ndim: int) -> np.ndarray:
    """``values`` checked to be finite, one entry per polygon vertex (and per neuron if ndim is 3)."""
    values = real_array(values, "values")
    n, w = regions.verts.shape[:2]
    if values.ndim != ndim or values.shape[:2] != (n, w):
        raise ValueError(
            f"values must be {shape} = ({n}, {w}{', ...' if ndim == 3 else ''}) for these regions, got shape "
            f"{values.shape}; compute them from the same regions (e.g. preactivations_at_vertices)"
        )
    if not np.isfinite(values).all():
        raise ValueError("values contains NaN or inf; boundaries need finite values at every vertex")
    return values


def _edges(regions: Regions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(polygon, start, end) vertex indices of every polygon edge."""
    n, w = regions.verts.shape[:2]
    k = np.arange(w)[None, :].repeat(n, 0)
    valid = k < regions.counts[:, None]
    nxt = (k + 1) % regions.counts[:, None]
    poly = np.arange(n)[:, None].repeat(w, 1)
    return poly[valid], k[valid], nxt[valid]


def preactivations_at_vertices(
    model: nn.Module, regions: Regions, origin: Any, u: Any, v: Any
) -> dict[str, np.ndarray]:
    """Pre-activations of every ReLU-like call at every polygon vertex.

    Returns ``{layer name: (n_polygons, max_vertices, neurons)}`` in float64,
    for the layers named in ``regions.codes.layers`` (padding vertices hold
    copies of real ones).
    """
    _check_regions(regions)
    origin, u, v, _ = check_plane(origin, u, v, regions.extent)
    n, w = regions.verts.shape[:2]
    st = np.where(np.arange(w)[None, :, None] < regions.counts[:, None, None], regions.verts, regions.verts[:, :1])
    st = torch.as_tensor(st.reshape(-1, 2))
    x = origin + st[:, :1] * u.reshape(1, -1) + st[:, 1:] * v.reshape(1, -1)
    x = x.reshape(-1, *origin.shape)
    model64 = float64_copy(model)
    relu_calls(model64, origin)  # says so if the plane does not fit the model's input
    layers = [layer.name for layer in regions.codes.layers]
    modules = sorted({name.split("#")[0] for name in layers})
    with torch.no_grad(), capture(model64, modules, which="input") as cache:
        model64(x)
    return {name: cache.inputs[name].reshape(n, w, -1).numpy() for name in layers}


def neuron_boundaries(values: np.ndarray, regions: Regions, rtol: float = 1e-7) -> list[np.ndarray]:
    """Each neuron's bent hyperplane on the slice, as segments.

    Args:
        values: (n_polygons, max_vertices, neurons) pre-activations at the
            vertices, from :func:`preactivations_at_vertices`.
        regions: the slice's :class:`~polylens.regions.Regions`.
        rtol: a vertex is on a neuron's zero set when its value is below
            ``rtol`` times that neuron's largest value on the slice.

    Returns:
        One (m_j, 2, 2) segment array per neuron (m_j = 0 when the neuron's
        hyperplane misses the slice). Shared edges appear once per side.
    """
    values = _vertex_values(values, _check_regions(regions), "(n_polygons, max_vertices, neurons)", 3)
    if finite_number(rtol, "rtol") < 0:
        raise ValueError(f"rtol must be >= 0 (e.g. 1e-7), got {rtol}")
    poly, a, b = _edges(regions)
    scale = np.abs(values).reshape(-1, values.shape[-1]).max(axis=0) + 1e-300
    on_zero = np.abs(values) <= rtol * scale  # (n, w, neurons)
    both = on_zero[poly, a] & on_zero[poly, b]  # (edges, neurons)
    segs = np.stack([regions.verts[poly, a], regions.verts[poly, b]], axis=1)
    return [segs[both[:, j]] for j in range(values.shape[-1])]


def level_set(values: np.ndarray, regions: Regions) -> np.ndarray:
    """Where a function that is affine on every region crosses zero.

    Args:
        values: (n_polygons, max_vertices) the function at the vertices.

    Returns:
        (m, 2, 2) segments, one per polygon the zero level crosses.
    """
    values = _vertex_values(values, _check_regions(regions), "(n_polygons, max_vertices)", 2)
    poly, a, b = _edges(regions)
    fa, fb = values[poly, a], values[poly, b]
    cut = (fa > 0) != (fb > 0)
    t = fa[cut] / (fa[cut] - fb[cut])
    pa, pb = regions.verts[poly[cut], a[cut]], regions.verts[poly[cut], b[cut]]
    points, owner = pa + t[:, None] * (pb - pa), poly[cut]
    # A convex polygon meets a line in one segment: its two crossing points.
    order = np.argsort(owner, kind="stable")
    points, owner = points[order], owner[order]
    first = np.r_[True, owner[1:] != owner[:-1]]
    starts = np.flatnonzero(first)
    pairs = starts[np.diff(np.r_[starts, len(owner)]) >= 2]
    return np.stack([points[pairs], points[pairs + 1]], axis=1) if len(pairs) else np.zeros((0, 2, 2))


def decision_boundary(regions: Regions, class_a: int = 1, class_b: int = 0) -> np.ndarray:
    """Segments where logit ``class_a`` equals logit ``class_b`` (exact, per region)."""
    A, c = _check_regions(regions).affine
    n_out = A.shape[1]
    for name, k in (("class_a", class_a), ("class_b", class_b)):
        if not whole_number(k, name) < n_out:
            raise ValueError(f"{name} must be an output index from 0 to {n_out - 1}, got {k}")
    diff_grad = A[:, class_a] - A[:, class_b]  # (n, 2)
    diff_off = c[:, class_a] - c[:, class_b]  # (n,)
    values = np.einsum("nwi,ni->nw", regions.verts, diff_grad) + diff_off[:, None]
    return level_set(values, regions)
