"""binder/ holds what repo2docker reads, and the dry run's own checks catch each way it can go wrong.

Quick: nothing is built, and only the last test starts kernels (two tiny
notebooks). tests/test_packaging.py already checks that
binder/requirements.txt pins the same packages as pyproject and environment.yml.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def repo(tmp_path):
    """A copy of this project's binder/ to break."""
    shutil.copytree(ROOT / "binder", tmp_path / "binder")
    return tmp_path


def test_binder_files_are_what_repo2docker_reads(tool):
    assert tool.check_binder_dir(ROOT) == []


def test_the_copy_starts_consistent(tool, repo):
    assert tool.check_binder_dir(repo) == []


def _edit(path, old, new):
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


BREAKAGES = {
    "no postBuild": (lambda r: (r / "binder" / "postBuild").unlink(), "binder/postBuild is missing"),
    "no runtime.txt": (lambda r: (r / "binder" / "runtime.txt").unlink(), "binder/runtime.txt is missing"),
    "conda file in binder/": (lambda r: (r / "binder" / "environment.yml").write_text("name: x\n"),
                              "environment.yml would make repo2docker ignore"),
    "Dockerfile in binder/": (lambda r: (r / "binder" / "Dockerfile").write_text("FROM x\n"), "Dockerfile"),
    "top-level requirements.txt": (lambda r: (r / "requirements.txt").write_text("numpy\n"),
                                   "requirements.txt at the top level is never read"),
    "CUDA torch": (lambda r: _edit(r / "binder" / "requirements.txt", "+cpu", ""), "pin a CPU-only build"),
    "unpinned torch": (lambda r: _edit(r / "binder" / "requirements.txt", "torch==2.13.0+cpu", "torch"),
                       "pin a CPU-only build"),
    "two torch lines": (lambda r: _edit(r / "binder" / "requirements.txt", "torch==", "torch>=2\ntorch=="),
                        "pin torch once"),
    "no CPU index": (lambda r: _edit(r / "binder" / "requirements.txt", "--extra-index-url", "# --extra-index-url"),
                     "lacks --extra-index-url"),
    "postBuild not executable": (lambda r: (r / "binder" / "postBuild").chmod(0o644), "not executable"),
    "postBuild pulls deps": (lambda r: _edit(r / "binder" / "postBuild", "--no-deps ", ""), "--no-deps"),
    "postBuild without #!": (lambda r: _edit(r / "binder" / "postBuild", "#!", "# "), "no #! line"),
    "bad runtime.txt": (lambda r: (r / "binder" / "runtime.txt").write_text("3.11\n"), "runtime.txt reads '3.11'"),
    "no binder/": (lambda r: shutil.rmtree(r / "binder"), "no binder/ folder"),
}


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_each_inconsistency_is_reported(tool, repo, breakage):
    breaks, message = BREAKAGES[breakage]
    breaks(repo)
    problems = tool.check_binder_dir(repo)
    assert any(message in p for p in problems), problems


def test_a_python_the_machine_lacks_fails_clearly(tool):
    with pytest.raises(tool.BinderCheckError, match=r"asks for Python 3\.99 but python3\.99 is not on PATH"):
        tool.find_interpreter("3.99", which=lambda name: None)


def test_the_python_runtime_txt_names_is_found(tool):
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    found = tool.find_interpreter(version)
    done = subprocess.run([str(found), "-c", "import sys; print(sys.version_info[:2])"],
                          capture_output=True, text=True, check=True)
    assert done.stdout.strip() == str(sys.version_info[:2])


def test_only_unreachable_index_lines_are_left_out(tool):
    text = (ROOT / "binder" / "requirements.txt").read_text()
    assert tool.installable(text, can_reach=lambda url: True) == (text, [])
    kept, dropped = tool.installable(text, can_reach=lambda url: False)
    assert dropped == ["--extra-index-url https://download.pytorch.org/whl/cpu"]
    assert kept.splitlines() == [line for line in text.splitlines() if not line.startswith("--extra-index-url")]


def test_a_closed_port_is_unreachable_and_local_paths_are_not_probed(tool):
    assert not tool.reachable("http://127.0.0.1:9/simple", timeout=2)
    assert tool.reachable("/some/local/wheels")


def test_the_environment_is_rebuilt_when_the_requirements_change(tool):
    python = tool.find_interpreter(f"{sys.version_info.major}.{sys.version_info.minor}")
    assert tool.stamp_for(python, "numpy==2.4.6\n") == tool.stamp_for(python, "numpy==2.4.6\n")
    assert tool.stamp_for(python, "numpy==2.4.6\n") != tool.stamp_for(python, "numpy==2.4.7\n")


@pytest.mark.parametrize("wall_s, peak_mb, error, problem", [
    (30.0, 600.0, "", None),
    # Slow is not broken: only an error, too much memory or a hang (an error) fails.
    (5000.0, 600.0, "", None),
    (30.0, 1600.0, "", "kernel peak 1600 MB > 1536 MB"),
    (3.0, float("nan"), "cell raised: ValueError", "cell raised: ValueError"),
])
def test_limits(tool, wall_s, peak_mb, error, problem):
    run = tool.NotebookRun("a", wall_s, peak_mb, error)
    assert run.problems() == ([problem] if problem else [])
    report = tool.Report(runs=[run])
    assert bool(report.failures()) == bool(problem)
    assert (problem or "ok") in tool.table(report.runs)


def test_the_copy_for_postbuild_holds_the_checkout_and_never_the_environment(tool, tmp_path):
    if shutil.which("git") is None:
        pytest.fail("the Binder dry run needs git to know which files a checkout holds")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / ".gitignore").write_text("ignored/\n")
    for name in ["tracked.py", "new.ipynb", "ignored/x.py", "env/lib.py"]:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("")
    subprocess.run(["git", "add", "tracked.py"], cwd=tmp_path, check=True)
    names = tool.checkout_files(tmp_path, skip=tmp_path / "env")
    assert sorted(names) == [".gitignore", "new.ipynb", "tracked.py"]


def test_the_runner_measures_the_kernel_and_reports_a_failing_cell(tool, tmp_path):
    """Through the same runner as the dry run, in this environment: peak memory is the kernel's, errors surface."""
    import nbformat
    cells = {"big": ["import numpy as np", "a = np.ones(400 * 2**20 // 8)  # 400 MB, written so resident"],
             "raises": ["x = 1", "raise ValueError('broken on purpose')"]}
    for name, sources in cells.items():
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, tmp_path / f"{name}.ipynb")
    env = tool.clean_env(Path(sys.prefix), tmp_path / "home")
    big = tool.run_notebook(Path(sys.prefix), tmp_path / "big.ipynb", env)
    assert not big.error and 400 < big.peak_mb < 1000 and big.wall_s > 0
    broken = tool.run_notebook(Path(sys.prefix), tmp_path / "raises.ipynb", env)
    assert "ValueError" in broken.error and broken.problems()


def test_the_runner_compares_checked_outputs_under_the_default_kernels(tool, tmp_path):
    """A checked cell whose output moved fails the dry run; one that prints the same passes. The kernel runs
    with torch's plain kernels (ATEN_CPU_CAPABILITY=default), as another CPU might."""
    import nbformat

    def notebook(name, stored):
        cell = nbformat.v4.new_code_cell(
            "# NBVAL_CHECK_OUTPUT\nimport os, torch\nprint(os.environ['ATEN_CPU_CAPABILITY'], "
            "torch.backends.cpu.get_cpu_capability())")
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=stored)]
        nb = nbformat.v4.new_notebook(cells=[cell])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, tmp_path / f"{name}.ipynb")

    notebook("same", "default DEFAULT\n")
    notebook("moved", "default AVX2\n")
    env = tool.clean_env(Path(sys.prefix), tmp_path / "home")
    assert env["ATEN_CPU_CAPABILITY"] == "default"
    assert tool.run_notebook(Path(sys.prefix), tmp_path / "same.ipynb", env).error == ""
    moved = tool.run_notebook(Path(sys.prefix), tmp_path / "moved.ipynb", env)
    assert "checked cell 0" in moved.error and "'default AVX2'" in moved.error and moved.problems()
