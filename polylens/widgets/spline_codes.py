"""Explorer for notebook 02: walk along a segment and watch the spline code change.

A point moves from x0 to x1. The figure shows where it is among the
network's regions, its spline code (every neuron of every layer) along the
whole path, and how many boundaries were crossed so far: exactly (from
:func:`polylens.regions.crossings`) and as seen by evenly spaced samples.
Fewer samples see fewer crossings, because two boundaries between one pair
of samples look like one change, or none at all when a neuron flips and
flips back.

Everything a slider needs is computed in ``__init__``; a slider move only
moves artists. Samples are coded a chunk at a time and only the places where
the code changed are kept, so a huge sample count needs no more memory than
a small one (only more time).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_rgba

from polylens import spline
from polylens.plot import distinct_colors
from polylens.regions import crossings, input_plane, slice_regions
from polylens.spline import spline_code
from polylens.widgets.figure import FigureArea
from polylens.widgets.snap import snap

SAMPLE_COUNTS = (4, 8, 16, 32, 64, 128, 256, 1024)
# Sample markers drawn at most: more make a solid line on the figure and slow the redraw.
MAX_DRAWN_SAMPLES = 2048


@dataclass
class PathView:
    """What one slider state shows.

    Attributes:
        t: position along the path, in [0, 1].
        point: (2,) the input at t.
        bits: (neurons,) the spline code at t.
        changed_per_layer: {layer name: bits that differ from the code at x0}.
        exact_so_far, exact_total: boundaries crossed exactly in [0, t] and [0, 1].
        sampled_so_far, sampled_total: code changes between consecutive samples, in [0, t] and [0, 1].
        n_samples: the number of evenly spaced samples used.
        readout: HTML text; message: what was adjusted (empty when nothing).
    """

    t: float
    point: np.ndarray
    bits: np.ndarray
    changed_per_layer: dict[str, int]
    exact_so_far: int
    exact_total: int
    sampled_so_far: int
    sampled_total: int
    n_samples: int
    readout: str
    message: str = ""


class PathExplorer:
    """Exact vs sampled boundary crossings along the segment x0 -> x1 of a 2D-input network.

    Args:
        model: a ReLU network with 2D input (e.g. ``MLP([2, 16, 16, 16, 2])``);
            codes are read in eval mode and its own mode is left as it is.
        x0, x1: (2,) the segment's ends.
        x, y: optional data to draw, (n, 2) and (n,).
        extent: the square of input space drawn, (s0, s1, t0, t1).
        sample_counts: the choices of the sample-count slider.
    """

    def __init__(self, model: torch.nn.Module, x0: Any, x1: Any, x: Any = None, y: Any = None,
                 extent=(-1.5, 1.5, -1.5, 1.5), sample_counts=SAMPLE_COUNTS) -> None:
        self.model = model
        self.x0 = np.asarray(x0, dtype=np.float64).reshape(2)
        self.x1 = np.asarray(x1, dtype=np.float64).reshape(2)
        if np.allclose(self.x0, self.x1):
            raise ValueError("x0 and x1 must differ: the path needs a length")
        self.x, self.y = x, y
        self.extent = tuple(extent)
        self.sample_counts = tuple(sorted(int(n) for n in sample_counts))
        if not self.sample_counts or self.sample_counts[0] < 2:
            raise ValueError("sample_counts must be ints >= 2, e.g. (4, 8, 16, 32)")

        # Exact: the code is constant between consecutive crossing parameters.
        cr = crossings(model, torch.from_numpy(self.x0), torch.from_numpy(self.x1))
        self.crossings = cr
        self.t_exact = np.unique(cr.t)
        self.edges = np.concatenate([[0.0], self.t_exact[(self.t_exact > 0) & (self.t_exact < 1)], [1.0]])
        mids = 0.5 * (self.edges[:-1] + self.edges[1:])
        codes = spline_code(model, self._points(mids))
        self.layers = codes.layers
        self.interval_bits = codes.bits  # (intervals, neurons)

        # Sampled: for each sample count, the t where the code changed between neighbours.
        self.samples = {n: self._changes(n) for n in self.sample_counts}

        # The regions of the plane, drawn once as the background.
        self.regions = slice_regions(model, *input_plane(), extent=self.extent)
        self.area: FigureArea | None = None

    def _points(self, ts: np.ndarray) -> torch.Tensor:
        ts = np.asarray(ts, dtype=np.float64)[:, None]
        return torch.from_numpy(self.x0 + ts * (self.x1 - self.x0))

    def _changes(self, n: int, chunk: int | None = None) -> np.ndarray:
        """(k,) t of each of ``n`` evenly spaced samples whose code differs from the previous sample's.

        The samples ``t_i = i / (n - 1)`` are coded ``chunk`` at a time (by
        default about polylens.spline.CHUNK_BYTES of codes and points), each
        chunk's first code compared with the previous chunk's last, so the
        answer is the same as coding them all at once.
        """
        if chunk is None:
            per_sample = 3 * self.interval_bits.shape[1] + 64  # bits, their comparison, the point
            chunk = max(64, spline.CHUNK_BYTES // per_sample // 64 * 64)  # see spline._ROW_ALIGN
        seen, last = [], None
        for i in range(0, n, chunk):
            ts = np.arange(i, min(i + chunk, n)) / (n - 1)
            bits = spline_code(self.model, self._points(ts)).bits
            if last is not None and np.any(last != bits[0]):
                seen.append(ts[:1])
            seen.append(ts[1:][np.any(bits[1:] != bits[:-1], axis=1)])  # a change is seen at the later sample
            last = bits[-1]
        return np.concatenate(seen)

    def _drawn_samples(self, n: int) -> np.ndarray:
        """t of the sample markers drawn: every sample, or every k-th when there are more than MAX_DRAWN_SAMPLES."""
        every = -(-n // MAX_DRAWN_SAMPLES)
        return np.arange(0, n, every) / (n - 1)

    # ------------------------------------------------------------ pure ---

    def view(self, t: float = 0.5, n_samples: int = 16) -> PathView:
        """Numbers and text for position ``t`` in [0, 1] and ``n_samples`` samples."""
        messages = []
        try:
            t = float(t)
        except (TypeError, ValueError, OverflowError):  # OverflowError: an int too large for a float
            messages.append(f"t must be a number in [0, 1], got {str(t)[:20]}; showing t = 0.5")
            t = 0.5
        if not np.isfinite(t):
            messages.append("t must be finite; showing t = 0.5")
            t = 0.5
        elif not 0.0 <= t <= 1.0:
            clipped = min(max(t, 0.0), 1.0)
            messages.append(f"t runs from 0 (x0) to 1 (x1); showing t = {clipped:g}")
            t = clipped
        n_samples = int(snap(self.sample_counts, n_samples, "samples", messages,
                             missing=f"is not offered ({', '.join(map(str, self.sample_counts))})"))

        interval = min(int(np.searchsorted(self.edges, t, side="right")) - 1, len(self.interval_bits) - 1)
        bits = self.interval_bits[interval]
        start = self.interval_bits[0]
        changed = {l.name: int((bits[l.start:l.stop] != start[l.start:l.stop]).sum()) for l in self.layers}
        exact_so_far = int((self.t_exact <= t).sum())
        seen = self.samples[n_samples]
        sampled_so_far = int((seen <= t).sum())
        point = self.x0 + t * (self.x1 - self.x0)

        total, sampled_total = len(self.t_exact), len(seen)
        flips = "; ".join(f"{name}: {k}" for name, k in changed.items())
        readout = (
            f"t = {t:.2f}: <b>{exact_so_far}</b> of {total} {'boundary' if total == 1 else 'boundaries'} "
            f"crossed so far (exact).<br>"
            f"With {n_samples} evenly spaced samples you would see <b>{sampled_so_far}</b> "
            f"(of {sampled_total} on the whole path; {total - sampled_total} missed).<br>"
            f"Bits that differ from the code at x0, by layer: {flips}."
        )
        return PathView(t, point, bits, changed, exact_so_far, total, sampled_so_far, sampled_total,
                        n_samples, readout, " ".join(messages))

    # ---------------------------------------------------------- drawing ---

    def update(self, t: float = 0.5, n_samples: int = 16) -> PathView:
        """Compute the view and move the figure's artists (if the figure is built)."""
        view = self.view(t, n_samples)
        if self.area is not None:
            self._marker.set_offsets([view.point])
            ts, seen = self._drawn_samples(view.n_samples), self.samples[view.n_samples]
            self._sample_dots.set_offsets(self._points(ts).numpy())
            self._sample_ticks.set_offsets(np.c_[ts, np.full(len(ts), -1.5)])
            for line in self._tlines:
                line.set_xdata([view.t, view.t])
            steps_t = np.concatenate([[0.0], seen, [1.0]])
            steps_n = np.concatenate([[0], np.arange(1, len(seen) + 1), [len(seen)]])
            self._sampled_line.set_data(steps_t, steps_n)
            self._legend.get_texts()[1].set_text(f"seen by {view.n_samples} samples: {len(seen)}")
            self.area.refresh()
            self._readout.value = view.readout + (f"<br><i>{view.message}</i>" if view.message else "")
        return view

    def region_colors(self) -> np.ndarray:
        """(n_regions, 4) RGBA: each region the path passes through its own colour, in path order; the rest grey.

        A straight path meets a convex region at most once, so the coloured
        regions can be counted along the path: one more than the crossings
        (when each crossing changes the code).
        """
        colors = np.tile(to_rgba("0.88"), (len(self.regions), 1))
        where = {row.tobytes(): i for i, row in enumerate(self.regions.codes.bits)}
        on_path = [where[row.tobytes()] for row in self.interval_bits if row.tobytes() in where]
        on_path = list(dict.fromkeys(on_path))  # in path order, once each
        # The palette's own greys (tab10 and tab20 have some) would read as "not on the path".
        palette = distinct_colors(len(on_path) + 8)
        palette = palette[np.ptp(palette[:, :3], axis=1) > 0.05][:len(on_path)]
        colors[on_path] = palette
        colors[on_path, 3] = 0.55  # light enough for the data, the path and the samples drawn on top
        return colors

    def figure(self):
        """Build the figure (input plane, code along the path, crossings so far)."""
        with plt.ioff():
            fig = plt.figure(figsize=(10, 5))  # fits JupyterLab's output area beside the prompt
        grid = fig.add_gridspec(2, 2, width_ratios=(1, 1.25), height_ratios=(1.6, 1))
        ax, code_ax, count_ax = fig.add_subplot(grid[:, 0]), fig.add_subplot(grid[0, 1]), fig.add_subplot(grid[1, 1])
        self._count_ax = count_ax

        polys = PolyCollection(self.regions.polygons, facecolors=self.region_colors(), edgecolors="white",
                               linewidths=0.4, zorder=0)
        ax.add_collection(polys)
        if self.x is not None:
            xy = np.asarray(self.x)
            ax.scatter(xy[:, 0], xy[:, 1], c=None if self.y is None else np.asarray(self.y), cmap="coolwarm",
                       s=5, edgecolors="none", zorder=1)
        ax.plot(*np.c_[self.x0, self.x1], color="k", lw=1.5, zorder=2)
        ax.annotate("x0", self.x0, xytext=(-14, 4), textcoords="offset points", fontsize=10)
        ax.annotate("x1", self.x1, xytext=(4, 4), textcoords="offset points", fontsize=10)
        cross_pts = self._points(self.t_exact).numpy()
        ax.scatter(cross_pts[:, 0], cross_pts[:, 1], marker="x", color="k", s=22, lw=1.2, zorder=4,
                   label="exact crossings")
        self._sample_dots = ax.scatter([], [], s=8, color="tab:orange", zorder=3, label="samples")
        self._marker = ax.scatter([self.x0[0]], [self.x0[1]], s=90, color="gold", edgecolors="k", zorder=5,
                                  label="the point at t")
        ax.set(xlim=self.extent[:2], ylim=self.extent[2:], aspect="equal", xlabel="input $x_1$",
               ylabel="input $x_2$")
        ax.set_title("input space: the path x0 → x1 and the regions\nit passes through (one colour each; others grey)",
                     fontsize=10)
        ax.legend(loc="lower left", fontsize=8)

        n = self.interval_bits.shape[1]
        code_ax.pcolormesh(self.edges, np.arange(n + 1) - 0.5, self.interval_bits.T.astype(float),
                           cmap="Greys", vmin=0, vmax=1.6, shading="flat")
        for l in self.layers[1:]:
            code_ax.axhline(l.start - 0.5, color="tab:blue", lw=1)
        code_ax.set_yticks([0.5 * (l.start + l.stop) - 0.5 for l in self.layers],
                           [f"{l.name}" for l in self.layers])
        self._sample_ticks = code_ax.scatter([], [], marker="|", color="tab:orange", s=40, clip_on=False)
        code_ax.set(xlim=(0, 1), ylim=(n - 0.5, -1.5), ylabel="neuron (by layer)")
        code_ax.set_title("spline code along the path (dark = on); orange: samples", fontsize=10)
        code_ax.tick_params(labelbottom=False)

        steps_t = np.concatenate([[0.0], self.t_exact, [1.0]])
        steps_n = np.concatenate([[0], np.arange(1, len(self.t_exact) + 1), [len(self.t_exact)]])
        count_ax.step(steps_t, steps_n, where="post", color="k", label=f"exact: {len(self.t_exact)}")
        (self._sampled_line,) = count_ax.step([], [], where="post", color="tab:orange", label="seen by samples")
        self._legend = count_ax.legend(loc="upper left", fontsize=8)
        count_ax.set(xlim=(0, 1), ylim=(0, len(self.t_exact) + 1), xlabel="t (0 = x0, 1 = x1)",
                     ylabel="boundaries\ncrossed so far")
        self._tlines = [code_ax.axvline(0, color="gold", lw=2), count_ax.axvline(0, color="gold", lw=2)]
        fig.tight_layout()
        return fig

    def widget(self, t: float = 0.5, n_samples: int = 16):
        """A t slider and a sample-count slider, the figure and a readout, wired to :meth:`update`."""
        import ipywidgets as widgets

        self.area = FigureArea(self.figure())
        self._readout = widgets.HTML()
        controls = {
            "t": widgets.FloatSlider(value=t, min=0.0, max=1.0, step=0.005, description="t",
                                     readout_format=".3f", continuous_update=True),
            "n_samples": widgets.SelectionSlider(options=self.sample_counts,
                                                 value=n_samples if n_samples in self.samples else self.sample_counts[0],
                                                 description="samples"),
        }
        out = widgets.interactive_output(self.update, controls)
        return widgets.VBox([widgets.HBox(list(controls.values())), self.area.widget, self._readout, out])
