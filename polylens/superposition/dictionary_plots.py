"""Drawing for notebook 05: how a learned dictionary lines up with the truth.

- :func:`matched_cosines`: the (true x learned) cosine matrix, columns
  reordered so that each true feature's best atom sits on the diagonal;
- :func:`cosine_heatmap`: that matrix as an image, updatable in place;
- :func:`metric_curves`: MMCS and the fraction of dead latents against L1;
- :func:`readout_scatter`: a variable as the network reads it vs as one latent carries it;
- :func:`latent_kinds`: atomic / combination / other latents against co-occurrence.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.image import AxesImage

__all__ = ["cosine_heatmap", "latent_kinds", "matched_cosines", "metric_curves", "readout_scatter"]


def _unit(rows) -> np.ndarray:
    a = torch.as_tensor(rows).detach().double().numpy()
    return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)


def matched_cosines(learned, true, dead=None) -> tuple[np.ndarray, np.ndarray]:
    """Signed cosines (n_true, n_learned), columns sorted by best match.

    Going through true features in order, each takes its best still-unused
    atom as its column; atoms nobody took follow, and ``dead`` atoms
    ((n_learned,) bool, optional) come last. Returns (cosines, column order).
    """
    cos = _unit(true) @ _unit(learned).T
    n_learned = cos.shape[1]
    dead = np.zeros(n_learned, bool) if dead is None else np.asarray(dead, bool)
    used = np.zeros(n_learned, bool)
    order = []
    for i in np.argsort(-cos.max(axis=1)):  # confident matches first, so they keep their atom
        free = np.where(used | dead, -np.inf, cos[i])
        j = int(np.argmax(free))
        if np.isfinite(free[j]) and len(order) < n_learned:
            order.append((i, j))
            used[j] = True
    order.sort()  # diagonal in the true features' order
    cols = [j for _, j in order]
    rest = [j for j in range(n_learned) if not used[j] and not dead[j]] + [j for j in range(n_learned) if dead[j]]
    cols = np.array(cols + rest, dtype=int)
    return cos[:, cols], cols


def cosine_heatmap(ax: Axes, cos: np.ndarray, title: str = "", xlabel: str = "learned atom (sorted by best match)",
                   ylabel: str = "true feature", colorbar: bool = True) -> AxesImage:
    """Draw a (rows, cols) signed cosine matrix in [-1, 1]; returns the image (``set_data`` to update)."""
    im = ax.imshow(cos, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if colorbar:
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.02, label="cosine similarity", ticks=[-1, 0, 1])
    # Few tick labels: text is most of a redraw's cost.
    ax.xaxis.set_major_locator(plt.MaxNLocator(5, integer=True))
    ax.yaxis.set_major_locator(plt.MaxNLocator(5, integer=True))
    return im


def set_heatmap(im: AxesImage, cos: np.ndarray) -> None:
    """Replace a heatmap's matrix, shape changes included."""
    im.set_data(cos)
    im.set_extent((-0.5, cos.shape[1] - 0.5, cos.shape[0] - 0.5, -0.5))
    im.axes.set_xlim(-0.5, cos.shape[1] - 0.5)
    im.axes.set_ylim(cos.shape[0] - 0.5, -0.5)


def metric_curves(ax: Axes, l1s, mmcs_values, dead_fraction, active_fraction=None, true_active: float | None = None,
                  mmcs_live=None):
    """MMCS, fraction of dead latents and fraction of latents active per input, against L1.

    The L1 values sit at equal spacing (they are usually log-spaced) and are
    written on the ticks. ``mmcs_live`` (optional, one value per L1, NaN
    where every latent is dead) adds MMCS over live latents only, drawn
    last. Returns (lines, vertical marker); move the marker with
    ``set_xdata([i, i])`` where ``i`` is the index of the L1 value.
    """
    x = np.arange(len(l1s))
    lines = [ax.plot(x, mmcs_values, "o-", color="C0", label="MMCS")[0],
             ax.plot(x, dead_fraction, "s--", color="C3", label="dead latents")[0]]
    if active_fraction is not None:
        lines.append(ax.plot(x, active_fraction, "^:", color="0.4", label="active latents per input (L0 / size)")[0])
    if true_active is not None:
        ax.axhline(true_active, color="0.4", lw=0.8, label="true features per input / size")
        lines.append(ax.lines[-1])
    if mmcs_live is not None:
        lines.append(ax.plot(x, mmcs_live, "o:", color="C0", mfc="white", label="MMCS, live latents only")[0])
    ax.set_xticks(x, [f"{v:g}" for v in l1s])
    ax.set(xlabel="L1 coefficient $\\lambda$ (log-spaced)", ylabel="fraction", ylim=(-0.03, 1.03))
    marker = ax.axvline(0, color="k", lw=6, alpha=0.15)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.17), fontsize=8, frameon=False, ncol=2)
    return lines, marker


def readout_scatter(ax: Axes, true: np.ndarray, carried: np.ndarray, title: str, xlabel: str, ylabel: str,
                    max_points: int = 2000) -> None:
    """Scatter a variable as the network reads it (x) against its best single-latent fit (y), with y = x."""
    true, carried = np.asarray(true)[:max_points], np.asarray(carried)[:max_points]
    ax.scatter(true, carried, s=4, alpha=0.4, edgecolors="none")
    lo, hi = float(min(true.min(), carried.min())), float(max(true.max(), carried.max()))
    ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="perfect: y = x")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.legend(loc="upper left", fontsize=8)


KIND_COLORS = {"atomic": "C2", "combination": "C1", "other": "0.6"}


def latent_kinds(ax: Axes, cooccurrences, kinds: list[dict[str, float]]):
    """Stacked bars: fraction of live latents that are atomic / combination / other, per co-occurrence.

    Returns a marker (a rectangle patch around the current bar) to move with ``set_x``.
    """
    x = np.arange(len(cooccurrences))
    bottom = np.zeros(len(x))
    for kind, color in KIND_COLORS.items():
        v = np.array([k[kind] for k in kinds])
        ax.bar(x, v, bottom=bottom, color=color, label=kind, width=0.7)
        bottom += v
    ax.set_xticks(x, [f"{c:g}" for c in cooccurrences])
    ax.set(xlabel="co-occurrence (object with its partner condition)", ylabel="fraction of live latents",
           ylim=(0, 1.15), title="what the dictionary's latents are")
    ax.legend(loc="upper center", ncol=3, fontsize=8)
    marker = plt.Rectangle((-0.45, 0), 0.9, 1.02, fill=False, lw=2, ec="k")
    ax.add_patch(marker)
    return marker


@torch.no_grad()
def best_single_latent_fit(codes: torch.Tensor, targets: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """For each target variable, its least-squares fit ``s * c_j`` from the one latent j that fits best.

    The same fit as :func:`polylens.superposition.single_latent_readout_error`.
    Shapes: codes (n_samples, n_latents), targets (n_samples, n_targets) ->
    (fitted values (n_samples, n_targets), chosen latent per target (n_targets,)).
    """
    codes, targets = codes.double(), targets.double()
    dots = codes.T @ targets  # (latents, targets)
    sq = (codes**2).sum(0)[:, None]
    explained = torch.where(sq > 0, dots**2 / sq.clamp(min=1e-30), torch.zeros_like(dots))
    j = explained.argmax(0)
    scale = dots[j, torch.arange(targets.shape[1])] / sq[j, 0].clamp(min=1e-30)
    return (codes[:, j] * scale).numpy(), j.numpy()


@torch.no_grad()
def animals_panels(axes, sae, world, animal: int = 0, attribute: int = 0, max_points: int = 1500) -> None:
    """Three panels for the animals world (:class:`polylens.superposition.AnimalsDataset`).

    Left: each animal's and each attribute's best cosine with any atom.
    Middle: one animal's true value vs its best single latent. Right: one
    attribute as a linear read-out sees it vs its best single latent.
    """
    d = _unit(sae.dictionary)
    best_animal = (_unit(world.animals) @ d.T).max(1)
    best_attr = (_unit(world.attributes) @ d.T).max(1)
    bins = np.linspace(-0.1, 1, 23)
    axes[0].hist(best_animal, bins=bins, alpha=0.7, color="C0", label=f"{len(best_animal)} animals")
    axes[0].hist(best_attr, bins=bins, alpha=0.7, color="C3", label=f"{len(best_attr)} attributes")
    axes[0].set(xlabel="best cosine with any learned atom", ylabel="count",
                title="the dictionary finds animals, not attributes")
    axes[0].legend(fontsize=8)
    codes = sae.encode(world.data)
    fit_an, _ = best_single_latent_fit(codes, world.animal_activations[:, animal:animal + 1])
    present = world.animal_activations[:, animal] > 0
    # Mostly zeros: show every sample where the animal or its latent is on, plus a few others.
    keep = (present | torch.as_tensor(fit_an[:, 0] > 0)).numpy()
    readout_scatter(axes[1], world.animal_activations[keep, animal].numpy(), fit_an[keep, 0],
                    f"animal {animal}: one latent tracks it", "true animal magnitude",
                    "best single latent, rescaled", max_points)
    fit_at, _ = best_single_latent_fit(codes, world.attribute_values[:, attribute:attribute + 1])
    readout_scatter(axes[2], world.attribute_values[:, attribute].numpy(), fit_at[:, 0],
                    f"attribute {attribute}: no latent carries it", "attribute as the network reads it ($x \\cdot a$)",
                    "best single latent, rescaled", max_points)
