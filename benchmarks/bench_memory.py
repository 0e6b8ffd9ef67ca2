"""Peak memory of the calls a learner can make with big arguments.

    python -m benchmarks.bench_memory [--case NAME ...] [--timeout 900]

mybinder.org gives a notebook about 2 GB, so a public function must not
take the kernel down however large its arguments. Each case runs in a fresh
Python process on one thread: the case's models and inputs are built, the
process's high-water mark of resident memory (VmHWM) is reset, the call
runs, and the table shows the peak resident memory during the call and how
much of it the call added. A case whose answer would be too big to hold
says so with a ValueError before allocating it; the table shows that.
Needs Linux (/proc/self/clear_refs resets the high-water mark).
"""

from __future__ import annotations

import argparse
import gc
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from benchmarks.timing import table

ROOT = Path(__file__).resolve().parent.parent


def _crossings_nb03() -> Callable[[], object]:
    # Notebook 03's own steering path: the duck's bottleneck code scaled along the
    # sunny direction, alpha from -1 to 4 gaps, through the scene decoder.
    import polylens as pl
    from polylens.scenes import load_autoencoder, render, to_tensor

    ae = load_autoencoder().eval()
    sunny, other = pl.scenes.training_scenes(20)
    with torch.no_grad():
        direction = pl.steer.mean_difference(ae.encoder(sunny), ae.encoder(other), layer=ae.BOTTLENECK)
        h0 = ae.encoder(to_tensor(render("duck", "overcast", 2)))[0]
    d = direction.vector.to(h0)
    gap = float(direction.projections.mean() - direction.baseline.mean())
    del sunny, other
    return lambda: pl.regions.crossings(ae.decoder, h0 - gap * d, h0 + 4 * gap * d)


def _notebook02_model() -> torch.nn.Module:
    import polylens as pl

    x, y = pl.datasets.two_moons(256, seed=0)
    model = pl.models.MLP([2, 16, 16, 16, 2], seed=0)
    pl.training.train_classifier(model, x, y, steps=300, lr=1e-2, seed=0)
    return model.eval()


def _density_20k() -> Callable[[], object]:
    import polylens as pl

    model = pl.models.MLP([2, 64, 64, 64, 1], seed=0).eval()
    return lambda: pl.regions.density(model, torch.zeros(2), np.linspace(0, 4, 21), n_rays=20_000, seed=0)


def _path_explorer_huge() -> Callable[[], object]:
    from polylens.widgets.spline_codes import PathExplorer

    model = _notebook02_model()
    x0, x1 = torch.tensor([-1.2, 0.6]), torch.tensor([1.2, -0.6])
    return lambda: PathExplorer(model, x0, x1, sample_counts=(16, 10_000_000))


def _spline_code_grid() -> Callable[[], object]:
    import polylens as pl

    model = pl.models.MLP([2, 64, 64, 64, 1], seed=0).eval()
    g = np.linspace(-1, 1, 1000)
    grid = torch.from_numpy(np.stack(np.meshgrid(g, g), -1).reshape(-1, 2))
    return lambda: pl.spline_code(model, grid)


def _hamming_30k() -> Callable[[], object]:
    import polylens as pl

    bits = np.random.default_rng(0).random((30_000, 192)) > 0.5
    return lambda: pl.hamming(bits, pairwise=True)


def _slice_512() -> Callable[[], object]:
    import polylens as pl

    model = pl.models.MLP([2, 512, 512, 1], seed=0).eval()
    plane = (np.zeros(2), np.array([1.0, 0.0]), np.array([0.0, 1.0]))
    return lambda: pl.regions.slice_regions(model, *plane, extent=(-6, 6, -6, 6))


# name: (what is called, how its inputs are built)
CASES: dict[str, tuple[str, Callable[[], Callable[[], object]]]] = {
    "crossings_nb03": ("regions.crossings, notebook 03's path (scene decoder, alpha -1..4)", _crossings_nb03),
    "density_20k": ("regions.density, 20,000 rays (2-64x3 MLP, radii 0..4)", _density_20k),
    "path_explorer_1e7": ("PathExplorer, 10,000,000 samples (notebook 02's net)", _path_explorer_huge),
    "spline_code_1e6": ("spline_code, 1000x1000 grid (2-64x3 MLP)", _spline_code_grid),
    "hamming_30k": ("hamming, pairwise, 30,000 codes of 192 bits", _hamming_30k),
    "slice_512_6": ("regions.slice_regions, 2-512-512 on [-6, 6]^2", _slice_512),
}


def _status_mb(field: str) -> float:
    status = Path("/proc/self/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE).group(1)) / 1024


def measure(name: str) -> dict:
    """Run one case in this process; returns its figures (MB, seconds, outcome)."""
    torch.set_num_threads(1)
    call = CASES[name][1]()
    gc.collect()
    before = _status_mb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    start = time.perf_counter()
    try:
        out = call()
        outcome = f"ok ({type(out).__name__})"
    except ValueError as err:
        outcome = "ValueError: " + str(err)
    seconds = time.perf_counter() - start
    peak = _status_mb("VmHWM")
    return {"before_mb": before, "peak_mb": peak, "seconds": seconds, "outcome": outcome}


def run_case(name: str, timeout: float) -> dict:
    """One case in a fresh process, so that each peak is its own."""
    try:
        done = subprocess.run([sys.executable, "-m", "benchmarks.bench_memory", "--child", name], cwd=ROOT,
                              capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"outcome": f"timed out after {timeout:.0f} s"}
    if done.returncode != 0:
        # Killed for memory (-9) or crashed: that is the finding, so say it.
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"outcome": f"exit {done.returncode}: {tail[:120]}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", action="append", choices=sorted(CASES), help="run only these cases")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per case")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child)))
        return
    rows = []
    for name in args.case or list(CASES):
        got = run_case(name, args.timeout)
        outcome = got["outcome"]
        rows.append({
            "case": CASES[name][0],
            "peak MB": f"{got['peak_mb']:,.0f}" if "peak_mb" in got else "-",
            "added MB": f"{got['peak_mb'] - got['before_mb']:,.0f}" if "peak_mb" in got else "-",
            "seconds": f"{got['seconds']:.1f}" if "seconds" in got else "-",
            "outcome": outcome if len(outcome) <= 90 else outcome[:87] + "...",
        })
    print("Peak resident memory of one call, each in a fresh process (1 thread; 'added' = peak - RSS before the call)")
    print(table(rows, ["case", "peak MB", "added MB", "seconds", "outcome"]))


if __name__ == "__main__":
    main()
