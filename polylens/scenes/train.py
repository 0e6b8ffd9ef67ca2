"""Retrain the scene networks from scratch: ``python -m polylens.scenes.train``.

Trains, on CPU and deterministically from ``--seed``:

1. the autoencoder on scenes *without sunny ducks* (the capstone's held-out
   combination), minimising pixel MSE;
2. an object probe and a weather probe on every combination, with light
   noise and blur so that they also judge the autoencoder's (slightly soft)
   reconstructions fairly;

then measures them on fresh scenes (seeds disjoint from training) and writes
``*.safetensors`` plus ``manifest.json`` (sha256 of each file, architecture,
seed, figures) to ``--out`` (default: ``./scene-weights``, a folder in the
current directory). Load them with ``load_autoencoder("scene-weights")`` and
``load_probes("scene-weights")``.

The shipped weights inside the package are never written unless asked for
with ``--overwrite-shipped``: a short test run (``--steps 2``) written there
would otherwise replace them, and ``load_autoencoder()`` would then load a
useless model without complaint (its manifest matches the new files).

Options: ``--steps N`` autoencoder steps (each probe trains for N // 6),
``--out DIR``, ``--overwrite-shipped``, ``--seed S``, ``--threads T``,
``--n-train N``. The shipped weights came from the defaults (8000
autoencoder steps, one thread), which took 15 minutes (886 s) on one core of a
busy two-core machine; the manifest's ``training.train_seconds`` records it.
With the spatial bottleneck the seen-scene reconstruction error is 0.0028 and
held-out sunny ducks 0.0099 (a 64-number vector bottleneck, trained the same
way, reached 0.0053 and 0.0210). Objects are still somewhat soft, so more
``--steps`` would sharpen them further.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from polylens._output import output_folder
from polylens.scenes.dataset import SceneDataset
from polylens.scenes.networks import SceneAutoencoder, SceneProbe
from polylens.scenes.render import OBJECTS, WEATHERS, draw_batch
from polylens.scenes.weights import WEIGHTS_DIR, save_model
from polylens.shipped import MANIFEST

__all__ = ["DEFAULT_OUT", "DEFAULTS", "evaluate", "main", "train_autoencoder", "train_probe"]

DEFAULT_OUT = Path("scene-weights")  # relative to the current directory: never inside the installed package

# One thread: on a shared two-core machine a second thread mostly spins; 8000
# steps sharpen the objects noticeably over 3000 (see the module docstring).
DEFAULTS = {"steps": 8000, "seed": 0, "threads": 1, "n_train": 12000, "batch": 32, "lr": 2e-3}
OBJECT_WEIGHT = 4.0  # extra loss weight on object pixels: small objects would otherwise blur away
MEASURED_MINUTES = 14.8  # the shipped run, defaults, one thread on a busy 2-core machine
HELD_OUT = [("duck", "sunny")]
EVAL_SEED = 9_000  # dataset seeds for measuring: disjoint from every training seed below


def _data_seed(seed: int, purpose: int) -> int:
    """Dataset seeds for training: 10 * seed + purpose, far below EVAL_SEED for any sane seed."""
    return 10 * seed + purpose


def _as_uint8(ds: SceneDataset) -> torch.Tensor:
    # 8 bits per channel is a quarter of the memory; rounding costs ~1e-6 MSE.
    return torch.from_numpy(np.round(ds.images * 255).astype(np.uint8)).permute(0, 3, 1, 2).contiguous()


def _floats(x_u8: torch.Tensor) -> torch.Tensor:
    return x_u8.float().div_(255.0)


def _batches(n: int, steps: int, batch: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Index batches over repeated shuffled epochs, drawn from ``generator`` only."""
    done = 0
    while done < steps:
        order = torch.randperm(n, generator=generator)
        for start in range(0, n - batch + 1, batch):
            if done == steps:
                return
            yield order[start : start + batch]
            done += 1
        if n < batch:  # a tiny set (tests): one short batch per epoch
            yield order
            done += 1


def _schedule(optimiser: torch.optim.Optimizer, steps: int, lr: float) -> torch.optim.lr_scheduler.LambdaLR:
    """Short linear warm-up, then cosine decay to 5% of ``lr``."""
    warm = max(1, min(200, steps // 20))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        t = (step - warm) / max(1, steps - warm)
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t))

    for group in optimiser.param_groups:
        group["lr"] = lr
    return torch.optim.lr_scheduler.LambdaLR(optimiser, factor)


def train_autoencoder(
    x_u8: torch.Tensor,
    masks_u8: torch.Tensor | None,
    steps: int,
    seed: int,
    batch: int = 32,
    lr: float = 2e-3,
    progress: bool = True,
) -> SceneAutoencoder:
    """Fit a SceneAutoencoder to images (n, 3, 64, 64) uint8 by pixel MSE.

    ``masks_u8`` (n, 1, 64, 64) uint8 object coverage (or None): object pixels
    count 1 + OBJECT_WEIGHT times, so the network spends its capacity on the
    object rather than on the sky.
    """
    model = SceneAutoencoder(seed=seed)
    optimiser = torch.optim.Adam(model.parameters())
    schedule = _schedule(optimiser, steps, lr)
    generator = torch.Generator().manual_seed(seed)
    bar = tqdm(_batches(len(x_u8), steps, batch, generator), total=steps, desc="autoencoder", disable=not progress)
    for idx in bar:
        x = _floats(x_u8[idx])
        weight = 1.0 if masks_u8 is None else 1.0 + OBJECT_WEIGHT * _floats(masks_u8[idx])
        loss = (weight * (model(x) - x) ** 2).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        bar.set_postfix(mse=f"{loss.item():.5f}", refresh=False)
    return model.eval()


def _augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Light blur (half the batch) and pixel noise: what a reconstruction does to a scene."""
    blurred = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
    pick = (torch.rand(len(x), 1, 1, 1, generator=generator) < 0.5).float()
    x = pick * blurred + (1 - pick) * x
    sigma = 0.04 * torch.rand(len(x), 1, 1, 1, generator=generator)
    return x + sigma * torch.randn(x.shape, generator=generator)


def train_probe(
    x_u8: torch.Tensor,
    labels: torch.Tensor,
    n_classes: int,
    steps: int,
    seed: int,
    batch: int = 64,
    lr: float = 2e-3,
    name: str = "probe",
    progress: bool = True,
) -> SceneProbe:
    """Fit a SceneProbe to images (n, 3, 64, 64) uint8 and labels (n,) by cross-entropy."""
    model = SceneProbe(n_classes, seed=seed)
    optimiser = torch.optim.Adam(model.parameters())
    schedule = _schedule(optimiser, steps, lr)
    generator = torch.Generator().manual_seed(seed)
    bar = tqdm(_batches(len(x_u8), steps, batch, generator), total=steps, desc=name, disable=not progress)
    for idx in bar:
        logits = model(_augment(_floats(x_u8[idx]), generator))
        loss = F.cross_entropy(logits, labels[idx])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
    return model.eval()


@torch.no_grad()
def reconstruct(ae: SceneAutoencoder, x: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """(n, 3, 64, 64) images -> reconstructions, clamped to [0, 1], in batches."""
    return torch.cat([ae(x[i : i + batch]).clamp(0, 1) for i in range(0, len(x), batch)])


def evaluate(ae: SceneAutoencoder, probe_object: SceneProbe, probe_weather: SceneProbe, n: int = 1000) -> dict:
    """Figures on fresh scenes: autoencoder MSE seen / on held-out sunny ducks; probe accuracies."""
    seen = SceneDataset(n, exclude=HELD_OUT, seed=EVAL_SEED)
    ducks = SceneDataset(max(n // 4, 10), objects=["duck"], weathers=["sunny"], exclude=[], seed=EVAL_SEED + 1)
    every = SceneDataset(n, exclude=[], seed=EVAL_SEED + 2)
    x_seen, x_ducks, x_every = seen.tensor(), ducks.tensor(), every.tensor()
    recon_every = reconstruct(ae, x_every)
    objects, weathers = torch.from_numpy(every.objects), torch.from_numpy(every.weathers)
    accuracy = lambda probe, x, y: float((probe.predict(x) == y).float().mean())  # noqa: E731
    return {
        "ae_mse_seen": float(F.mse_loss(reconstruct(ae, x_seen), x_seen)),
        "ae_mse_unseen_sunny_duck": float(F.mse_loss(reconstruct(ae, x_ducks), x_ducks)),
        "probe_object_acc": accuracy(probe_object, x_every, objects),
        "probe_weather_acc": accuracy(probe_weather, x_every, weathers),
        "probe_object_acc_on_reconstructions": accuracy(probe_object, recon_every, objects),
        "probe_weather_acc_on_reconstructions": accuracy(probe_weather, recon_every, weathers),
        "eval_dataset_seeds": [EVAL_SEED, EVAL_SEED + 1, EVAL_SEED + 2],
        "eval_n": n,
    }


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m polylens.scenes.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=DEFAULTS["steps"], help="autoencoder steps (probes: steps // 6)")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"folder for *.safetensors and manifest.json (default: ./{DEFAULT_OUT}); "
                             "load them with load_autoencoder(DIR) and load_probes(DIR)")
    parser.add_argument("--overwrite-shipped", action="store_true",
                        help=f"replace the weights shipped inside the package ({WEIGHTS_DIR}) instead")
    parser.add_argument("--seed", type=int, default=DEFAULTS["seed"], help="seeds the models, batches and data")
    parser.add_argument("--threads", type=int, default=DEFAULTS["threads"], help="torch CPU threads")
    parser.add_argument("--n-train", type=int, default=DEFAULTS["n_train"], help="training scenes per network")
    parser.add_argument("--n-eval", type=int, default=1000, help="scenes for the figures in the manifest")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.n_train < 1 or args.threads < 1 or args.seed < 0 or args.n_eval < 10:
        parser.error("--steps, --n-train and --threads must be positive, --seed >= 0, --n-eval >= 10")
    args.out = output_folder(parser, args.out, args.overwrite_shipped, shipped=WEIGHTS_DIR, default=DEFAULT_OUT,
                             load_hint="load_autoencoder('{folder}')")
    return args


def main(argv: Sequence[str] | None = None) -> dict:
    """Train everything, write weights and manifest to ``--out``; returns the manifest."""
    args = _parse(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    start = time.perf_counter()
    progress = not args.quiet
    probe_steps = max(1, args.steps // 6)

    ae_data = SceneDataset(args.n_train, exclude=HELD_OUT, seed=_data_seed(args.seed, 1))
    _, masks = draw_batch(ae_data.params, ae_data.weathers, ae_data.size, with_mask=True)
    masks_u8 = torch.from_numpy(np.round(masks * 255).astype(np.uint8))[:, None]
    ae = train_autoencoder(_as_uint8(ae_data), masks_u8, args.steps, args.seed, DEFAULTS["batch"], DEFAULTS["lr"],
                           progress)
    del ae_data, masks, masks_u8
    probe_data = SceneDataset(args.n_train, exclude=[], seed=_data_seed(args.seed, 2))
    x = _as_uint8(probe_data)
    probes = {
        "probe_object": train_probe(x, torch.from_numpy(probe_data.objects), len(OBJECTS), probe_steps,
                                    args.seed + 1, name="object probe", progress=progress),
        "probe_weather": train_probe(x, torch.from_numpy(probe_data.weathers), len(WEATHERS), probe_steps,
                                     args.seed + 2, name="weather probe", progress=progress),
    }
    train_seconds = time.perf_counter() - start
    figures = evaluate(ae, probes["probe_object"], probes["probe_weather"], n=args.n_eval)

    models = {"autoencoder": save_model(ae, "autoencoder", args.out)}
    for name, probe in probes.items():
        models[name] = save_model(probe, name, args.out)
    models["autoencoder"]["held_out"] = HELD_OUT
    models["probe_object"]["classes"] = list(OBJECTS)
    models["probe_weather"]["classes"] = list(WEATHERS)
    manifest = {
        "format": 1,
        "models": models,
        "training": {
            "seed": args.seed,
            "steps": {"autoencoder": args.steps, "probes": probe_steps},
            "n_train": args.n_train,
            "batch": {"autoencoder": DEFAULTS["batch"], "probes": 64},
            "object_weight": OBJECT_WEIGHT,
            "lr": DEFAULTS["lr"],
            "threads": args.threads,
            "train_seconds": round(train_seconds, 1),
            "dataset_seeds": {"autoencoder": _data_seed(args.seed, 1), "probes": _data_seed(args.seed, 2)},
            "torch": torch.__version__,
            "command": "python -m polylens.scenes.train" + ("" if argv is None else " " + " ".join(map(str, argv))),
        },
        "figures": {k: round(v, 6) if isinstance(v, float) else v for k, v in figures.items()},
    }
    (Path(args.out) / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    if progress:
        print(json.dumps(manifest["figures"], indent=2))
        print(f"trained in {train_seconds / 60:.1f} min; wrote {args.out}")
        if args.out != WEIGHTS_DIR:
            print(f"load them with polylens.scenes.load_autoencoder({str(args.out)!r}) and load_probes(...)")
    return manifest


if __name__ == "__main__":
    main()
