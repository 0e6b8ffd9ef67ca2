"""Keep notebooks committed without outputs, except the cells nbval checks.

    python tools/nbclean.py notebooks/*.ipynb            # strip outputs
    python tools/nbclean.py --execute notebooks/01_*.ipynb  # run, keep checked outputs

A cell marked ``# NBVAL_CHECK_OUTPUT`` keeps its outputs (nbval compares
them; with no stored output it would pass silently). Every other cell loses
its outputs and execution count, and notebook-level widget state is dropped.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

MARK = "NBVAL_CHECK_OUTPUT"


def is_checked(cell) -> bool:
    return cell.cell_type == "code" and MARK in cell.source


def clean(nb) -> None:
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cell.metadata.pop("execution", None)
        if is_checked(cell):
            # Keep only stable text outputs; figures and widgets are not compared.
            cell.outputs = [o for o in cell.outputs if o.output_type == "stream" or "text/plain" in o.get("data", {})]
            for o in cell.outputs:
                if "data" in o:
                    o["data"] = {"text/plain": o["data"]["text/plain"]}
                    o.pop("metadata", None)
        else:
            cell.outputs = []
            cell.execution_count = None


def execute(nb, path: Path) -> None:
    from nbclient import NotebookClient

    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--execute", action="store_true", help="run first, to refresh checked outputs")
    args = parser.parse_args(argv)
    for path in args.notebooks:
        nb = nbformat.read(path, as_version=4)
        if args.execute:
            execute(nb, path)
        clean(nb)
        nbformat.write(nb, path)
        print(f"cleaned {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
