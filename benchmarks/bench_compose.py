"""The sunny-duck evaluation at full size: the table the README quotes, its run time and peak memory.

``python -m benchmarks.bench_compose`` (``--quick`` for notebook 06's smaller split).
The evaluation runs in a fresh process so its peak memory is its own.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

CHILD = """
import json, re, time, torch
torch.set_num_threads(1)
import polylens as pl
from polylens.scenes import load_autoencoder, load_probes
start = time.perf_counter()
table = pl.compose.evaluate(load_autoencoder(), load_probes(), **json.loads({kwargs!r}))
seconds = time.perf_counter() - start
peak = int(re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)) / 1024
print(table)
print()
print(table.by_weather())
print(json.dumps({{"seconds": seconds, "peak_mb": peak}}))
"""


def main(quick: bool = False) -> None:
    kwargs = {"n_train": 20, "n_val": 4, "n_test": 8} if quick else {}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD.format(kwargs=json.dumps(kwargs))],
                          capture_output=True, text=True, check=True)
    *lines, figures = done.stdout.strip().splitlines()
    figures = json.loads(figures)
    size = "notebook 06's split" if quick else "default split (24 scenes per object x weather: 480, 96 ducks)"
    print(f"compose.evaluate, {size}, one thread: {figures['seconds']:.1f} s, peak {figures['peak_mb']:.0f} MB "
          f"(process total {time.perf_counter() - start:.1f} s)\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(quick="--quick" in sys.argv[1:])
