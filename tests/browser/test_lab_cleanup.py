"""A JupyterLab server the tests start does not outlive a test run that is killed from outside."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

pytestmark = pytest.mark.browser

RUNNER = """
import sys, time
sys.path.insert(0, {here!r})
from pathlib import Path
from labdriver import LabServer
server = LabServer(Path({base!r}))
server.start()
print(server.proc.pid, flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has exited; only its parent's wait is missing.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(")")[-1].split()[0] != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_the_lab_server_stops_when_the_run_is_killed(tmp_path):
    runner = subprocess.Popen([sys.executable, "-c", RUNNER.format(here=str(HERE), base=str(tmp_path))],
                              stdout=subprocess.PIPE, text=True)
    try:
        pid = int(runner.stdout.readline())
        assert _alive(pid)
        runner.send_signal(signal.SIGKILL)  # no teardown runs: what a CI timeout does
        runner.wait(timeout=60)
        deadline = time.monotonic() + 60  # a hang guard; the server stops within a second or two
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(pid), "the JupyterLab server outlived the killed test run"
    finally:
        runner.kill()
