"""Where the retraining scripts write: a folder the user names, never the package, unless asked.

A short trial run written over the shipped files would leave a useless model
that still loads without complaint (its manifest matches the new files).
"""

from __future__ import annotations

import argparse
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent  # polylens/


def inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or lies below it."""
    return path == folder or folder in path.parents


def output_folder(parser: argparse.ArgumentParser, out: Path | None, overwrite_shipped: bool, *, shipped: Path,
                  default: Path, load_hint: str) -> Path:
    """``out`` (default ``default``), refused inside the package; ``shipped`` only with ``--overwrite-shipped``.

    ``load_hint`` says how to load from a folder, e.g. "load_autoencoder('{folder}')".
    """
    if overwrite_shipped:
        if out is not None and out.resolve() != shipped.resolve():
            parser.error(f"--overwrite-shipped writes to {shipped}; leave out --out {out}, or drop the flag")
        return shipped
    out = default if out is None else out
    if inside(out.resolve(), PACKAGE_DIR):
        parser.error(
            f"--out {out} is inside the polylens package, where the shipped files live; retrained files "
            f"go to a folder of your own (e.g. --out {default}, then {load_hint.format(folder=default)}). "
            "To replace the shipped files on purpose, pass --overwrite-shipped instead"
        )
    return out
