"""Checked notebook outputs are the same under another set of CPU kernels.

torch picks its arithmetic kernels by CPU capability, so a trained quantity can
differ in its last digit on another machine. A cell nbval compares must print
only what that cannot move. This runs every notebook again with
``ATEN_CPU_CAPABILITY=default`` (torch's plain kernels), beside the main run's
native ones (avx2 or avx512 on x86), so a checked output that depends on the
kernels fails here instead of on a learner's machine.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def test_checked_notebook_outputs_hold_under_the_default_kernels():
    native = torch.backends.cpu.get_cpu_capability()
    if native.upper() in ("DEFAULT", "NO AVX"):
        pytest.skip(f"this CPU offers only torch's default kernels ({native}): the main run already used them")
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "default"}
    probe = subprocess.run([sys.executable, "-c", "import torch; print(torch.backends.cpu.get_cpu_capability())"],
                           env=env, capture_output=True, text=True, timeout=300, check=True)
    assert probe.stdout.strip().upper() == "DEFAULT"  # the setting reaches torch in a fresh process
    # A hang guard many times the normal run (about three minutes on two cores).
    done = subprocess.run([sys.executable, "-m", "pytest", "notebooks", "-q", "-p", "no:cacheprovider"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=3600)
    assert done.returncode == 0, f"under the default kernels (native: {native}):\n{done.stdout[-4000:]}"
