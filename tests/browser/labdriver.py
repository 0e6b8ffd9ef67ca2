"""A private JupyterLab server and the browser steps the notebook tests take.

Everything the server writes (config, runtime files, settings, caches, the
copied notebooks) lives under one temporary folder; nothing touches the home
directory or the repository's notebooks (JupyterLab's autosave would write
outputs into them, so the server works on copies).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Settings the learner never sees changed: no autosave (the copies stay as
# they are), every cell attached to the DOM (prompts and outputs are all there
# to read), no news fetched.
LAB_SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}

PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"
ERROR_OUTPUT = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"]'
CANVAS = ".jupyter-matplotlib-figure canvas"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """In the server's process, before it starts: ask Linux to send it SIGTERM when the test run dies.

    Fixture teardown stops the server on every normal exit; a run killed from outside (a CI
    timeout's SIGTERM or SIGKILL) runs no teardown, and the server would outlive it. On a SIGTERM
    the server shuts its kernels down too.
    """
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: teardown is the only guard
        pass


@dataclass
class LabServer:
    """``jupyter lab`` in its own process group, on a random port with a fresh token."""

    base: Path
    port: int = 0
    token: str = field(default_factory=lambda: secrets.token_hex(24))
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def root(self) -> Path:
        return self.base / "root"

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        dirs = {
            "JUPYTER_CONFIG_DIR": "jupyter-config",
            "JUPYTER_DATA_DIR": "jupyter-data",
            "JUPYTER_RUNTIME_DIR": "jupyter-runtime",
            "JUPYTERLAB_SETTINGS_DIR": "lab-settings",
            "JUPYTERLAB_WORKSPACES_DIR": "lab-workspaces",
            "IPYTHONDIR": "ipython",
            "MPLCONFIGDIR": "matplotlib",
            "XDG_CACHE_HOME": "cache",
            "XDG_CONFIG_HOME": "config",
        }
        for var, name in dirs.items():
            path = self.base / name
            path.mkdir(parents=True, exist_ok=True)
            env[var] = str(path)
        env.pop("JUPYTER_TOKEN", None)
        env.pop("MPLBACKEND", None)  # the notebooks choose their backend
        # Kernels share a small machine; one thread each keeps them steady.
        env.setdefault("OMP_NUM_THREADS", "1")
        env.setdefault("MKL_NUM_THREADS", "1")
        return env

    def start(self, timeout: float = 120.0) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        settings = self.base / "lab-settings"
        for rel, values in LAB_SETTINGS.items():
            path = settings / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        env = self._env()
        last_log = ""
        for attempt in range(3):
            self.port = free_port()
            log = open(self.base / f"server-{attempt}.log", "wb")
            cmd = [
                sys.executable, "-m", "jupyter", "lab", "--no-browser",
                "--ip=127.0.0.1", f"--port={self.port}", "--ServerApp.port_retries=0",
                f"--ServerApp.token={self.token}", "--allow-root",
                f"--ServerApp.root_dir={self.root}", "--LabApp.news_url=None",
            ]
            # start_new_session: the server and what it starts get their own
            # process group, which stop() ends as a whole.
            self.proc = subprocess.Popen(cmd, cwd=self.root, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True,
                                         preexec_fn=_die_with_parent)
            log.close()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    self.api("GET", "/api/status")
                    return
                except (OSError, urllib.error.URLError):
                    time.sleep(0.5)
            last_log = (self.base / f"server-{attempt}.log").read_text(errors="replace")[-3000:]
            self.stop()
            if "already in use" not in last_log:
                break
        raise RuntimeError(f"JupyterLab did not answer within {timeout:.0f} s; its log ends:\n{last_log}")

    def stop(self) -> None:
        if self.proc is None:
            return
        pid, self.proc = self.proc.pid, None
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    break
            except ChildProcessError:
                break
            time.sleep(0.2)
        try:
            os.killpg(pid, signal.SIGKILL)  # whatever is left of the group
        except ProcessLookupError:
            pass
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass

    def api(self, method: str, path: str, timeout: float = 10.0):
        req = urllib.request.Request(self.url + path, method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def session_for(self, rel_path: str) -> dict | None:
        for s in self.api("GET", "/api/sessions"):
            if s.get("path") == rel_path or s.get("notebook", {}).get("path") == rel_path:
                return s
        return None

    def delete_session(self, rel_path: str) -> None:
        s = self.session_for(rel_path)
        if s is not None:
            self.api("DELETE", f"/api/sessions/{s['id']}", timeout=60)

    def delete_all_sessions(self) -> None:
        for s in self.api("GET", "/api/sessions"):
            try:
                self.api("DELETE", f"/api/sessions/{s['id']}", timeout=60)
            except (OSError, urllib.error.URLError):
                pass

    def stage(self, notebook: Path) -> str:
        """Copy the notebook (and the rest of notebooks/, for files it reads) under the root."""
        dest = self.root / "notebooks"
        shutil.copytree(NOTEBOOKS, dest, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "*.ipynb"))
        shutil.copy2(notebook, dest / notebook.name)
        return f"notebooks/{notebook.name}"


# ---------------------------------------------------------------- browser steps


def wait_until(predicate, timeout: float, interval: float = 0.25, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def accept_dialog(page) -> None:
    button = page.locator(".jp-Dialog .jp-mod-accept")
    if button.count():
        try:
            button.first.click(timeout=2000)
        except Exception:  # the dialog went away by itself
            pass


def wait_for_kernel(page, server: LabServer, rel_path: str, timeout: float) -> None:
    """The notebook's session exists and its kernel is idle with a client connected."""

    def ready():
        accept_dialog(page)
        try:
            s = server.session_for(rel_path)
            if s is None:
                return False
            k = server.api("GET", f"/api/kernels/{s['kernel']['id']}")
        except (OSError, urllib.error.URLError):
            return False
        return k.get("execution_state") == "idle" and k.get("connections", 0) >= 1

    wait_until(ready, timeout, interval=0.5, what=f"the kernel of {rel_path} to be idle and connected")


PROMPTS_JS = """(panel) => {
  const root = document.querySelector(panel);
  if (!root) return null;
  return Array.from(root.querySelectorAll('.jp-Notebook .jp-Cell.jp-CodeCell')).map(
    c => { const p = c.querySelector('.jp-InputArea-prompt'); return p ? p.textContent.trim() : ''; });
}"""


def prompts(page) -> list[str]:
    return page.evaluate(PROMPTS_JS, PANEL) or []


def run_all(page, tries: int = 4) -> None:
    """Run > Run All Cells, clicked again if nothing started within 10 s."""
    for _ in range(tries):
        accept_dialog(page)
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
        try:
            wait_until(lambda: any(p in ("[*]:", "[1]:") or re.match(r"\[\d+\]", p) for p in prompts(page)),
                       10, what="the first cell to start")
            return
        except TimeoutError:
            page.keyboard.press("Escape")
    raise TimeoutError(f"Run All Cells started nothing after {tries} clicks")


def errors(page) -> list[tuple[int, str]]:
    """(code cell index, text) of every error output in the notebook."""
    return page.evaluate(
        """([panel, sel]) => {
          const root = document.querySelector(panel);
          const cells = Array.from(root.querySelectorAll('.jp-Notebook .jp-Cell.jp-CodeCell'));
          const found = [];
          cells.forEach((c, i) => c.querySelectorAll(sel).forEach(
            o => found.push([i, o.innerText.slice(0, 2000)])));
          return found;
        }""",
        [PANEL, ERROR_OUTPUT],
    )


def wait_for_all_cells(page, n_code: int, timeout: float) -> None:
    """Every code cell shows a numbered prompt; stops early when a cell failed and the run stopped."""

    def done():
        ps = prompts(page)
        if len(ps) != n_code:
            return False
        if any("*" in p for p in ps):
            return False
        if all(re.fullmatch(r"\[\d+\]:", p) for p in ps):
            return True
        return bool(errors(page))  # run stopped at an error: report it rather than wait

    try:
        wait_until(done, timeout, interval=0.5, what="every code cell to execute")
    except TimeoutError as exc:
        ps = prompts(page)
        pending = [f"cell {i} {p or '(no prompt)'}" for i, p in enumerate(ps) if not re.fullmatch(r"\[\d+\]:", p)]
        raise TimeoutError(f"{exc}; {len(ps)} of {n_code} code cells in the page, not done: {pending}") from None


# ---------------------------------------------------------------- explorers

EXPLORERS_JS = """([panel, canvasSel]) => {
  const cells = Array.from(document.querySelector(panel).querySelectorAll('.jp-Notebook .jp-Cell.jp-CodeCell'));
  const out = [];
  cells.forEach((c, i) => {
    const area = c.querySelector('.jp-Cell-outputWrapper');
    if (area && area.querySelector('.widget-hslider') && area.querySelector(canvasSel)) out.push(i);
  });
  return out;
}"""

# A short fingerprint of every ipympl canvas and of the HTML readouts in one cell.
STATE_JS = """([panel, index, canvasSel]) => {
  const cell = document.querySelector(panel).querySelectorAll('.jp-Notebook .jp-Cell.jp-CodeCell')[index];
  const area = cell.querySelector('.jp-Cell-outputWrapper');
  const hash = s => { let h = 2166136261; for (let i = 0; i < s.length; i++) { h ^= s.charCodeAt(i); h = Math.imul(h, 16777619); } return (h >>> 0).toString(16) + ':' + s.length; };
  const canvases = Array.from(area.querySelectorAll(canvasSel)).map(c => {
    let data;
    try { data = c.toDataURL(); } catch (e) { return 'unreadable:' + e; }
    const blank = document.createElement('canvas'); blank.width = c.width; blank.height = c.height;
    return {hash: hash(data), blank: c.width === 0 || c.height === 0 || data === blank.toDataURL(),
            size: [c.width, c.height]};
  });
  const readouts = Array.from(area.querySelectorAll('.widget-html')).map(e => e.innerText.trim());
  const sliders = Array.from(area.querySelectorAll('.widget-hslider')).map(s => {
    const h = s.querySelector('.noUi-handle');
    const r = s.querySelector('.widget-readout');
    const label = s.querySelector('.widget-label');
    return {label: label ? label.innerText.trim() : '', value: r ? (r.innerText || r.value || '').trim() : '',
            now: h ? Number(h.getAttribute('aria-valuenow')) : null,
            max: h ? Number(h.getAttribute('aria-valuemax')) : null,
            disabled: s.classList.contains('mod-disabled') || !!s.querySelector('[disabled]')};
  });
  return {canvases, readouts, sliders};
}"""


def explorer_cells(page) -> list[int]:
    return page.evaluate(EXPLORERS_JS, [PANEL, CANVAS])


WIDGET_TEXT_JS = """([panel, pattern]) => {
  const cells = Array.from(document.querySelector(panel).querySelectorAll('.jp-Notebook .jp-Cell.jp-CodeCell'));
  const re = new RegExp(pattern);
  const found = [];
  cells.forEach((c, i) => {
    const area = c.querySelector('.jp-Cell-outputWrapper');
    const m = area ? area.innerText.match(re) : null;
    if (m) found.push([i, m[0]]);
  });
  return found;
}"""


def widget_trouble(page, pattern: str) -> list[tuple[int, str]]:
    """(code cell index, matched text) for outputs showing a widget message."""
    return page.evaluate(WIDGET_TEXT_JS, [PANEL, pattern])


def wait_for_widgets(page, timeout: float) -> None:
    """No widget still loading, and the set of explorers stable for two seconds."""
    last = {"key": None}

    def settled():
        key = (tuple(explorer_cells(page)), bool(widget_trouble(page, r"Loading widget\.\.\.")))
        same, last["key"] = key == last["key"], key
        return same and not key[1]

    try:
        wait_until(settled, timeout, interval=1.0, what="widgets to finish loading")
    except TimeoutError:
        stuck = widget_trouble(page, r"Loading widget\.\.\.")
        raise TimeoutError(f"widgets still loading after {timeout:.0f} s in code cells {[i for i, _ in stuck]}") from None


def explorer_state(page, index: int) -> dict:
    return page.evaluate(STATE_JS, [PANEL, index, CANVAS])


def figure_key(state: dict):
    return tuple(c["hash"] if isinstance(c, dict) else c for c in state["canvases"])


def wait_for_figure(page, index: int, timeout: float) -> dict | None:
    """The figure has drawn something and has stopped changing for a second (None if it never did)."""
    last = {"key": None}

    def settled():
        st = explorer_state(page, index)
        drawn = st["canvases"] and any(isinstance(c, dict) and not c["blank"] for c in st["canvases"])
        key = figure_key(st)
        same, last["key"] = key == last["key"], key
        return st if drawn and same else None

    try:
        return wait_until(settled, timeout, interval=1.0, what="the explorer's figure to render")
    except TimeoutError:
        return None


def move_slider(page, index: int, slider: int, timeout: float, grace: float = 5.0) -> dict:
    """Press an arrow key on one slider's handle; report what changed."""
    before = explorer_state(page, index)
    info = before["sliders"][slider]
    key = "ArrowLeft" if info["now"] is not None and info["max"] is not None and info["now"] >= info["max"] else "ArrowRight"
    cell = page.locator(f"{PANEL} .jp-Notebook .jp-Cell.jp-CodeCell").nth(index)
    handle = cell.locator(".jp-Cell-outputWrapper .widget-hslider").nth(slider).locator(".noUi-handle").first
    handle.scroll_into_view_if_needed()
    handle.focus()
    start = time.monotonic()
    page.keyboard.press(key)
    result = {"label": info["label"], "key": key, "value_before": info["value"]}
    answered = {}

    def changed():
        st = explorer_state(page, index)
        result.update(
            value_after=st["sliders"][slider]["value"],
            moved=st["sliders"][slider]["value"] != info["value"],
            figure=figure_key(st) != figure_key(before),
            readout=st["readouts"] != before["readouts"],
            readout_after=st["readouts"],
            blank_after=all(isinstance(c, dict) and c["blank"] for c in st["canvases"]),
        )
        if result["moved"] and result["figure"] and result["readout"]:
            return True
        # Slider and readout answered: the figure gets a few more seconds, not the whole timeout.
        if result["moved"] and result["readout"]:
            answered.setdefault("at", time.monotonic())
            return time.monotonic() - answered["at"] > grace
        return False

    try:
        wait_until(changed, timeout, interval=0.2)
    except TimeoutError:
        pass
    result["seconds"] = round(time.monotonic() - start, 2)
    return result
