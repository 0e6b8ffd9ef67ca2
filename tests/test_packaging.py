"""The three dependency lists (pyproject, environment.yml, binder/) cannot drift."""

import os
import re
import sys
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def runtime_requirements() -> dict[str, Requirement]:
    """What a learner's environment needs: the package's deps plus JupyterLab."""
    project = pyproject()["project"]
    reqs = project["dependencies"] + project["optional-dependencies"]["lab"]
    return {Requirement(r).name.lower(): Requirement(r) for r in reqs}


def pip_lines(lines: list[str]) -> dict[str, Requirement]:
    out = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            req = Requirement(line)
            out[req.name.lower()] = req
    return out


def binder_requirements() -> dict[str, Requirement]:
    return pip_lines((ROOT / "binder" / "requirements.txt").read_text().splitlines())


def conda_requirements() -> dict[str, Requirement]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = [d["pip"] for d in env["dependencies"] if isinstance(d, dict)]
    assert len(pip_section) == 1, "environment.yml should have one pip: section"
    return pip_lines(pip_section[0])


def exact_version(req: Requirement) -> Version:
    (spec,) = list(req.specifier)
    assert spec.operator == "==", f"{req} must be pinned exactly in binder/ and environment.yml"
    # Drop the local tag (+cpu): it names the CPU wheel of the same release.
    return Version(spec.version.split("+")[0])


def test_same_packages_everywhere():
    expected = set(runtime_requirements())
    assert set(binder_requirements()) == expected, "binder/requirements.txt vs pyproject"
    assert set(conda_requirements()) == expected, "environment.yml vs pyproject"


def test_binder_and_conda_pins_agree_and_satisfy_pyproject():
    runtime, binder, conda = runtime_requirements(), binder_requirements(), conda_requirements()
    for name, req in runtime.items():
        pinned = exact_version(binder[name])
        assert pinned == exact_version(conda[name]), f"{name}: binder and environment.yml differ"
        assert req.specifier.contains(pinned, prereleases=True), f"{name}=={pinned} outside {req}"


def test_torch_is_pinned_exactly_and_cpu_only_for_binder():
    (spec,) = list(runtime_requirements()["torch"].specifier)
    assert spec.operator == "==", "an unpinned torch pulls several GB of CUDA wheels"
    binder_text = (ROOT / "binder" / "requirements.txt").read_text()
    assert "whl/cpu" in binder_text and "+cpu" in str(binder_requirements()["torch"].specifier)
    assert "whl/cpu" in (ROOT / "environment.yml").read_text()


def test_makefile_never_installs_bare_torch():
    makefile = (ROOT / "Makefile").read_text()
    assert not re.search(r"install[^\n]*\btorch\b(?!==)", makefile)
    assert '-e ".[lab,test]"' in makefile  # torch comes from pyproject's exact pin
    assert '-e ".[lab]"' in makefile  # make lab installs what a learner needs, not the test tools


def test_binder_python_matches_requires_python():
    runtime = (ROOT / "binder" / "runtime.txt").read_text().strip()
    match = re.fullmatch(r"python-(\d+\.\d+)", runtime)
    assert match, "binder/runtime.txt must read like python-3.11"
    requires = SpecifierSet(pyproject()["project"]["requires-python"])
    assert requires.contains(match.group(1) + ".0")


def test_binder_installs_the_package_itself():
    post_build = ROOT / "binder" / "postBuild"
    assert post_build.stat().st_mode & 0o111, "postBuild must be executable"
    assert re.search(r"pip install .*--no-deps.* \.", post_build.read_text())


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make lab" in readme
    assert re.search(r"^make test$", ci, re.M)
    assert "set -euo pipefail" in ci


def test_make_lab_serves_the_notebooks_and_runs_as_root():
    import os
    import shutil
    import subprocess

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    dry = subprocess.run(["make", "-n", "lab"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    lab = [line for line in dry.splitlines() if "jupyter lab" in line]
    # The repository root is served, so the notebooks' links to ../docs/ open; it starts at the welcome notebook.
    assert lab and "--ServerApp.root_dir=." in lab[-1] and "/lab/tree/notebooks/00_welcome.ipynb" in lab[-1]
    # Jupyter refuses to start as root without --allow-root (containers often run as root).
    assert ("--allow-root" in lab[-1]) == (os.geteuid() == 0)


def test_the_test_run_writes_inside_the_checkout(tmp_path):
    """matplotlib's cache and config, Jupyter's files and tmp_path all stay in the ignored .test-tmp/."""
    import matplotlib

    root = Path(__file__).resolve().parents[1] / ".test-tmp"
    for where in (matplotlib.get_configdir(), matplotlib.get_cachedir(), os.environ["JUPYTER_RUNTIME_DIR"],
                  os.environ["IPYTHONDIR"], tmp_path):
        assert Path(where).resolve().is_relative_to(root), f"{where} is outside {root}"
    assert ".test-tmp/" in (root.parent / ".gitignore").read_text().split()


def test_importing_polylens_starts_no_plotting():
    """The library imports pyplot only where it draws; the drawing modules still load on first use."""
    import subprocess

    code = ("import sys, polylens; assert 'matplotlib.pyplot' not in sys.modules, 'pyplot loaded'; "
            "from polylens.superposition import plots, dictionary_plots; import polylens.superposition as sp; "
            "assert sp.plots is plots and sp.dictionary_plots is dictionary_plots")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_license_file_matches_pyproject():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert data["project"]["license"]["text"] == "MIT"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
