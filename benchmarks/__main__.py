"""Print every benchmark table: ``python -m benchmarks`` (or ``make bench``).

Each ``benchmarks/bench_*.py`` has a ``main()`` that prints its own table,
and every such module is found and run here: timings (medians of repeats
measured side by side in one run) and, from ``bench_memory``, the peak
resident memory of big calls, each in a fresh process. The machine is named
at the top so a table can be quoted with it.
"""

import importlib
import os
import platform
import pkgutil

import torch

import benchmarks


def machine() -> str:
    return (
        f"{platform.machine()} {platform.processor() or ''}".strip()
        + f", {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"
    )


def main() -> None:
    print(f"# polylens benchmarks on {machine()}\n")
    for info in sorted(pkgutil.iter_modules(benchmarks.__path__), key=lambda m: m.name):
        if info.name.startswith("bench_"):
            print(f"## {info.name.removeprefix('bench_')}")
            importlib.import_module(f"benchmarks.{info.name}").main()
            print()


if __name__ == "__main__":
    main()
