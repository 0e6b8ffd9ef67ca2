"""Drawing toy models of superposition, shared by notebook 04 and its explorer.

Every function takes an ``ax`` and one instance's weights ``W`` of shape
(hidden, features) and returns what it drew, so an explorer can update the
artists in place instead of rebuilding the axes.
"""

from __future__ import annotations

import matplotlib as mpl
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.quiver import Quiver

from polylens.regions import Regions, slice_regions
from polylens.superposition.metrics import feature_dimensionality
from polylens.superposition.toy import ToyModel, hidden_to_output

__all__ = ["feature_arrows", "hidden_regions", "move_arrows", "norm_bars", "output_polytopes", "outputs_on_colorbar",
           "wtw_heatmap"]

ARROW_CMAP = "viridis"


def _np(W) -> np.ndarray:
    W = W.detach().cpu().numpy() if isinstance(W, torch.Tensor) else np.asarray(W)
    if W.ndim != 2:
        raise ValueError(f"W must be one instance's (hidden, features) matrix, got shape {W.shape}; "
                         "pick an instance first, e.g. model.W[k]")
    return W.astype(np.float64)


def feature_arrows(ax: Axes, W, importance=None, *, labels: bool = True, lim: float = 1.4) -> Quiver:
    """Feature i as an arrow from 0 to column ``W[:, i]`` of a (2, features) W.

    Arrows are coloured by importance (bright = important) and labelled with
    their index; a feature with a short arrow is not represented.
    """
    W = _np(W)
    if W.shape[0] != 2:
        raise ValueError(f"arrows need a 2-dimensional hidden space, got {W.shape[0]} dimensions")
    n = W.shape[1]
    imp = np.ones(n) if importance is None else np.asarray(importance, dtype=float)
    q = ax.quiver(np.zeros(n), np.zeros(n), W[0], W[1], imp, cmap=ARROW_CMAP, angles="xy", scale_units="xy",
                  scale=1, width=0.012, zorder=5, clim=(0, 1))
    if labels:
        q.labels = [ax.text(*(1.12 * W[:, i]), str(i), ha="center", va="center", fontsize=9, zorder=6,
                            visible=bool(np.hypot(*W[:, i]) > 0.1)) for i in range(n)]
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", xlabel="hidden $h_1$", ylabel="hidden $h_2$")
    ax.axhline(0, color="0.85", lw=0.6, zorder=1)
    ax.axvline(0, color="0.85", lw=0.6, zorder=1)
    return q


def move_arrows(q: Quiver, W, importance=None) -> None:
    """Point an existing :func:`feature_arrows` quiver at new columns of W (fast: no new artists)."""
    W = _np(W)
    q.set_UVC(W[0], W[1], None if importance is None else np.asarray(importance, dtype=float))
    for i, t in enumerate(getattr(q, "labels", [])):
        t.set_position(1.12 * W[:, i])
        t.set_visible(bool(np.hypot(*W[:, i]) > 0.1))  # unrepresented features would pile up at 0


def wtw_heatmap(ax: Axes, W, *, title: str | None = None):
    """W^T W as a (features, features) heatmap: diagonal = ||W_i||^2, off-diagonal = interference."""
    W = _np(W)
    G = W.T @ W
    im = ax.imshow(G, cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set(xticks=[], yticks=[], xlabel="feature j", ylabel="feature i")
    if title:
        ax.set_title(title, fontsize=9)
    return im


def norm_bars(ax: Axes, W, *, title: str | None = None, horizontal: bool = True):
    """Bars of ||W_i|| coloured by feature dimensionality D_i (dark: superposed, yellow: own dimension)."""
    Wt = torch.as_tensor(_np(W))
    norms = Wt.norm(dim=0).numpy()
    dims = feature_dimensionality(Wt).numpy()
    colors = mpl.colormaps["plasma"](np.clip(dims, 0, 1))
    idx = np.arange(len(norms))
    if horizontal:
        bars = ax.barh(idx, norms, color=colors)
        ax.set(xlim=(0, 1.2), ylim=(len(norms) - 0.5, -0.5), xlabel="$\\|W_i\\|$", ylabel="feature i")
    else:
        bars = ax.bar(idx, norms, color=colors)
        ax.set(ylim=(0, 1.2), xlabel="feature i", ylabel="$\\|W_i\\|$")
    if title:
        ax.set_title(title, fontsize=9)
    return bars


def output_polytopes(model: ToyModel, instance: int, extent=(-1.4, 1.4, -1.4, 1.4)) -> Regions:
    """Exact polytopes the output ReLU cuts a 2D hidden space into (one per set of features let through)."""
    if model.W.shape[1] != 2:
        raise ValueError(f"hidden-space polytopes are drawn for 2 hidden dimensions, this model has {model.W.shape[1]}")
    net = hidden_to_output(model, instance)
    e1, e2 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    return slice_regions(net, torch.zeros(2), e1, e2, extent=extent)


def _outputs_on_scale(n_features: int):
    """One grey per count of outputs on, 0 (white) to ``n_features`` (darkest), pale enough to draw over."""
    from matplotlib.colors import BoundaryNorm, ListedColormap

    greys = mpl.colormaps["Greys"](np.linspace(0, 0.9, n_features + 1))
    # Blend with white here, not with alpha, so that the colour bar shows exactly the patches' colours.
    greys[:, :3] = 1 - 0.6 * (1 - greys[:, :3])
    cmap = ListedColormap(greys, name="outputs_on")
    return cmap, BoundaryNorm(np.arange(n_features + 2) - 0.5, n_features + 1)


def hidden_regions(ax: Axes, regions: Regions, n_features: int) -> PolyCollection:
    """Fill each hidden-space polytope by how many outputs are on there (0: white, all: dark).

    :func:`outputs_on_colorbar` draws the key.
    """
    cmap, norm = _outputs_on_scale(n_features)
    coll = PolyCollection(regions.polygons, array=regions.n_on, cmap=cmap, norm=norm, edgecolors="0.55",
                          linewidths=0.6, zorder=0)
    ax.add_collection(coll)
    return coll


def outputs_on_colorbar(ax, n_features: int, label: str = "outputs on (features reported present)"):
    """The key to :func:`hidden_regions`: one grey per number of outputs on, 0 to ``n_features``.

    ``ax`` is one axes or a list of them (the bar then spans them all).
    """
    from matplotlib.cm import ScalarMappable

    cmap, norm = _outputs_on_scale(n_features)
    fig = np.atleast_1d(ax).flat[0].figure
    return fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, ticks=range(n_features + 1),
                              fraction=0.046, pad=0.03, label=label)
