"""Exact 2D regions, polylens next to Regioncam, side by side.

    python -m benchmarks.bench_regioncam [--repeats 3] [--quick]

Regioncam (``pip install regioncam==0.5.2``, or ``pip install -e .[bench]``;
Rust with Python bindings) is optional: without it this benchmark prints
one line and stops. Both enumerate the linear regions of the same
polylens.models.MLP(seed=0) (torch default init) on [-1, 1]^2 of its input
plane, on one thread. Their calls alternate within each repeat (polylens
first on even repeats, Regioncam first on odd ones), so both see the same
machine load; the table gives the medians of wall time and of process
CPU time (on a shared, loaded machine wall time inflates long calls more
than sub-millisecond ones), their ratios and both region counts, which
must be equal.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch

from benchmarks.bench_regions import ALL_NETS as NETS
from benchmarks.bench_regions import PLANE
from polylens.models import MLP
from polylens.regions import slice_regions
# Small nets take milliseconds: more repeats for a steady median.
SMALL_REPEATS = 21


def regioncam_regions(regioncam, model: torch.nn.Module) -> int:
    """Regioncam's region count for ``model`` on [-1, 1]^2 (its size=1 square): layers converted and added."""
    rc = regioncam.Regioncam(size=1.0)
    rc.add([regioncam.nn.convert(m) for m in model.children()])
    return rc.num_faces


def side_by_side(fns: list[Callable[[], int]], repeats: int) -> tuple[list[float], list[float], list[int]]:
    """Median wall and CPU seconds of each of ``fns`` (each returns a region count), calls alternating,
    after one warm-up call each; and the counts."""
    counts = [fn() for fn in fns]
    wall: list[list[float]] = [[] for _ in fns]
    cpu: list[list[float]] = [[] for _ in fns]
    for r in range(repeats):
        order = range(len(fns)) if r % 2 == 0 else reversed(range(len(fns)))
        for i in order:
            start, start_cpu = time.perf_counter(), time.process_time()
            fns[i]()
            cpu[i].append(time.process_time() - start_cpu)
            wall[i].append(time.perf_counter() - start)
    return [float(np.median(t)) for t in wall], [float(np.median(t)) for t in cpu], counts


def _ms(seconds: float) -> str:
    return f"{1e3 * seconds:,.1f}" if seconds < 10 else f"{1e3 * seconds:,.0f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help=f"runs per timing of nets over 100 units wide "
                        f"(smaller nets: at least {SMALL_REPEATS}); the median is shown")
    parser.add_argument("--quick", action="store_true", help="skip the two largest nets")
    args = parser.parse_args(argv)
    try:
        import regioncam
    except ImportError:
        print("Regioncam is not installed (it is optional: pip install regioncam==0.5.2); skipping the side-by-side benchmark")
        return
    torch.set_num_threads(1)
    names = list(NETS)[:-2] if args.quick else list(NETS)
    print(f"polylens vs Regioncam {regioncam.__version__}: [-1,1]^2, torch {torch.__version__}, 1 thread, "
          f"medians of alternating calls")
    header = ["net", "repeats", "polylens ms", "Regioncam ms", "ratio", "CPU ms polylens", "CPU ms Regioncam",
              "CPU ratio", "regions polylens", "regions Regioncam"]
    rows = []
    for name in names:
        model = MLP(NETS[name], seed=0)
        repeats = args.repeats if max(NETS[name][1:-1]) > 100 else max(args.repeats, SMALL_REPEATS)
        (ours, theirs), (cpu_ours, cpu_theirs), (n_ours, n_theirs) = side_by_side(
            [lambda: len(slice_regions(model, *PLANE)), lambda: regioncam_regions(regioncam, model)], repeats)
        same = "" if n_ours == n_theirs else "  DIFFERENT"
        rows.append([name, str(repeats), _ms(ours), _ms(theirs), f"{ours / theirs:.2f}x", _ms(cpu_ours),
                     _ms(cpu_theirs), f"{cpu_ours / max(cpu_theirs, 1e-9):.2f}x", f"{n_ours:,}", f"{n_theirs:,}{same}"])
    print("ratio: polylens time / Regioncam time (below 1x: polylens is faster)")
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print("  ".join(h.rjust(w) for h, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths)))


if __name__ == "__main__":
    main()
