"""The scene world: render throughput, and the shipped networks' figures on fresh scenes.

``python -m benchmarks.bench_scenes`` (``--quick`` for fewer images and repeats).
"""

from __future__ import annotations

import sys

import numpy as np
import torch

from benchmarks.timing import median_seconds, table
from polylens.scenes import load_autoencoder, load_probes, render_batch
from polylens.scenes.train import evaluate


def render_rate(n: int, repeats: int) -> float:
    """Images per second for ``n`` random (object, weather, seed) scenes at 64x64, median of repeats."""
    rng = np.random.default_rng(0)
    objs, weathers = rng.integers(0, 5, n), rng.integers(0, 5, n)
    seconds = median_seconds(lambda: render_batch(objs, weathers, np.arange(n)), repeats=repeats, warmup=0)
    return n / seconds


def main(quick: bool = False) -> None:
    n, repeats, n_eval = (2000, 1, 200) if quick else (20000, 3, 1000)
    rate = render_rate(n, repeats)
    rows = [{"measure": f"render_batch, {n} images 64x64 (1 core, median of {repeats})",
             "value": f"{rate:,.0f} images/s ({n / rate:.1f} s)"}]
    torch.set_num_threads(2)
    figures = evaluate(load_autoencoder(), *load_probes(), n=n_eval)
    for key, value in figures.items():
        if isinstance(value, float):
            count = max(n_eval // 4, 10) if "unseen" in key else n_eval  # evaluate() draws a quarter as many ducks
            rows.append({"measure": f"{key} (n={count}, fresh seeds)", "value": f"{value:.5f}"})
    print(table(rows, ["measure", "value"]))


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
