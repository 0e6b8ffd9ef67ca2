"""Explorer for notebook 01: a small ReLU classifier learning live, its exact regions redrawn as it goes.

Like TensorFlow Playground, but the picture is exact: every tick takes a few
Adam steps on a 2D task, enumerates the network's linear regions on a square
with :func:`polylens.regions.slice_regions`, and redraws them with the
decision boundary, next to a running plot of the number of regions.

The ipywidgets ``Play`` button drives it: its timer runs in the browser and
each tick is one short kernel callback, so there is no thread of ours to stop.
Pausing or closing the widget stops the ticks; so does interrupting the kernel
(a tick it lands in is undone and pauses; one between ticks pauses the next,
see ``watch_interrupts``). Tests and scripts call
:meth:`LiveTrainingExplorer.step` and :meth:`LiveTrainingExplorer.update`
directly; no browser is needed.
"""

from __future__ import annotations

import signal
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.collections import PolyCollection
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator
from torch import nn

from polylens import boundaries
from polylens._checks import finite_number, whole_number
from polylens.models import MLP
from polylens.regions import Regions, input_plane, slice_regions
from polylens.training import TrainingRun
from polylens.widgets.figure import FigureArea
from polylens.widgets.polytopes import decision_key, decision_lines
from polylens.widgets.snap import snap, whole

__all__ = ["LiveFrame", "LiveTrainingExplorer"]

# Explorers whose widget is built; only one trains at a time (Binder has one CPU), and a
# re-run cell's new explorer stops the old one, whose view the notebook no longer shows.
_SHOWN: weakref.WeakSet = weakref.WeakSet()
# Explorers whose widget is built, oldest first. Re-running a cell that makes a new explorer and shows it
# would otherwise keep every old figure open; beyond this many, the oldest is closed.
MAX_OPEN = 3
_OPEN: list = []
# The widest and deepest network a Play tick can re-slice in well under a second on one core.
MAX_WIDTH, MAX_DEPTH = 256, 4

_CLASS_COLORS = (plt.get_cmap("coolwarm")(0.0), plt.get_cmap("coolwarm")(1.0))  # as in the other explorer
_NAMES = {"width": "width", "depth": "depth", "lr": "learning rate", "seed": "seed"}  # as the sliders say


@dataclass
class LiveFrame:
    """What the explorer shows at one moment of training.

    Attributes:
        step: optimiser steps taken since the last reset.
        regions: the exact regions on the square, from ``slice_regions``.
        decision: (m, 2, 2) segments where the two logits are equal.
        loss, accuracy: cross-entropy and training accuracy on all of (x, y).
        steps, counts: (k,) the steps at which regions were counted since the
            reset (every tick) and the number of regions at each.
        readout: HTML text for the widget.
        message: what was adjusted or went wrong (empty when nothing).
    """

    step: int
    regions: Regions
    decision: np.ndarray
    loss: float
    accuracy: float
    steps: np.ndarray
    counts: np.ndarray
    readout: str
    message: str = ""


class LiveTrainingExplorer:
    """A 2 -> width x depth -> 2 ReLU classifier trained live, drawn as exact regions.

    Args:
        x, y: the 2D task, (n, 2) float inputs and (n,) int64 labels 0 and 1.
        width, depth, lr, seed: the starting settings (each snapped to its options).
        widths, depths, lrs, seeds: what the sliders offer. The largest
            network (32 x 3) keeps a tick near 100 ms on one CPU.
        steps_per_tick: Adam steps between two pictures.
        batch_size: examples per step, drawn with a generator seeded by ``seed``;
            None trains on the full batch (as :func:`polylens.training.train_classifier`).
        max_step: training stops here (Play pauses), so a forgotten tab does not train forever.
        extent: the square of input space shown, (s0, s1, t0, t1).

    The same settings give the same weights, regions and counts at every step,
    however the steps are split into ticks; with a full batch they equal
    ``train_classifier(MLP([2] + [width] * depth + [2], seed=seed), x, y, lr=lr)``.
    """

    interval_ms = 150  # the fastest the Play timer ticks; _pace slows it to the measured tick time

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        width: int = 16,
        depth: int = 2,
        lr: float = 1e-2,
        seed: int = 0,
        widths: tuple[int, ...] = (4, 8, 16, 32),
        depths: tuple[int, ...] = (1, 2, 3),
        lrs: tuple[float, ...] = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1),
        seeds: tuple[int, ...] = tuple(range(10)),
        steps_per_tick: int = 5,
        batch_size: int | None = None,
        max_step: int = 2000,
        extent: tuple[float, float, float, float] = (-1.5, 1.5, -1.5, 1.5),
    ) -> None:
        if not (isinstance(x, torch.Tensor) and x.ndim == 2 and x.shape[1] == 2):
            raise TypeError("x must be a float tensor of shape (n, 2): the explorer draws a 2D input space")
        if isinstance(y, torch.Tensor) and y.numel() and int(y.max()) > 1:
            raise ValueError(f"y must hold the labels 0 and 1 (two classes); got labels up to {int(y.max())}")
        # Checks x, y and batch_size exactly as the static training does, before any slider exists.
        TrainingRun(MLP([2, 2, 2], seed=0), x, y, batch_size=batch_size)
        self.x, self.y = x, y
        for name, grid in (("widths", widths), ("depths", depths), ("seeds", seeds)):
            if isinstance(grid, (str, bytes)) or not hasattr(grid, "__len__") or len(grid) == 0:
                raise ValueError(f"{name} must be a non-empty tuple of whole numbers for its slider, e.g. "
                                 f"(4, 8, 16); got {grid!r}")
            for value in grid:
                whole_number(value, f"each of {name}", low=0 if name == "seeds" else 1)
        if max(widths) > MAX_WIDTH or max(depths) > MAX_DEPTH:
            raise ValueError(f"widths up to {MAX_WIDTH} and depths up to {MAX_DEPTH}: every Play tick re-slices the "
                             f"network's exact regions, and a larger network would take seconds to minutes a tick; "
                             f"got widths {tuple(widths)}, depths {tuple(depths)}")
        if isinstance(lrs, (str, bytes)) or not hasattr(lrs, "__len__") or len(lrs) == 0:
            raise ValueError(f"lrs must be a non-empty tuple of learning rates, e.g. (1e-3, 1e-2); got {lrs!r}")
        for value in lrs:
            finite_number(value, "each of lrs", above=0)
        self.widths, self.depths = tuple(int(w) for w in widths), tuple(int(d) for d in depths)
        self.lrs, self.seeds = tuple(float(r) for r in lrs), tuple(int(s) for s in seeds)
        # 0 or 2.7 steps per tick used to become 1 and 2 without a word.
        self.steps_per_tick = whole_number(steps_per_tick, "steps_per_tick (Adam steps per tick, e.g. 5)", low=1)
        self.batch_size = batch_size
        self.max_step = whole_number(max_step, "max_step (the last step the slider reaches, e.g. 2000)", low=1)
        self.extent = tuple(float(e) for e in extent)
        self.area: FigureArea | None = None
        self._controls: dict[str, widgets.ValueWidget] = {}
        self._syncing = False  # True while the explorer itself moves a slider
        self._closed = False
        # Play ticks can arrive on a kernel subshell thread while a cell calls step/update/reset on the
        # main thread: one of them at a time changes the network (re-entrant: update calls reset).
        self._lock = threading.RLock()
        # Wall time of the latest ticks' work (training, slicing, drawing), which paces the Play timer.
        self.frame_seconds: deque[float] = deque(maxlen=50)
        self.reset(width, depth, lr, seed)

    # --------------------------------------------------------- training ---

    def reset(self, width=None, depth=None, lr=None, seed=None) -> LiveFrame:
        """A fresh network at step 0 (None keeps a setting as it is); redraws the figure and moves the sliders."""
        with self._lock:
            return self._reset(width, depth, lr, seed)

    def _reset(self, width, depth, lr, seed) -> LiveFrame:
        notes: list[str] = []
        current = getattr(self, "settings", {})
        asked = {"width": width, "depth": depth, "lr": lr, "seed": seed}
        width, depth, lr, seed = (self._snap_setting(k, current.get(k) if v is None else v, notes)
                                  for k, v in asked.items())
        self.settings = dict(width=width, depth=depth, lr=lr, seed=seed)
        # train_classifier's own loop, one tick at a time: a full-batch run here is step for step
        # the notebook's static training.
        self._run = TrainingRun(MLP([2] + [width] * depth + [2], seed=seed), self.x, self.y, lr=lr,
                                batch_size=self.batch_size, seed=seed)
        self._frame: LiveFrame | None = None
        self._history: list[tuple[int, int]] = []
        frame = _with_message(self._record(), "; ".join(notes))
        self._sync_controls()
        self._show(frame)
        return frame

    def _snap_setting(self, name: str, value, notes: list[str]):
        """``value`` snapped to the options of setting ``name`` (learning rates on a log scale)."""
        options = {"width": self.widths, "depth": self.depths, "lr": self.lrs, "seed": self.seeds}[name]
        return snap(options, value, _NAMES[name], notes, missing="is not offered", log=name == "lr")

    def _record(self) -> LiveFrame:
        """Slice the current network, add its region count to the history, and keep the frame."""
        s = self._run
        with torch.no_grad():
            logits = s.model(self.x)
            loss = float(nn.functional.cross_entropy(logits, self.y))
            accuracy = float((logits.argmax(1) == self.y).float().mean())
        if not np.isfinite(loss):
            raise FloatingPointError(f"the loss became {loss} at step {s.step}")
        regions = slice_regions(s.model, *input_plane(), extent=self.extent)
        self._history.append((s.step, len(regions)))
        steps, counts = (np.array(v) for v in zip(*self._history))
        frame = LiveFrame(s.step, regions, boundaries.decision_boundary(regions), loss, accuracy, steps, counts,
                          self._readout_text(s.step, len(regions), loss, accuracy))
        self._frame = frame
        return frame

    def _readout_text(self, step: int, n_regions: int, loss: float, accuracy: float) -> str:
        st = self.settings
        return (f"2 → {st['width']} × {st['depth']} → 2, Adam, learning rate {st['lr']:g}, seed {st['seed']}<br>"
                f"step {step}: loss {loss:.3f}, training accuracy {accuracy:.0%}, "
                f"<b>regions: {n_regions}</b> on the square")

    def _advance(self, target: int) -> LiveFrame:
        """Train up to step ``target``, counting regions every tick; undone as a whole if anything fails.

        A kernel interrupt (KeyboardInterrupt) or an error (a diverging loss) restores
        the last good state, so the explorer stays where it was and a rerun gives the
        same numbers as a run that was never interrupted.
        """
        saved, frame, history = self._run.save(), self._frame, list(self._history)
        try:
            while self._run.step < target:
                self._run.train(min(self.steps_per_tick, target - self._run.step))
                self._record()
            return self._frame
        except (Exception, KeyboardInterrupt) as err:
            self._run.restore(saved)
            self._frame, self._history = frame, history
            step = self._run.step
            self.pause()
            if isinstance(err, KeyboardInterrupt):
                note = f"interrupted: paused at step {step}"
            elif isinstance(err, FloatingPointError):
                note = f"{err}: training diverged; paused at step {step}. Lower the learning rate and reset"
            else:
                note = f"could not go on ({type(err).__name__}: {str(err)[:200]}); paused at step {step}"
            return _with_message(frame, note)

    def step(self, ticks: int = 1) -> LiveFrame:
        """Train ``ticks`` ticks of ``steps_per_tick`` steps, re-slice and redraw; what the step button does.

        Never raises: a bad ``ticks``, the last step, a diverging loss or a kernel
        interrupt show a message in the frame (and the readout) instead.
        """
        with self._lock:
            return self._step(ticks)

    def _step(self, ticks) -> LiveFrame:
        start = time.perf_counter()
        notes: list[str] = []
        ticks = snap(range(1, 101), ticks, "ticks", notes, missing="is not 1 to 100")
        left = self.max_step - self._run.step
        if left <= 0:
            self.pause()
            frame = _with_message(self._frame, f"reached the last step, {self.max_step}; press reset")
        else:
            frame = self._advance(self._run.step + min(ticks * self.steps_per_tick, left))
            if not frame.message and frame.step >= self.max_step:
                self.pause()
                notes.append(f"reached the last step, {self.max_step}; press reset to train again")
            frame = _with_message(frame, "; ".join(notes))
        self._show(frame)
        self.frame_seconds.append(time.perf_counter() - start)
        self._pace()
        return frame

    def update(self, width=None, depth=None, lr=None, seed=None, step: int | None = None) -> LiveFrame:
        """The state after ``step`` training steps with these settings, redrawn.

        A setting left as None stays as it is. Other settings than the current
        ones, or a step before the current one, start from a fresh network
        (at step 0 when ``step`` is None); otherwise training goes on from
        where it is. Odd values are snapped to the nearest offered one, with a
        message.
        """
        with self._lock:
            return self._update(width, depth, lr, seed, step)

    def _update(self, width, depth, lr, seed, step) -> LiveFrame:
        notes: list[str] = []
        wanted = dict(width=width, depth=depth, lr=lr, seed=seed)
        before = dict(self.settings)
        target = None
        if step is not None:
            target = whole(step, 0, "step", notes)
            if not 0 <= target <= self.max_step:
                target = min(max(target, 0), self.max_step)
                notes.append(f"step runs from 0 to {self.max_step}; showing step {target}")
        probe: list[str] = []
        snapped = {k: before[k] if v is None else self._snap_setting(k, v, probe) for k, v in wanted.items()}
        if snapped != before or (target is not None and target < self._run.step):
            notes.insert(0, self.reset(**wanted).message)
        else:
            notes[:0] = probe  # nothing to reset, but an odd value is still worth saying
        target = self._run.step if target is None else target
        frame = self._advance(target) if target > self._run.step else self._frame
        frame = _with_message(frame, "; ".join(n for n in notes if n))
        self._show(frame)
        return frame

    def view(self) -> LiveFrame:
        """The current frame (nothing is trained or drawn)."""
        return self._frame

    @property
    def model(self) -> nn.Module:
        """The network being trained (changes in place as it trains)."""
        return self._run.model

    # ---------------------------------------------------------- playing ---

    @property
    def playing(self) -> bool:
        play = self._controls.get("play")
        return bool(play is not None and play.playing)

    def pause(self) -> None:
        """Stop the Play timer (the browser stops sending ticks)."""
        play = self._controls.get("play")
        if play is not None and play.playing:
            play.playing = False

    def _pace(self) -> None:
        """Let the Play timer wait a little longer than a tick takes, so ticks never queue up in the kernel."""
        play = self._controls.get("play")
        if play is not None and self.frame_seconds:
            recent = float(np.median(list(self.frame_seconds)[-5:]))
            play.interval = int(max(self.interval_ms, 1000 * recent * 1.3 + 30))

    def close(self) -> None:
        """Stop playing, close every control and release the figure. Safe to call twice, from any thread."""
        # Under the lock: a Play tick drawing on another thread never finds the figure gone mid-draw.
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self.pause()
            _SHOWN.discard(self)
            self._close_widgets()

    def _close_widgets(self) -> None:
        """Close every widget of the latest ``widget()`` call and release its figure."""
        controls, self._controls = self._controls, {}
        box = getattr(self, "_box", None)
        for w in [*controls.values(), *getattr(self, "_buttons", ()), getattr(self, "_readout", None), box]:
            if w is not None:
                w.close()
        if self.area is not None:
            plt.close(self.area.fig)
            self.area = None

    # ---------------------------------------------------------- drawing ---

    def _show(self, frame: LiveFrame) -> None:
        """Redraw the figure and readout for ``frame`` (nothing when no widget is built)."""
        if self.area is None:
            return
        ax, hx = self._ax, self._hx
        regions = frame.regions
        self._polys.set_verts(regions.polygons)
        self._polys.set_array(regions.colors("code"))
        self._decision.set_segments(frame.decision)
        st = self.settings
        ax.set_title(f"step {frame.step}: {len(regions)} exact regions\n(2 → {st['width']} × {st['depth']} → 2, "
                     f"learning rate {st['lr']:g}, seed {st['seed']})", fontsize=9)
        self._curve.set_data(frame.steps, frame.counts)
        self._now.set_data(frame.steps[-1:], frame.counts[-1:])
        hx.set_xlim(0, max(50, int(frame.steps[-1] * 1.1) + 1))
        hx.set_ylim(0, max(10, int(frame.counts.max() * 1.15) + 1))
        self.area.refresh()
        self._readout.value = frame.readout + (f"<br><i>{frame.message}</i>" if frame.message else "")

    def widget(self):
        """Play/pause, step and reset buttons, sliders, the figure and a readout.

        Returns an ipywidgets box; closing it (or calling :meth:`close`) stops the training.
        """
        # Under the lock: a Play tick on another thread waits until the new figure and controls are whole.
        with self._lock:
            return self._widget()

    def _widget(self):
        for other in list(_SHOWN):
            if other is not self:
                other.pause()
        _SHOWN.add(self)
        _OPEN[:] = [ref for ref in _OPEN if ref() is not None and ref() is not self and ref().area is not None]
        _OPEN.append(weakref.ref(self))
        while len(_OPEN) > MAX_OPEN:
            oldest = _OPEN.pop(0)()
            if oldest is not None:
                oldest.close()
        if self._controls:
            self._unwire()
        self._closed = False
        with plt.ioff():
            fig, (ax, hx) = plt.subplots(1, 2, figsize=(10, 5.0), gridspec_kw={"width_ratios": [1.15, 1]})
        self._ax, self._hx = ax, hx
        # Pale region colours (tab20 at half strength), so the blue and red data points stand out on every region.
        self._polys = PolyCollection([], cmap="tab20", alpha=0.5, edgecolors="white", linewidths=0.4, zorder=0)
        self._polys.set_clim(0, 19)
        ax.add_collection(self._polys)
        self._decision = ax.add_collection(decision_lines(np.zeros((0, 2, 2))))
        # One marker style per class (plot, not scatter): matplotlib draws single-colour markers fastest.
        for label in (0, 1):
            ax.plot(*self.x[self.y == label].T, "o", ms=2.6, mfc=_CLASS_COLORS[label], mec="k", mew=0.2, zorder=5)
        ax.set(xlim=self.extent[:2], ylim=self.extent[2:], aspect="equal", xlabel="$x_1$", ylabel="$x_2$")
        for axis in (ax.xaxis, ax.yaxis):  # every tick label is redrawn each tick: few of them
            axis.set_major_locator(MaxNLocator(4, steps=[1, 2, 5, 10]))
        (self._curve,) = hx.plot([], [], color="tab:blue", lw=1.5)
        (self._now,) = hx.plot([], [], "o", color="tab:blue", ms=5)
        hx.set(xlabel="training step", ylabel="regions on the square", title="number of regions during training")
        hx.title.set_fontsize(9)
        hx.xaxis.set_major_locator(MaxNLocator(5, integer=True))
        hx.yaxis.set_major_locator(MaxNLocator(5, integer=True))
        key = [
            Line2D([], [], ls="none", marker="s", ms=8, mfc="#e2eaf4", mec="white",
                   label="one region (a colour per code, 20 reused)"),
            decision_key(),
            Line2D([], [], ls="none", marker="o", ms=4, mfc=_CLASS_COLORS[0], mec="k", mew=0.2, label="class 0"),
            Line2D([], [], ls="none", marker="o", ms=4, mfc=_CLASS_COLORS[1], mec="k", mew=0.2, label="class 1"),
        ]
        fig.legend(handles=key, loc="lower center", ncol=4, fontsize=8, frameon=False)
        fig.subplots_adjust(left=0.07, right=0.97, bottom=0.17, top=0.9, wspace=0.25)
        self.area = FigureArea(fig)
        self._readout = widgets.HTML()
        st = self.settings
        play = widgets.Play(value=0, min=0, max=10**9, step=1, interval=self.interval_ms, show_repeat=False,
                            description="play", tooltip="play / pause training")
        step_button = widgets.Button(description="step", tooltip=f"train {self.steps_per_tick} steps and redraw")
        reset_button = widgets.Button(description="reset", tooltip="a fresh network at step 0")
        lr_options = [(f"{v:g}", v) for v in self.lrs]
        self._controls = {
            "play": play,
            "width": widgets.SelectionSlider(options=self.widths, value=st["width"], description="width"),
            "depth": widgets.SelectionSlider(options=self.depths, value=st["depth"], description="depth"),
            "lr": widgets.SelectionSlider(options=lr_options, value=st["lr"], description="learning rate",
                                          style={"description_width": "initial"}),
            "seed": widgets.SelectionSlider(options=self.seeds, value=st["seed"], description="seed"),
        }
        self._buttons = (step_button, reset_button)
        play.observe(self._on_tick, names="value")
        play.observe(self._on_playing, names="playing")
        for name in ("width", "depth", "lr", "seed"):
            self._controls[name].observe(self._on_setting, names="value")
        step_button.on_click(lambda _: self._safely(self.step))
        reset_button.on_click(lambda _: self._safely(self.reset))
        c = self._controls
        self._box = _ClosingBox([
            widgets.HBox([play, step_button, reset_button]),
            widgets.HBox([widgets.VBox([c["width"], c["depth"]]), widgets.VBox([c["lr"], c["seed"]])]),
            self._readout,
            self.area.widget,
        ], on_close=self.close)
        self._show(self._frame)
        return self._box

    # -------------------------------------------------------- callbacks ---

    def _safely(self, fn, *args) -> None:
        """Run a widget callback; show any error in the readout rather than as a traceback."""
        try:
            fn(*args)
        except (Exception, KeyboardInterrupt) as err:  # a callback's traceback would land in the learner's output
            self.pause()
            if self.area is not None:
                why = ("interrupted: paused" if isinstance(err, KeyboardInterrupt)
                       else f"stopped: {type(err).__name__}: {str(err)[:200]}")
                self._readout.value += f"<br><i>{why}</i>"

    def _on_tick(self, change) -> None:
        # Play's stop button sets the counter back to 0: that is a pause, not a tick.
        if self._closed or change["new"] <= change["old"]:
            return
        watch_interrupts()
        if _INTERRUPTED.is_set():  # the kernel was interrupted between two ticks
            _INTERRUPTED.clear()
            self.pause()
            self._readout.value += f"<br><i>interrupted: paused at step {self._run.step}</i>"
            return
        if not self._lock.acquire(blocking=False):
            return  # a cell is training or resetting this explorer: skip this tick rather than queue it
        try:
            self._safely(self.step)
        finally:
            self._lock.release()

    def _on_playing(self, change) -> None:
        if change["new"]:
            _INTERRUPTED.clear()  # an interrupt from before this play is not meant for it
            watch_interrupts()
            for other in list(_SHOWN):  # one CPU: one explorer trains at a time
                if other is not self:
                    other.pause()
        else:
            stop_watching_interrupts()

    def _on_setting(self, change) -> None:
        if self._syncing or self._closed:
            return
        c = self._controls
        self._safely(self.reset, c["width"].value, c["depth"].value, c["lr"].value, c["seed"].value)

    def _sync_controls(self) -> None:
        """Move the sliders to the current settings without starting another reset."""
        if not self._controls:
            return
        self._syncing = True
        try:
            for name, value in self.settings.items():
                self._controls[name].value = value
        finally:
            self._syncing = False

    def _unwire(self) -> None:
        """Close the widgets of an earlier ``widget()`` call (a second call builds new ones)."""
        self._controls["play"].playing = False
        box = getattr(self, "_box", None)
        if box is not None:
            box._on_close = None  # closing the old box must not close this explorer's new one
        self._close_widgets()


# ------------------------------------------------------- interrupts ---
#
# A kernel interrupt is a SIGINT, which Python handles on the kernel's main thread.
# During a cell, or a widget message handled on the main thread, it raises
# KeyboardInterrupt inside the tick (``_advance`` and ``_safely`` catch it). But
# JupyterLab 4.6 with ipykernel 7 handles widget messages on a subshell thread,
# and an idle kernel ignores SIGINT, so an interrupt would never reach a Play tick.
# While an explorer plays, a handler on the main thread, installed between cells
# (ipykernel puts back whatever was there when a cell ends), notes the interrupt
# and the next tick pauses. When play stops, the kernel's own handler goes back.

_INTERRUPTED = threading.Event()
_previous_sigint = None


def _on_sigint(signum, frame) -> None:
    """Note the interrupt for the next tick, then do what the kernel did before (idle: nothing)."""
    _INTERRUPTED.set()
    if callable(_previous_sigint):
        _previous_sigint(signum, frame)


def _install_sigint() -> None:
    """Put ``_on_sigint`` in place (main thread only), keeping the handler it replaces."""
    global _previous_sigint
    current = signal.getsignal(signal.SIGINT)
    if current is not _on_sigint:
        _previous_sigint = current
        signal.signal(signal.SIGINT, _on_sigint)


def watch_interrupts() -> bool:
    """Have the kernel's main thread install the interrupt handler; False outside a kernel.

    Safe from any thread and cheap when the handler is already there.
    """
    if signal.getsignal(signal.SIGINT) is _on_sigint:
        return True
    return _on_main_thread(_install_sigint)


def _on_main_thread(fn) -> bool:
    """Have the kernel's main thread run ``fn`` soon; False outside a kernel (nothing is run)."""
    try:
        from IPython import get_ipython

        loop = get_ipython().kernel.io_loop  # the main thread's loop; add_callback is thread-safe
    except (ImportError, AttributeError):  # plain Python, or a kernel without a main loop
        return False
    loop.add_callback(fn)
    return True


def _uninstall_sigint() -> None:
    """Put back the handler ``_on_sigint`` replaced (main thread only), if it is still in place."""
    if signal.getsignal(signal.SIGINT) is _on_sigint and _previous_sigint is not None:
        signal.signal(signal.SIGINT, _previous_sigint)


def stop_watching_interrupts() -> bool:
    """Have the kernel's main thread put its own interrupt handler back; False outside a kernel."""
    if signal.getsignal(signal.SIGINT) is not _on_sigint:
        return True
    return _on_main_thread(_uninstall_sigint)


class _ClosingBox(widgets.VBox):
    """A VBox that closes its explorer (stops training, releases the figure) when it is closed."""

    def __init__(self, children, on_close) -> None:
        super().__init__(children)
        self._on_close = on_close

    def close(self) -> None:
        on_close, self._on_close = self._on_close, None
        super().close()
        if on_close is not None:
            on_close()


def _with_message(frame: LiveFrame, message: str) -> LiveFrame:
    """``frame`` with ``message`` added to what it says."""
    if not message:
        return frame
    joined = "; ".join(m for m in (frame.message, message) if m)
    return LiveFrame(**{**frame.__dict__, "message": joined})
