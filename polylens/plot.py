"""Matplotlib drawing shared by the notebooks and the widgets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from polylens._checks import finite_number, whole_number
from polylens.spline import refuse_if_too_big

__all__ = ["distinct_colors", "picture_grid", "plane_grid", "show_field"]


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


def distinct_colors(n: int) -> np.ndarray:
    """(n, 4) RGBA colours, no two alike: one per region when a learner is asked to count them.

    The strong tab10 colours come first, then the light half of tab20, then
    tab20b and tab20c (60 in all); beyond that, hues are spread by the golden
    ratio (still distinct, harder to tell apart).
    """
    import matplotlib

    n = whole_number(n, "n", low=0)
    refuse_if_too_big(48 * n, f"{n} colours", "ask for one colour per region you draw")
    cmaps = matplotlib.colormaps
    table = np.concatenate([cmaps["tab10"](np.arange(10)), cmaps["tab20"](np.arange(1, 20, 2)),
                            cmaps["tab20b"](np.arange(20)), cmaps["tab20c"](np.arange(20))])
    if n <= len(table):
        return table[:n]
    hues = np.mod(np.arange(n - len(table)) * 0.618033988749895, 1.0)
    extra = matplotlib.colors.hsv_to_rgb(np.stack([hues, np.full_like(hues, 0.6), np.full_like(hues, 0.9)], axis=1))
    return np.concatenate([table, np.c_[extra, np.ones(len(extra))]])


def _check_extent(extent: Sequence[float]) -> tuple[float, float, float, float]:
    if isinstance(extent, (str, bytes)) or not hasattr(extent, "__len__") or len(extent) != 4:
        raise ValueError(f"extent must be (s0, s1, t0, t1), got {extent!r}")
    s0, s1, t0, t1 = (finite_number(e, "each value of extent") for e in extent)
    if not (s0 < s1 and t0 < t1):
        raise ValueError(f"extent must be finite with s0 < s1 and t0 < t1, got {extent!r}")
    return s0, s1, t0, t1


def _as_pictures(images, label: str) -> np.ndarray:
    """(k, 3, H, W) tensor or (k, H, W, 3) array -> (k, H, W, 3) floats in [0, 1]."""
    arr = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if arr.ndim == 4 and arr.shape[1] == 3 and arr.shape[-1] != 3:
        arr = arr.transpose(0, 2, 3, 1)
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(f"row {label!r} must hold pictures (k, H, W, 3) or (k, 3, H, W); got shape {arr.shape}")
    return np.clip(np.nan_to_num(arr.astype(np.float32), nan=0.0), 0, 1)


def picture_grid(rows: Mapping[str, object], verdicts: Mapping[str, Sequence[tuple[str, bool]]] | None = None,
                 *, cell: float = 1.25, label_width: float = 1.6):
    """A grid of pictures: one row per entry of ``rows`` (label -> k pictures), one column per scene.

    ``verdicts``: label -> k (caption, ok) pairs, written under each picture of that
    row in green (ok) or red. Returns the matplotlib figure.
    """
    if not rows:
        raise ValueError("rows must map at least one label to pictures")
    pictures = {label: _as_pictures(images, label) for label, images in rows.items()}
    k = {len(p) for p in pictures.values()}
    if len(k) != 1:
        raise ValueError(f"every row must hold the same number of pictures; got {sorted(k)}")
    (k,) = k
    verdicts = dict(verdicts or {})
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(pictures), k, figsize=(label_width + cell * k, (cell + 0.25) * len(pictures)),
                             squeeze=False)
    for r, (label, images) in enumerate(pictures.items()):
        for c in range(k):
            ax = axes[r, c]
            ax.imshow(images[c], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if label in verdicts:
                text, ok = verdicts[label][c]
                ax.set_xlabel(text, fontsize=7, color="green" if ok else "firebrick", labelpad=2)
        axes[r, 0].set_ylabel(label, fontsize=8, rotation=0, ha="right", va="center", labelpad=6)
    fig.subplots_adjust(left=label_width / (label_width + cell * k), right=0.99, top=0.99, bottom=0.02,
                        wspace=0.06, hspace=0.35)
    return fig
