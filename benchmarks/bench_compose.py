"""The sunny-duck evaluation at full size: the table the README quotes, its run time and peak memory.

``python -m benchmarks.bench_compose`` (``--quick`` for notebook 06's smaller split).
The evaluation runs in a fresh process so its peak memory is its own. After
the table: success by starting weather, by object x weather for the oracle,
the colour map and the best method, and the judge itself tested on pictures
whose verdict is known (the truth and the oracle must pass, every fake must fail).
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
for name in ("oracle", pl.compose.COLOUR_MAP, table.best()["method"]):
    print()
    print(table.by_cell(name))
print()
test = pl.scenes.split("test", json.loads({kwargs!r}).get("n_test", 24))
sunny, other = pl.scenes.training_scenes(json.loads({kwargs!r}).get("n_train", 40))
ducks = test.objects == 0
print(f"the judge on known pictures ({{len(test)}} test scenes, {{int(ducks.sum())}} ducks): must pass "
      f"{{', '.join(pl.compose.MUST_COMPOSE)}}; must fail every other")
ae, probes = load_autoencoder(), load_probes()
known = pl.compose.known_pictures(ae, test, sunny, other)
print(pl.compose.known_table({{name: pl.compose.score(ae, probes, test, p) for name, p in known.items()}}, test))
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
