"""How fast do toy models of superposition and sparse autoencoders train?

    python -m benchmarks.bench_superposition [--repeats 5] [--steps 50]

Toy models: instance-steps per second of the batched trainer (all instances
in one einsum) against a plain Python loop over instances doing the same
math (same sampling, same loss, one AdamW over all parameters), measured
side by side; each figure is the median of ``--repeats`` runs of ``--steps``
optimiser steps on one thread. SAE: optimiser steps per second.
"""

from __future__ import annotations

import argparse

import torch

from benchmarks.timing import median_seconds, table
from polylens.superposition.sae import train_sae
from polylens.superposition.toy import ToyModel


def batched_steps(model: ToyModel, steps: int, batch: int, gen: torch.Generator) -> None:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(steps):
        loss = model.loss_per_instance(model.sample(batch, gen)).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def looped_steps(Ws: list, bs: list, samplers: list, imp: torch.Tensor, steps: int, batch: int, gen) -> None:
    """The same model, one instance at a time: W_k (hidden, features), b_k (features,); ``samplers[k]``
    is a one-instance ToyModel with instance k's feature probabilities, used only to draw its data."""
    opt = torch.optim.AdamW([*Ws, *bs], lr=1e-2)
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        for k, (W, b) in enumerate(zip(Ws, bs)):
            x = samplers[k].sample(batch, gen)[:, 0]
            out = torch.relu((x @ W.T) @ W + b)
            (imp[k] * (out - x) ** 2).mean().backward()
        opt.step()


def toy_row(n: int, m: int, instances: int, batch: int, steps: int, repeats: int) -> dict:
    model = ToyModel(n, m, instances, feature_probability=0.05, seed=0)
    Ws = [model.W[k].detach().clone().requires_grad_() for k in range(instances)]
    bs = [model.b[k].detach().clone().requires_grad_() for k in range(instances)]
    p, imp = model.feature_probability, model.importance
    gen = torch.Generator().manual_seed(0)
    batched = median_seconds(lambda: batched_steps(model, steps, batch, gen), repeats=repeats)
    samplers = [ToyModel(n, m, 1, feature_probability=p[k : k + 1], seed=0) for k in range(instances)]
    looped = median_seconds(lambda: looped_steps(Ws, bs, samplers, imp, steps, batch, gen), repeats=repeats)
    return {
        "model": f"toy n={n} m={m}",
        "instances x batch": f"{instances} x {batch}",
        "batched inst-steps/s": f"{instances * steps / batched:,.0f}",
        "loop inst-steps/s": f"{instances * steps / looped:,.0f}",
        "batched / loop": f"{looped / batched:.1f}x",
    }


def sae_row(dim: int, n_latents: int, batch: int, steps: int, repeats: int) -> dict:
    data = torch.randn(8192, dim, generator=torch.Generator().manual_seed(0)).relu()
    seconds = median_seconds(
        lambda: train_sae(data, n_latents, steps=steps, batch_size=batch, progress=False), repeats=repeats
    )
    return {
        "model": f"SAE {dim} -> {n_latents}",
        "instances x batch": f"1 x {batch}",
        "batched inst-steps/s": f"{steps / seconds:,.0f}",
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args(argv if argv is not None else [])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rows = [
            toy_row(5, 2, 16, 1024, args.steps, args.repeats),
            toy_row(200, 20, 16, 1024, args.steps, args.repeats),
            sae_row(64, 256, 256, 4 * args.steps, args.repeats),
        ]
    finally:
        torch.set_num_threads(threads)
    print(table(rows, list(rows[0])))


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
