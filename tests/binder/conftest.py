"""Loads tools/binder_check.py for the Binder tests and prints the dry run's table at the end."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_REPORT: list[str] = []


def load_tool():
    """tools/ is not a package; load the module once under a fixed name."""
    if "binder_check" not in sys.modules:
        spec = importlib.util.spec_from_file_location("binder_check", ROOT / "tools" / "binder_check.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["binder_check"] = module  # dataclasses look their module up here
        spec.loader.exec_module(module)
    return sys.modules["binder_check"]


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "binder: the Binder dry run (tests/binder/), minutes long; deselect with -m 'not binder'")


@pytest.fixture(scope="session")
def tool():
    return load_tool()


@pytest.fixture(scope="session")
def dry_run_report(tool):
    """The whole dry run, once per test run; it raises (never skips) when it cannot run."""
    report = tool.dry_run(log=lambda line: None)
    _REPORT.append(tool.format_report(report))
    return report


def pytest_terminal_summary(terminalreporter):
    # The table goes into every CI log, passing or not.
    for text in _REPORT:
        terminalreporter.section("Binder dry run")
        terminalreporter.write_line(text)
