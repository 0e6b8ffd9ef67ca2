"""Explorer for notebook 04: five features in two dimensions, by sparsity and importance.

Every (sparsity, importance decay) setting of the grid is one instance of a
single batched ``train_tms`` call, and each instance's hidden-space polytopes
are enumerated up front, so a slider move only redraws. "Train live" trains
one more model for the chosen setting, with a new seed, while you watch.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch

from polylens._checks import numbers
from polylens.regions import Regions
from polylens.superposition import plots
from polylens.superposition.metrics import feature_dimensionality, feature_norms
from polylens.superposition.toy import ToyModel, train_tms
from polylens.widgets.figure import FigureArea
from polylens.widgets.snap import short, snap

REPRESENTED = 0.5  # a feature whose arrow is at least this long counts as represented


@dataclass
class SuperpositionView:
    """What one slider state shows."""

    sparsity: float
    decay: float
    W: np.ndarray  # (2, features)
    bias: np.ndarray  # (features,): output i is on where W_i . h + bias_i > 0
    importance: np.ndarray  # (features,)
    norms: np.ndarray  # (features,)
    dimensionality: np.ndarray  # (features,)
    n_represented: int
    loss: float
    regions: Regions
    readout: str
    message: str = ""


class SuperpositionExplorer:
    """Toy models with ``n_features`` features in 2 hidden dimensions over a sparsity x importance grid.

    Args:
        sparsities: values of S; each feature is zero with probability S.
        decays: importance of feature i is ``decay ** i``.
        steps, batch_size, seed: training of the whole grid, in one call.
    """

    def __init__(
        self,
        n_features: int = 5,
        sparsities=(0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.97, 0.99),
        decays=(1.0, 0.9, 0.8, 0.7),
        steps: int = 1000,
        batch_size: int = 512,
        seed: int = 0,
    ) -> None:
        self.n_features = n_features
        self.sparsities, self.decays = tuple(numbers(sparsities, "sparsities")), tuple(numbers(decays, "decays"))
        for s in self.sparsities:
            if not 0 <= s < 1:
                raise ValueError(f"sparsities must lie in [0, 1) (S = 1 would mean features are never present), got {s}")
        S = torch.tensor(self.sparsities).repeat_interleave(len(self.decays))
        D = torch.tensor(self.decays).repeat(len(self.sparsities))
        importance = D[:, None] ** torch.arange(n_features)
        probability = (1 - S)[:, None].expand(-1, n_features).contiguous()
        self.model = train_tms(n_features, 2, probability, importance, n_instances=len(S), steps=steps,
                               batch_size=batch_size, seed=seed, progress=False)
        self.steps, self.batch_size, self.seed = steps, batch_size, seed
        self.regions = [plots.output_polytopes(self.model, k) for k in range(len(S))]
        self.live: dict[tuple[float, float], tuple[ToyModel, Regions]] = {}
        self.area: FigureArea | None = None

    def _index(self, sparsity: float, decay: float) -> int:
        return self.sparsities.index(sparsity) * len(self.decays) + self.decays.index(decay)

    # ------------------------------------------------------------ pure ---

    def view(self, sparsity: float, decay: float = 1.0, live: bool = False) -> SuperpositionView:
        """Geometry and readout for the grid setting nearest to (sparsity, decay).

        Values off the grid snap to the nearest setting and say so in
        ``message``; with ``live=True`` the model from :meth:`train_live` is
        shown if there is one for this setting.
        """
        notes: list[str] = []
        s = snap(self.sparsities, sparsity, "sparsity", notes, default=0.9 if 0.9 in self.sparsities else None)
        d = snap(self.decays, decay, "decay", notes, default=1.0 if 1.0 in self.decays else None)
        if not isinstance(live, (bool, np.bool_)):
            notes.append(f"live must be True or False, got {short(live)}; showing the precomputed model")
            live = False
        message = "; ".join(notes)
        if live and (s, d) in self.live:
            model, regions = self.live[s, d]
            k, source = 0, "trained live (new seed)"
        else:
            if live:
                message = message or "no live model for this setting yet: press 'train live'"
            model, regions, k, source = self.model, self.regions[self._index(s, d)], self._index(s, d), "precomputed"
        W = model.W[k].detach()
        norms = feature_norms(W)
        dims = feature_dimensionality(W)
        n_rep = int((norms > REPRESENTED).sum())
        loss = float(model.loss[k])
        readout = (
            f"S={s:g} (each feature present {1 - s:.0%} of the time), importance {d:g}<sup>i</sup>, {source}: "
            f"<b>{n_rep} of {self.n_features} features represented</b> in 2 dimensions "
            f"({1 / max(n_rep, 1) * 2:.2f} dims each if shared equally); "
            f"{len(regions)} output polytopes; loss {loss:.4f}"
        )
        return SuperpositionView(s, d, W.numpy(), model.b[k].detach().numpy(), model.importance[k].numpy(), norms.numpy(), dims.numpy(), n_rep,
                                 loss, regions, readout, message)

    def train_live(self, sparsity: float, decay: float, steps: int = 2000, seed: int | None = None) -> ToyModel:
        """Train one fresh model for a grid setting (a new seed by default) and keep it for ``view(live=True)``."""
        v = self.view(sparsity, decay)
        seed = self.seed + 1 + len(self.live) if seed is None else seed
        model = train_tms(self.n_features, 2, 1 - v.sparsity, v.decay ** torch.arange(self.n_features),
                          n_instances=1, steps=steps, batch_size=self.batch_size, seed=seed, progress=False)
        self.live[v.sparsity, v.decay] = (model, plots.output_polytopes(model, 0))
        return model

    # ---------------------------------------------------------- drawing ---

    def update(self, sparsity: float, decay: float = 1.0, live: bool = False) -> SuperpositionView:
        """Compute the view for this state and redraw the figure (if built)."""
        view = self.view(sparsity, decay, live)
        if self.area is not None:
            self._regions.remove()
            self._regions = plots.hidden_regions(self._ax, view.regions, self.n_features)
            plots.move_arrows(self._arrows, view.W, view.importance)
            for bar, n, dim in zip(self._bars, view.norms, view.dimensionality):
                bar.set_width(n)
                bar.set_color(plt.colormaps["plasma"](min(max(float(dim), 0.0), 1.0)))
            self.area.refresh()
            self._readout.value = view.readout + (f"<br><i>{view.message}</i>" if view.message else "")
        return view

    def widget(self, sparsity: float = 0.9, decay: float = 1.0):
        """Sliders, a 'train live' button, the figure and a readout, wired to :meth:`update`."""
        import ipywidgets as widgets

        v = self.view(sparsity, decay)
        with plt.ioff():
            fig, (ax, bx) = plt.subplots(1, 2, figsize=(9.5, 4), gridspec_kw={"width_ratios": [1.6, 1]})
        self._ax = ax
        self._regions = plots.hidden_regions(ax, v.regions, self.n_features)
        plots.outputs_on_colorbar(ax, self.n_features)
        self._arrows = plots.feature_arrows(ax, v.W, v.importance)
        ax.set_title("hidden space: feature i is the arrow $W_i$ (colour: importance)\n"
                     "shading: how many outputs the ReLU lets through", fontsize=9)
        self._bars = plots.norm_bars(bx, v.W, title="feature norms $\\|W_i\\|$\ncolour: dimensionality $D_i$ "
                                     "(yellow 1, dark 0)")
        fig.tight_layout()
        self.area = FigureArea(fig)
        self._readout = widgets.HTML()
        s = widgets.SelectionSlider(options=self.sparsities, value=v.sparsity, description="sparsity S")
        d = widgets.SelectionSlider(options=self.decays, value=v.decay, description="importance")
        live = widgets.Checkbox(value=False, description="show live model")
        button = widgets.Button(description="train live", tooltip="train a fresh model for this setting (~2 s)")

        def on_click(_):
            button.description, button.disabled = "training...", True
            try:
                self.train_live(s.value, d.value)
                live.value = True
                self.update(s.value, d.value, True)
            finally:
                button.description, button.disabled = "train live", False

        button.on_click(on_click)
        out = widgets.interactive_output(self.update, {"sparsity": s, "decay": d, "live": live})
        controls = widgets.VBox([s, d, widgets.HBox([button, live]), self._readout])
        self.update(v.sparsity, v.decay)
        return widgets.VBox([self.area.widget, controls, out])
