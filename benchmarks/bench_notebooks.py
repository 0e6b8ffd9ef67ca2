"""Each notebook's run time and peak memory, and each explorer's slider latency.

    python -m benchmarks.bench_notebooks            # every notebook
    python -m benchmarks.bench_notebooks 01 03      # notebooks whose names start so

Run time and memory: each notebook is executed top to bottom in a fresh
kernel (as nbval does), from a fresh process, whose largest child (the
kernel) gives the peak resident memory.

Slider latency: the notebook's cells are run in this process with the Agg
backend; for every explorer a cell displays, every slider is set to each of
its values in turn (as a learner dragging it would), and each change is timed
including the synchronous redraw that ipympl does once a browser shows the
figure. Medians and 95th percentiles over the sweep.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.timing import table

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"

_RUN = """
import json, resource, sys, time
import nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
start = time.perf_counter()
NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": sys.argv[2]}}).execute()
wall = time.perf_counter() - start
print(json.dumps({"wall": wall, "kernel_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def run_notebook(path: Path) -> dict:
    """Wall time and kernel peak memory of one top-to-bottom run."""
    done = subprocess.run([sys.executable, "-c", _RUN, str(path), str(path.parent)],
                          capture_output=True, text=True, cwd=path.parent)
    if done.returncode != 0:
        return {"wall": float("nan"), "kernel_rss_mb": float("nan"), "error": done.stderr.strip().splitlines()[-1:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _sliders(widget) -> list:
    """Every slider in a widget tree, in display order."""
    import ipywidgets as widgets

    kinds = (widgets.IntSlider, widgets.FloatSlider, widgets.SelectionSlider)
    found = [widget] if isinstance(widget, kinds) else []
    for child in getattr(widget, "children", ()):
        found += _sliders(child)
    return found


def _values(slider) -> list:
    if hasattr(slider, "options") and slider.options:
        return [o[1] if isinstance(o, tuple) else o for o in slider.options]
    return list(np.arange(slider.min, slider.max + slider.step / 2, slider.step))[:60]


def slider_latency(path: Path) -> list[dict]:
    """Time every slider of every explorer the notebook displays."""
    import matplotlib

    matplotlib.use("Agg")
    import nbformat

    from polylens.widgets import figure

    figure.FigureArea.refresh = lambda self: self.fig.canvas.draw()  # as once a browser shows it
    nb, ns, rows = nbformat.read(path, as_version=4), {}, []
    quiet = contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO())
    with contextlib.chdir(path.parent), quiet[0], quiet[1]:
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            source = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith("%"))
            shown = _run_cell(source, ns)
            for slider in _sliders(shown) if ".widget(" in source else []:
                rows.append(_sweep(path.stem, slider))
    return rows


def _run_cell(source: str, ns: dict):
    tree = ast.parse(source)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, "<cell>", "exec"), ns)
    return eval(compile(ast.Expression(last.value), "<cell>", "eval"), ns) if last else None


def _sweep(notebook: str, slider) -> dict:
    start, times = slider.value, []
    for value in _values(slider):
        if value == slider.value:
            continue
        t = time.perf_counter()
        slider.value = value  # observers run synchronously: update + redraw
        times.append(time.perf_counter() - t)
    slider.value = start
    ms = np.array(times) * 1e3
    return {"notebook": notebook, "slider": slider.description, "moves": len(ms),
            "median ms": f"{statistics.median(ms):.0f}" if len(ms) else "-",
            "p95 ms": f"{np.percentile(ms, 95):.0f}" if len(ms) else "-"}


def main(prefixes: list[str] | None = None) -> None:
    prefixes = prefixes if prefixes is not None else sys.argv[1:]
    paths = [p for p in sorted(NOTEBOOKS.glob("*.ipynb")) if not prefixes or p.name.startswith(tuple(prefixes))]
    runs = []
    for path in paths:
        r = run_notebook(path)
        runs.append({"notebook": path.stem, "run s": f"{r['wall']:.1f}", "kernel peak MB": f"{r['kernel_rss_mb']:.0f}",
                     "note": " ".join(r.get("error", []))})
    print(table(runs, ["notebook", "run s", "kernel peak MB", "note"]))
    print()
    latency = [row for path in paths for row in slider_latency(path)]
    if latency:
        print(table(latency, ["notebook", "slider", "moves", "median ms", "p95 ms"]))


if __name__ == "__main__":
    main()
