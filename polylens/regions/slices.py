"""Exact polygons of a 2D slice of a ReLU network's input (or activation) space.

On the plane ``x(s, t) = origin + s * u + t * v`` the network cuts the
rectangle ``extent`` into convex polygons, one per spline code; on each the
output is one affine map of (s, t). Layers are processed in execution order:
at each layer, one batched forward pass of the distinct polygon vertices
gives every neuron's exact pre-activation there, and each polygon is split
by every neuron whose sign changes across it.
"""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from polylens import spline as _spline
from polylens._checks import finite_number, real_array
from polylens._renamed import renamed
from polylens.regions.polygons import affine_fit, areas, centroids, cut_pieces
from polylens.regions.support import Passes, passes, point
from polylens.spline import SplineCode, layout, refuse_if_too_big

__all__ = ["Regions", "check_plane", "slice_regions"]

# A pre-activation within _ON_LINE * (its largest |value| on the slice) of 0
# at a vertex counts as exactly 0 there: the vertex is on the unit's line.
# Rounding in a float64 forward pass is ~1e-16 of that scale, so this keeps
# a line through a vertex (or three lines through one point) from cutting
# off slivers made of rounding, and moves no line by more than ~1e-12 of
# the slice.
_ON_LINE = 1e-12
# A cut whose smaller piece is below min_area is skipped only if that piece
# is also thinner than _THIN * (diagonal of the extent): small pieces that
# are not thin (a boundary clipping a corner) are real regions, exactly
# representable, and merging them would break the affine map of their parent.
_THIN = 1e-10
# Up to this many (polygon, vertex, neuron) values, a layer's on and cut bits come from the
# gathered values themselves (a few array operations) rather than packed sign bits.
_SMALL = 1 << 16

# ----------------------------------------------------------- the slicer ---


class _Buffers:
    """Growable polygon storage; capacity doubles so appends stay cheap."""

    def __init__(self, verts: np.ndarray, counts: np.ndarray, n_bits: int) -> None:
        self.n = len(counts)
        cap = max(64, 2 * self.n)
        self.verts = np.zeros((cap, max(8, verts.shape[1]), 2))
        self.verts[: self.n, : verts.shape[1]] = verts
        self.counts = np.zeros(cap, dtype=np.int64)
        self.counts[: self.n] = counts
        self.root = np.zeros(cap, dtype=np.int64)  # polygon index at the start of this layer
        self.root[: self.n] = np.arange(self.n)
        self.created = np.full(cap, -1, dtype=np.int64)
        self.bits = np.zeros((cap, n_bits), dtype=bool)
        # For the size check in append: bytes of the answer per region, and where we are.
        self.region_bytes, self.where = 0, ""

    def start_layer(self, n_bits: int) -> None:
        """Fresh bits for the next layer; roots are now the current polygons."""
        cap = len(self.counts)
        self.root = np.zeros(cap, dtype=np.int64)
        self.root[: self.n] = np.arange(self.n)
        self.bits = np.zeros((cap, n_bits), dtype=bool)
        self.lookup = np.full(self.n, -1, dtype=np.int64)  # per root, scratch for _apply_cuts

    def _grow(self, rows: int, width: int) -> None:
        cap, w = self.verts.shape[:2]
        new_cap = max(cap, 1 << (max(rows, 1) - 1).bit_length())  # the power of 2 at or above rows
        new_w = max(w, width)
        if new_cap == cap and new_w == w:
            return
        verts = np.zeros((new_cap, new_w, 2))
        verts[: self.n, :w] = self.verts[: self.n]
        self.verts = verts
        for name in ("counts", "root", "created", "bits"):
            old = getattr(self, name)
            new = np.zeros((new_cap,) + old.shape[1:], dtype=old.dtype)
            new[: self.n] = old[: self.n]
            setattr(self, name, new)

    def reorder(self, start: int, order: np.ndarray) -> None:
        """Put polygons ``start + order`` at ``start, start + 1, ...``: geometry and layer made (codes are read through history)."""
        rows = start + order
        self.verts[start : self.n] = self.verts[rows]
        self.counts[start : self.n] = self.counts[rows]
        self.created[start : self.n] = self.created[rows]

    def split(self, idx: np.ndarray, pieces: np.ndarray, counts: np.ndarray, neuron: np.ndarray, layer: int) -> None:
        """Polygons ``idx`` (m,) become pieces[:m], pieces[m:] are appended: split by ``neuron`` (m,) of ``layer``.

        pieces (2m, w, 2) and counts (2m,) as from :func:`~polylens.regions.polygons.cut_pieces`;
        the new polygons take their parents' roots and bits, with ``neuron`` off.
        """
        m, n, w = len(idx), self.n, pieces.shape[1]
        rows = n + m
        if float(rows) * self.region_bytes > _spline.MAX_RESULT_BYTES:  # the message only when it is needed
            refuse_if_too_big(
                float(rows) * self.region_bytes,
                f"the regions of this slice (over {rows:,} regions {self.where}, and more to come; "
                f"~{self.region_bytes:,} bytes each for the code, polygon and affine map)",
                "pass a smaller extent (a quarter of the area has roughly a quarter of the regions), "
                "or slice a smaller network",
            )
        if rows > len(self.counts) or w > self.verts.shape[1]:
            self._grow(rows, w)
        self.n = rows
        self.verts[idx, :w] = pieces[:m]
        self.verts[n:rows, :w] = pieces[m:]
        self.counts[idx] = counts[:m]
        self.counts[n:rows] = counts[m:]
        self.created[idx] = layer
        self.created[n:rows] = layer
        self.root[n:rows] = self.root[idx]
        self.bits[n:rows] = self.bits[idx]
        self.bits[np.arange(n, rows), neuron] = False


def unique_vertices(buf: _Buffers, extent: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Distinct vertices (points, 2), and (n, w) indices of each polygon's vertices into them.

    Neighbouring polygons share vertices, so forwarding each distinct point
    once is 2-4x cheaper than forwarding every polygon's vertex list. Two
    copies of one vertex differ only by rounding; coordinates are snapped to
    2^-44 of the extent to find them (a copy missed is only forwarded twice).
    Padding entries repeat the polygon's first vertex.
    """
    n = buf.n
    counts = buf.counts[:n]
    w = int(counts.max())
    valid = np.arange(w)[None, :] < counts[:, None]
    verts = np.where(valid[..., None], buf.verts[:n, :w], buf.verts[:n, :1])
    s0, s1, t0, t1 = extent
    ks = ((verts[..., 0] - s0) / (s1 - s0) * 2.0**44).round().ravel()
    kt = ((verts[..., 1] - t0) / (t1 - t0) * 2.0**44).round().ravel()
    # What np.unique(ks + 1j * kt, return_index=True, return_inverse=True) gives (the points
    # sorted by s, then t; each the first of its copies), in a third of the operations.
    order = np.lexsort((kt, ks))  # stable, as np.unique's sort when it returns indices
    ks, kt = ks[order], kt[order]
    first = np.empty(len(order), dtype=bool)
    first[0] = True
    np.not_equal(ks[1:], ks[:-1], out=first[1:])
    first[1:] |= kt[1:] != kt[:-1]
    inverse = np.empty(len(order), dtype=np.intp)
    inverse[order] = first.cumsum() - 1
    return verts.reshape(-1, 2)[order[first]], inverse.reshape(n, w)


@dataclass
class _Cuts:
    """The (polygon, neuron) pairs where a neuron's line cuts a polygon, one entry per pair.

    ``neuron`` (k,) and ``poly`` (k,) polygon index; ``grad`` (k, 2), ``level`` (k,) and
    ``center`` (k, 2): the neuron's pre-activation on that polygon,
    ``level + grad . (x - center)``; ``tol`` (k,): values this close to 0 count as on the line;
    ``norm`` (k,): the length of ``grad``, to turn values into distances from the line.
    """

    neuron: np.ndarray
    poly: np.ndarray
    grad: np.ndarray
    level: np.ndarray
    center: np.ndarray
    tol: np.ndarray
    norm: np.ndarray


def _layer_cuts(buf: _Buffers, pre: np.ndarray, index: np.ndarray):
    """Which neuron lines cut which polygons, and the affine pre-activation on each cut pair.

    pre (points, neurons) at the distinct vertices, index (n, w) as from
    :func:`unique_vertices`. Returns the initial bits (n, neurons) and the
    cut pairs (:class:`_Cuts`) sorted by polygon, then neuron. A polygon is cut only if some vertex is
    clearly positive and some clearly negative; otherwise its bit is
    whether some vertex is clearly positive.
    """
    n, w = index.shape
    tol = _ON_LINE * np.abs(pre).max(axis=0, initial=0.0)  # (neurons,)
    width = pre.shape[1]
    if n * w * width <= _SMALL:
        # A small layer: the values gathered per polygon, a few array operations in all.
        values = pre[index]
        on = (values > tol).any(axis=1)
        cut = on & (values < -tol).any(axis=1)
        del values
        return on, _fit_cuts(buf, pre, index, cut, tol)
    on = np.empty((n, width), dtype=bool)
    cut = np.empty((n, width), dtype=bool)
    # A polygon is on if some vertex is above tol, cut if also some vertex is below -tol: the
    # signs per vertex, a bit each, are gathered per polygon and or-ed, 64x less to move
    # than the float64 values whose max and min were once taken.
    above, below = (np.empty((len(pre), (width + 7) // 8), dtype=np.uint8) for _ in range(2))
    step = max(1, _spline.CHUNK_BYTES // (8 * max(1, width)))  # rows of pre compared at a time
    for i in range(0, len(pre), step):
        above[i : i + step] = np.packbits(pre[i : i + step] > tol, axis=1)
        below[i : i + step] = np.packbits(pre[i : i + step] < -tol, axis=1)
    step = max(1, (1 << 24) // (w * above.shape[1]))  # ~16 MiB gathered at a time
    for i in range(0, n, step):
        sl = slice(i, i + step)
        on[sl] = np.unpackbits(np.bitwise_or.reduce(above[index[sl]], axis=1), axis=1, count=width).view(bool)
        cut[sl] = on[sl] & np.unpackbits(np.bitwise_or.reduce(below[index[sl]], axis=1), axis=1, count=width).view(bool)
    del above, below
    return on, _fit_cuts(buf, pre, index, cut, tol)


def _fit_cuts(buf: _Buffers, pre: np.ndarray, index: np.ndarray, cut: np.ndarray, tol: np.ndarray) -> _Cuts:
    """The :class:`_Cuts` of the (polygon, neuron) pairs where ``cut`` (n, neurons) is True, sorted by polygon, then neuron.

    pre (points, neurons) and index (n, w) as for :func:`_layer_cuts`; tol (neurons,).
    """
    poly, neuron = cut.nonzero()  # each pair's fit is its own: their order is the rounds'
    del cut
    counts = buf.counts[poly]
    wc = int(counts.max(initial=1))
    # The fit makes several (pairs, wc, 2) float64 temporaries: fit a chunk of pairs at a
    # time (each pair's fit is its own, so the maps are those of one pass).
    grad, level, center = np.empty((len(poly), 2)), np.empty(len(poly)), np.empty((len(poly), 2))
    step = max(1, _spline.CHUNK_BYTES // (100 * wc))
    for i in range(0, len(poly), step):
        sl = slice(i, i + step)
        values = pre[index[poly[sl], :wc], neuron[sl, None]][..., None]
        g, lv, c = affine_fit(buf.verts[poly[sl], :wc], counts[sl], values)
        grad[sl], level[sl], center[sl] = g[:, 0], lv[:, 0], c
    norm = np.hypot(grad[:, 0], grad[:, 1])  # no overflow for gradients near 1e200
    return _Cuts(neuron, poly, grad, level, center, tol[neuron], norm)


def _apply_cuts(buf: _Buffers, layer: int, cuts: _Cuts, pairs: np.ndarray, min_area: float,
                min_width: float) -> tuple[np.ndarray, np.ndarray]:
    """Split every polygon descending from ``cuts.poly[pairs]`` by its root's cut line, one cut per root.

    ``pairs`` (p,) are indices into ``cuts``, at most one per root. Values
    within ``cuts.tol`` of 0 count as 0 (the vertex is on the line), so
    near-touches never make a piece; a piece below ``min_area`` that is also
    thinner than ``min_width`` is rounding, and its cut is skipped. The new
    polygons (negative sides) are appended, their parents keep the positive
    sides in place; returns the neuron that made each new one and its parent.
    """
    # A small network's layer takes a few dozen rounds of a few polygons each, so the time
    # here is the number of array operations: each one below is needed.
    lookup = buf.lookup  # all -1 between calls
    if len(lookup) == 1:  # one root (the first layer's rectangle): every polygon descends from it
        cand = np.arange(buf.n)
        k = np.full(buf.n, pairs[0])
    else:
        roots = cuts.poly[pairs]
        lookup[roots] = pairs
        k = lookup[buf.root[: buf.n]]
        lookup[roots] = -1
        cand = (k >= 0).nonzero()[0]  # the roots and their descendants: an in-place child keeps its parent's index
        k = k[cand]
    counts = buf.counts[cand]
    w = int(counts.max())
    verts = buf.verts[cand, :w]
    f = np.einsum("mwi,mi->mw", verts - cuts.center[k][:, None], cuts.grad[k]) + cuts.level[k][:, None]
    f[(np.abs(f) <= cuts.tol[k][:, None]) | (np.arange(w) >= counts[:, None])] = 0.0  # on the line, or padding
    pos = (f > 0).any(axis=1)
    cut = pos & (f < 0).any(axis=1)
    j = cuts.neuron[k]
    buf.bits[cand, j] = pos
    sel = cut.nonzero()[0]
    if not len(sel):
        return _NONE, _NONE
    if len(sel) < len(cand):
        cand, j, k, f, counts, verts = cand[sel], j[sel], k[sel], f[sel], counts[sel], verts[sel]
    pieces, piece_counts = cut_pieces(verts, counts, f)
    # A piece both tiny and thin is rounding, not a region: keep the parent whole, on the side
    # of its larger part. Widths are distances from the line; areas are needed only where a
    # piece is thin, which is rare, so they are taken for those cuts alone.
    norm = cuts.norm[k]
    f_max, f_min = f.max(axis=1), -f.min(axis=1)
    # Both sides wide, in one test: dividing by norm > 0 keeps the order of the rounded values.
    thin = (~(np.minimum(f_max, f_min) / norm >= min_width)).nonzero()[0]
    if len(thin):
        m = len(cand)
        wide_pos, wide_neg = f_max / norm >= min_width, f_min / norm >= min_width
        both = np.concatenate([thin, m + thin])
        # Each row's shoelace sum runs over the pieces' full padded width, as for all rows at once.
        size = np.abs(areas(pieces[both], piece_counts[both]))
        a_pos, a_neg = size[: len(thin)], size[len(thin) :]
        real = np.ones(m, dtype=bool)
        real[thin] = ((a_pos >= min_area) | wide_pos[thin]) & ((a_neg >= min_area) | wide_neg[thin])
        if not real.all():
            skip = ~real[thin]
            buf.bits[cand[thin[skip]], j[thin[skip]]] = a_pos[skip] >= a_neg[skip]
            cand, j = cand[real], j[real]
            both = np.concatenate([real, real])
            pieces, piece_counts = pieces[both], piece_counts[both]
            if not len(cand):
                return _NONE, _NONE
    buf.split(cand, pieces, piece_counts, j, layer)
    return j, cand


_NONE = np.zeros(0, dtype=np.int64)
_NONE.flags.writeable = False


def check_plane(origin, u, v, extent) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, tuple]:
    origin, u, v = point(origin, "origin"), point(u, "u"), point(v, "v")
    if not origin.shape == u.shape == v.shape:
        raise ValueError(
            f"origin, u and v must have one shape (the model's input without batch), got "
            f"{tuple(origin.shape)}, {tuple(u.shape)}, {tuple(v.shape)}"
        )
    if origin.numel() == 0:
        raise ValueError("origin, u and v are empty; they need the model's input shape, e.g. (2,) for MLP([2, ...])")
    # Largest entries and quotients in numpy (float64 CPU tensors from point: the same numbers,
    # fewer microseconds); the sums stay torch's, in its order of addition.
    u_max, v_max = np.abs(u.numpy()).max(), np.abs(v.numpy()).max()
    if not (u_max > 0 and v_max > 0):
        raise ValueError("u and v must be nonzero directions (e.g. two orthogonal unit vectors)")
    # Scale-free: each direction divided by its largest entry, so huge or tiny ones neither overflow nor vanish.
    un, vn = torch.from_numpy(u.numpy() / u_max), torch.from_numpy(v.numpy() / v_max)
    uu, vv, uv = float((un * un).sum()), float((vn * vn).sum()), float((un * vn).sum())
    if uu * vv - uv * uv <= 1e-12 * uu * vv:
        raise ValueError("u and v must be linearly independent (e.g. two orthogonal directions)")
    ext = tuple(float(e) for e in real_array(extent, "extent").ravel())
    if len(ext) != 4 or not all(map(math.isfinite, ext)) or not (ext[0] < ext[1] and ext[2] < ext[3]):
        raise ValueError(f"extent must be finite (s0, s1, t0, t1) with s0 < s1 and t0 < t1, got {extent}")
    sides = (ext[1] - ext[0], ext[3] - ext[2])
    if not all(1e-100 <= side <= 1e100 for side in sides):
        # Beyond these, squared lengths in the polygon geometry overflow or vanish in float64.
        raise ValueError(f"extent {extent} has sides of {sides[0]:.3g} and {sides[1]:.3g}; choose sides between 1e-100 and 1e100")
    return origin, u, v, ext




def input_plane() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(origin, u, v) = (0, e1, e2) for a network with 2D input: the slice is its whole input space.

    New tensors on each call, so a caller may change them without touching anyone else's.
    """
    return torch.zeros(2), torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])


def slice_regions(
    model: nn.Module,
    origin: Any,
    u: Any,
    v: Any,
    extent: Sequence[float] = (-1.0, 1.0, -1.0, 1.0),
    *,
    min_area: float = 1e-12,
) -> Regions:
    """Exact linear regions of ``model`` on the plane ``origin + s u + t v``.

    Args:
        model: an ``nn.Module`` built from Linear, Conv, BatchNorm (run in
            eval mode), AvgPool, Flatten, Dropout, Identity, residual
            additions and ReLU/LeakyReLU modules. A float64 eval-mode copy
            is used; ``model`` itself is not changed.
        origin, u, v: the model's input shape without the batch dimension:
            (d,) for an MLP, (C, H, W) images for a conv net. u and v must be
            linearly independent.
        extent: (s0, s1, t0, t1), the rectangle of plane coordinates.
        min_area: a cut that would leave a piece smaller than
            ``min_area * (s1 - s0) * (t1 - t0)`` and also thinner than 1e-10
            of the extent's diagonal (its vertices' distance from the cut
            line) is skipped, the piece merged into its neighbour: such
            slivers come from rounding. Small pieces that are not thin
            (a boundary clipping a corner) are kept.

    Tolerances: a pre-activation within 1e-12 of its largest absolute
    value on the slice counts as exactly 0 at a vertex (the vertex is on the
    line), so lines through vertices, or several lines through one point,
    make no rounding slivers; boundaries move by at most ~1e-12 of the
    slice. Regions thinner than ~1e-10 of the extent may therefore be
    merged into a neighbour (their code is the neighbour's). The affine
    maps interpolate three well-spread vertices of each polygon, so they
    stay accurate on long thin slivers (e.g. between two nearly identical
    units).

    Returns:
        :class:`Regions`: one convex polygon per spline code, with codes,
        areas and the affine map of the output on each. With no ReLU-like
        module the network is affine and the whole rectangle is one region.

    Memory: vertices go through the model in chunks (about
    ``polylens.spline.CHUNK_BYTES`` of activations each), and the
    enumeration stops with a ValueError as soon as the regions found so far
    would take more than ``polylens.spline.MAX_RESULT_BYTES`` (each region
    keeps a bool per unit, its polygon and its affine map): a 2-512-512 MLP
    has ~440,000 regions on [-6, 6]^2, ~0.5 GB.

    Raises:
        ValueError: for smooth activations, MaxPool, attention, unknown
            layers with parameters, bad planes or extents; or if the output
            turns out not to be affine on a region (a functional nonlinearity
            such as F.relu hidden in ``forward``, or a numerical failure,
            which is a bug to report).
    """
    net = passes(model)
    origin, u, v, ext = check_plane(origin, u, v, extent)
    if finite_number(min_area, "min_area") < 0:
        raise ValueError(f"min_area must be >= 0 (a fraction of the slice's area, e.g. 1e-12), got {min_area}")
    s0, s1, t0, t1 = ext
    net = net.bind(origin)
    rect = np.array([[[s0, t0], [s1, t0], [s1, t1], [s0, t1]]])
    to_input = _plane(origin, u, v)
    net.check_reach(to_input(rect[0]), "the slice (origin + s u + t v over the extent)")
    buf = _Buffers(rect, np.array([4]), 0)
    # The answer per region: its code (a bool per unit), ~10 vertices, counts and the
    # affine map (n_out x 3 float64); the enumeration's own buffers are of the same order.
    buf.region_bytes = sum(net.sizes) + 200 + 24 * net.n_out
    area = (s1 - s0) * (t1 - t0)
    diag = float(np.hypot(s1 - s0, t1 - t0))
    history = []  # per layer: (root of each polygon at the layer's end, its bits, rows)
    progress = _Progress(len(net.sizes))
    try:
        for layer, size in enumerate(net.sizes):
            buf.start_layer(size)
            buf.where = f"in ReLU layer {layer + 1} of {len(net.sizes)}"
            start_n = buf.n
            order = _cut_layer(buf, net, to_input, layer, min_area * area, _THIN * diag, ext, progress)
            last = layer == len(net.sizes) - 1  # the last layer's bits are not changed again: no copy
            # Codes are read through ``rows`` (row of each polygon, in neuron order, in root and bits).
            rows = np.arange(buf.n)
            rows[start_n:] = start_n + order
            history.append((buf.root[: buf.n].copy(), buf.bits[: buf.n] if last else buf.bits[: buf.n].copy(), rows))
            buf.reorder(start_n, order)
            progress.layer_done(buf.n)
    finally:
        progress.close()
    return _finish(net, to_input, buf, history, ext)


class _Progress:
    """A progress bar for slices that take long: none for the usual few milliseconds.

    It appears once a slice has run for ``_SHOW_AFTER`` seconds (one clock read per round of
    cuts until then), and counts layers done with the regions found so far. A kernel
    interrupt stops the enumeration between numpy calls; nothing is left half-written.
    """

    def __init__(self, n_layers: int) -> None:
        self.start, self.n_layers, self.done, self.bar = time.perf_counter(), n_layers, 0, None

    def tick(self, n_regions: int) -> None:
        if self.bar is None:
            if time.perf_counter() - self.start < _SHOW_AFTER:
                return
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.n_layers, initial=self.done, desc="slice_regions: ReLU layers", leave=False)
        self.bar.set_postfix_str(f"{n_regions:,} regions so far", refresh=False)
        self.bar.update(0)  # redraws at most every tqdm.mininterval

    def layer_done(self, n_regions: int) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
        self.tick(n_regions)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


_SHOW_AFTER = 2.0  # seconds


def _plane(origin: torch.Tensor, u: torch.Tensor, v: torch.Tensor):
    # The same float64 products and sums as torch's, in numpy: half the time on a small batch.
    o, u, v = origin.numpy(), u.numpy(), v.numpy()  # float64 CPU tensors, from check_plane
    shape = (-1,) + (1,) * o.ndim

    def to_input(st: np.ndarray) -> torch.Tensor:
        with np.errstate(over="ignore", invalid="ignore"):  # silent as torch: check_reach says what overflowed
            return torch.from_numpy(o + st[:, 0].reshape(shape) * u + st[:, 1].reshape(shape) * v)

    return to_input


def _cut_layer(buf: _Buffers, net: Passes, to_input, layer: int, min_area: float, min_width: float,
               extent, progress: _Progress) -> np.ndarray:
    """Cut the polygons in ``buf`` by every neuron of ReLU call ``layer``; return the new polygons' order (see _neuron_order)."""
    points, index = unique_vertices(buf, extent)
    pre = net.pre_activations(to_input(points), layer)
    bits, cuts = _layer_cuts(buf, pre, index)
    del pre, points, index  # (vertices, neurons) float64: the biggest array here, not needed for the cuts
    start_n = buf.n
    buf.bits[:start_n] = bits
    del bits
    # Each polygon is cut by its neurons in increasing order, and what a cut does depends only
    # on the polygon's own earlier cuts: so the r-th cut of every polygon is made in one
    # vectorised round, and a layer takes as many rounds as one polygon has cuts, not one per neuron.
    # The pairs come sorted by polygon, then neuron: a pair's rank among its polygon's is its round.
    rank = np.arange(len(cuts.poly)) - np.searchsorted(cuts.poly, cuts.poly)
    by_round = np.argsort(rank, kind="stable")  # round, then polygon
    bounds = np.concatenate([[0], np.bincount(rank).cumsum()])
    made = []
    for r in range(len(bounds) - 1):
        progress.tick(buf.n)
        pairs = by_round[bounds[r] : bounds[r + 1]]
        # Polygons of a round come in groups of about as many bytes as a forward pass's chunk:
        # a round reaches every descendant of its roots, as many as the layer makes. All the
        # polygons there are make at most one group (the usual case): no need to count them.
        group_rows = max(1, _spline.CHUNK_BYTES // (400 * buf.verts.shape[1]))
        if buf.n <= group_rows:
            made.append(_apply_cuts(buf, layer, cuts, pairs, min_area, min_width))
            continue
        family = np.cumsum(np.bincount(buf.root[: buf.n], minlength=start_n)[cuts.poly[pairs]])
        for part in np.split(pairs, np.flatnonzero(np.diff((family - 1) // group_rows)) + 1):
            made.append(_apply_cuts(buf, layer, cuts, part, min_area, min_width))
    if not made:
        return np.zeros(0, dtype=np.int64)
    neuron, parent = (np.concatenate(m) for m in zip(*made))
    return _neuron_order(neuron, parent, start_n)


def _neuron_order(neuron: np.ndarray, parent: np.ndarray, start_n: int) -> np.ndarray:
    """(new,) order of this layer's new polygons when cut one neuron at a time.

    In that order (every cut by neuron 0, then by neuron 1, ...; each neuron's
    new polygons in the order of their parents) the regions have always come,
    and the next layer depends on it: where rounding makes two copies of one
    vertex, the first is the one forwarded. ``neuron`` and ``parent`` (new,):
    what cut each new polygon off, and from which polygon (index; the new ones
    from ``start_n`` on, in the order made). A polygon's place is its chain
    (its neuron, its parent's neuron, ..., its root), compared entry by entry,
    a root before any new polygon and a smaller root first.
    """
    # Per polygon index (roots, then the new ones, then one past the roots, where chains have
    # ended): its entry in a chain and its parent. Roots are negative numbers in their order,
    # -1 - start_n past them, so a chain step is two gathers.
    end = start_n + len(neuron)
    key = np.concatenate([np.arange(-start_n, 0), neuron, [-1 - start_n]])
    up = np.concatenate([np.full(start_n, end), parent, [end]])
    keys, anc = [neuron], parent
    while True:
        keys.append(key[anc])
        if not (keys[-1] >= 0).any():  # no new polygon left among the ancestors
            break
        anc = up[anc]
    return np.lexsort(keys[::-1])


def _finish(net: Passes, to_input, buf: _Buffers, history: list, ext) -> Regions:
    n = buf.n
    counts = buf.counts[:n].copy()
    w = int(counts.max())
    verts = buf.verts[:n, :w].copy()
    created = buf.created[:n].copy()
    buf.bits = None  # history holds every layer's bits (the last as a view); the codes are built below
    points, index = unique_vertices(buf, ext)
    values = net.outputs(to_input(points))[index]
    del points, index
    valid = np.arange(w)[None, :] < counts[:, None]
    verts[~valid] = 0.0  # the buffer's rows keep old vertices beyond their counts
    A, level, center = affine_fit(verts, counts, values)
    c = level - np.einsum("mki,mi->mk", A, center)
    _check_affine(verts, valid, values, A, c)
    del values, valid
    # Walk back through the layers: which polygon at each layer's end is an ancestor.
    # The codes are written into one array, each layer's history freed once read.
    layers = layout(net.keys, net.sizes)
    bits = np.empty((n, sum(net.sizes)), dtype=bool)
    idx = np.arange(n)
    for layer in reversed(layers):
        root, layer_bits, rows = history.pop()
        idx = rows[idx]
        step = max(1, _spline.CHUNK_BYTES // max(1, layer.size))  # rows gathered at a time
        for i in range(0, n, step):
            bits[i : i + step, layer.start : layer.stop] = layer_bits[idx[i : i + step]]
        del layer_bits
        idx = root[idx]
    return Regions(verts, counts, SplineCode(bits, layers), A, c, created, ext)


def _check_affine(verts, valid, values, A, c) -> None:
    """Raise if the fitted affine maps miss the output at some vertex by > 1e-6 of its scale."""
    fit = np.einsum("mwi,mki->mwk", verts, A) + c[:, None]
    err = np.where(valid[..., None], np.abs(fit - values), 0.0).max(axis=(1, 2), initial=0.0)
    scale = 1.0 + np.abs(values[valid]).max(initial=0.0)
    bad = ~(err <= 1e-6 * scale)  # NaN (an overflow inside the slice) is bad too
    if bad.any():
        counts = valid.sum(axis=1)
        small = np.abs(areas(verts[bad], counts[bad]))
        worst = int(np.argmax(err))
        raise ValueError(
            f"the output is not affine on {int(bad.sum())} of {len(err)} regions (max error {err[worst]:.2e}, "
            f"output scale {scale:.2e}; smallest such region has area {small.min():.2e}). Either forward "
            "applies a nonlinearity that is not a module (F.relu, torch.tanh, x * y: make it an nn.ReLU "
            "module), or, for a model built only from supported modules, this is a numerical failure of "
            "the enumeration (e.g. nearly coincident boundaries; the slice is already computed in "
            "float64). Workaround: move the extent or the plane's origin slightly (exact coincidences "
            "rarely survive that), or a larger min_area (e.g. 1e-9) if the failing region is tiny; "
            "please report it as a polylens bug with the model's weights and the plane."
        )

# --------------------------------------------------------------- Regions ---


@dataclass(eq=False)
class Regions:
    """The linear regions of a network on a 2D slice.

    Attributes:
        verts: (n, w, 2) polygon vertices in (s, t), counter-clockwise,
            zero-padded beyond ``counts``; ``polygons`` gives them unpadded.
        counts: (n,) vertices per polygon.
        codes: :class:`~polylens.spline.SplineCode` (n rows), one per polygon.
        A, c: (n, out, 2) and (n, out): output = A[i] @ [s, t] + c[i] on region i
            (also given together by :attr:`affine`).
        created_at: (n,) index of the ReLU layer whose boundary last cut the
            polygon (-1: never cut).
        extent: (s0, s1, t0, t1).
    """

    verts: np.ndarray
    counts: np.ndarray
    codes: SplineCode
    A: np.ndarray
    c: np.ndarray
    created_at: np.ndarray
    extent: tuple[float, float, float, float]
    _cache: dict = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.counts)

    def __repr__(self) -> str:
        return f"Regions({len(self)} polygons, {self.codes.n_neurons} neurons, extent={self.extent})"

    @property
    def polygons(self) -> list[np.ndarray]:
        """One (k, 2) array of (s, t) vertices per region."""
        return [p[:k] for p, k in zip(self.verts, self.counts)]

    @property
    def areas(self) -> np.ndarray:
        """(n,) polygon areas in (s, t) units; they sum to the slice's area."""
        if "areas" not in self._cache:
            self._cache["areas"] = np.abs(areas(self.verts, self.counts))
        return self._cache["areas"]

    @property
    def centroids(self) -> np.ndarray:
        """(n, 2) area centroids: interior points, since polygons are convex."""
        if "centroids" not in self._cache:
            self._cache["centroids"] = centroids(self.verts, self.counts)
        return self._cache["centroids"]

    def interior_points(self, seed: int = 0) -> np.ndarray:
        """(n, 2) one random point strictly inside each polygon (a random convex
        combination of its vertices, every weight positive), seeded."""
        rng = np.random.default_rng(seed)
        w = self.verts.shape[1]
        weights = rng.random((len(self), w)) + 0.05
        weights[np.arange(w)[None, :] >= self.counts[:, None]] = 0
        weights /= weights.sum(1, keepdims=True)
        return np.einsum("mw,mwi->mi", weights, self.verts)

    __getattr__ = renamed("Regions", {"grad": "A (output = A[i] @ [s, t] + c[i]; also Regions.affine)",
                                      "offset": "c (output = A[i] @ [s, t] + c[i]; also Regions.affine)"},
                          "'Regions' object has no attribute {name!r}")

    @property
    def affine(self) -> tuple[np.ndarray, np.ndarray]:
        """(A (n, out, 2), c (n, out)): output = A[i] @ [s, t] + c[i] on region i."""
        return self.A, self.c

    @property
    def n_on(self) -> np.ndarray:
        """(n,) number of units on in each region."""
        return self.codes.bits.sum(axis=1)

    def outputs(self, st: Any, region: Any) -> np.ndarray:
        """(m, out) model output at points st (m, 2) lying in regions ``region`` (m,)."""
        st, region = np.asarray(st, dtype=np.float64), np.asarray(region)
        return np.einsum("mki,mi->mk", self.A[region], st) + self.c[region]

    def colors(self, color: str = "code", output: int = 0) -> np.ndarray:
        """(n,) values used by :meth:`plot` for ``color``."""
        if color == "code":
            packed = self.codes.packed()
            return np.array([zlib.crc32(row.tobytes()) % 20 for row in packed])  # stable hash
        if color == "output":
            c = self.centroids
            return self.outputs(c, np.arange(len(self)))[:, output]
        if color == "n_on":
            return self.n_on
        if color == "layer":
            return self.created_at
        raise ValueError(f"color must be 'code', 'output', 'n_on' or 'layer', got {color!r}")

    def plot(
        self,
        ax: Any = None,
        color: str = "code",
        *,
        edgecolor: Any = "k",
        linewidth: float = 0.2,
        cmap: str | None = None,
        output: int = 0,
        colorbar: bool = False,
    ) -> Any:
        """Draw the polygons with one PolyCollection (fast for 1e5 polygons).

        ``color``: "code" (a stable hash of the code into a qualitative
        colormap), "output" (output ``output`` at the centroid), "n_on"
        (units on) or "layer" (created_at). Returns the axes.
        """
        import matplotlib.pyplot as plt
        from matplotlib.collections import PolyCollection

        if ax is None:
            ax = plt.gca()
        values = self.colors(color, output)
        cmap = cmap or ("tab20" if color == "code" else "viridis")
        coll = PolyCollection(self.polygons, array=values, cmap=cmap, edgecolors=edgecolor, linewidths=linewidth)
        if color == "code":
            coll.set_clim(0, 19)
        ax.add_collection(coll)
        s0, s1, t0, t1 = self.extent
        ax.set_xlim(s0, s1)
        ax.set_ylim(t0, t1)
        ax.set_aspect("equal")
        ax.set_xlabel("s")
        ax.set_ylabel("t")
        if colorbar and color != "code":
            ax.figure.colorbar(coll, ax=ax, label=color)
        return ax

