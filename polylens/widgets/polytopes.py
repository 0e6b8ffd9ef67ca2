"""Explorer for notebook 01: the polytopes of a small classifier, as it trains.

Sliders pick the network (width, depth), the training step (when more than
one was kept), which layer's bent hyperplanes to draw and one neuron of that
layer to highlight. Every network is trained once and every slice is
enumerated exactly up front, so a slider move only redraws. To watch one
network train step by step, see :mod:`polylens.widgets.training`.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib import patheffects
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.lines import Line2D
from tqdm.auto import tqdm

from polylens import boundaries
from polylens.models import MLP
from polylens.regions import Regions, input_plane, slice_regions
from polylens.training import train_classifier
from polylens.widgets.figure import FigureArea
from polylens.widgets.snap import snap, whole

COLORS = ("code", "output", "n_on", "layer")
# What each colouring means, for the colour bar (the code colouring only tells regions apart).
COLOR_LABELS = {
    "output": "logit of class 1 at the region's centre",
    "n_on": "neurons on in the region",
    "layer": "layer whose boundary cut the region last",
}
# A dark rim under a light line (and a light rim under a dark one) shows on every region colour.
_RIMMED = [patheffects.Stroke(linewidth=5.5, foreground="black"), patheffects.Normal()]
_RIMMED_LIGHT = [patheffects.Stroke(linewidth=4.5, foreground="white"), patheffects.Normal()]


@dataclass
class _Slice:
    regions: Regions
    hyperplanes: list[list[np.ndarray]]  # per layer, per neuron: (m, 2, 2) segments
    layer_lines: list[np.ndarray]  # per layer: every neuron's segments together, (m, 2, 2)
    decision: np.ndarray
    accuracy: float


@dataclass
class PolytopeView:
    """What one slider state shows: geometry to draw and the readout text."""

    regions: Regions
    layer_lines: np.ndarray  # (m, 2, 2) bent hyperplanes of the chosen layer
    highlight: np.ndarray  # (k, 2, 2) the chosen neuron's bent hyperplane
    decision: np.ndarray  # (d, 2, 2) where the two logits are equal
    readout: str
    message: str = ""


class PolytopeExplorer:
    """Exact regions of 2 -> width x depth -> 2 ReLU classifiers during training.

    Args:
        x, y: the 2D task, (n, 2) float inputs and (n,) int64 labels.
        widths, depths: the architectures to train (every combination).
        steps: training steps at which the slices are kept (0 = initialisation).
        extent: the square of input space shown, (s0, s1, t0, t1).
        seed: seeds every network's initialisation.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        widths=(4, 8, 16, 32),
        depths=(1, 2, 3),
        steps=(0, 25, 50, 100, 200, 400),
        extent=(-1.5, 1.5, -1.5, 1.5),
        lr: float = 1e-2,
        seed: int = 0,
        progress: bool = True,
    ) -> None:
        self.x, self.y = x, y
        self.widths, self.depths, self.steps = tuple(widths), tuple(depths), tuple(sorted(steps))
        self.extent = tuple(extent)
        self.slices: dict[tuple[int, int, int], _Slice] = {}
        combos = list(product(self.widths, self.depths))
        for width, depth in tqdm(combos, desc="training and slicing", disable=not progress):
            model = MLP([2] + [width] * depth + [2], seed=seed)
            traj = train_classifier(model, x, y, steps=max(self.steps), lr=lr, snapshots=self.steps, seed=seed)
            for step, acc in zip(traj.steps, traj.accuracy):
                self.slices[width, depth, step] = self._slice(traj.model_at(model, step), acc)
        self.area: FigureArea | None = None

    def _slice(self, model: torch.nn.Module, accuracy: float) -> _Slice:
        origin, u, v = input_plane()
        regions = slice_regions(model, origin, u, v, extent=self.extent)
        values = boundaries.preactivations_at_vertices(model, regions, origin, u, v)
        lines = [boundaries.neuron_boundaries(values[layer.name], regions) for layer in regions.codes.layers]
        together = [np.concatenate([s for s in per if len(s)] or [np.zeros((0, 2, 2))]) for per in lines]
        return _Slice(regions, lines, together, boundaries.decision_boundary(regions), accuracy)

    # ------------------------------------------------------------ pure ---

    def view(self, width: int, depth: int, step: int, layer: int = 1, neuron: int = 0) -> PolytopeView:
        """The geometry and readout for one state. ``layer`` counts from 1.

        Values that were not precomputed, or are not numbers at all, show the
        nearest (or default) state and say so in ``message``.
        """
        notes: list[str] = []
        width = snap(self.widths, width, "width", notes)
        depth = snap(self.depths, depth, "depth", notes)
        step = snap(self.steps, step, "train step", notes)
        layer, neuron = whole(layer, 1, "layer", notes), whole(neuron, 0, "neuron", notes)
        sl = self.slices[width, depth, step]
        if not 1 <= layer <= depth:
            notes.append(f"this network has {_count(depth, 'hidden layer')}; "
                         f"showing layer {min(max(layer, 1), depth)}")
            layer = min(max(layer, 1), depth)
        per_neuron = sl.hyperplanes[layer - 1]
        # The slider walks through the neurons whose hyperplanes cross this square;
        # the others are on everywhere or off everywhere here and draw nothing.
        crossing = [j for j, segs in enumerate(per_neuron) if len(segs)]
        changing = len(crossing)
        if not crossing:
            crossing = [0]
            notes.append(f"no neuron of layer {layer} changes state on this square")
        if not 0 <= neuron < len(crossing):
            notes.append(f"{_count(len(crossing), 'neuron')} of layer {layer} "
                         f"{'crosses' if len(crossing) == 1 else 'cross'} this square (slider 0 to "
                         f"{len(crossing) - 1}); showing the {'first' if neuron < 0 else 'last'}")
            neuron = min(max(neuron, 0), len(crossing) - 1)
        unit = crossing[neuron]
        layer_lines = sl.layer_lines[layer - 1]
        highlight = per_neuron[unit]
        rest = "" if changing == width else " (each of the others is on everywhere or off everywhere)"
        readout = (
            f"width {width}, depth {depth}, step {step}: <b>{_count(len(sl.regions), 'region')}</b> on this "
            f"square, training accuracy {sl.accuracy:.0%}.<br>Layer {layer}: {changing} of {width} neurons "
            f"{'changes' if changing == 1 else 'change'} state here{rest}. "
        )
        if changing:
            pieces = _count(_pieces(highlight), "straight piece")
            readout += f"Gold: neuron {unit}, whose bent hyperplane has {pieces} here."
        else:
            readout += "No neuron of this layer has a boundary here to highlight."
        return PolytopeView(sl.regions, layer_lines, highlight, sl.decision, readout, "; ".join(notes))

    # ---------------------------------------------------------- drawing ---

    def update(self, width: int, depth: int, step: int, layer: int = 1, neuron: int = 0,
               color: str = "code") -> PolytopeView:
        """Compute the view for this state and redraw the figure (if built)."""
        view = self.view(width, depth, step, layer, neuron)
        if not (isinstance(color, str) and color in COLORS):
            note = f"colour by one of {', '.join(COLORS)}; showing 'code'"
            view = PolytopeView(**{**view.__dict__, "message": "; ".join(filter(None, [view.message, note]))})
            color = "code"
        if self.area is not None:
            self._draw(view, color)
            self.area.refresh()
            self._readout.value = view.readout + (f"<br><i>{view.message}</i>" if view.message else "")
        return view

    def _draw(self, view: PolytopeView, color: str) -> None:
        ax, cax = self.area.fig.axes[0], self._cax
        for artist in list(ax.collections):
            if artist is not self._points:
                artist.remove()
        values = view.regions.colors(color, output=1)
        depth = len(view.regions.codes.layers)
        if color == "code":
            cmap, clim = "tab20", (0, 19)
        elif color == "layer":
            values = values + 1  # layers count from 1, as on the layer slider; 0: never cut
            cmap, clim = plt.get_cmap("viridis", depth + 1), (-0.5, depth + 0.5)
        else:
            cmap, clim = "viridis", None
        polys = PolyCollection(view.regions.polygons, array=values, cmap=cmap, edgecolors="white",
                               linewidths=0.3, zorder=0)
        if clim is not None:
            polys.set_clim(*clim)
        ax.add_collection(polys)
        ax.add_collection(LineCollection(view.layer_lines, colors="k", linewidths=0.7, zorder=2))
        ax.add_collection(LineCollection(view.highlight, colors="gold", linewidths=3, zorder=3,
                                         path_effects=_RIMMED))
        ax.add_collection(decision_lines(view.decision))
        cax.clear()
        cax.set_visible(color != "code")
        if color == "code":
            ax.set_title("regions, coloured by code (20 colours, reused)", fontsize=9)
        else:
            bar = self.area.fig.colorbar(polys, cax=cax)
            bar.set_label(COLOR_LABELS[color], fontsize=9)
            if color == "layer":
                bar.set_ticks(range(depth + 1), labels=["none"] + [str(k) for k in range(1, depth + 1)])
            ax.set_title(f"regions, coloured by the {color_name(color)}", fontsize=9)

    def widget(self, width: int | None = None, depth: int | None = None):
        """Sliders, the figure and a readout, wired to :meth:`update`."""
        import ipywidgets as widgets
        from mpl_toolkits.axes_grid1 import make_axes_locatable

        with plt.ioff():
            fig, ax = plt.subplots(figsize=(6.4, 6.0))
        self._points = ax.scatter(*self.x.T, c=self.y, cmap="coolwarm", vmin=0, vmax=1, s=6, edgecolors="none",
                                  zorder=5)
        ax.set(xlim=self.extent[:2], ylim=self.extent[2:], aspect="equal", xlabel="$x_1$", ylabel="$x_2$")
        self._cax = make_axes_locatable(ax).append_axes("right", size="4%", pad=0.1)
        self._cax.set_visible(False)
        key = [
            Line2D([], [], color="k", lw=0.7, label="bent hyperplanes of the chosen layer"),
            Line2D([], [], color="gold", lw=3, path_effects=_RIMMED, label="the chosen neuron's (gold)"),
            decision_key(),
            Line2D([], [], ls="none", marker="o", ms=4, color=plt.get_cmap("coolwarm")(0.0), label="class 0"),
            Line2D([], [], ls="none", marker="o", ms=4, color=plt.get_cmap("coolwarm")(1.0), label="class 1"),
        ]
        fig.legend(handles=key, loc="lower center", ncol=2, fontsize=8, frameon=False)
        # Fixed margins, not tight_layout: the colour bar comes and goes, the square stays put.
        fig.subplots_adjust(left=0.1, right=0.84, bottom=0.2, top=0.94)
        self.area = FigureArea(fig)
        self._readout = widgets.HTML()
        c = {
            "width": widgets.SelectionSlider(options=self.widths, value=width or self.widths[len(self.widths) // 2],
                                             description="width"),
            "depth": widgets.SelectionSlider(options=self.depths, value=depth or self.depths[-1], description="depth"),
            "step": widgets.SelectionSlider(options=self.steps, value=self.steps[-1], description="train step"),
            "layer": widgets.IntSlider(value=1, min=1, max=max(self.depths), description="layer"),
            "neuron": widgets.IntSlider(value=0, min=0, max=max(self.widths) - 1, description="neuron"),
            "color": widgets.Dropdown(options=COLORS, value="code", description="colour by"),
        }
        if len(self.steps) == 1:
            # One kept step (the trained network): a slider with nothing to move to would only puzzle.
            c["step"] = widgets.fixed(self.steps[0])
        out = widgets.interactive_output(self.update, c)
        controls = widgets.VBox([w for w in c.values() if isinstance(w, widgets.DOMWidget)] + [self._readout])
        return widgets.VBox([widgets.HBox([self.area.widget, controls]), out])


def decision_lines(segments: np.ndarray) -> LineCollection:
    """The decision boundary's (m, 2, 2) segments as a red dashed line with a light rim, above the regions."""
    return LineCollection(segments, colors="red", linewidths=2.5, zorder=4, linestyles="--",
                          path_effects=_RIMMED_LIGHT)


def decision_key() -> Line2D:
    """A legend entry that looks like :func:`decision_lines`."""
    return Line2D([], [], color="red", lw=2.5, ls="--", path_effects=_RIMMED_LIGHT, label="decision boundary")


def color_name(color: str) -> str:
    """A short name of a colouring, for the figure's title."""
    return {"output": "logit of class 1", "n_on": "number of neurons on", "layer": "layer of the last cut"}[color]


def _count(n: int, word: str) -> str:
    """``n`` and ``word``, plural unless ``n`` is 1: "1 region", "3 regions", "0 straight pieces"."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _pieces(segments: np.ndarray) -> int:
    """Number of straight pieces: segments with distinct directions in a row."""
    if len(segments) == 0:
        return 0
    d = segments[:, 1] - segments[:, 0]
    angle = np.round(np.mod(np.arctan2(d[:, 1], d[:, 0]), np.pi), 6)
    return len(np.unique(angle))
