"""The sunny-duck studio for notebook 06: steer one duck, compare with the answer key.

Pick a duck (a scene seed and the weather it was photographed in), pick a
steering method, slide its strength (and, for conditional addition, the
threshold of its gate), and see side by side: the duck as the autoencoder
reconstructs it, the steered picture, and the ground truth (the same scene
rendered on a sunny day). The answer key (:mod:`polylens.judge`) says whether
the steered picture is this duck on a sunny day, and what it looks most like
if not; the probes' opinions are shown beside it, and a small plot shows how
they change with strength for this duck, with the strengths the answer key
accepts marked.

Every (duck, method, strength, threshold) state is computed up front through
the library's own steering contexts, per example; sliders only redraw.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from polylens._checks import whole_number
from polylens.compose import Method, gated, reference_error, score
from polylens.scenes import split
from polylens.hooks import capture
from polylens.judge import describe, in_words
from polylens.scenes import OBJECTS, WEATHERS, Probes
from polylens.widgets.figure import FigureArea
from polylens.widgets.snap import snap

GATED = "add_if_below"  # the method whose gate the threshold slider moves


@dataclass
class StudioView:
    """What one (duck, method, strength, threshold) shows."""

    duck: int  # the duck shown (after any correction of the input)
    method: str
    original: np.ndarray  # (64, 64, 3) the duck as the autoencoder reconstructs it
    steered: np.ndarray  # (64, 64, 3) decoded after steering, clipped to [0, 1]
    truth: np.ndarray  # (64, 64, 3) the same scene rendered sunny
    p_sunny: float
    p_duck: float
    object_guess: str
    success: bool  # the answer key: this duck's scene on a sunny day
    nearest: str  # what the steered picture looks most like, in words
    caption: str  # the same in a word or two: "composes", "still night", "duck gone", "no shadow"
    parts: str  # every part's verdict: "sky and ground right, duck right, no shadow (0.02 of the truth's)"
    rel_error: float  # pixel error against the truth / the autoencoder's own error on the truth
    strength: float
    threshold: float | None
    gate_open: bool | None  # for the gated method: did this duck pass the gate?
    readout: str
    message: str = ""


def _u8(images: torch.Tensor) -> np.ndarray:
    # (n, 3, 64, 64) floats -> (n, 64, 64, 3) uint8: a quarter of the memory, invisible on screen.
    return (images.clamp(0, 1).permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)


class SunnyDuckStudio:
    """Steer held-out ducks toward sunny with each prepared method.

    Args:
        autoencoder: the scene autoencoder (image in, image out).
        probes: the independent object and weather probes.
        methods: name -> :class:`polylens.compose.Method`, prepared on training scenes
            (see :func:`polylens.compose.prepare`).
        n_ducks: ducks per base weather, from the test split (never used to build a method).
        strengths: the strength grid every method is precomputed on.
        n_thresholds: gate thresholds for ``add_if_below``, spread over the training
            projections of other and sunny scenes, besides the method's own threshold
            (always on the grid; 0 leaves only it).
    """

    def __init__(self, autoencoder: nn.Module, probes: Probes, methods: dict[str, Method], *, n_ducks: int = 4,
                 strengths=np.linspace(0, 3, 13), n_thresholds: int = 7) -> None:
        if not methods or not all(isinstance(m, Method) for m in methods.values()):
            raise TypeError("methods must be a non-empty dict of name -> polylens.compose.Method")
        n_ducks = whole_number(n_ducks, "n_ducks", low=1)
        n_thresholds = whole_number(n_thresholds, "n_thresholds", low=0)
        self.ae, self.probes, self.methods = autoencoder.eval(), probes, dict(methods)
        self.strengths = np.round(np.asarray(strengths, dtype=float), 6)
        if self.strengths.ndim != 1 or len(self.strengths) < 2 or not np.isfinite(self.strengths).all():
            raise ValueError("strengths must be a 1-D grid of at least two finite numbers")
        self.data = split("test", n_ducks, objects=("duck",))
        self.ducks = [(WEATHERS[w], int(s)) for w, s in zip(self.data.weathers, self.data.seeds)]
        self.thresholds = self._threshold_grid(n_thresholds)
        self._precompute()
        self.area: FigureArea | None = None

    # ----------------------------------------------------------- compute ---

    def _threshold_grid(self, n: int) -> np.ndarray | None:
        gated = self.methods.get(GATED)
        if gated is None:
            return None
        d = gated.parts["direction"]
        lo, hi = float(d.baseline.min()), float(d.projections.max())
        # The method's own threshold (the midpoint of the two means) is on the grid: it is the default.
        return np.unique(np.round(np.append(np.linspace(lo, hi, n), gated.parts["threshold"]), 4))

    def _scores(self, out: torch.Tensor) -> dict[str, np.ndarray]:
        scores = score(self.ae, self.probes, self.data, out, own=self._own)
        return {**scores, "images": _u8(out)}

    @torch.no_grad()
    def _precompute(self) -> None:
        x = self.data.images
        self._own = reference_error(self.ae, self.data)
        self._original = _u8(self.ae(x))
        self._truth = _u8(self.data.truth)
        # results[(method, threshold or None)] = list over strengths of per-duck scores
        self.results: dict[tuple[str, float | None], list[dict]] = {}
        for name, method in self.methods.items():
            for thr in (self.thresholds if name == GATED else [None]):
                runs = []
                for s in self.strengths:
                    with self._context(method, float(s), thr):
                        runs.append(self._scores(self.ae(x)))
                self.results[(name, thr)] = runs
        if self.thresholds is not None:
            d = self.methods[GATED].parts["direction"]
            with capture(self.ae, d.layer) as cache:
                self.ae(x)
            self._projection = d.project(cache[d.layer]).numpy()

    def _context(self, method: Method, strength: float, threshold: float | None):
        if threshold is None:
            return method.context(self.ae, strength)
        return gated(method, threshold).context(self.ae, strength)

    # -------------------------------------------------------------- view ---

    def _pick(self, options: list, value, what: str, messages: list[str]):
        if value in options:
            return value
        messages.append(f"{what} must be one of {options}; got {value!r}, showing {options[0]!r}")
        return options[0]

    @staticmethod
    def _nearest(grid: np.ndarray, value, what: str, messages: list[str]) -> int:
        """The index of the grid value nearest to ``value`` (see :func:`polylens.widgets.snap.snap`)."""
        return list(grid).index(snap(grid.tolist(), value, what, messages))

    def view(self, duck: int = 0, method: str | None = None, strength: float = 1.0,
             threshold: float | None = None) -> StudioView:
        """The precomputed state of duck number ``duck`` (see ``self.ducks``) nearest to the sliders."""
        messages: list[str] = []
        names = list(self.methods)
        method = self._pick(names, names[0] if method is None else method, "method", messages)
        if isinstance(duck, (bool, np.bool_)) or not isinstance(duck, (int, np.integer)) \
                or not 0 <= duck < len(self.ducks):
            messages.append(f"duck must be an int from 0 to {len(self.ducks) - 1}; showing duck 0")
            duck = 0
        k = self._nearest(self.strengths, strength, "strength", messages)
        thr = None
        if method == GATED:
            default = self.default_threshold
            thr = self.thresholds[self._nearest(self.thresholds, default if threshold is None else threshold,
                                                "threshold", messages)]
        r = self.results[(method, thr)][k]
        return self._view(int(duck), method, k, thr, r, "; ".join(messages))

    def _view(self, i: int, method: str, k: int, thr: float | None, r: dict, message: str) -> StudioView:
        weather, seed = self.ducks[i]
        guess = OBJECTS[r["object"][i]]
        success = bool(r["success"][i])
        gate = None if thr is None else bool(self._projection[i] < thr)
        nearest = describe(str(r["nearest"][i]), "duck")
        caption = describe(str(r["nearest"][i]), "duck", short=True)
        parts = in_words(r, i, "duck")
        verdict = ("<b style='color:green'>this duck on a sunny day</b>" if success else
                   f"<b style='color:firebrick'>not this duck on a sunny day</b>: it looks most like {nearest}")
        probes = "agree" if bool(r["probe_success"][i]) == success else "disagree"
        lines = [
            f"Duck {i} (seed {seed}, photographed {weather}), <b>{method}</b> at strength {self.strengths[k]:g}. "
            f"Answer key: {verdict}. Part by part: {parts}.",
            f"Probes ({probes}): P(sunny) = {r['p_sunny'][i]:.2f}, object = <b>{guess}</b> "
            f"(P(duck) = {r['p_object'][i]:.2f}); pixel error {r['rel_error'][i]:.1f}x the autoencoder's own on the truth.",
            f"<i>{self.methods[method].note}</i>",
        ]
        if thr is not None:
            lines.append(f"Gate: this duck's projection h.d = {self._projection[i]:.2f} is "
                         f"{'below' if gate else 'not below'} the threshold {thr:.2f}, so it is "
                         f"<b>{'steered' if gate else 'left alone'}</b>.")
        return StudioView(i, method, self._original[i], r["images"][i], self._truth[i], float(r["p_sunny"][i]),
                          float(r["p_object"][i]), guess, success, nearest, caption, parts, float(r["rel_error"][i]),
                          float(self.strengths[k]), thr, gate, "<br>".join(lines), message)

    @property
    def default_threshold(self) -> float | None:
        """The gated method's own threshold (midpoint between the sunny and other means), on the grid."""
        if self.thresholds is None:
            return None
        own = self.methods[GATED].parts["threshold"]
        return float(self.thresholds[np.abs(self.thresholds - own).argmin()])

    def curve(self, duck: int, method: str, threshold: float | None = None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(P(sunny), P(duck), answer key's verdict) over the strength grid for one duck and method."""
        runs = self.results[(method, threshold if method == GATED else None)]
        return (np.array([r["p_sunny"][duck] for r in runs]), np.array([r["p_object"][duck] for r in runs]),
                np.array([bool(r["success"][duck]) for r in runs]))

    # ----------------------------------------------------------- widget ---

    def update(self, duck: int = 0, method: str | None = None, strength: float = 1.0,
               threshold: float | None = None) -> StudioView:
        """Compute the view and redraw (if the widget is built)."""
        view = self.view(duck, method, strength, threshold)
        if self.area is not None:
            for im, picture in zip(self._images, (view.original, view.steered, view.truth)):
                im.set_data(picture)
            p_sunny, p_duck, accepted = self.curve(view.duck, view.method, view.threshold)
            self._sunny_line.set_ydata(p_sunny)
            self._duck_line.set_ydata(p_duck)
            self._accepted.set_ydata(np.where(accepted, 1.0, np.nan))
            self._now.set_xdata([view.strength, view.strength])
            self.area.refresh()
            self._readout.value = view.readout + (f"<br><i>{view.message}</i>" if view.message else "")
            if self._threshold is not None:
                self._threshold.disabled = view.method != GATED
        return view

    def widget(self, duck: int = 0, method: str | None = None, strength: float = 1.0):
        """Duck and method pickers, strength and threshold sliders, four panels and a readout."""
        import ipywidgets as widgets

        with plt.ioff():
            fig, axes = plt.subplots(1, 4, figsize=(11, 2.9), gridspec_kw={"width_ratios": [1, 1, 1, 1.5]})
        blank = np.zeros((64, 64, 3), np.uint8)
        self._images = [ax.imshow(blank) for ax in axes[:3]]
        for ax, title in zip(axes[:3], ("the duck (reconstructed)", "steered toward sunny", "answer key: same scene, sunny")):
            ax.set(xticks=[], yticks=[])
            ax.set_title(title, fontsize=9)
        ax = axes[3]
        zeros = np.zeros_like(self.strengths)
        (self._sunny_line,) = ax.plot(self.strengths, zeros, color="goldenrod", lw=2, label="P(sunny)")
        (self._duck_line,) = ax.plot(self.strengths, zeros, color="tab:blue", lw=2, label="P(duck)")
        (self._accepted,) = ax.plot(self.strengths, np.full_like(self.strengths, np.nan), "o", color="green",
                                    clip_on=False, label="answer key: sunny duck")
        self._now = ax.axvline(strength, color="red", lw=1.5)
        ax.set(xlabel="strength", ylim=(-0.03, 1.03), title="this duck, this method")
        ax.legend(fontsize=7, loc="center right")
        fig.tight_layout()
        self.area = FigureArea(fig)
        self._readout = widgets.HTML()
        options = [(f"{i}: seed {s}, {w}", i) for i, (w, s) in enumerate(self.ducks)]
        names = list(self.methods)
        controls = {
            "duck": widgets.Dropdown(options=options, value=duck, description="duck"),
            "method": widgets.Dropdown(options=names, value=method if method in names else names[0],
                                       description="method"),
            "strength": widgets.SelectionSlider(options=[float(s) for s in self.strengths],
                                                value=float(self.strengths[np.abs(self.strengths - strength).argmin()]),
                                                description="strength"),
        }
        self._threshold = None
        if self.thresholds is not None:
            self._threshold = widgets.SelectionSlider(options=[float(t) for t in self.thresholds],
                                                      value=self.default_threshold,
                                                      description="threshold")
            controls["threshold"] = self._threshold
        out = widgets.interactive_output(self.update, controls)
        rows = [widgets.HBox([controls["duck"], controls["method"]]),
                widgets.HBox([c for key, c in controls.items() if key in ("strength", "threshold")])]
        return widgets.VBox([*rows, self.area.widget, self._readout, out])
