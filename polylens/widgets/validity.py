"""Explorer for notebook 03: how far along a feature direction does meaning last?

Scale a scene's bottleneck code along the "sunny" direction, h + alpha * d,
decode it, and watch three things at once: the picture (and what the
independent probes make of it), where the new projection h.d sits against
the data's own distribution along d, and how many polytope boundaries of
the decoder the path has crossed (exactly, with ``polylens.regions.crossings``).
Everything is computed for a grid of alphas up front; the slider only redraws.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch

from polylens.regions import crossings
from polylens.scenes import OBJECTS, WEATHERS, Probes, render, to_tensor
from polylens.steer import FeatureDirection
from polylens.widgets.figure import FigureArea
from polylens.widgets.snap import snap


@dataclass
class ValidityView:
    """What one (object, alpha) shows."""

    alpha: float
    image: np.ndarray  # (64, 64, 3) decoded, clipped to [0, 1]
    projection: float
    p_sunny: float
    object_guess: str
    crossed: int  # decoder boundaries crossed between alpha = 0 and this alpha
    negative_units: int  # bottleneck units pushed below zero (never seen in data: it is a ReLU output)
    readout: str
    message: str = ""


class ValidityExplorer:
    """Scan ``h + alpha * d`` at the autoencoder's bottleneck for a few base scenes.

    Args:
        autoencoder: the scene autoencoder (``encoder`` and ``decoder`` submodules).
        probes: the object and weather probes.
        direction: a :class:`~polylens.steer.FeatureDirection` at the bottleneck
            (e.g. mean difference of sunny and other training scenes).
        objects, weather, seed: the base scenes (each object under this weather and seed).
        alphas: the grid, in units of the gap between the mean sunny and mean
            other projection (alpha = 1 moves a typical scene by that gap).
    """

    def __init__(self, autoencoder, probes: Probes, direction: FeatureDirection, *, objects=("duck",),
                 weather: str = "overcast", seed: int = 2, alphas=np.linspace(-1, 4, 26)) -> None:
        self.ae, self.probes, self.d = autoencoder.eval(), probes, direction
        self.alphas = np.round(np.asarray(alphas, dtype=float), 6)
        self.gap = float(direction.projections.mean() - direction.baseline.mean())
        self.weather, self.seed = weather, seed
        bad = [o for o in objects if o not in OBJECTS]
        if bad or not objects:
            raise ValueError(f"objects must be chosen from {OBJECTS}; got {list(objects)}")
        # Exact crossings take a few seconds per scene, so only the chosen base scenes are scanned.
        self.scans = {obj: self._scan(obj) for obj in objects}
        self.area: FigureArea | None = None

    @torch.no_grad()
    def _scan(self, obj: str) -> dict:
        x = to_tensor(render(obj, self.weather, self.seed))
        h0 = self.ae.encoder(x)[0]
        d = self.d.vector.to(h0)
        steps = torch.as_tensor(self.alphas * self.gap, dtype=h0.dtype)
        h = h0[None] + steps[:, None] * d[None]
        images = self.ae.decoder(h).clamp(0, 1)
        p_sunny = torch.softmax(self.probes.weather(images), 1)[:, WEATHERS.index("sunny")].numpy()
        guess = self.probes.object(images).argmax(1).numpy()
        # Exact boundary crossings of the decoder, one grid interval at a time: the same
        # crossings as one long segment, at a fraction of the memory (every interval
        # holds few crossings).
        edges = np.unique(np.concatenate([[0.0], steps.numpy()]))
        found = [a + (b - a) * crossings(self.ae.decoder, h0 + a * d, h0 + b * d).t
                 for a, b in zip(edges[:-1], edges[1:])]
        boundaries = np.sort(np.concatenate(found))  # positions along the path, in activation units
        crossed = np.array([((boundaries > 0) & (boundaries <= s)).sum() if s >= 0
                            else ((boundaries < 0) & (boundaries >= s)).sum() for s in steps.numpy()])
        return {
            "images": images.permute(0, 2, 3, 1).numpy(),
            "p_sunny": p_sunny,
            "guess": guess,
            "projection": (h @ d).numpy(),
            "negative": (h < 0).sum(1).numpy(),
            "crossed": crossed,  # (alphas,) decoder boundaries crossed between alpha = 0 and each alpha
        }

    def _scene(self, obj) -> str:
        """``obj`` if it was scanned, else the first scanned scene (never raises, whatever ``obj`` is)."""
        return obj if isinstance(obj, str) and obj in self.scans else next(iter(self.scans))

    def view(self, obj: str = "duck", alpha: float = 0.0) -> ValidityView:
        """The precomputed state nearest to ``alpha`` for base scene ``obj``."""
        messages = []
        if not (isinstance(obj, str) and obj in self.scans):
            messages.append(f"scanned scenes: {sorted(self.scans)}; showing {self._scene(obj)}")
            obj = self._scene(obj)
        grid = self.alphas.tolist()
        k = grid.index(snap(grid, alpha, "alpha", messages, default=0.0 if 0.0 in grid else None))
        message = "; ".join(messages)
        scan = self.scans[obj]
        crossed = int(scan["crossed"][k])
        lo, hi = self.d.quantile(0.05), self.d.quantile(0.95)
        where = "inside" if lo <= scan["projection"][k] <= hi else "outside"
        readout = (
            f"{obj}, {self.weather}, alpha = {self.alphas[k]:+.1f}: projection {scan['projection'][k]:.2f} is "
            f"<b>{where}</b> the sunny scenes' 5-95% range [{lo:.2f}, {hi:.2f}]. "
            f"Crossed <b>{crossed}</b> decoder boundaries since alpha = 0; "
            f"{int(scan['negative'][k])} bottleneck units are negative (never in the data).<br>"
            f"Probes: P(sunny) = {scan['p_sunny'][k]:.2f}, object = <b>{OBJECTS[scan['guess'][k]]}</b>."
        )
        return ValidityView(float(self.alphas[k]), scan["images"][k], float(scan["projection"][k]),
                            float(scan["p_sunny"][k]), OBJECTS[scan["guess"][k]], crossed,
                            int(scan["negative"][k]), readout, message)

    def update(self, obj: str = "duck", alpha: float = 0.0) -> ValidityView:
        """Compute the view and redraw (if the widget is built)."""
        view = self.view(obj, alpha)
        if self.area is not None:
            scan = self.scans[self._scene(obj)]
            self._image.set_data(view.image)
            self._marker.set_xdata([view.projection, view.projection])
            self._now.set_xdata([view.alpha, view.alpha])
            self._p_line.set_ydata(scan["p_sunny"])
            self._cross_line.set_ydata(scan["crossed"])
            self._cross_ax.set_ylim(0, max(1, scan["crossed"].max()) * 1.05)
            self.area.refresh()
            self._readout.value = view.readout + (f"<br><i>{view.message}</i>" if view.message else "")
        return view

    def widget(self, obj: str = "duck", alpha: float = 0.0):
        """An object picker, an alpha slider, the three panels and a readout."""
        import ipywidgets as widgets

        with plt.ioff():
            fig, axes = plt.subplots(1, 3, figsize=(10, 3.2), gridspec_kw={"width_ratios": [1, 1.4, 1.4]})
        self._image = axes[0].imshow(np.zeros((64, 64, 3)))
        axes[0].set(xticks=[], yticks=[], title="decoded h + alpha d")
        scanned = np.concatenate([scan["projection"] for scan in self.scans.values()])
        lo = min(float(self.d.baseline.min()), float(self.d.projections.min()), float(scanned.min()))
        hi = max(float(self.d.baseline.max()), float(self.d.projections.max()), float(scanned.max()))
        bins = np.linspace(lo - 1, hi + 1, 60)
        axes[1].hist(self.d.baseline.numpy(), bins=bins, color="0.6", alpha=0.8, label="other weathers")
        axes[1].hist(self.d.projections.numpy(), bins=bins, color="gold", alpha=0.8, label="sunny")
        self._marker = axes[1].axvline(0, color="red", lw=2, label="this picture")
        axes[1].set(xlabel="projection on the sunny direction", ylabel="training scenes",
                    title="where the data lives along d")
        axes[1].legend(fontsize=8)
        ax = axes[2]
        (self._p_line,) = ax.plot(self.alphas, np.zeros_like(self.alphas), color="tab:blue", label="P(sunny)")
        ax.set(xlabel="alpha (units of the sunny-vs-other gap)", ylabel="P(sunny)", ylim=(-0.02, 1.02),
               title="probe vs boundaries crossed")
        self._cross_ax = ax.twinx()
        (self._cross_line,) = self._cross_ax.plot(self.alphas, np.zeros_like(self.alphas), color="k", ls="--",
                                                  label="boundaries crossed")
        self._cross_ax.set_ylabel("decoder boundaries crossed")
        self._now = ax.axvline(0, color="red", lw=1.5)
        ax.legend(handles=[self._p_line, self._cross_line], fontsize=8, loc="center right")
        fig.tight_layout()
        self.area = FigureArea(fig)
        self._readout = widgets.HTML()
        controls = {
            "obj": widgets.Dropdown(options=list(self.scans), value=obj if obj in self.scans else next(iter(self.scans)),
                                    description="scene"),
            "alpha": widgets.SelectionSlider(options=[float(a) for a in self.alphas],
                                             value=float(self.alphas[np.abs(self.alphas - alpha).argmin()]),
                                             description="alpha"),
        }
        out = widgets.interactive_output(self.update, controls)
        return widgets.VBox([widgets.HBox(list(controls.values())), self.area.widget, self._readout, out])
