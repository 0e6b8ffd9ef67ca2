"""Binder dry run: build the environment from binder/ as repo2docker does, run every notebook in it.

    python tools/binder_check.py             # check binder/, build .binder-venv, run every notebook
    python tools/binder_check.py --check     # only check binder/ against what repo2docker reads
    python tools/binder_check.py 01 03       # run only the notebooks whose names start so

Steps, as repo2docker takes them for this repository:

1. Check binder/: when it exists repo2docker reads nothing else, so it must
   hold runtime.txt, requirements.txt and an executable postBuild, and no file
   that would switch repo2docker to another build pack (an environment.yml in
   binder/ would make it use conda and ignore requirements.txt). torch must be
   a ``+cpu`` build from PyTorch's CPU wheel index.
2. A fresh virtual environment from the Python named in runtime.txt, then
   ``pip install -r binder/requirements.txt``. It lives in .binder-venv/ and
   is rebuilt from scratch whenever the requirements or the Python version
   change (a hash stamp says which ones it was built from). Two differences
   from repo2docker: pip's cache is used (repo2docker passes --no-cache-dir,
   which changes how long the build takes, not what it installs), and an
   index in requirements.txt that cannot be reached from this machine is left
   out of the install, which the report says. binder/ is never changed; the
   exact pins, torch's +cpu one included, must then resolve from the other
   indexes, and the installed torch is checked to be a CPU-only build.
3. A copy of the checkout as Binder gets it (the files git tracks, plus new
   ones it does not ignore), where ``binder/postBuild`` runs every time (it
   installs the current package).
4. Every notebook, top to bottom, in a fresh kernel of that environment,
   pinned to one CPU (mybinder.org gives one CPU and about 2 GB). The kernel's
   peak resident memory (VmHWM) and the notebook's wall time are recorded and
   printed; the check fails only on what a learner would hit: a cell that
   raises, a kernel that peaks above 1.5 GB or dies, or a hang. Time is
   measured, never a reason to fail: a busy machine is slower, not broken.
5. Another CPU, simulated: the kernels run with ``ATEN_CPU_CAPABILITY=default``
   (torch's plain kernels, not the avx2 or avx512 ones the main test run
   uses), and every cell nbval checks (``# NBVAL_CHECK_OUTPUT``) must print
   exactly its stored output. Binder's machines vary; a checked output that
   moves with the CPU's instruction set fails here, not on a learner's screen.
   (The wall times are those of the plain kernels, a little slower.)
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".binder-venv"
MEMORY_LIMIT_MB = 1536.0
# A hang guard, not a speed limit: the slowest cell takes under a minute on one
# CPU, so a cell still running after many times that is stuck, and is stopped
# so the check always ends.
CELL_TIMEOUT_S = 1200.0
STAMP = ".binder-stamp"
# torch's kernels in the dry run: not the machine's own (see step 5 above).
CPU_CAPABILITY = "default"
CHECK_MARK = "NBVAL_CHECK_OUTPUT"

# Files in binder/ that would make repo2docker pick another build pack and
# ignore requirements.txt (conda, pipenv, Docker, Nix, Julia, R).
OTHER_BUILD_PACKS = ("environment.yml", "Pipfile", "Pipfile.lock", "Dockerfile", "default.nix",
                     "Project.toml", "REQUIRE", "install.R", "DESCRIPTION")
# Files repo2docker would read at the top level if binder/ did not exist; next
# to binder/ they look authoritative but Binder never reads them.
SHADOWED = ("requirements.txt", "runtime.txt", "postBuild", "apt.txt", "start")
INDEX_OPTION = re.compile(r"^(--extra-index-url|--index-url|-i|--find-links|-f)[\s=]+(\S+)")


class BinderCheckError(RuntimeError):
    """The dry run cannot go on; the message says why and what to do."""


@dataclasses.dataclass
class NotebookRun:
    notebook: str
    wall_s: float
    peak_mb: float
    error: str = ""

    def problems(self) -> list[str]:
        found = [self.error] if self.error else []
        if self.peak_mb > MEMORY_LIMIT_MB:
            found.append(f"kernel peak {self.peak_mb:.0f} MB > {MEMORY_LIMIT_MB:.0f} MB")
        return found


@dataclasses.dataclass
class Report:
    notes: list[str] = dataclasses.field(default_factory=list)
    runs: list[NotebookRun] = dataclasses.field(default_factory=list)
    build_s: float = 0.0
    total_s: float = 0.0

    def failures(self) -> list[str]:
        return [f"{run.notebook}: {p}" for run in self.runs for p in run.problems()]


# 1. What repo2docker reads -------------------------------------------------

def requirement_lines(text: str) -> list[str]:
    """requirements.txt lines without comments and blanks, as pip reads them."""
    lines = (re.sub(r"(^|\s)#.*", "", line).strip() for line in text.splitlines())
    return [line for line in lines if line]


def check_binder_dir(repo: Path) -> list[str]:
    """Every way binder/ differs from what this project's Binder image needs."""
    binder = repo / "binder"
    if not binder.is_dir():
        return ["no binder/ folder: repo2docker would read the top-level files instead"]
    problems = [f"binder/{name} is missing" for name in ("runtime.txt", "requirements.txt", "postBuild")
                if not (binder / name).is_file()]
    problems += [f"binder/{name} would make repo2docker ignore binder/requirements.txt"
                 for name in OTHER_BUILD_PACKS if (binder / name).exists()]
    problems += [f"{name} at the top level is never read by Binder (binder/ exists): move it into binder/"
                 for name in SHADOWED if (repo / name).exists()]
    if (binder / "runtime.txt").is_file():
        problems += _check_runtime((binder / "runtime.txt").read_text())
    if (binder / "requirements.txt").is_file():
        problems += _check_torch(requirement_lines((binder / "requirements.txt").read_text()))
    if (binder / "postBuild").is_file():
        problems += _check_post_build(binder / "postBuild")
    return problems


def _check_runtime(text: str) -> list[str]:
    if re.fullmatch(r"python-3\.\d+", text.strip()):
        return []
    return [f"binder/runtime.txt reads {text.strip()!r}; repo2docker wants e.g. 'python-3.11'"]


def _check_torch(lines: list[str]) -> list[str]:
    """torch must be one exact +cpu pin, with PyTorch's CPU index to find it on."""
    torch = [line for line in lines if re.match(r"torch\b(?![-_.\w])", line)]
    if len(torch) != 1:
        return [f"binder/requirements.txt should pin torch once, found {len(torch)} torch lines"]
    problems = []
    if not re.fullmatch(r"torch==\d+(\.\d+)*\+cpu", torch[0].replace(" ", "")):
        problems.append(f"binder/requirements.txt has {torch[0]!r}: pin a CPU-only build, torch==X.Y.Z+cpu")
    indexes = [m.group(2) for line in lines if (m := INDEX_OPTION.match(line))]
    if not any(url.rstrip("/").endswith("download.pytorch.org/whl/cpu") for url in indexes):
        problems.append("binder/requirements.txt lacks --extra-index-url https://download.pytorch.org/whl/cpu")
    return problems


def _check_post_build(path: Path) -> list[str]:
    text, problems = path.read_text(), []
    if not os.access(path, os.X_OK):
        problems.append("binder/postBuild is not executable (repo2docker runs it as ./binder/postBuild)")
    if not text.startswith("#!"):
        problems.append("binder/postBuild has no #! line")
    if not re.search(r"pip install\b[^\n]*--no-deps[^\n]*\s\.(\s|$)", text):
        problems.append("binder/postBuild should install the package with pip install --no-deps . "
                        "(its dependencies, CPU torch included, come from requirements.txt)")
    return problems


# 2. The environment ----------------------------------------------------------

def runtime_version(repo: Path) -> str:
    """'3.11' from binder/runtime.txt."""
    match = re.fullmatch(r"python-(3\.\d+)", (repo / "binder" / "runtime.txt").read_text().strip())
    if not match:
        raise BinderCheckError("binder/runtime.txt must read like python-3.11")
    return match.group(1)


def find_interpreter(version: str, which: Callable[[str], str | None] = shutil.which) -> Path:
    """The python<version> that Binder's runtime.txt asks for, or a clear error."""
    found = which(f"python{version}")
    if found is None and f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        found = getattr(sys, "_base_executable", sys.executable)  # this Python, outside any venv
    if found is None:
        raise BinderCheckError(
            f"binder/runtime.txt asks for Python {version} but python{version} is not on PATH; "
            f"install it (with its venv module, e.g. python{version}-venv) to run the Binder dry run")
    # Ask the interpreter itself: a shim or symlink on PATH is not the real executable.
    probe = "import os, sys; print(sys.version_info[:2], os.path.realpath(sys.executable))"
    done = subprocess.run([found, "-c", probe], capture_output=True, text=True)
    expected = str(tuple(int(part) for part in version.split(".")))
    if done.returncode != 0 or not done.stdout.startswith(expected):
        raise BinderCheckError(f"{found} does not run as Python {version}: {(done.stdout + done.stderr).strip()}")
    return Path(done.stdout.strip()[len(expected):].strip())


def reachable(url: str, timeout: float = 5.0) -> bool:
    """Whether an index answers at all (any HTTP status counts): pip hangs on one that does not."""
    if not url.startswith(("http://", "https://")):
        return True
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout).close()
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False
    return True


def installable(text: str, can_reach: Callable[[str], bool] = reachable) -> tuple[str, list[str]]:
    """requirements.txt as pip can install it here: index lines it cannot reach are dropped.

    pip retries an unreachable index for every package, for minutes each;
    leaving it out is the only way to install here. Returns the text and the
    dropped lines.
    """
    kept, dropped = [], []
    for line in text.splitlines(keepends=True):
        match = INDEX_OPTION.match(line.strip())
        (dropped if match and not can_reach(match.group(2)) else kept).append(line)
    return "".join(kept), [line.strip() for line in dropped]


def stamp_for(python: Path, requirements: str) -> str:
    """What the environment was built from; any change means a rebuild from scratch."""
    version = subprocess.run([str(python), "-c", "import sys; print(sys.version)"],
                             capture_output=True, text=True, check=True).stdout
    return hashlib.sha256(f"{python}\n{version}\n{requirements}".encode()).hexdigest()


def clean_env(venv: Path, home: Path) -> dict[str, str]:
    """The environment of every build and kernel: the Binder venv first on PATH, Jupyter state kept local."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "JUPYTER_PATH", "PYTHONSTARTUP"}}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["ATEN_CPU_CAPABILITY"] = CPU_CAPABILITY
    # A user's own kernelspecs or Jupyter config must not replace the venv's.
    for var, sub in [("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                     ("JUPYTER_RUNTIME_DIR", "runtime"), ("IPYTHONDIR", "ipython"), ("MPLCONFIGDIR", "mpl")]:
        env[var] = str(home / sub)
    return env


def _run(cmd: list[str], what: str, **kwargs) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-20:])
        raise BinderCheckError(f"{what} failed (exit {done.returncode}):\n{tail}")


def build_venv(repo: Path, venv: Path, python: Path, requirements: str, env: dict[str, str]) -> bool:
    """Create the venv and install the requirements unless the stamp matches; True when it built."""
    stamp = stamp_for(python, requirements)
    if (venv / STAMP).is_file() and (venv / STAMP).read_text() == stamp and (venv / "bin" / "python").exists():
        return False
    shutil.rmtree(venv, ignore_errors=True)
    _run([str(python), "-m", "venv", str(venv)], f"{python} -m venv (is its venv module installed?)")
    installed = venv / "requirements-installed.txt"
    installed.write_text(requirements)
    _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-r", str(installed)],
         "pip install -r binder/requirements.txt", cwd=repo, env=env)
    (venv / STAMP).write_text(stamp)
    return True


# 3. The checkout Binder gets, and postBuild ---------------------------------

def checkout_files(repo: Path, skip: Path) -> list[str]:
    """Files git tracks plus new ones it does not ignore: what a commit of this tree would hold."""
    done = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                          cwd=repo, capture_output=True, text=True)
    if done.returncode != 0:
        raise BinderCheckError(f"the Binder dry run needs a git checkout: {done.stderr.strip()}")
    names = [name for name in done.stdout.split("\0") if name and (repo / name).is_file()]
    # Never copy the Binder environment into itself, even where .gitignore lacks it.
    return [name for name in names if not (repo / name).resolve().is_relative_to(skip.resolve())]


def copy_checkout(repo: Path, dest: Path, skip: Path) -> Path:
    """A clean copy, so postBuild builds from what Binder clones and nothing left over locally."""
    shutil.rmtree(dest, ignore_errors=True)
    for name in checkout_files(repo, skip):
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo / name, target)
    return dest


def run_post_build(checkout: Path, env: dict[str, str]) -> None:
    # repo2docker runs it from the repository root, by its #! line.
    _run(["./binder/postBuild"], "binder/postBuild", cwd=checkout, env=env)


_PROBE = """
import importlib.metadata as md, json, polylens, torch
nvidia = sorted(d.metadata["Name"] for d in md.distributions() if d.metadata["Name"].lower().startswith("nvidia"))
print(json.dumps({"torch": torch.__version__, "cuda": torch.version.cuda, "nvidia": nvidia,
                  "polylens": polylens.__file__}))
"""


def check_installed(venv: Path, env: dict[str, str], cwd: Path) -> tuple[list[str], str]:
    """The built environment has CPU-only torch and the package postBuild installed; and torch's version."""
    done = subprocess.run([str(venv / "bin" / "python"), "-c", _PROBE], capture_output=True, text=True,
                          env=env, cwd=cwd)
    if done.returncode != 0:
        return [f"importing torch and polylens in the Binder environment failed: {done.stderr.strip()[-500:]}"], ""
    got = json.loads(done.stdout)
    problems = []
    if not got["torch"].endswith("+cpu") or got["cuda"] or got["nvidia"]:
        problems.append(f"torch {got['torch']} (CUDA {got['cuda']}, {got['nvidia']}) is not a CPU-only build")
    if not Path(got["polylens"]).resolve().is_relative_to(venv.resolve()):
        problems.append(f"polylens is imported from {got['polylens']}, not the Binder environment")
    return problems, got["torch"]


# 4. The notebooks ------------------------------------------------------------

def run_notebook(venv: Path, path: Path, env: dict[str, str]) -> NotebookRun:
    """One notebook in a fresh process and kernel of the Binder environment."""
    cmd = [str(venv / "bin" / "python"), str(Path(__file__).resolve()), "--run-notebook", str(path)]
    start = time.perf_counter()
    try:
        # A backstop only: the runner stops a stuck cell itself. A kernel whose
        # runner is killed exits on its own (ipykernel watches its parent).
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=CELL_TIMEOUT_S + 60)
    except subprocess.TimeoutExpired:
        return NotebookRun(path.stem, time.perf_counter() - start, float("nan"), "runner stopped: no answer")
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return NotebookRun(path.stem, time.perf_counter() - start, float("nan"),
                           "runner failed: " + " ".join(done.stderr.strip().splitlines()[-3:]))
    return NotebookRun(**json.loads(lines[-1]))


def _kernel_peak_mb(pid: int) -> float:
    """The kernel's own high-water mark of resident memory."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmHWM:\s+(\d+) kB", status, re.M).group(1)) / 1024


def execute_here(path: Path) -> NotebookRun:
    """Runs inside the Binder environment: execute the notebook on one CPU, as nbval does."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    # One CPU like mybinder.org; the kernel inherits the affinity.
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    nb = nbformat.read(path, as_version=4)
    checked = {i: checked_text(cell) for i, cell in enumerate(nb.cells)
               if cell.cell_type == "code" and CHECK_MARK in cell.source}
    peak = [0.0]

    def on_cell_executed(**_) -> None:
        pid = client.km.provisioner.pid
        cmd0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
        if not cmd0.startswith(sys.prefix):
            raise RuntimeError(f"kernel runs {cmd0}, not the Binder environment's python")
        peak[0] = max(peak[0], _kernel_peak_mb(pid))

    client = NotebookClient(nb, timeout=int(CELL_TIMEOUT_S), kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}},
                            on_cell_executed=on_cell_executed)
    start, error = time.perf_counter(), ""
    try:
        client.execute()
    except CellExecutionError as exc:
        error = "cell raised: " + " ".join(str(exc).strip().splitlines()[-1:])
    except CellTimeoutError:
        error = f"a cell ran over {CELL_TIMEOUT_S:.0f} s and was stopped"
    except DeadKernelError:
        error = "the kernel died (out of memory?)"
    if not error:
        error = compare_checked(checked, nb)
    return NotebookRun(path.stem, time.perf_counter() - start, peak[0], error)


def checked_text(cell) -> str:
    """What nbval compares in a checked cell: its printed text and plain-text results, in order."""
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        elif out.get("output_type") in ("execute_result", "display_data") and "text/plain" in out.get("data", {}):
            parts.append(out["data"]["text/plain"])
    return "".join(parts)


def compare_checked(stored: dict, nb) -> str:
    """'' when every checked cell printed its stored output again; else which cell and the first line that moved."""
    for i, want in stored.items():
        got = checked_text(nb.cells[i])
        if got != want:
            pairs = itertools.zip_longest(want.splitlines(), got.splitlines(), fillvalue="")
            first = next(((w, g) for w, g in pairs if w != g), (want[:80], got[:80]))
            return (f"checked cell {i} printed another output under ATEN_CPU_CAPABILITY={CPU_CAPABILITY}: "
                    f"stored {first[0]!r}, now {first[1]!r}")
    return ""


# The whole dry run -------------------------------------------------------------

def dry_run(repo: Path = ROOT, venv: Path = VENV, prefixes: tuple[str, ...] = (),
            log: Callable[[str], None] = print) -> Report:
    """Check binder/, build its environment, run every notebook; raise if it cannot run at all."""
    start, report = time.perf_counter(), Report()
    problems = check_binder_dir(repo)
    if problems:
        raise BinderCheckError("binder/ is inconsistent:\n  " + "\n  ".join(problems))
    python = find_interpreter(runtime_version(repo))
    requirements, dropped = installable((repo / "binder" / "requirements.txt").read_text())
    report.notes += [f"not reachable from here, left out of the install (Binder still uses it): {line}"
                     for line in dropped]
    for note in report.notes:
        log(f"note: {note}")
    with tempfile.TemporaryDirectory(prefix="binder-home-") as home:
        env = clean_env(venv, Path(home))
        log(f"Binder environment: {venv.name}/ from {python} ...")
        built = build_venv(repo, venv, python, requirements, env)
        report.notes.append(f"{venv.name}/ {'built from scratch' if built else 'reused (requirements unchanged)'}")
        checkout = copy_checkout(repo, venv / "repo", skip=venv)
        log("binder/postBuild ...")
        run_post_build(checkout, env)
        problems, torch = check_installed(venv, env, Path(home))
        if problems:
            raise BinderCheckError("the Binder environment is wrong:\n  " + "\n  ".join(problems))
        report.notes.append(f"torch {torch}, CPU only; polylens installed by binder/postBuild")
        report.build_s = time.perf_counter() - start
        paths = [path for path in sorted((checkout / "notebooks").glob("*.ipynb"))
                 if not prefixes or path.name.startswith(prefixes)]
        if not paths:
            raise BinderCheckError("no notebooks found in notebooks/")
        for path in paths:
            log(f"  {path.name} ...")
            report.runs.append(run_notebook(venv, path, env))
    report.total_s = time.perf_counter() - start
    return report


def table(runs: list[NotebookRun]) -> str:
    header = ["notebook", "wall s", "kernel peak MB", "status"]
    rows = [[r.notebook, f"{r.wall_s:.1f}", f"{r.peak_mb:.0f}", "; ".join(r.problems()) or "ok"] for r in runs]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(row: list[str]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()

    return "\n".join([line(header), line(["-" * width for width in widths]), *map(line, rows)])


def format_report(report: Report) -> str:
    limits = (f"limit: {MEMORY_LIMIT_MB:.0f} MB per kernel, one CPU; wall time is measured, not limited "
              f"(a cell is stopped as hung after {CELL_TIMEOUT_S:.0f} s)")
    lines = [table(report.runs), "", limits,
             f"environment and postBuild {report.build_s:.0f} s, whole dry run {report.total_s:.0f} s"]
    return "\n".join(lines + [f"note: {note}" for note in report.notes])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("prefixes", nargs="*", help="run only notebooks whose names start so")
    parser.add_argument("--check", action="store_true", help="only check binder/ (no build, no notebooks)")
    parser.add_argument("--run-notebook", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run_notebook:
        print(json.dumps(dataclasses.asdict(execute_here(args.run_notebook))))
        return 0
    if args.check:
        problems = check_binder_dir(ROOT)
        print("\n".join(problems) or "binder/ is consistent with what repo2docker reads")
        return 1 if problems else 0
    try:
        report = dry_run(prefixes=tuple(args.prefixes))
    except BinderCheckError as exc:
        print(f"Binder dry run could not run: {exc}", file=sys.stderr)
        return 2
    print(format_report(report))
    failures = report.failures()
    print("\n".join(["", "FAILED:", *failures]) if failures else "\nall notebooks fit Binder")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
