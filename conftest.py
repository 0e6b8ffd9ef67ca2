"""Keep everything the test run writes inside the checkout's ignored ``.test-tmp/``.

Loaded before any test module and before nbval starts a notebook kernel, so
matplotlib's font cache and config, Jupyter's and IPython's files, and
pytest's temporary folders never land in the home folder or in /tmp.
Notebook kernels inherit these variables.
"""

import os
from pathlib import Path

import pytest

SCRATCH = Path(__file__).resolve().parent / ".test-tmp"

_DIRS = {
    "MPLCONFIGDIR": "matplotlib",
    "XDG_CACHE_HOME": "cache",
    "XDG_CONFIG_HOME": "config",
    "IPYTHONDIR": "ipython",
    "JUPYTER_CONFIG_DIR": "jupyter/config",
    "JUPYTER_DATA_DIR": "jupyter/data",
    "JUPYTER_RUNTIME_DIR": "jupyter/runtime",
}
for _var, _sub in _DIRS.items():
    (SCRATCH / _sub).mkdir(parents=True, exist_ok=True)
    os.environ[_var] = str(SCRATCH / _sub)


@pytest.hookimpl(tryfirst=True)  # before the tmp_path plugin reads it
def pytest_configure(config):
    # pytest's tmp_path folders go here too (cleared at the start of each run).
    if config.option.basetemp is None:
        config.option.basetemp = str(SCRATCH / "pytest")
