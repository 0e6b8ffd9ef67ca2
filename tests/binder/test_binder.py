"""The Binder dry run: binder/'s environment built as repo2docker does, every notebook run in it.

Slow (the environment build and every notebook on one CPU); `-m "not binder"` leaves it out.
"""

from pathlib import Path

import pytest

pytestmark = pytest.mark.binder

NOTEBOOKS = sorted(p.stem for p in (Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


def test_every_notebook_ran_in_the_binder_environment(dry_run_report):
    ran = [run.notebook for run in dry_run_report.runs]
    assert NOTEBOOKS and set(NOTEBOOKS) <= set(ran), f"ran {ran}, notebooks/ holds {NOTEBOOKS}"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_fits_binder(dry_run_report, tool, name):
    (run,) = [run for run in dry_run_report.runs if run.notebook == name]
    assert not run.error, f"{name} failed in the Binder environment: {run.error}"
    assert run.peak_mb <= tool.MEMORY_LIMIT_MB, f"{name}: kernel peak {run.peak_mb:.0f} MB"
    # Wall time is printed in the report, never asserted: a busy machine is slower, not broken.
