"""The time and memory it takes to build the course website (tools/build_site.py).

    python -m benchmarks.bench_site [--jobs N]

The builder runs in a fresh process writing into a temporary folder. Peak
memory is given two ways: the largest single process (the builder or one of
its notebook kernels, from the operating system's accounting of finished
children) and all of them together (sampled every 0.2 s).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]

# The builder runs under this wrapper, so the largest process counted is one of this build's only.
_WRAP = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:])
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)
sys.exit(done.returncode)
"""


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def build(jobs: int | None = None) -> dict:
    """{'seconds', 'largest_mb', 'together_mb', 'pages'} for one build of the site."""
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-c", _WRAP, sys.executable, str(ROOT / "tools" / "build_site.py"), "--out", out]
        if jobs:
            cmd += ["--jobs", str(jobs)]
        start = time.perf_counter()
        child = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        watched, together = psutil.Process(child.pid), 0
        while child.poll() is None:
            try:
                together = max(together, _tree_rss(watched))
            except psutil.Error:
                pass
            time.sleep(0.2)
        stdout, stderr = child.communicate()
        seconds = time.perf_counter() - start
        if child.returncode:
            raise RuntimeError(f"tools/build_site.py failed:\n{stderr[-3000:]}")
        pages = len(list(Path(out).glob("*.html")))
    largest = int(stderr.strip().splitlines()[-1]) / 1024  # kB on Linux
    return {"seconds": seconds, "largest_mb": largest, "together_mb": together / 2**20, "pages": pages,
            "log": stdout}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="time and peak memory of building the course website")
    parser.add_argument("--jobs", type=int, default=None, help="notebooks executed at once (the builder's default)")
    args = parser.parse_args(argv if argv is not None else [])
    r = build(args.jobs)
    print(r["log"].rstrip())
    print(f"site: {r['pages']} pages in {r['seconds']:.0f} s; peak memory {r['largest_mb']:.0f} MB in the largest "
          f"process, {r['together_mb']:.0f} MB for all processes together")


if __name__ == "__main__":
    main(sys.argv[1:])
