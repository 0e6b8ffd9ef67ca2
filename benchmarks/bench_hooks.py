"""Cost of capturing activations, as a ratio to a plain forward pass."""

import torch

import polylens as pl
from benchmarks.timing import median_seconds, table


def main() -> None:
    rows = []
    for widths, batch in [([2, 64, 64, 64, 1], 4096), ([784, 512, 512, 10], 1024)]:
        model = pl.models.MLP(widths, seed=0)
        x = torch.randn(batch, widths[0], generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            plain = median_seconds(lambda: model(x))
            cached = median_seconds(lambda: pl.run_with_cache(model, x, which="both"))
            edited = median_seconds(lambda: pl.run_with_hooks(model, x, fwd_hooks=[("relu0", lambda t, h: t)]))
        rows.append({
            "model": "x".join(map(str, widths)), "batch": batch,
            "forward ms": f"{plain * 1e3:.2f}",
            "run_with_cache (both) / forward": f"{cached / plain:.2f}",
            "run_with_hooks / forward": f"{edited / plain:.2f}",
        })
    print(table(rows, list(rows[0])))


if __name__ == "__main__":
    main()
