"""Exact polytopes of a ReLU network, in a 2D slice and along a segment.

A network whose only nonlinearities are ReLU/LeakyReLU modules is piecewise
affine. On the plane ``x(s, t) = origin + s * u + t * v`` it cuts the
rectangle ``extent`` into convex polygons, one per spline code, and on each
polygon the output is one affine map of (s, t).

    regs = slice_regions(model, origin, u, v, extent=(-1, 1, -1, 1))
    len(regs), regs.polygons[0], regs.codes, regs.areas
    A, c = regs.affine            # output = A[i] @ [s, t] + c[i] on polygon i
    regs.plot(ax, color="code")

    cr = crossings(model, x0, x1) # every t in [0, 1] where a unit flips
    d = density(model, center, radii=np.linspace(0, 4, 17))

The method needs no weights: inside a polygon on which every earlier layer
is fixed, each pre-activation of the next ReLU layer is affine in (s, t), so
its values at the polygon's vertices (one batched forward pass) are exact,
and where a sign changes along an edge, linear interpolation finds the
crossing exactly. Layers are processed in execution order, which is what
makes "affine inside the polygon" true.
"""

from __future__ import annotations

import copy
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from polylens import spline as _spline
from polylens._checks import check_model as _check_model
from polylens._checks import finite_number, real_array, real_tensor, whole_number
from polylens.hooks import hooked
from polylens.spline import RELU_LIKE, SMOOTH, Layer, SplineCode, refuse_if_too_big

__all__ = ["Crossings", "Density", "Regions", "crossings", "density", "slice_regions"]

# Leaf modules that are affine (given eval mode) or ReLU-like.
_AFFINE = (
    nn.Linear, nn.Identity, nn.Flatten, nn.Unflatten,
    nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
    nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d,
    nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
    nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
    nn.ZeroPad1d, nn.ZeroPad2d, nn.ConstantPad1d, nn.ConstantPad2d,
)  # fmt: skip
_REFUSED = {
    nn.GELU: "GELU is smooth, not piecewise linear",
    nn.SiLU: "SiLU is smooth, not piecewise linear",
    nn.Sigmoid: "Sigmoid is smooth, not piecewise linear",
    nn.Tanh: "Tanh is smooth, not piecewise linear",
    nn.Softplus: "Softplus is smooth, not piecewise linear",
    nn.ELU: "ELU is smooth for negative inputs",
    nn.Softmax: "Softmax is smooth",
    nn.LayerNorm: "LayerNorm divides by a norm, which is not piecewise linear",
    nn.MultiheadAttention: "attention multiplies activations together",
    nn.MaxPool1d: "MaxPool is piecewise linear, but its kinks are not ReLU modules",
    nn.MaxPool2d: "MaxPool is piecewise linear, but its kinks are not ReLU modules",
    nn.MaxPool3d: "MaxPool is piecewise linear, but its kinks are not ReLU modules",
    nn.AdaptiveMaxPool1d: "MaxPool is piecewise linear, but its kinks are not ReLU modules",
    nn.AdaptiveMaxPool2d: "MaxPool is piecewise linear, but its kinks are not ReLU modules",
    nn.AdaptiveMaxPool3d: "MaxPool is piecewise linear, but its kinks are not ReLU modules",
    nn.FractionalMaxPool2d: "MaxPool is piecewise linear, but its kinks are not ReLU modules",
    nn.FractionalMaxPool3d: "MaxPool is piecewise linear, but its kinks are not ReLU modules",
    nn.LPPool1d: "LPPool takes a p-norm, which is not piecewise linear",
    nn.LPPool2d: "LPPool takes a p-norm, which is not piecewise linear",
}
# Every other activation (Hardtanh, ReLU6, Softsign, Mish, LogSoftmax ...) and
# normalisation layer in torch.nn: their kinks or curves are not ReLU modules,
# so the enumeration cannot see them. Parameter-free modules of the user's own
# (a reshape, a residual add) are allowed, so these are refused by where
# torch defines them.
_NONLINEAR_TORCH_MODULES = ("torch.nn.modules.activation", "torch.nn.modules.normalization")
# Memory: points go through the model in chunks of about
# polylens.spline.CHUNK_BYTES of activations (see _rows_per_pass), and
# answers beyond polylens.spline.MAX_RESULT_BYTES are refused before they
# are allocated, so that a call fits the ~2 GB of a mybinder.org notebook.
# Chunks are whole multiples of _ROW_ALIGN rows: BLAS rounds the last
# (rows mod 4, 8 or 16) rows of a batch in a different kernel, so chunks of
# such multiples give every point exactly the values of one big batch.
_ROW_ALIGN = 64
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


# ------------------------------------------------------------ validation ---


def _refusal(name: str, module: nn.Module, leaf: bool = True) -> str | None:
    for kind, why in _REFUSED.items():
        if isinstance(module, kind):
            what = (
                "use polylens.spline.soft_code for soft codes of smooth activations"
                if isinstance(module, (nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Softplus, nn.ELU))
                else "replace it (AvgPool for MaxPool) or slice a ReLU-only sub-network"
            )
            return f"module {name!r} ({type(module).__name__}): {why}; regions are not polytopes. Instead, {what}."
    if isinstance(module, RELU_LIKE + _AFFINE):
        return None
    if type(module).__module__ in _NONLINEAR_TORCH_MODULES:
        what = "use polylens.spline.soft_code for its soft code" if isinstance(module, SMOOTH) else (
            "replace it with nn.ReLU / nn.LeakyReLU modules, or slice a ReLU-only sub-network")
        return (f"module {name!r} ({type(module).__name__}) is not a ReLU/LeakyReLU module, and exact regions "
                f"only know where those bend; regions are not polytopes here. Instead, {what}.")
    if leaf and next(module.parameters(recurse=False), None) is not None:
        return (
            f"module {name!r} ({type(module).__name__}) is not a layer polylens knows to be affine; "
            "exact regions support Linear, Conv, eval BatchNorm, AvgPool, Flatten, Dropout, Identity, "
            "residual additions and ReLU/LeakyReLU modules"
        )
    return None


def _float64_copy(model: Any) -> nn.Module:
    """A float64, eval-mode deep copy: the user's model is never touched."""
    _check_model(model)
    for name, module in model.named_modules():
        # Containers are checked too: MultiheadAttention is made of Linear leaves.
        why = _refusal(name or type(model).__name__, module, leaf=not list(module.children()))
        if why:
            raise ValueError(why)
    return copy.deepcopy(model).double().eval()


def _point(x: Any, what: str) -> torch.Tensor:
    t = real_tensor(x.detach().cpu() if isinstance(x, torch.Tensor) else x, what)
    if t.ndim == 0:
        raise ValueError(f"{what} must have the model's input shape (without a batch dimension)")
    if not torch.isfinite(t).all():
        raise ValueError(f"{what} contains NaN or inf; pass finite values (a point or direction in the model's input space)")
    return t


def _relu_calls(model64: nn.Module, x: torch.Tensor) -> tuple[list[str], list[str], list[int]]:
    """(call keys in execution order, their module names, neurons per call)."""
    names = [n for n, m in model64.named_modules() if n and isinstance(m, RELU_LIKE)]
    keys, modules, sizes = [], [], []

    def record(value, hook):
        keys.append(hook.name)
        modules.append(hook.module_name)
        sizes.append(value[0].numel())

    with torch.no_grad(), hooked(model64, input_hooks=[(n, record) for n in names]):
        try:
            model64(x[None])
        except RuntimeError as err:
            # Usually a shape mismatch deep inside torch; say it in the learner's terms.
            raise ValueError(
                f"the model could not run on one input of shape {tuple(x.shape)} ({err}). Points and "
                "directions must have the model's input shape without the batch dimension: (d,) for an "
                "MLP with d inputs, (C, H, W) for a conv net"
            ) from err
    return keys, modules, sizes


# ---------------------------------------------------------- forward pass ---


class _Stop(Exception):
    """Raised by a hook to end a forward pass once the wanted input is seen."""


def _point_bytes(model64: nn.Module, x: torch.Tensor) -> int:
    """Bytes of float64 activations one input ``x`` makes in a forward pass (every leaf's output).

    An upper bound of the forward pass's working memory per point: torch
    frees most intermediates as it goes, but a conv net's widest layers are
    held at once.
    """
    total = [x.numel()]

    def count(_module, _args, out):
        if isinstance(out, torch.Tensor):
            total[0] += out.numel()

    leaves = [m for m in model64.modules() if not list(m.children())]
    handles = [m.register_forward_hook(count) for m in leaves]
    try:
        with torch.no_grad():
            model64(x[None])
    finally:
        for h in handles:
            h.remove()
    return 8 * total[0]


def _rows_per_pass(model64: nn.Module, x: torch.Tensor, extra: int = 0) -> int:
    """How many points a forward pass may take at once: ~CHUNK_BYTES of activations,
    counting ``extra`` more bytes kept per point; a multiple of _ROW_ALIGN."""
    return _aligned(_spline.CHUNK_BYTES // (_point_bytes(model64, x) + extra))


def _aligned(rows: int) -> int:
    return max(_ROW_ALIGN, rows - rows % _ROW_ALIGN)


def _pre_activations(model64: nn.Module, x: torch.Tensor, key: str, module: str, rows: int) -> np.ndarray:
    """(batch, neurons) input of call ``key`` of ``module``, ``rows`` points per pass; the rest of each pass is skipped."""
    out = None
    for i in range(0, max(len(x), 1), rows):
        got = {}

        def grab(value, hook):
            if hook.name == key:
                got["pre"] = value.flatten(1).numpy()
                raise _Stop

        try:
            with torch.no_grad(), hooked(model64, input_hooks=[(module, grab)]):
                model64(x[i : i + rows])
        except _Stop:
            pass
        if out is None:
            # Filled in place: no list of chunks and a concatenated copy side by side, and no
            # small arrays kept between the passes' big blocks, which fragments the heap.
            out = np.empty((len(x), got["pre"].shape[1]))
        out[i : i + rows] = got["pre"]
    return out


def _outputs(model64: nn.Module, x: torch.Tensor, rows: int) -> np.ndarray:
    """(batch, outputs) of the model, ``rows`` points per pass."""
    out = None
    with torch.no_grad():
        for i in range(0, max(len(x), 1), rows):
            y = model64(x[i : i + rows]).flatten(1).numpy()
            if out is None:
                out = np.empty((len(x), y.shape[1]))
            out[i : i + rows] = y
    return out


# ------------------------------------------------------ polygon geometry ---


def _next_index(counts: np.ndarray, width: int) -> np.ndarray:
    return (np.arange(width)[None, :] + 1) % counts[:, None]


def _areas(verts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(m,) shoelace areas of padded convex polygons (m, w, 2), counter-clockwise positive."""
    w = verts.shape[1]
    rel = verts - verts[:, :1]  # relative to a vertex: less cancellation
    nxt = np.take_along_axis(rel, _next_index(counts, w)[..., None], axis=1)
    cross = rel[..., 0] * nxt[..., 1] - rel[..., 1] * nxt[..., 0]
    cross[np.arange(w)[None, :] >= counts[:, None]] = 0.0
    return 0.5 * cross.sum(axis=1)


def _centroids(verts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(m, 2) area centroids of padded convex polygons: interior points."""
    w = verts.shape[1]
    valid = np.arange(w)[None, :] < counts[:, None]
    mean = (verts * valid[..., None]).sum(axis=1) / counts[:, None]
    rel = verts - mean[:, None]
    nxt = np.take_along_axis(rel, _next_index(counts, w)[..., None], axis=1)
    cross = np.where(valid, rel[..., 0] * nxt[..., 1] - rel[..., 1] * nxt[..., 0], 0.0)
    area6 = 3.0 * cross.sum(axis=1)
    c = ((rel + nxt) * cross[..., None]).sum(axis=1)
    ok = np.abs(area6) > 0
    c[ok] /= area6[ok, None]
    c[~ok] = 0.0
    return mean + c


def _split(verts: np.ndarray, counts: np.ndarray, f: np.ndarray):
    """Cut convex polygons by the zero line of ``f`` (values at the vertices).

    Returns (positive side, its counts, negative side, its counts). A vertex
    with f == 0 belongs to both sides; a crossing is added on every edge
    whose ends have strictly opposite signs, at the linearly interpolated
    point, which is exact because f is affine inside each polygon.
    """
    m, w = f.shape
    valid = np.arange(w)[None, :] < counts[:, None]
    nxt = _next_index(counts, w)
    f_next = np.take_along_axis(f, nxt, axis=1)
    v_next = np.take_along_axis(verts, nxt[..., None], axis=1)
    cross = valid & (((f > 0) & (f_next < 0)) | ((f < 0) & (f_next > 0)))
    lam = np.divide(f, f - f_next, out=np.zeros_like(f), where=cross)
    points = verts + lam[..., None] * (v_next - verts)
    # Vertex i, then the crossing on edge (i, i+1): the order stays convex.
    cand = np.stack([verts, points], axis=2).reshape(m, 2 * w, 2)
    sides = []
    for keep_vertex in (valid & (f >= 0), valid & (f <= 0)):
        keep = np.stack([keep_vertex, cross], axis=2).reshape(m, 2 * w)
        sides.extend(_compact(cand, keep))
    return sides


def _compact(cand: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    counts = keep.sum(axis=1)
    out = np.zeros((len(cand), int(counts.max(initial=1)), 2))
    rows, cols = np.nonzero(keep)
    out[rows, np.cumsum(keep, axis=1)[rows, cols] - 1] = cand[rows, cols]
    return out, counts


def _affine_fit(verts: np.ndarray, counts: np.ndarray, values: np.ndarray):
    """The affine map through values at the vertices, per polygon and column.

    verts (m, w, 2), values (m, w, k) -> (gradient (m, k, 2), value at an
    anchor vertex (m, k), that anchor (m, 2)). The map interpolates three
    vertices that span the polygon well: the anchor a (vertex 0), the vertex
    b farthest from a, and the vertex c farthest from the line ab, solved in
    the frame (e1 along ab, e2 across it). Every other vertex lies within a
    few times that triangle, so rounding in the map stays ~1e-16 of the
    values' scale at every vertex, however thin the polygon: a least-squares
    fit through the normal equations squares the condition number and breaks
    down on long slivers (e.g. between two nearly parallel boundaries). The
    gradient across a sliver of width h is only determined to ~1e-16 / h;
    the map's values on the polygon are what is exact.
    """
    m, w = verts.shape[:2]
    rows = np.arange(m)
    valid = np.arange(w)[None, :] < counts[:, None]
    anchor = verts[:, 0]
    d = np.where(valid[..., None], verts - anchor[:, None], 0.0)
    b = (d * d).sum(axis=2).argmax(axis=1)
    db = d[rows, b]
    length = np.sqrt((db * db).sum(axis=1))
    ok = length > 0
    e1 = np.zeros_like(db)
    e1[ok] = db[ok] / length[ok, None]
    e2 = np.stack([-e1[:, 1], e1[:, 0]], axis=1)
    across = np.einsum("mwi,mi->mw", d, e2)
    c = np.abs(across).argmax(axis=1)
    xc = np.einsum("mi,mi->m", d[rows, c], e1)
    yc = across[rows, c]
    fa, fb, fc = values[:, 0], values[rows, b], values[rows, c]
    g1 = np.divide(fb - fa, length[:, None], out=np.zeros_like(fa), where=ok[:, None])
    g2 = np.divide(fc - fa - g1 * xc[:, None], yc[:, None], out=np.zeros_like(fa), where=(yc != 0)[:, None])
    grad = g1[..., None] * e1[:, None] + g2[..., None] * e2[:, None]
    return grad, fa, anchor


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

    def _grow(self, rows: int, width: int) -> None:
        cap, w = self.verts.shape[:2]
        new_cap = max(cap, 1 << int(np.ceil(np.log2(max(rows, 1)))))
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

    def put(self, idx: np.ndarray, verts: np.ndarray, counts: np.ndarray) -> None:
        self._grow(self.n, verts.shape[1])
        self.verts[idx, : verts.shape[1]] = verts
        self.counts[idx] = counts

    def append(self, parents: np.ndarray, verts: np.ndarray, counts: np.ndarray) -> np.ndarray:
        rows = self.n + len(parents)
        refuse_if_too_big(
            float(rows) * self.region_bytes,
            f"the regions of this slice (over {rows:,} regions {self.where}, and more to come; "
            f"~{self.region_bytes:,} bytes each for the code, polygon and affine map)",
            "pass a smaller extent (a quarter of the area has roughly a quarter of the regions), "
            "or slice a smaller network",
        )
        new = np.arange(self.n, rows)
        self._grow(self.n + len(parents), verts.shape[1])
        self.n += len(parents)
        self.verts[new, : verts.shape[1]] = verts
        self.counts[new] = counts
        self.root[new] = self.root[parents]
        self.bits[new] = self.bits[parents]
        return new


def _unique_vertices(buf: _Buffers, extent: tuple) -> tuple[np.ndarray, np.ndarray]:
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
    key = np.round((verts[..., 0] - s0) / (s1 - s0) * 2.0**44) + 1j * np.round((verts[..., 1] - t0) / (t1 - t0) * 2.0**44)
    _, first, inverse = np.unique(key.ravel(), return_index=True, return_inverse=True)
    return verts.reshape(-1, 2)[first], inverse.reshape(n, w)


def _layer_cuts(buf: _Buffers, pre: np.ndarray, index: np.ndarray):
    """Which neuron lines cut which polygons, and the affine pre-activation on each cut pair.

    pre (points, neurons) at the distinct vertices, index (n, w) as from
    :func:`_unique_vertices`. Returns the initial bits (n, neurons) and, per
    cut pair sorted by neuron: neuron, polygon, gradient (2,), level and
    centre (2,) of the pair's affine map, and the pair's on-the-line
    tolerance (see _ON_LINE). A polygon is cut only if some vertex is
    clearly positive and some clearly negative; otherwise its bit is
    whether some vertex is clearly positive.
    """
    n, w = index.shape
    tol = _ON_LINE * np.abs(pre).max(axis=0, initial=0.0)  # (neurons,)
    on = np.empty((n, pre.shape[1]), dtype=bool)
    cut = np.empty((n, pre.shape[1]), dtype=bool)
    step = max(1, (1 << 22) // (w * pre.shape[1]))  # ~32 MiB gathered at a time
    for i in range(0, n, step):
        vals = pre[index[i : i + step]]
        hi, lo = vals.max(axis=1), vals.min(axis=1)
        on[i : i + step] = hi > tol
        cut[i : i + step] = (lo < -tol) & (hi > tol)
    neuron, poly = np.nonzero(cut.T)
    del cut
    counts = buf.counts[poly]
    wc = int(counts.max(initial=1))
    # The fit makes several (pairs, wc, 2) float64 temporaries: fit a chunk of pairs at a
    # time (each pair's fit is its own, so the maps are those of one pass).
    grad, level, centre = np.empty((len(poly), 2)), np.empty(len(poly)), np.empty((len(poly), 2))
    step = max(1, _spline.CHUNK_BYTES // (100 * wc))
    for i in range(0, len(poly), step):
        sl = slice(i, i + step)
        values = pre[index[poly[sl], :wc], neuron[sl, None]][..., None]
        g, lv, c = _affine_fit(buf.verts[poly[sl], :wc], counts[sl], values)
        grad[sl], level[sl], centre[sl] = g[:, 0], lv[:, 0], c
    return on, neuron, poly, grad, level, centre, tol[neuron]


def _apply_neuron(buf, j, layer, polys, grad, level, centre, tol, start_n, min_area, min_width) -> None:
    """Split every polygon descending from ``polys`` by neuron j's line.

    Values within ``tol`` of 0 count as 0 (the vertex is on the line), so
    near-touches never make a piece; a piece below ``min_area`` that is also
    thinner than ``min_width`` is rounding, and its cut is skipped.
    """
    lookup = np.full(start_n, -1, dtype=np.int64)
    lookup[polys] = np.arange(len(polys))
    later = np.arange(start_n, buf.n)
    later = later[lookup[buf.root[start_n : buf.n]] >= 0]
    cand = np.concatenate([polys, later])  # the in-place child keeps its parent's index
    k = lookup[buf.root[cand]]
    counts = buf.counts[cand]
    w = int(counts.max())
    verts = buf.verts[cand, :w]
    f = np.einsum("mwi,mi->mw", verts - centre[k][:, None], grad[k]) + level[k][:, None]
    f[np.abs(f) <= tol[k][:, None]] = 0.0
    valid = np.arange(w)[None, :] < counts[:, None]
    pos = (valid & (f > 0)).any(axis=1)
    cut = pos & (valid & (f < 0)).any(axis=1)
    buf.bits[cand, j] = pos
    if not cut.any():
        return
    idx = cand[cut]
    fc = f[cut]
    pv, pc, nv, nc = _split(verts[cut], counts[cut], fc)
    a_pos, a_neg = np.abs(_areas(pv, pc)), np.abs(_areas(nv, nc))
    # A piece both tiny and thin is rounding, not a region: keep the parent
    # whole, on the side of its larger part. Widths are distances from the line.
    norm = np.hypot(grad[k[cut], 0], grad[k[cut], 1])  # no overflow for gradients near 1e200
    w_pos = np.where(valid[cut], fc, 0.0).max(axis=1) / norm
    w_neg = -np.where(valid[cut], fc, 0.0).min(axis=1) / norm
    real = ((a_pos >= min_area) | (w_pos >= min_width)) & ((a_neg >= min_area) | (w_neg >= min_width))
    buf.bits[idx[~real], j] = a_pos[~real] >= a_neg[~real]
    idx, pv, pc, nv, nc = idx[real], pv[real], pc[real], nv[real], nc[real]
    if not len(idx):
        return
    buf.put(idx, pv, pc)
    buf.created[idx] = layer
    new = buf.append(idx, nv, nc)
    buf.bits[new, j] = False
    buf.created[new] = layer


def _check_plane(origin, u, v, extent) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, tuple]:
    origin, u, v = _point(origin, "origin"), _point(u, "u"), _point(v, "v")
    if not origin.shape == u.shape == v.shape:
        raise ValueError(
            f"origin, u and v must have one shape (the model's input without batch), got "
            f"{tuple(origin.shape)}, {tuple(u.shape)}, {tuple(v.shape)}"
        )
    if origin.numel() == 0:
        raise ValueError("origin, u and v are empty; they need the model's input shape, e.g. (2,) for MLP([2, ...])")
    if not (u.abs().max() > 0 and v.abs().max() > 0):
        raise ValueError("u and v must be nonzero directions (e.g. two orthogonal unit vectors)")
    # Scale-free: each direction divided by its largest entry, so huge or tiny ones neither overflow nor vanish.
    un, vn = u / u.abs().max(), v / v.abs().max()
    uu, vv, uv = float((un * un).sum()), float((vn * vn).sum()), float((un * vn).sum())
    if uu * vv - uv * uv <= 1e-12 * uu * vv:
        raise ValueError("u and v must be linearly independent (e.g. two orthogonal directions)")
    ext = tuple(float(e) for e in real_array(extent, "extent").ravel())
    if len(ext) != 4 or not np.all(np.isfinite(ext)) or not (ext[0] < ext[1] and ext[2] < ext[3]):
        raise ValueError(f"extent must be finite (s0, s1, t0, t1) with s0 < s1 and t0 < t1, got {extent}")
    sides = (ext[1] - ext[0], ext[3] - ext[2])
    if not all(1e-100 <= side <= 1e100 for side in sides):
        # Beyond these, squared lengths in the polygon geometry overflow or vanish in float64.
        raise ValueError(f"extent {extent} has sides of {sides[0]:.3g} and {sides[1]:.3g}; choose sides between 1e-100 and 1e100")
    return origin, u, v, ext


def _check_reach(model64: nn.Module, points: torch.Tensor, what: str, rows: int) -> None:
    """Refuse a slice or segment whose points, or the model's outputs there, overflow float64.

    Checked at the ends or corners: the network is affine between kinks, so its
    values inside are of the same size unless a kink multiplies them enormously,
    and that case is still caught when the affine maps are checked at the end.
    ``rows`` points go through the model at a time.
    """
    if not torch.isfinite(points).all():
        raise ValueError(
            f"{what} reaches beyond the range of float64 numbers (about 1e308); shrink it or scale the directions down"
        )
    with torch.no_grad():
        finite = all(bool(torch.isfinite(model64(points[i : i + rows])).all()) for i in range(0, len(points), rows))
    if not finite:
        raise ValueError(
            f"the model's output is inf or NaN on {what}: its inputs are too large for float64 arithmetic; "
            "shrink it or scale the directions down"
        )


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
    model64 = _float64_copy(model)
    origin, u, v, ext = _check_plane(origin, u, v, extent)
    if finite_number(min_area, "min_area") < 0:
        raise ValueError(f"min_area must be >= 0 (a fraction of the slice's area, e.g. 1e-12), got {min_area}")
    s0, s1, t0, t1 = ext
    keys, modules, sizes = _relu_calls(model64, origin)
    rows = _rows_per_pass(model64, origin)
    rect = np.array([[[s0, t0], [s1, t0], [s1, t1], [s0, t1]]])
    _check_reach(model64, _plane(origin, u, v)(rect[0]), "the slice (origin + s u + t v over the extent)", rows)
    buf = _Buffers(rect, np.array([4]), 0)
    with torch.no_grad():
        n_out = model64(origin[None]).numel()
    # The answer per region: its code (a bool per unit), ~10 vertices, counts and the
    # affine map (n_out x 3 float64); the enumeration's own buffers are of the same order.
    buf.region_bytes = sum(sizes) + 200 + 24 * n_out
    area = (s1 - s0) * (t1 - t0)
    diag = float(np.hypot(s1 - s0, t1 - t0))
    to_input = _plane(origin, u, v)
    history = []  # per layer: (root of each polygon at the layer's end, its bits)
    for layer, (key, module, size) in enumerate(zip(keys, modules, sizes)):
        buf.start_layer(size)
        buf.where = f"in ReLU layer {layer + 1} of {len(keys)}"
        _cut_layer(buf, model64, to_input, key, module, layer, min_area * area, _THIN * diag, ext, rows)
        last = layer == len(keys) - 1  # the last layer's bits are not changed again: no copy
        history.append((buf.root[: buf.n].copy(), buf.bits[: buf.n] if last else buf.bits[: buf.n].copy()))
    return _finish(model64, to_input, buf, history, keys, sizes, ext, rows)


def _plane(origin: torch.Tensor, u: torch.Tensor, v: torch.Tensor):
    def to_input(st: np.ndarray) -> torch.Tensor:
        st = torch.from_numpy(np.ascontiguousarray(st))
        shape = (-1,) + (1,) * origin.ndim
        return origin + st[:, 0].reshape(shape) * u + st[:, 1].reshape(shape) * v

    return to_input


def _cut_layer(buf, model64, to_input, key, module, layer, min_area, min_width, extent, rows) -> None:
    points, index = _unique_vertices(buf, extent)
    pre = _pre_activations(model64, to_input(points), key, module, rows)
    bits, neuron, poly, grad, level, centre, tol = _layer_cuts(buf, pre, index)
    width = pre.shape[1]
    del pre, points, index  # (vertices, neurons) float64: the biggest array here, not needed for the cuts
    start_n = buf.n
    buf.bits[:start_n] = bits
    del bits
    bounds = np.searchsorted(neuron, np.arange(width + 1))
    for j in np.unique(neuron):
        sl = slice(bounds[j], bounds[j + 1])
        _apply_neuron(buf, j, layer, poly[sl], grad[sl], level[sl], centre[sl], tol[sl], start_n, min_area, min_width)


def _finish(model64, to_input, buf, history, keys, sizes, ext, rows) -> Regions:
    n = buf.n
    counts = buf.counts[:n].copy()
    w = int(counts.max())
    verts = buf.verts[:n, :w].copy()
    created = buf.created[:n].copy()
    buf.bits = None  # history holds every layer's bits (the last as a view); the codes are built below
    points, index = _unique_vertices(buf, ext)
    values = _outputs(model64, to_input(points), rows)[index]
    del points, index
    valid = np.arange(w)[None, :] < counts[:, None]
    grad, level, centre = _affine_fit(verts, counts, values)
    offset = level - np.einsum("mki,mi->mk", grad, centre)
    _check_affine(verts, valid, values, grad, offset)
    del values, valid
    # Walk back through the layers: which polygon at each layer's end is an ancestor.
    # The codes are written into one array, each layer's history freed once read.
    layers = tuple(Layer(k, a - s, a) for k, s, a in zip(keys, sizes, np.cumsum(sizes).tolist()))
    bits = np.empty((n, sum(sizes)), dtype=bool)
    idx = np.arange(n)
    for layer in reversed(layers):
        root, layer_bits = history.pop()
        step = max(1, _spline.CHUNK_BYTES // max(1, layer.size))  # rows gathered at a time
        for i in range(0, n, step):
            bits[i : i + step, layer.start : layer.stop] = layer_bits[idx[i : i + step]]
        del layer_bits
        idx = root[idx]
    return Regions(verts, counts, SplineCode(bits, layers), grad, offset, created, ext)


def _check_affine(verts, valid, values, grad, offset) -> None:
    """Raise if the fitted affine maps miss the output at some vertex by > 1e-6 of its scale."""
    fit = np.einsum("mwi,mki->mwk", verts, grad) + offset[:, None]
    err = np.where(valid[..., None], np.abs(fit - values), 0.0).max(axis=(1, 2), initial=0.0)
    scale = 1.0 + np.abs(values[valid]).max(initial=0.0)
    bad = ~(err <= 1e-6 * scale)  # NaN (an overflow inside the slice) is bad too
    if bad.any():
        counts = valid.sum(axis=1)
        areas = np.abs(_areas(verts[bad], counts[bad]))
        worst = int(np.argmax(err))
        raise ValueError(
            f"the output is not affine on {int(bad.sum())} of {len(err)} regions (max error {err[worst]:.2e}, "
            f"output scale {scale:.2e}; smallest such region has area {areas.min():.2e}). Either forward "
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
        grad, offset: (n, out, 2) and (n, out): output = grad[i] @ [s, t] + offset[i].
        created_at: (n,) index of the ReLU layer whose boundary last cut the
            polygon (-1: never cut).
        extent: (s0, s1, t0, t1).
    """

    verts: np.ndarray
    counts: np.ndarray
    codes: SplineCode
    grad: np.ndarray
    offset: np.ndarray
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
            self._cache["areas"] = np.abs(_areas(self.verts, self.counts))
        return self._cache["areas"]

    @property
    def centroids(self) -> np.ndarray:
        """(n, 2) area centroids: interior points, since polygons are convex."""
        if "centroids" not in self._cache:
            self._cache["centroids"] = _centroids(self.verts, self.counts)
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

    @property
    def affine(self) -> tuple[np.ndarray, np.ndarray]:
        """(A (n, out, 2), c (n, out)): output = A[i] @ [s, t] + c[i] on region i."""
        return self.grad, self.offset

    @property
    def n_on(self) -> np.ndarray:
        """(n,) number of units on in each region."""
        return self.codes.bits.sum(axis=1)

    def outputs(self, st: Any, region: Any) -> np.ndarray:
        """(m, out) model output at points st (m, 2) lying in regions ``region`` (m,)."""
        st, region = np.asarray(st, dtype=np.float64), np.asarray(region)
        return np.einsum("mki,mi->mk", self.grad[region], st) + self.offset[region]

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


# ------------------------------------------------------------- crossings ---


@dataclass(eq=False)
class Crossings:
    """Where a segment ``x0 + t (x1 - x0)``, t in [0, 1], crosses region boundaries.

    One entry per unit that flips, sorted by t (several units may flip at
    one t). Attributes:
        t: (k,) float64 parameters in [0, 1].
        layer: (k,) int, index into ``layers`` of the flipping unit's layer.
        neuron: (k,) int, the unit's index within its layer (flattened for conv).
        turns_on: (k,) bool, True where the unit goes from off to on as t grows.
        layers: the layout of the spline code (as in SplineCode.layers).
    """

    t: np.ndarray
    layer: np.ndarray
    neuron: np.ndarray
    turns_on: np.ndarray
    layers: tuple[Layer, ...]

    def __len__(self) -> int:
        return len(self.t)

    def __repr__(self) -> str:
        return f"Crossings({len(self)} unit flips at {len(np.unique(self.t))} distinct t)"

    @property
    def names(self) -> list[str]:
        """(k,) layer name of each crossing."""
        return [self.layers[i].name for i in self.layer]

    @property
    def code_index(self) -> np.ndarray:
        """(k,) column of each flipping unit in the full spline code."""
        starts = np.array([l.start for l in self.layers], dtype=np.int64)
        return starts[self.layer] + self.neuron if len(self) else np.zeros(0, dtype=np.int64)


def _segments(model64, x0: torch.Tensor, x1: torch.Tensor, keys, modules, sizes) -> tuple[np.ndarray, ...]:
    """Crossings of many segments at once: x0, x1 (S, *shape).

    The 1D version of the slicing recursion: breakpoints split each segment
    into intervals on which all earlier layers are fixed, so the next
    layer's pre-activations are affine in t there and the zero of each one
    that changes sign is found by interpolation. Returns (segment, t,
    layer, neuron, turns_on), each (k,), sorted by segment then t.

    Memory: only the breakpoints (segment, t) and the crossings found are
    kept whole; pre-activations are computed for a chunk of consecutive
    breakpoints at a time (about polylens.spline.CHUNK_BYTES with the
    forward pass), each chunk overlapping the next by one point so that no
    interval is missed. The crossings are the same as with one chunk.
    """
    n_seg = len(x0)
    seg = np.repeat(np.arange(n_seg), 2)
    t = np.tile([0.0, 1.0], n_seg)
    found = []
    shape = (-1,) + (1,) * (x0.ndim - 1)
    point_bytes = _point_bytes(model64, x0[0]) if n_seg else 8
    for layer, (key, module, width) in enumerate(zip(keys, modules, sizes)):
        # Per point: its forward pass, and its pre-activations (float64) and signs, twice
        # while the previous chunk's last point is joined on.
        step = _aligned(_spline.CHUNK_BYTES // (point_bytes + 18 * width))
        first, last = len(found), None
        for i in range(0, len(t), step):
            idx = np.arange(i, min(i + step, len(t)))
            tt = torch.from_numpy(t[idx]).reshape(shape)
            pts = x0[seg[idx]] + tt * (x1[seg[idx]] - x0[seg[idx]])
            pre = _pre_activations(model64, pts, key, module, step)
            if last is not None:  # the interval from the previous chunk's last point to this chunk's first
                idx, pre = np.concatenate([[i - 1], idx]), np.concatenate([last, pre])
            last = pre[-1:].copy()
            s_, t_ = seg[idx], t[idx]
            on = pre > 0
            pair = np.flatnonzero(s_[1:] == s_[:-1])  # interval (pair, pair + 1) within the chunk
            k, j = np.nonzero(on[pair] != on[pair + 1])
            a = pair[k]
            fa, fb = pre[a, j], pre[a + 1, j]
            ta, tb = t_[a], t_[a + 1]
            tc = np.clip(ta + (tb - ta) * fa / (fa - fb), ta, tb)
            found.append((s_[a], tc, np.full(len(a), layer), j, fb > 0))
            del pre, on
        seg = np.concatenate([seg, *(f[0] for f in found[first:])])
        t = np.concatenate([t, *(f[1] for f in found[first:])])
        n_found = sum(len(f[1]) for f in found)
        # Each crossing costs ~41 bytes in its five columns and ~16 as a breakpoint, and
        # sorting them at the end copies the columns once more.
        refuse_if_too_big(
            100.0 * n_found,
            f"the list of crossings ({n_found:,} unit flips after {layer + 1} of {len(keys)} ReLU layers, "
            "and more to come)",
            "pass a shorter segment, or fewer rays to density",
        )
        order = np.lexsort((t, seg))
        seg, t = seg[order], t[order]
        keep = np.ones(len(t), dtype=bool)
        keep[1:] = (seg[1:] != seg[:-1]) | (t[1:] != t[:-1])
        seg, t = seg[keep], t[keep]
    if not found:
        empty = np.zeros(0, dtype=np.int64)
        return empty, np.zeros(0), empty, empty, np.zeros(0, dtype=bool)
    cols = [np.concatenate(c) for c in zip(*found)]
    order = np.lexsort((cols[3], cols[2], cols[1], cols[0]))
    return tuple(c[order] for c in cols)


def _code_layers(keys, sizes) -> tuple[Layer, ...]:
    stops = np.cumsum(sizes).tolist() if sizes else []
    return tuple(Layer(k, b - s, b) for k, s, b in zip(keys, sizes, stops))


def crossings(model: nn.Module, x0: Any, x1: Any) -> Crossings:
    """Every exact t in [0, 1] at which the segment x0 -> x1 crosses a region boundary.

    Args:
        model: as for :func:`slice_regions` (a float64 eval copy is used).
        x0, x1: one input each, the model's input shape without batch.

    Returns:
        :class:`Crossings`, sorted by t: the spline code (pre-activation > 0)
        changes exactly at these t, by the listed units. A flip at t = 0
        means x0 lies exactly on that unit's boundary.

    Memory: only the breakpoints and crossings are held for the whole
    segment; pre-activations are computed for a chunk of breakpoints at a
    time (about ``polylens.spline.CHUNK_BYTES`` with the forward pass), so a
    long path through a conv decoder needs no more memory than a short one.
    The crossings are exactly those of one unchunked pass. A segment with so
    many crossings that their list would exceed
    ``polylens.spline.MAX_RESULT_BYTES`` is refused with a ValueError.
    """
    model64 = _float64_copy(model)
    x0, x1 = _point(x0, "x0"), _point(x1, "x1")
    if x0.shape != x1.shape:
        raise ValueError(f"x0 and x1 must have one shape, got {tuple(x0.shape)} and {tuple(x1.shape)}")
    keys, modules, sizes = _relu_calls(model64, x0)
    if not torch.isfinite(x1 - x0).all():
        raise ValueError("x1 - x0 overflows float64 (the ends are too far apart); shorten the segment")
    _check_reach(model64, torch.stack([x0, x1]), "the segment from x0 to x1", 2)
    _, t, layer, neuron, on = _segments(model64, x0[None], x1[None], keys, modules, sizes)
    return Crossings(t, layer, neuron, on, _code_layers(keys, sizes))


def _check_rays(n_rays: int, center: torch.Tensor, radii: np.ndarray) -> None:
    """Refuse more rays than fit: their directions and ends (float64, four arrays of
    n_rays x input size) and the counts and densities per ray and bin."""
    refuse_if_too_big(
        8.0 * n_rays * (4 * center.numel() + 2 * (len(radii) - 1)),
        f"{n_rays:,} rays in an input space of {center.numel():,} numbers (directions, ray ends, counts per bin)",
        f"pass fewer rays (n_rays={max(1, int(_spline.MAX_RESULT_BYTES // (8 * (4 * center.numel() + 2 * (len(radii) - 1)))))} "
        "at most; a few thousand already give a smooth density), or average several calls with different seeds",
    )


@dataclass(eq=False)
class Density:
    """Boundary crossings per unit length at a range of distances from a centre.

    Attributes:
        radii: (b + 1,) bin edges (distance from the centre).
        counts: (n_rays, b) unit flips in each bin on each ray.
        density: (b,) mean over rays of counts / bin length.
        std: (b,) standard deviation over rays of counts / bin length.
    """

    radii: np.ndarray
    counts: np.ndarray
    density: np.ndarray
    std: np.ndarray

    @property
    def mid(self) -> np.ndarray:
        """(b,) bin centres."""
        return 0.5 * (self.radii[1:] + self.radii[:-1])


def density(
    model: nn.Module,
    center: Any,
    radii: Any,
    n_rays: int = 64,
    seed: int = 0,
    *,
    directions: Any = None,
) -> Density:
    """How densely region boundaries lie at each distance from ``center``.

    Along ``n_rays`` random unit directions d (Gaussian, normalised; seeded),
    the segment from ``center + radii[0] d`` to ``center + radii[-1] d`` is
    crossed exactly (:func:`crossings`), and each unit flip at distance r
    is counted in the bin radii[i] < r <= radii[i + 1]. A flip exactly at
    radii[0] is a property of the start point, not of the path, and is not
    counted. With all biases zero the regions are cones from the origin, so
    the density beyond it is exactly zero.

    Args:
        model: as for :func:`slice_regions`.
        center: one input (the model's input shape without batch).
        radii: (b + 1,) increasing distances >= 0, e.g. np.linspace(0, 4, 17).
        n_rays, seed: how many random directions, and their seed.
        directions: optional (n_rays, *input shape) directions instead
            (normalised here).

    Returns:
        :class:`Density`.

    Memory: rays are crossed together, their points forwarded in chunks
    (see :func:`crossings`); more rays than fit in
    ``polylens.spline.MAX_RESULT_BYTES`` are refused before anything is
    allocated.
    """
    model64 = _float64_copy(model)
    center = _point(center, "center")
    radii = real_array(radii, "radii")
    if radii.ndim != 1 or len(radii) < 2 or not np.all(np.isfinite(radii)) or radii[0] < 0 or np.any(np.diff(radii) <= 0):
        raise ValueError("radii must be at least two increasing finite distances >= 0, e.g. np.linspace(0, 4, 17)")
    if directions is None:
        if isinstance(n_rays, bool) or not isinstance(n_rays, int) or n_rays < 1:
            raise ValueError(f"n_rays must be a positive int, got {n_rays!r}")
        _check_rays(n_rays, center, radii)
        gen = torch.Generator().manual_seed(whole_number(seed, "seed"))
        directions = torch.randn((n_rays,) + tuple(center.shape), generator=gen, dtype=torch.float64)
    else:
        directions = _point(directions, "directions")
        if tuple(directions.shape[1:]) != tuple(center.shape):
            raise ValueError(f"directions must be (n_rays, {tuple(center.shape)}), got {tuple(directions.shape)}")
        _check_rays(len(directions), center, radii)
    norms = directions.flatten(1).norm(dim=1)
    if not torch.all(norms > 0):
        raise ValueError("every direction must be nonzero")
    shape = (-1,) + (1,) * center.ndim
    d = directions / norms.reshape(shape)
    keys, modules, sizes = _relu_calls(model64, center)
    r0, r1 = radii[0], radii[-1]
    starts, ends = center + r0 * d, center + r1 * d
    del d
    rows = _rows_per_pass(model64, center)
    _check_reach(model64, starts, "the rays (center + radius * direction)", rows)
    _check_reach(model64, ends, "the rays (center + radius * direction)", rows)
    seg, t, *_ = _segments(model64, starts, ends, keys, modules, sizes)
    r = r0 + t * (r1 - r0)
    bins = np.searchsorted(radii, r, side="left") - 1
    inside = (bins >= 0) & (bins < len(radii) - 1)
    counts = np.zeros((len(starts), len(radii) - 1), dtype=np.int64)
    np.add.at(counts, (seg[inside], bins[inside]), 1)
    per_length = counts / np.diff(radii)
    return Density(radii, counts, per_length.mean(axis=0), per_length.std(axis=0))
