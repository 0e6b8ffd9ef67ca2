"""Print every benchmark table: ``python -m benchmarks`` (or ``make bench``).

``python -m benchmarks --only compose`` runs one (``--list`` names them all).

Each ``benchmarks/bench_*.py`` has a ``main()`` that prints its own table,
and every such module is found and run here: timings (medians of repeats
measured side by side in one run) and, from ``bench_memory``, the peak
resident memory of big calls, each in a fresh process. The machine is named
at the top so a table can be quoted with it.
"""

import argparse
import importlib
import inspect
import os
import platform
import pkgutil
import sys

import torch

import benchmarks


def machine() -> str:
    return (
        f"{platform.machine()} {platform.processor() or ''}".strip()
        + f", {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"
    )


def names() -> list[str]:
    """Every benchmark, by the name after ``bench_``, in the order they run."""
    return sorted(m.name.removeprefix("bench_") for m in pkgutil.iter_modules(benchmarks.__path__)
                  if m.name.startswith("bench_"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", metavar="NAME", choices=names(),
                        help="run only this benchmark (repeatable); one of: " + ", ".join(names()))
    parser.add_argument("--list", action="store_true", help="name every benchmark and stop")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(names()))
        return
    print(f"# polylens benchmarks on {machine()}\n")
    for name in args.only or names():
        print(f"## {name}")
        run = importlib.import_module(f"benchmarks.bench_{name}").main
        # A module's main() reads its own flags (from argv or sys.argv); the runner's flags are not its.
        saved, sys.argv = sys.argv, sys.argv[:1]
        try:
            run([]) if "argv" in inspect.signature(run).parameters else run()
        finally:
            sys.argv = saved
        print()


if __name__ == "__main__":
    main()
