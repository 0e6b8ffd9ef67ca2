"""The site tests build the course website once and open it in the browser tests' headless Chromium.

Chromium and Playwright are found, skipped or required exactly as in
tests/browser/ (POLYLENS_CHROMIUM, POLYLENS_REQUIRE_BROWSER=1): its fixtures
are reused here.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
_spec = importlib.util.spec_from_file_location("polylens_browser_conftest", HERE.parent / "browser" / "conftest.py")
_browser = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_browser)

# The browser tests' fixtures: the Chromium path (or a skip), one browser per run, the artifacts folder.
chromium_path = _browser.chromium_path
browser = _browser.browser
artifacts = _browser.artifacts


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    """The site, built once by tools/build_site.py into a temporary folder."""
    out = tmp_path_factory.mktemp("site")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, str(REPO / "tools" / "build_site.py"), "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True)
    if done.returncode:
        pytest.fail(f"tools/build_site.py failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}", pytrace=False)
    # Printed, never asserted: a busy machine is slower, not broken.
    print(f"\nsite built in {time.perf_counter() - start:.0f} s\n{done.stdout}")
    return out
