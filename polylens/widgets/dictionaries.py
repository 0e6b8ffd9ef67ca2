"""Explorers for notebook 05: sparse dictionaries against known ground truth.

- :class:`DictionaryExplorer`: SAEs over L1 x dictionary size on data made of
  known sparse features; MMCS, dead latents and the matched cosine heatmap.
  A latent is dead when it fires on at most 1 in 1,000 inputs
  (:data:`polylens.superposition.sae.DEAD_RATE`).
- :class:`CooccurrenceExplorer`: SAEs on the objects x conditions world at a
  few co-occurrence levels; atomic vs "sunny duck" combination latents.

Every SAE is trained up front, all of one grid row in a single batched loop
(:func:`polylens.superposition.dictionary_sweeps.train_sae_grid`), so a
slider move only redraws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch

from polylens._checks import numbers, whole_number
from polylens.superposition import dictionary_plots as dp
from polylens.superposition.dictionary_sweeps import train_sae_grid
from polylens.superposition.geometry import (
    ObjectsConditions,
    atomic_vs_combination,
    objects_conditions,
)
from polylens.superposition.sae import (
    SAE,
    dead_latents,
    ground_truth_features,
    l0,
    mmcs,
    sparse_activations,
)
from polylens.widgets.figure import FigureArea
from polylens.widgets.snap import snap

__all__ = ["CooccurrenceExplorer", "CooccurrenceView", "DictionaryExplorer", "DictionaryView"]


def _grid(l1s, sizes) -> tuple[tuple[float, ...], tuple[int, ...]]:
    """The explorer's (L1, size) grid, checked: distinct positive L1 values and positive int sizes."""
    l1s = tuple(numbers(l1s, "l1s"))
    if min(l1s) <= 0:
        raise ValueError(f"l1s must all be > 0: the L1 axis is logarithmic (log 0 is undefined); got {l1s}. "
                         "Use a small value such as 0.001 for 'almost no L1'")
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
        raise TypeError(f"sizes must be a list of dictionary sizes, e.g. (32, 64, 128); got {sizes!r}")
    sizes = tuple(whole_number(s, "each of sizes", low=1) for s in sizes)
    if not sizes:
        raise ValueError("sizes must hold at least one dictionary size, e.g. (32, 64, 128)")
    if len(set(l1s)) != len(l1s) or len(set(sizes)) != len(sizes):
        raise ValueError(f"l1s and sizes must not repeat a value (each names one trained SAE); got {l1s} and {sizes}")
    return l1s, sizes


# ----------------------------------------------------------------------------- L1 x size


def _score(value: float) -> str:
    return f"{value:.2f}" if math.isfinite(value) else "none (every latent is dead)"


@dataclass
class DictionaryView:
    """What one (L1, dictionary size) state shows."""

    l1: float
    n_latents: int
    mmcs: float  # over all atoms, dead ones included
    mmcs_live: float  # over the atoms of live latents only; nan when every latent is dead
    n_dead: int  # latents firing on at most DEAD_RATE of the inputs
    l0: float
    mse: float
    cosines: np.ndarray  # (n_features, n_latents) signed, columns sorted by best match, dead last
    readout: str
    message: str = ""


def _heatmap_title(v: DictionaryView) -> str:
    return (f"cosine of each true feature with the learned atoms\n"
            f"(dead atoms last, greyed; MMCS {v.mmcs:.2f}, live only {_score(v.mmcs_live)})")


class DictionaryExplorer:
    """SAEs trained on ``sparse_activations @ ground_truth_features`` over an L1 x size grid.

    Args:
        n_features, dim: ground truth (``n_features`` unit directions in ``dim`` dimensions).
        avg_active: true features active per sample, on average.
        l1s: L1 coefficients of the grid, each > 0 (the L1 axis and the nearest-value lookup
            are logarithmic; use a small value such as 0.001 for "almost no L1").
        sizes: dictionary sizes (latents) of the grid, positive ints.
        steps, lr, n_samples, seed: training; every SAE starts from the same seeded initialisation.
    """

    def __init__(self, n_features: int = 64, dim: int = 32, avg_active: float = 4.0,
                 l1s=(0.01, 0.03, 0.1, 0.3, 1.0, 2.0), sizes=(32, 64, 128), steps: int = 1000, lr: float = 3e-3,
                 n_samples: int = 8192, seed: int = 0) -> None:
        self.l1s, self.sizes = _grid(l1s, sizes)
        self.n_features = n_features
        self.features = ground_truth_features(n_features, dim, seed=seed)
        self.activations = sparse_activations(n_samples, n_features, avg_active=avg_active, seed=seed + 1)
        self.data = self.activations @ self.features
        self.true_l0 = float(self.activations.gt(0).sum(1).float().mean())  # true features active per input
        self.saes: dict[tuple[float, int], SAE] = {}
        self.stats: dict[tuple[float, int], tuple[float, np.ndarray, float, float, float]] = {}
        for size in self.sizes:
            for l1, sae in zip(self.l1s, train_sae_grid(self.data, size, self.l1s, steps=steps, lr=lr, seed=seed)):
                self.saes[l1, size] = sae
                dead = dead_latents(sae, self.data).numpy()
                with torch.no_grad():
                    mse = float(((sae(self.data) - self.data) ** 2).sum(1).mean() / (self.data**2).sum(1).mean())
                live = sae.dictionary[~torch.as_tensor(dead)]
                score_live = mmcs(live, self.features) if len(live) else float("nan")
                self.stats[l1, size] = (mmcs(sae, self.features), dead, l0(sae, self.data), mse, score_live)
        self.area: FigureArea | None = None

    def curves(self, n_latents: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(MMCS, dead fraction, L0) along the L1 grid for one dictionary size: each (len(l1s),)."""
        rows = [self.stats[l1, n_latents] for l1 in self.l1s]
        return (np.array([r[0] for r in rows]), np.array([r[1].mean() for r in rows]), np.array([r[2] for r in rows]))

    def mmcs_live_curve(self, n_latents: int) -> np.ndarray:
        """MMCS over live latents only along the L1 grid for one dictionary size: (len(l1s),), NaN where all are dead."""
        return np.array([self.stats[l1, n_latents][4] for l1 in self.l1s])

    # ------------------------------------------------------------ pure ---

    def view(self, l1: float = 0.3, n_latents: int = 64) -> DictionaryView:
        """Numbers and the sorted cosine matrix of the grid SAE nearest to (l1, n_latents).

        Off-grid or invalid values show the nearest (or default) setting and say so in ``message``.
        """
        notes: list[str] = []
        lv = snap(self.l1s, l1, "L1", notes, missing="was not trained", log=True,
                  default=0.3 if 0.3 in self.l1s else None)
        size = int(snap(self.sizes, n_latents, "dictionary size", notes, missing="was not trained",
                        default=64 if 64 in self.sizes else None))
        message = "; ".join(notes)
        score, dead, active, mse, score_live = self.stats[lv, size]
        cos, _ = dp.matched_cosines(self.saes[lv, size].dictionary, self.features, dead)
        ratio = size / self.n_features
        readout = (f"L1 = {lv:g}, {size} latents ({ratio:g}x the {self.n_features} true features): "
                   f"<b>MMCS {score:.2f}</b> (live latents only: {_score(score_live)}), "
                   f"<b>{int(dead.sum())} dead latents</b> ({dead.mean():.0%}; dead: fires on at most 1 in 1,000 inputs), "
                   f"L0 {active:.1f} latents per input (truth: about {self.true_l0:.1f}), "
                   f"unexplained variance {mse:.1%}")
        return DictionaryView(lv, size, score, score_live, int(dead.sum()), active, mse, cos, readout, message)

    # ---------------------------------------------------------- drawing ---

    def update(self, l1: float = 0.3, n_latents: int = 64) -> DictionaryView:
        """Compute the view and redraw (if the figure is built)."""
        v = self.view(l1, n_latents)
        if self.area is not None:
            if v.n_latents != self._size:
                m, d, a = self.curves(v.n_latents)
                ys = (m, d, a / v.n_latents, [self.true_l0 / v.n_latents] * 2, self.mmcs_live_curve(v.n_latents))
                for line, y in zip(self._lines, ys):
                    line.set_ydata(y)
                self._size = v.n_latents
            i = self.l1s.index(v.l1)
            self._marker.set_xdata([i, i])
            dp.set_heatmap(self._im, v.cosines)
            self._dead.set_x(v.cosines.shape[1] - v.n_dead - 0.5)
            self._dead.set_width(v.n_dead)
            self._bx.set_title(_heatmap_title(v), fontsize=9)
            self.area.refresh()
            self._readout.value = v.readout + (f"<br><i>{v.message}</i>" if v.message else "")
        return v

    def figure(self, l1: float = 0.3, n_latents: int = 64):
        """Build the figure for one state (also used by :meth:`widget`)."""
        v = self.view(l1, n_latents)
        with plt.ioff():
            fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4.6), gridspec_kw={"width_ratios": [1, 1.25]})
        m, d, a = self.curves(v.n_latents)
        self._lines, self._marker = dp.metric_curves(ax, self.l1s, m, d, a / v.n_latents, self.true_l0 / v.n_latents,
                                                     mmcs_live=self.mmcs_live_curve(v.n_latents))
        i = self.l1s.index(v.l1)
        self._marker.set_xdata([i, i])
        ax.set_title("too little L1: dense codes; too much: dead latents", fontsize=9)
        self._im = dp.cosine_heatmap(bx, v.cosines)
        bx.set_title(_heatmap_title(v), fontsize=9)
        self._bx, self._size = bx, v.n_latents
        self._dead = plt.Rectangle((v.cosines.shape[1] - v.n_dead - 0.5, -0.5), v.n_dead, v.cosines.shape[0],
                                   fc="0.5", alpha=0.35, ec="none", label="dead latents")
        bx.add_patch(self._dead)
        fig.tight_layout()
        return fig

    def widget(self, l1: float = 0.3, n_latents: int = 64):
        """Sliders for L1 and dictionary size, the figure and a readout, wired to :meth:`update`."""
        import ipywidgets as widgets

        self.area = FigureArea(self.figure(l1, n_latents))
        self._readout = widgets.HTML()
        v = self.view(l1, n_latents)
        s_l1 = widgets.SelectionSlider(options=self.l1s, value=v.l1, description="L1 λ")
        s_n = widgets.SelectionSlider(options=self.sizes, value=v.n_latents, description="latents")
        out = widgets.interactive_output(self.update, {"l1": s_l1, "n_latents": s_n})
        self.update(v.l1, v.n_latents)
        return widgets.VBox([self.area.widget, widgets.VBox([s_l1, s_n, self._readout]), out])


# ----------------------------------------------------------------------------- co-occurrence


@dataclass
class CooccurrenceView:
    """What one co-occurrence state shows."""

    cooccurrence: float
    kinds: dict[str, float]
    cosines: np.ndarray  # (live latents, objects + conditions) signed, rows grouped by kind
    row_kinds: list[str]
    readout: str
    message: str = ""


class CooccurrenceExplorer:
    """SAEs on the objects x conditions world, one per co-occurrence level.

    Object i is paired with condition i (think "duck" with "sunny"); at
    co-occurrence c a sample's condition is the partner with probability c,
    otherwise uniformly random.
    """

    def __init__(self, cooccurrences=(0.0, 0.5, 0.8, 0.9, 0.97), n_objects: int = 8, n_conditions: int = 8,
                 n_latents: int = 16, l1: float = 0.2, steps: int = 1500, lr: float = 3e-3, n_samples: int = 8192,
                 seed: int = 0) -> None:
        self.cooccurrences = tuple(float(c) for c in cooccurrences)
        self.worlds: list[ObjectsConditions] = [
            objects_conditions(n_objects, n_conditions, cooccurrence=c, n_samples=n_samples, seed=seed)
            for c in self.cooccurrences]
        self.saes = train_sae_grid([w.data for w in self.worlds], n_latents, [l1] * len(self.worlds), steps=steps,
                                   lr=lr, seed=seed)
        self.kinds = [atomic_vs_combination(s, w) for s, w in zip(self.saes, self.worlds)]
        self.n_objects, self.n_conditions = n_objects, n_conditions
        self.area: FigureArea | None = None

    def latent_table(self, k: int) -> tuple[np.ndarray, list[str]]:
        """Cosines of live latents with objects then conditions, rows sorted atomic / combination / other."""
        sae, w = self.saes[k], self.worlds[k]
        with torch.no_grad():
            live = ~dead_latents(sae, w.data)
        d = sae.dictionary[live]
        atoms = torch.cat([w.objects, w.conditions])
        combos = (w.objects[:, None] + w.conditions[None]).flatten(0, 1)
        combos = combos / combos.norm(dim=1, keepdim=True)
        best_atom, best_combo = (d @ atoms.T).max(1).values, (d @ combos.T).max(1).values
        kind = np.where((best_atom >= best_combo) & (best_atom >= 0.9), "atomic",
                        np.where((best_combo > best_atom) & (best_combo >= 0.9), "combination", "other"))
        cos = (d @ atoms.T).numpy()
        # Group by kind, then by the object or condition each row mostly points at.
        order = sorted(range(len(kind)), key=lambda i: (["atomic", "combination", "other"].index(kind[i]),
                                                         int(np.argmax(cos[i]))))
        return cos[order], [str(kind[i]) for i in order]

    def view(self, cooccurrence: float = 0.0) -> CooccurrenceView:
        notes: list[str] = []
        near = snap(self.cooccurrences, cooccurrence, "co-occurrence", notes, missing="was not trained")
        message = "; ".join(notes)
        k = self.cooccurrences.index(near)
        cos, kinds_rows = self.latent_table(k)
        kinds = self.kinds[k]
        readout = (f"co-occurrence {near:g}: each object comes with its partner condition "
                   f"{near + (1 - near) / self.n_conditions:.0%} of the time. Of {int(kinds['live'])} live latents, "
                   f"<b>{kinds['atomic']:.0%} atomic</b> (one object or one condition), "
                   f"<b>{kinds['combination']:.0%} combination</b> (\"sunny duck\": object + partner), "
                   f"{kinds['other']:.0%} neither")
        return CooccurrenceView(near, kinds, cos, kinds_rows, readout, message)

    def update(self, cooccurrence: float = 0.0) -> CooccurrenceView:
        v = self.view(cooccurrence)
        if self.area is not None:
            dp.set_heatmap(self._im, v.cosines)
            self._label_rows(v)
            self._marker.set_x(self.cooccurrences.index(v.cooccurrence) - 0.45)
            self.area.refresh()
            self._readout.value = v.readout + (f"<br><i>{v.message}</i>" if v.message else "")
        return v

    def _label_rows(self, v: CooccurrenceView) -> None:
        # One label per group of rows and a line between groups: far less text to render than a label per row.
        kinds = np.array(v.row_kinds)
        ticks, labels, edges = [], [], []
        start = 0
        for kind in ("atomic", "combination", "other"):
            n = int((kinds == kind).sum())
            if n:
                ticks.append(start + (n - 1) / 2)
                labels.append(f"{kind} ({n})")
                edges.append(start + n - 0.5)
            start += n
        self._ax.set_yticks(ticks, labels, rotation=90, va="center", fontsize=8)
        for line, y in zip(self._separators, edges[:-1] + [-0.5] * 3):
            line.set_ydata([y, y])

    def figure(self, cooccurrence: float = 0.0):
        v = self.view(cooccurrence)
        with plt.ioff():
            fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4.2), gridspec_kw={"width_ratios": [1.3, 1]})
        self._im = dp.cosine_heatmap(ax, v.cosines, xlabel="", ylabel="live latents, by kind")
        n_o = self.n_objects
        ax.set_xticks(range(n_o + self.n_conditions),
                      [f"o{i}" for i in range(n_o)] + [f"c{j}" for j in range(self.n_conditions)], fontsize=7)
        ax.axvline(n_o - 0.5, color="k", lw=1)
        ax.set_xlabel("objects o0..o7 | conditions c0..c7  (partner of o$i$ is c$i$)")
        ax.set_title("cosine of each live latent's atom with every object and condition\n"
                     "a combination row lights up twice: object o$i$ and its partner c$i$", fontsize=9)
        self._ax = ax
        self._separators = [ax.axhline(-0.5, color="k", lw=1.5) for _ in range(2)]
        self._label_rows(v)
        self._marker = dp.latent_kinds(bx, self.cooccurrences, self.kinds)
        self._marker.set_x(self.cooccurrences.index(v.cooccurrence) - 0.45)
        fig.tight_layout()
        return fig

    def widget(self, cooccurrence: float = 0.0):
        import ipywidgets as widgets

        self.area = FigureArea(self.figure(cooccurrence))
        self._readout = widgets.HTML()
        v = self.view(cooccurrence)
        s = widgets.SelectionSlider(options=self.cooccurrences, value=v.cooccurrence, description="co-occurrence",
                                    style={"description_width": "initial"})
        out = widgets.interactive_output(self.update, {"cooccurrence": s})
        self.update(v.cooccurrence)
        return widgets.VBox([self.area.widget, widgets.VBox([s, self._readout]), out])
