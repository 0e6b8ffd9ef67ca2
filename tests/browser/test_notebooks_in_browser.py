"""Every notebook, run in JupyterLab in headless Chromium as a learner would.

For each notebook under notebooks/: open it, Run All, wait for every code cell,
check that no cell shows an error, then move every slider of every explorer
(sliders and an ipympl figure in one output) with the keyboard and check that
the figure and the readout change. Screenshots go to tests/browser/artifacts/.
"""

from __future__ import annotations

import json
import re
import time

import pytest

import labdriver

pytestmark = pytest.mark.browser

NOTEBOOKS = sorted(labdriver.NOTEBOOKS.glob("*.ipynb"))

# Hang guards, many times the normal time (a notebook runs in under a minute,
# a slider answers in a fraction of a second), so a busy machine never fails them.
PAGE_TIMEOUT = 600  # s: the page and the kernel coming up
RUN_TIMEOUT = 1200  # s: Run All, every cell done
FIGURE_TIMEOUT = 300  # s: an explorer's figure drawn
SLIDER_TIMEOUT = 120  # s: one key press reflected in slider, figure and readout


def code_cell_positions(path) -> list[int]:
    """Position in the notebook (counting every cell from 0) of each code cell, in order."""
    return [i for i, c in enumerate(json.loads(path.read_text())["cells"]) if c["cell_type"] == "code"]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_and_explorers_respond(notebook, lab, browser, artifacts):
    stem = notebook.stem
    for old in artifacts.glob(f"{stem}*.png"):
        old.unlink()
    rel = lab.stage(notebook)  # a copy: the notebook may change while this runs
    positions = code_cell_positions(lab.root / rel)
    n_code = len(positions)

    def where(code_index: int) -> str:
        at = positions[code_index] if code_index < len(positions) else "?"
        return f"cell {at} (code cell {code_index})"

    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(120_000)  # a hang guard
    timings = {}
    t0 = time.monotonic()
    try:
        page.goto(f"{lab.url}/lab/tree/{rel}?reset&token={lab.token}", wait_until="domcontentloaded",
                  timeout=PAGE_TIMEOUT * 1000)
        page.locator(f"{labdriver.PANEL} .jp-Notebook").wait_for(timeout=PAGE_TIMEOUT * 1000)
        labdriver.wait_for_kernel(page, lab, rel, PAGE_TIMEOUT)
        timings["open"] = time.monotonic() - t0

        t1 = time.monotonic()
        labdriver.run_all(page)
        labdriver.wait_for_all_cells(page, n_code, RUN_TIMEOUT)
        timings["run_all"] = time.monotonic() - t1

        found = labdriver.errors(page)
        assert not found, f"{notebook.name}: error output in " + "; ".join(
            f"{where(i)}: {text[-600:]}" for i, text in found)

        t2 = time.monotonic()
        labdriver.wait_for_widgets(page, FIGURE_TIMEOUT)
        broken = labdriver.widget_trouble(page, r"Error displaying widget[^\n]*")
        assert not broken, f"{notebook.name}: " + "; ".join(f"{where(i)}: {t}" for i, t in broken)
        problems = []
        explorers = labdriver.explorer_cells(page)
        print(f"{stem}: {n_code} code cells ran, explorers in {[where(i) for i in explorers]}")
        for k, cell in enumerate(explorers):
            cell_locator = page.locator(f"{labdriver.PANEL} .jp-Notebook .jp-Cell.jp-CodeCell").nth(cell)
            cell_locator.scroll_into_view_if_needed()
            state = labdriver.wait_for_figure(page, cell, FIGURE_TIMEOUT)
            if state is None:
                state = labdriver.explorer_state(page, cell)
                sizes = [c["size"] if isinstance(c, dict) else c for c in state["canvases"]]
                problems.append(f"{notebook.name} {where(cell)}: the explorer's figure never rendered within "
                                f"{FIGURE_TIMEOUT} s (ipympl canvas sizes {sizes})")
            sliders = [i for i, s in enumerate(state["sliders"]) if not s["disabled"]]
            assert sliders, f"{notebook.name} {where(cell)}: explorer has no enabled slider"
            cell_locator.screenshot(
                path=str(artifacts / f"{stem}-explorer{k}-before.png"))
            for i in sliders:
                r = labdriver.move_slider(page, cell, i, SLIDER_TIMEOUT)
                print(f"{stem} {where(cell)} slider {r['label']!r} {r['key']}: "
                      f"{r['value_before']} -> {r.get('value_after')}, figure changed {r.get('figure')}, "
                      f"readout changed {r.get('readout')}, {r['seconds']} s")
                what = f"{notebook.name} {where(cell)}, slider {r['label']!r} ({r['key']})"
                if not r.get("moved"):
                    problems.append(f"{what}: the slider's value did not change ({r['value_before']})")
                    continue
                if not r.get("figure"):
                    problems.append(f"{what}: {r['value_before']} -> {r['value_after']} left the figure unchanged")
                elif r.get("blank_after"):
                    problems.append(f"{what}: the figure went blank")
                if not r.get("readout"):
                    problems.append(f"{what}: {r['value_before']} -> {r['value_after']} left the readout unchanged")
            cell_locator.screenshot(
                path=str(artifacts / f"{stem}-explorer{k}-after.png"))
        timings["explorers"] = time.monotonic() - t2

        found = labdriver.errors(page)  # a callback that raised shows its traceback in the widget
        assert not found, f"{notebook.name}: error output after moving sliders in " + "; ".join(
            f"{where(i)}: {text[-600:]}" for i, text in found)
        assert not problems, "\n".join(problems)
        page.screenshot(path=str(artifacts / f"{stem}-final.png"))
    except BaseException:
        try:
            page.screenshot(path=str(artifacts / f"{stem}-failure.png"))
        except Exception:
            pass
        raise
    finally:
        timings["total"] = time.monotonic() - t0
        print(f"{stem}: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
        try:
            lab.delete_session(rel)
        finally:
            context.close()
