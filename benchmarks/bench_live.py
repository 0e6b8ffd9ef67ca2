"""Frame time of notebook 01's live training explorer: one Play tick, start to finish.

    python -m benchmarks.bench_live [--ticks 40]

A tick is what the Play button asks for: 5 Adam steps, the exact regions of the
square enumerated again, the figure redrawn (synchronously, as ipympl does once
a browser shows it; Agg here) and the readout set. Medians over ``--ticks``
ticks from a fresh network (after one warm-up tick), on one thread as on
Binder, on notebook 01's data, at the notebook's settings and at the largest
network the sliders offer.
"""

from __future__ import annotations

import argparse
import statistics
import time

import matplotlib
import numpy as np
import torch

from benchmarks.timing import table

SETTINGS = {"notebook default": dict(width=16, depth=2), "largest offered": dict(width=32, depth=3)}


def tick_times(width: int, depth: int, ticks: int) -> dict:
    """Per-tick wall times (seconds) of ``ticks`` ticks, and how much of each was drawing."""
    import polylens as pl
    from polylens.widgets import LiveTrainingExplorer
    from polylens.widgets.figure import FigureArea

    x, y = pl.datasets.two_moons(400, noise=0.08, seed=0)  # notebook 01's data
    drawing: list[float] = []

    def timed_draw(area: FigureArea) -> None:
        start = time.perf_counter()
        area.fig.canvas.draw()  # as FigureArea.refresh does once the browser has shown the canvas
        drawing.append(time.perf_counter() - start)

    refresh, FigureArea.refresh = FigureArea.refresh, timed_draw
    try:
        explorer = LiveTrainingExplorer(x, y, width=width, depth=depth, lr=1e-2, seed=0)
        explorer.widget()
        explorer.step()  # warm-up: the first draws lay out the text
        drawing.clear()
        total, regions = [], []
        for _ in range(ticks):
            start = time.perf_counter()
            frame = explorer.step()
            total.append(time.perf_counter() - start)
            regions.append(len(frame.regions))
        explorer.close()
    finally:
        FigureArea.refresh = refresh
    return {"total": total, "drawing": drawing, "regions": regions, "last_step": frame.step}


def main(ticks: int = 40) -> None:
    matplotlib.use("Agg")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rows = []
        for name, kw in SETTINGS.items():
            t = tick_times(kw["width"], kw["depth"], ticks)
            ms, draw = np.array(t["total"]) * 1e3, np.array(t["drawing"]) * 1e3
            rows.append({
                "setting": name, "network": f"2-{kw['width']}x{kw['depth']}-2",
                "regions": f"{min(t['regions'])}-{max(t['regions'])}",
                "median ms per tick": f"{statistics.median(ms):.0f}",
                "p95 ms": f"{np.percentile(ms, 95):.0f}",
                "of which drawing (median ms)": f"{statistics.median(draw):.0f}",
                "ticks": f"{ticks} (steps 10 to {t['last_step']})",
            })
        print("Live training explorer, one Play tick (5 Adam steps + exact regions + redraw), one thread:")
        print(table(rows, list(rows[0])))
    finally:
        torch.set_num_threads(threads)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ticks", type=int, default=40)
    main(parser.parse_args().ticks)
