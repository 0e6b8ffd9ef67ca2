"""Exact boundary crossings along a segment, and boundary density along rays.

The one-dimensional version of the slicer: along x0 + t (x1 - x0) every
pre-activation is piecewise linear in t, so the t where each unit flips is
found exactly, layer by layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from polylens import spline as _spline
from polylens._checks import real_array, whole_number
from polylens.regions.support import (aligned, check_reach, float64_copy, point, point_bytes, pre_activations, relu_calls,
                                      rows_per_pass)
from polylens.spline import Layer, layout, refuse_if_too_big

__all__ = ["Crossings", "Density", "crossings", "density"]

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
    per_point = point_bytes(model64, x0[0]) if n_seg else 8
    for layer, (key, module, width) in enumerate(zip(keys, modules, sizes)):
        # Per point: its forward pass, and its pre-activations (float64) and signs, twice
        # while the previous chunk's last point is joined on.
        step = aligned(_spline.CHUNK_BYTES // (per_point + 18 * width))
        first, last = len(found), None
        for i in range(0, len(t), step):
            idx = np.arange(i, min(i + step, len(t)))
            tt = torch.from_numpy(t[idx]).reshape(shape)
            pts = x0[seg[idx]] + tt * (x1[seg[idx]] - x0[seg[idx]])
            pre = pre_activations(model64, pts, key, module, step)
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
    model64 = float64_copy(model)
    x0, x1 = point(x0, "x0"), point(x1, "x1")
    if x0.shape != x1.shape:
        raise ValueError(f"x0 and x1 must have one shape, got {tuple(x0.shape)} and {tuple(x1.shape)}")
    if x0.numel() == 0:  # once a ZeroDivisionError deep in the slicing
        raise ValueError(f"x0 and x1 are empty (shape {tuple(x0.shape)}); they need the model's input shape, "
                         "e.g. (2,) for MLP([2, ...])")
    keys, modules, sizes = relu_calls(model64, x0)
    _refuse_too_many_units(sizes, x0)
    if not torch.isfinite(x1 - x0).all():
        raise ValueError("x1 - x0 overflows float64 (the ends are too far apart); shorten the segment")
    check_reach(model64, torch.stack([x0, x1]), "the segment from x0 to x1", 2)
    _, t, layer, neuron, on = _segments(model64, x0[None], x1[None], keys, modules, sizes)
    return Crossings(t, layer, neuron, on, layout(keys, sizes))


# The most ReLU units one "point" may meet. A batch passed as one point is sliced as one huge input (a Linear
# maps any leading dimensions): 20,000 segments of a 2-256-256-2 net meet 10 million units and took gigabytes.
MAX_UNITS = 1_000_000


def _refuse_too_many_units(sizes: list[int], x: torch.Tensor) -> None:
    """Refuse, before any slicing, an input that meets more than :data:`MAX_UNITS` ReLU units."""
    units = int(sum(sizes))
    if units > MAX_UNITS:
        raise ValueError(f"an input of shape {tuple(x.shape)} meets {units:,} ReLU units, more than "
                         f"polylens.regions.segments.MAX_UNITS ({MAX_UNITS:,}); the crossings of such a segment could "
                         "need gigabytes. If this is a batch of inputs, call crossings once per segment, each with "
                         "one input")


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
    model64 = float64_copy(model)
    center = point(center, "center")
    radii = real_array(radii, "radii")
    if radii.ndim != 1 or len(radii) < 2 or not np.all(np.isfinite(radii)) or radii[0] < 0 or np.any(np.diff(radii) <= 0):
        raise ValueError("radii must be at least two increasing finite distances >= 0, e.g. np.linspace(0, 4, 17)")
    if directions is None:
        n_rays = whole_number(n_rays, "n_rays", low=1)
        _check_rays(n_rays, center, radii)
        gen = torch.Generator().manual_seed(whole_number(seed, "seed"))
        directions = torch.randn((n_rays,) + tuple(center.shape), generator=gen, dtype=torch.float64)
    else:
        directions = point(directions, "directions")
        if tuple(directions.shape[1:]) != tuple(center.shape):
            raise ValueError(f"directions must be (n_rays, {tuple(center.shape)}), got {tuple(directions.shape)}")
        _check_rays(len(directions), center, radii)
    norms = directions.flatten(1).norm(dim=1)
    if not torch.all(norms > 0):
        raise ValueError("every direction must be nonzero")
    shape = (-1,) + (1,) * center.ndim
    d = directions / norms.reshape(shape)
    keys, modules, sizes = relu_calls(model64, center)
    r0, r1 = radii[0], radii[-1]
    starts, ends = center + r0 * d, center + r1 * d
    del d
    rows = rows_per_pass(model64, center)
    check_reach(model64, starts, "the rays (center + radius * direction)", rows)
    check_reach(model64, ends, "the rays (center + radius * direction)", rows)
    seg, t, *_ = _segments(model64, starts, ends, keys, modules, sizes)
    r = r0 + t * (r1 - r0)
    bins = np.searchsorted(radii, r, side="left") - 1
    inside = (bins >= 0) & (bins < len(radii) - 1)
    counts = np.zeros((len(starts), len(radii) - 1), dtype=np.int64)
    np.add.at(counts, (seg[inside], bins[inside]), 1)
    per_length = counts / np.diff(radii)
    return Density(radii, counts, per_length.mean(axis=0), per_length.std(axis=0))
