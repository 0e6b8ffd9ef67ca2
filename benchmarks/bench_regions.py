"""How fast are exact regions, spline codes and Hamming distances?

    python -m benchmarks.bench_regions [--repeats 3] [--quick]

Prints plain-text tables; every time is the median of ``--repeats`` runs on
one thread. Nets are polylens.models.MLP(seed=0) (torch default init), the
slice is [-1, 1]^2 of the input plane.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch

from polylens.models import MLP
from polylens.regions import slice_regions
from polylens.spline import hamming, spline_code

# Every size of the exact-regions benchmarks; bench_regioncam uses all, this file from 2-32-32 up.
ALL_NETS = {
    "2-8-8": [2, 8, 8, 1],
    "2-16-16": [2, 16, 16, 1],
    "2-32-32": [2, 32, 32, 1],
    "2-64x3": [2, 64, 64, 64, 1],
    "2-128x3": [2, 128, 128, 128, 1],
    "2-256x3": [2, 256, 256, 256, 1],
    "2-512-512": [2, 512, 512, 1],
}
NETS = {name: sizes for name, sizes in ALL_NETS.items() if name not in ("2-8-8", "2-16-16")}
PLANE = (np.zeros(2), np.array([1.0, 0.0]), np.array([0.0, 1.0]))


def _median_time(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), out


def _table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print(f"\n{title}")
    print("  ".join(h.rjust(w) for h, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths)))


def bench_regions(repeats: int, names: list[str]) -> dict[str, tuple[float, object]]:
    rows, results = [], {}
    for name in names:
        model = MLP(NETS[name], seed=0)
        secs, regs = _median_time(lambda: slice_regions(model, *PLANE), repeats)
        results[name] = (secs, regs)
        rows.append([name, f"{len(regs):,}", f"{secs:.2f}", f"{len(regs) / secs:,.0f}", f"{regs.areas.sum():.12f}"])
    _table("Exact enumeration of [-1,1]^2 (float64)", ["net", "regions", "seconds", "regions/s", "area sum (4)"], rows)
    return results


def _grid_codes(model: torch.nn.Module, n: int, chunk: int = 1 << 16) -> set[bytes]:
    g = np.linspace(-1, 1, n)
    found: set[bytes] = set()
    for i in range(0, n * n, chunk):
        k = np.arange(i, min(i + chunk, n * n))
        pts = torch.from_numpy(np.stack([g[k % n], g[k // n]], 1))
        packed = spline_code(model, pts).packed()
        rows = np.unique(np.ascontiguousarray(packed).view(np.dtype((np.void, packed.shape[1]))).ravel())
        found.update(r.tobytes() for r in rows)
    return found


def bench_grid(results: dict, names: list[str]) -> None:
    rows = []
    for name in names:
        secs, regs = results[name]
        model = MLP(NETS[name], seed=0).double()
        exact = {bytes(r) for r in regs.codes.packed()}
        probe = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (1 << 16, 2)))
        per_point, _ = _median_time(lambda: spline_code(model, probe), 3)
        n = max(10, int(np.sqrt(secs / (per_point / len(probe)))))
        for size in sorted({n, 1000} if name == "2-64x3" else {n}):
            t, grid = _median_time(lambda: _grid_codes(model, size), 1)
            missed = len(exact - grid)
            extra = len(grid - exact)
            rows.append([name, f"{size}x{size}", f"{t:.2f}", f"{secs:.2f}", f"{len(grid):,}", f"{len(exact):,}",
                         f"{missed:,} ({100 * missed / len(exact):.1f}%)", str(extra)])  # fmt: skip
    _table(
        "Exact enumeration vs a grid of spline codes (grid sized to the exact time from spline_code cost alone; and 1000x1000)",
        ["net", "grid", "grid s", "exact s", "grid codes", "exact", "missed by grid", "grid-only"],
        rows,
    )


def bench_code_cost(repeats: int) -> None:
    rows = []
    for name in ("2-64x3", "2-256x3"):
        model = MLP(NETS[name], seed=0).eval()
        x = torch.randn(4096, 2, generator=torch.Generator().manual_seed(0))
        fwd, code = [], []
        for _ in range(repeats):  # side by side, so both see the same machine load
            fwd.append(_median_time(lambda: model(x), 1)[0])
            code.append(_median_time(lambda: spline_code(model, x), 1)[0])
        f, c = np.median(fwd), np.median(code)
        rows.append([name, "4096", f"{1e3 * f:.2f}", f"{1e3 * c:.2f}", f"{c / f:.1f}x"])
    _table("spline_code cost vs a plain forward pass (float32)", ["net", "batch", "forward ms", "spline_code ms", "ratio"], rows)


def bench_hamming(repeats: int, sizes: list[int]) -> None:
    rows = []
    rng = np.random.default_rng(0)
    for n in sizes:
        bits = rng.random((n, 1024)) > 0.5
        secs, _ = _median_time(lambda: hamming(bits, pairwise=True), repeats)
        rows.append([f"{n:,} x {n:,}", "1024", f"{secs:.2f}", f"{n * n / secs / 1e6:,.1f}"])
    _table("Pairwise Hamming distance", ["pairs", "bits", "seconds", "Mpairs/s"], rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per timing (the median is shown)")
    parser.add_argument("--quick", action="store_true", help="skip the two largest nets and 10k Hamming")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    names = list(NETS)[:3] if args.quick else list(NETS)
    print(f"polylens benchmarks: torch {torch.__version__}, numpy {np.__version__}, 1 thread, medians of {args.repeats}")
    results = bench_regions(args.repeats, names)
    bench_grid(results, [n for n in ("2-64x3", "2-128x3", "2-256x3") if n in results])
    bench_code_cost(max(5, args.repeats))
    bench_hamming(args.repeats, [2000] if args.quick else [2000, 10000])


if __name__ == "__main__":
    main()
