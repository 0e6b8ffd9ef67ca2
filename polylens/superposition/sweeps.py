"""Shipped sweeps too slow for a notebook: trained once, saved, checked at load.

    python -m polylens.superposition.sweeps        # regenerate into ./superposition-data (about 12 min on one core)
    python -m polylens.superposition.sweeps --overwrite-shipped   # replace the shipped data/ on purpose

Two sweeps live in ``polylens/superposition/data/`` as ``.safetensors`` files
(never pickle), each with its sha256 in ``manifest.json`` beside it:

- ``dstar``: dimensions per feature D* against sparsity, the paper's "sticky
  fractions" figure, shrunk from its 400 features in 30 dimensions to
  ``DSTAR["n_features"]`` = 200 in ``DSTAR["n_hidden"]`` = 20 (557 s on one
  core of a busy two-core machine: too slow for a notebook, so it ships);
- ``phase_n2``: the n=2, m=1 phase diagram (which of two features a single
  hidden dimension keeps, or both as an antipodal pair), over feature
  density x relative importance, best of a few seeds per cell.

:func:`load` refuses a file whose sha256 differs from the manifest, so a
corrupted or hand-edited file is never used silently; a missing file, a
manifest that is not valid (hand-edited) or a file that does not hold a toy
model is refused with a :class:`DataError` that says how to get it back. Training is seeded;
the same torch version and thread count give the same bytes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from safetensors import SafetensorError

from polylens._output import output_folder
from polylens.shipped import MANIFEST, manifest, sha256, verified
from polylens.superposition.toy import ToyModel, train_tms

__all__ = ["DSTAR", "PHASE", "DATA", "DataError", "dstar_sweep", "phase_diagram_n2", "phase_of", "load", "sha256",
           "main"]

DATA = Path(__file__).parent / "data"

# Feature probabilities from dense (1) to very sparse, log-spaced.
DSTAR = dict(n_features=200, n_hidden=20, n_settings=20, p_min=1e-3, steps=4000, lr=1e-2, batch_size=1024, seed=0)
PHASE = dict(n_density=12, n_importance=12, n_seeds=3, density_min=0.01, importance_range=10.0, steps=2000,
             lr=1e-2, batch_size=1024, seed=0)

PHASE_NAMES = ("feature 1 only", "feature 2 only", "both, antipodal")
REGENERATE = "python -m polylens.superposition.sweeps"
DEFAULT_OUT = Path("superposition-data")  # relative to the current directory: never inside the package


class DataError(ValueError):
    """A shipped sweep file or its manifest is missing, altered or unreadable.

    A ``ValueError``, so code written for the sha256 check's ``ValueError`` still catches it.
    """


def _restore_hint(data: Path) -> str:
    where = " --overwrite-shipped" if data.resolve() == DATA.resolve() else f" --out {data}"
    return (f"Restore the folder from git (or reinstall polylens), or regenerate it with `{REGENERATE}{where}` "
            "(about 12 minutes on one core).")


def dstar_probabilities(n_settings: int = DSTAR["n_settings"], p_min: float = DSTAR["p_min"]) -> torch.Tensor:
    """(n_settings,) feature probabilities 1 - S, log-spaced from 1 down to ``p_min``."""
    return torch.logspace(0, float(torch.log10(torch.tensor(p_min))), n_settings)


def dstar_sweep(progress: bool = True, **overrides) -> ToyModel:
    """Train the D* sweep: one instance per sparsity, all features equally important."""
    cfg = {**DSTAR, **overrides}
    p = dstar_probabilities(cfg["n_settings"], cfg["p_min"])
    return train_tms(cfg["n_features"], cfg["n_hidden"], p, n_instances=len(p), steps=cfg["steps"], lr=cfg["lr"],
                     batch_size=cfg["batch_size"], seed=cfg["seed"], progress=progress)


def phase_grid(n_density: int = PHASE["n_density"], n_importance: int = PHASE["n_importance"],
               density_min: float = PHASE["density_min"], importance_range: float = PHASE["importance_range"]):
    """(densities (n_density,), relative importances (n_importance,)), both log-spaced."""
    dens = torch.logspace(float(torch.log10(torch.tensor(density_min))), 0, n_density)
    r = float(torch.log10(torch.tensor(importance_range)))
    return dens, torch.logspace(-r, r, n_importance)


def phase_diagram_n2(progress: bool = True, **overrides) -> ToyModel:
    """Train n=2, m=1 models over density x importance of feature 2 (feature 1 has importance 1).

    Instance ``(i, j, s)`` (flattened in that order) has density ``dens[i]``,
    importance ``[1, imp[j]]`` and is the s-th seed of that cell: each gets
    its own random start, and :func:`phase_of` keeps the lowest loss.
    """
    cfg = {**PHASE, **overrides}
    dens, imp = phase_grid(cfg["n_density"], cfg["n_importance"], cfg["density_min"], cfg["importance_range"])
    d, r = torch.meshgrid(dens, imp, indexing="ij")
    n_seeds = cfg["n_seeds"]
    p = d.reshape(-1).repeat_interleave(n_seeds)
    importance = torch.stack([torch.ones_like(r), r], dim=-1).reshape(-1, 2).repeat_interleave(n_seeds, dim=0)
    return train_tms(2, 1, p[:, None].expand(-1, 2).contiguous(), importance, n_instances=len(p),
                     steps=cfg["steps"], lr=cfg["lr"], batch_size=cfg["batch_size"], seed=cfg["seed"],
                     progress=progress)


def phase_of(model: ToyModel, n_density: int = PHASE["n_density"], n_importance: int = PHASE["n_importance"],
             threshold: float = 0.5) -> torch.Tensor:
    """(n_density, n_importance) phase of the best seed per cell: 0, 1 or 2 (see ``PHASE_NAMES``).

    A feature counts as kept when its column of W has norm above ``threshold``;
    -1 marks a cell that kept neither.
    """
    W = model.W.detach().reshape(n_density, n_importance, -1, 1, 2)
    best = model.loss.reshape(n_density, n_importance, -1).argmin(-1)
    W = torch.take_along_dim(W, best[..., None, None, None], dim=2)[:, :, 0, 0]  # (d, i, 2)
    kept = W.abs() > threshold
    phase = torch.full(kept.shape[:2], -1, dtype=torch.long)
    phase[kept[..., 0] & ~kept[..., 1]] = 0
    phase[~kept[..., 0] & kept[..., 1]] = 1
    phase[kept[..., 0] & kept[..., 1]] = 2
    return phase


# ----------------------------------------------------------------------------- files


def load(name: str, data: str | Path = DATA) -> ToyModel:
    """Load shipped sweep ``name`` ("dstar" or "phase_n2"), refusing a file whose sha256 is not the manifest's."""
    data = Path(data)
    hint = _restore_hint(data)
    sweeps = manifest(data, error=DataError, hint=hint)
    if name not in sweeps:
        raise KeyError(f"no shipped sweep {name!r}; known: {', '.join(sorted(sweeps))}")
    path, _ = verified(data, sweeps, name, error=DataError, hint=hint)
    try:
        return ToyModel.load(path)
    except (SafetensorError, OSError, KeyError, ValueError, RuntimeError) as err:
        # safetensors' own error, a missing tensor, a shape that does not unpack, weights that do not fit
        raise DataError(f"{path} matches its manifest but does not hold a toy model ({type(err).__name__}: "
                        f"{err}). {hint}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=REGENERATE, description="Regenerate the superposition sweeps.")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"folder for the sweeps and their manifest (default: ./{DEFAULT_OUT}); "
                             "load them with sweeps.load(name, DIR)")
    parser.add_argument("--overwrite-shipped", action="store_true",
                        help=f"replace the sweeps shipped inside the package ({DATA}) instead")
    parser.add_argument("--only", choices=("dstar", "phase_n2"), default=None)
    args = parser.parse_args(argv)
    args.out = output_folder(parser, args.out, args.overwrite_shipped, shipped=DATA, default=DEFAULT_OUT,
                             load_hint="sweeps.load('dstar', '{folder}')")
    args.out.mkdir(parents=True, exist_ok=True)
    path_m = args.out / MANIFEST
    table = json.loads(path_m.read_text()) if path_m.exists() else {}
    jobs = {"dstar": (dstar_sweep, DSTAR), "phase_n2": (phase_diagram_n2, PHASE)}
    for name, (train, cfg) in jobs.items():
        if args.only and name != args.only:
            continue
        model = train(progress=True)
        path = args.out / f"{name}.safetensors"
        model.save(path)
        table[name] = {"file": path.name, "sha256": sha256(path), "config": cfg,
                       "torch": torch.__version__, "threads": torch.get_num_threads()}
        print(f"{name}: wrote {path} ({path.stat().st_size / 1e3:.0f} kB)")
    path_m.write_text(json.dumps(table, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
