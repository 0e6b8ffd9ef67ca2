"""Fixtures for the browser tests: one JupyterLab server and one headless Chromium per run.

They need the system Chromium (``apt-get install chromium``, or
``POLYLENS_CHROMIUM=/path/to/chromium``) and playwright's Python package (in
the ``test`` extra). Without them the tests are skipped, unless
``POLYLENS_REQUIRE_BROWSER=1`` is set (CI sets it): then they fail.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import labdriver  # noqa: E402

HOW = ("install Chromium (`apt-get install chromium`, or point POLYLENS_CHROMIUM=/path/to/chromium at one) "
       "and playwright (`.venv/bin/pip install -e '.[test]'`); never let Playwright download a browser. "
       "Deselect these tests with `pytest -m 'not browser'`.")


def _missing() -> tuple[str | None, str | None]:
    """(chromium path or None, what is missing or None)."""
    problems = []
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problems.append("the playwright package is not installed")
    chromium = os.environ.get("POLYLENS_CHROMIUM")
    if chromium:
        if not (os.path.isfile(chromium) and os.access(chromium, os.X_OK)):
            problems.append(f"POLYLENS_CHROMIUM={chromium} is not an executable file")
            chromium = None
    else:
        candidates = ["/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")]
        chromium = next((c for c in candidates if c and os.access(c, os.X_OK)), None)
        if chromium is None:
            problems.append("no Chromium at /usr/bin/chromium or on PATH")
    return chromium, "; ".join(problems) or None


@pytest.fixture(scope="session")
def chromium_path() -> str:
    chromium, problem = _missing()
    if problem:
        if os.environ.get("POLYLENS_REQUIRE_BROWSER") == "1":
            pytest.fail(f"POLYLENS_REQUIRE_BROWSER=1 but {problem}: {HOW}", pytrace=False)
        pytest.skip(f"browser tests skipped: {problem}. To run them, {HOW}")
    return chromium


# Module scope: Playwright's sync API allows one running instance per thread, and the site tests
# (tests/site/) reuse this fixture; each test module starts and stops its own Chromium.
@pytest.fixture(scope="module")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=chromium_path, args=labdriver.CHROMIUM_FLAGS)
        try:
            yield b
        finally:
            b.close()
    finally:
        pw.stop()


@pytest.fixture(scope="session")
def lab(chromium_path, tmp_path_factory):
    server = labdriver.LabServer(tmp_path_factory.mktemp("jupyterlab"))
    try:
        server.start()
        yield server
    finally:
        try:
            if server.proc is not None:
                server.delete_all_sessions()
        except Exception:
            pass
        server.stop()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    labdriver.ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return labdriver.ARTIFACTS
