"""Matplotlib drawing shared by the notebooks and the widgets."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from polylens._checks import finite_number, whole_number

__all__ = ["plane_grid", "show_field"]


def plane_grid(
    extent: Sequence[float] = (-1.0, 1.0, -1.0, 1.0), n: int = 200, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Points of an ``n x n`` grid over ``extent = (s0, s1, t0, t1)``.

    Returns a (n * n, 2) tensor, rows in image order (t increasing down the
    rows of the reshaped (n, n) image, s along the columns), ready for
    :func:`show_field` after ``values.reshape(n, n)``.
    """
    s0, s1, t0, t1 = _check_extent(extent)
    n = whole_number(n, "n", low=2)
    s = torch.linspace(s0, s1, n, dtype=dtype)
    t = torch.linspace(t0, t1, n, dtype=dtype)
    tt, ss = torch.meshgrid(t, s, indexing="ij")
    return torch.stack([ss.reshape(-1), tt.reshape(-1)], dim=1)


def show_field(ax, values, extent: Sequence[float] = (-1.0, 1.0, -1.0, 1.0), *, zero_line: bool = True,
               cmap: str = "RdBu_r", title: str | None = None):
    """Draw a scalar field over the plane, with its zero level set as a black line.

    ``values`` is an (n, n) array from a :func:`plane_grid` of the same extent.
    The colour scale is symmetric about zero so that sign reads at a glance.
    Returns the image artist (for a colorbar).
    """
    values = np.asarray(values.detach() if isinstance(values, torch.Tensor) else values, dtype=float)
    if values.ndim != 2:
        raise ValueError(f"values must be an (n, n) grid, got shape {values.shape}; reshape(n, n) first")
    lim = float(np.abs(values).max()) or 1.0
    im = ax.imshow(values, origin="lower", extent=tuple(extent), cmap=cmap, vmin=-lim, vmax=lim)
    if zero_line and values.min() < 0 < values.max():
        s = np.linspace(extent[0], extent[1], values.shape[1])
        t = np.linspace(extent[2], extent[3], values.shape[0])
        ax.contour(s, t, values, levels=[0.0], colors="k", linewidths=1.5)
    if title:
        ax.set_title(title)
    ax.set_aspect("equal")
    return im


def _check_extent(extent: Sequence[float]) -> tuple[float, float, float, float]:
    if isinstance(extent, (str, bytes)) or not hasattr(extent, "__len__") or len(extent) != 4:
        raise ValueError(f"extent must be (s0, s1, t0, t1), got {extent!r}")
    s0, s1, t0, t1 = (finite_number(e, "each value of extent") for e in extent)
    if not (s0 < s1 and t0 < t1):
        raise ValueError(f"extent must be finite with s0 < s1 and t0 < t1, got {extent!r}")
    return s0, s1, t0, t1
