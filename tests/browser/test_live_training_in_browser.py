"""Notebook 01's live training explorer in JupyterLab, driven as a learner would.

Open the notebook, Run All, then in the live explorer's output: press the step
button (the readout's step goes 0 -> 15), press play and see the region count
change while training runs, press pause and see the steps stop; play again and
interrupt the kernel, and see it pause without a traceback. Every wait is a
hang guard of minutes, never a timing assertion: a busy machine is slower, not
broken. Screenshots go to tests/browser/artifacts/.
"""

from __future__ import annotations

import json
import re

import pytest

import labdriver

pytestmark = pytest.mark.browser

NOTEBOOK = labdriver.NOTEBOOKS / "01_polytopes.ipynb"
PAGE_TIMEOUT = 600  # s: the page and the kernel coming up
RUN_TIMEOUT = 1200  # s: Run All, every cell done
WIDGET_TIMEOUT = 300  # s: the explorer's figure drawn, a button press answered, training reaching a step

# The live explorer is the cell whose output holds a Play widget; its readout is the HTML widget.
LIVE_JS = """([panel]) => {
  const cells = Array.from(document.querySelector(panel).querySelectorAll('.jp-Notebook .jp-Cell.jp-CodeCell'));
  return cells.findIndex(c => c.querySelector('.jp-Cell-outputWrapper .widget-play'));
}"""


def readout(page, index: int) -> dict | None:
    """The live explorer's step and region count, as its readout says them (None until it says them)."""
    texts = labdriver.explorer_state(page, index)["readouts"]
    for text in texts:
        step, regions = re.search(r"step (\d+):", text), re.search(r"regions: (\d+)", text)
        if step and regions:
            return {"step": int(step.group(1)), "regions": int(regions.group(1)), "text": text}
    return None


def test_play_trains_and_the_region_count_changes(lab, browser, artifacts):
    for old in artifacts.glob("01_live*.png"):
        old.unlink()
    rel = lab.stage(NOTEBOOK)
    n_code = sum(c["cell_type"] == "code" for c in json.loads((lab.root / rel).read_text())["cells"])
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(120_000)  # a hang guard
    try:
        page.goto(f"{lab.url}/lab/tree/{rel}?reset&token={lab.token}", wait_until="domcontentloaded",
                  timeout=PAGE_TIMEOUT * 1000)
        page.locator(f"{labdriver.PANEL} .jp-Notebook").wait_for(timeout=PAGE_TIMEOUT * 1000)
        labdriver.wait_for_kernel(page, lab, rel, PAGE_TIMEOUT)
        labdriver.run_all(page)
        labdriver.wait_for_all_cells(page, n_code, RUN_TIMEOUT)
        assert not labdriver.errors(page), f"error output: {labdriver.errors(page)}"
        labdriver.wait_for_widgets(page, WIDGET_TIMEOUT)

        index = page.evaluate(LIVE_JS, [labdriver.PANEL])
        assert index >= 0, "no code cell shows the live explorer's Play widget"
        cell = page.locator(f"{labdriver.PANEL} .jp-Notebook .jp-Cell.jp-CodeCell").nth(index)
        cell.scroll_into_view_if_needed()
        assert labdriver.wait_for_figure(page, index, WIDGET_TIMEOUT), "the live explorer's figure never rendered"
        start = labdriver.wait_until(lambda: readout(page, index), WIDGET_TIMEOUT, what="the live explorer's readout")
        assert start["step"] == 0, start["text"]
        cell.screenshot(path=str(artifacts / "01_live-start.png"))

        # The step button: one tick of 5 steps per press.
        step_button = cell.locator(".jp-Cell-outputWrapper button", has_text=re.compile(r"^\s*step\s*$"))
        for _ in range(3):
            step_button.click()
        stepped = labdriver.wait_until(lambda: (r := readout(page, index)) and r["step"] >= 15 and r,
                                       WIDGET_TIMEOUT, what="three step presses to reach step 15")
        assert stepped["step"] == 15, stepped["text"]

        # Play: training runs on its own until the count has changed and it is well past the presses.
        play = cell.locator(".jp-Cell-outputWrapper .widget-play button").first
        figure_before = labdriver.figure_key(labdriver.explorer_state(page, index))
        play.click()
        counts = {start["regions"], stepped["regions"]}

        def trained_on():
            r = readout(page, index)
            if r:
                counts.add(r["regions"])
            return r if r and r["step"] >= 60 and len(counts) > 1 else None

        playing = labdriver.wait_until(trained_on, WIDGET_TIMEOUT, what="play to train past step 60")
        assert playing["regions"] != start["regions"] or len(counts) > 1, counts
        assert labdriver.figure_key(labdriver.explorer_state(page, index)) != figure_before, "the figure never changed"
        cell.screenshot(path=str(artifacts / "01_live-playing.png"))

        # Pause: the same button. The steps stop (a tick already sent may still land).
        play.click()
        last = {"step": None}

        def stopped():
            r = readout(page, index)
            same, last["step"] = r is not None and r["step"] == last["step"], r and r["step"]
            return r if same else None

        paused = labdriver.wait_until(stopped, WIDGET_TIMEOUT, interval=3.0, what="training to stop after pause")
        assert paused["step"] >= playing["step"]
        assert not labdriver.errors(page), f"error output after playing: {labdriver.errors(page)}"
        assert "Traceback" not in paused["text"] and "stopped:" not in paused["text"], paused["text"]
        cell.screenshot(path=str(artifacts / "01_live-paused.png"))

        # Play again, then interrupt the kernel once: whether it lands in a tick or between two
        # (where the explorer's handler notes it), the explorer pauses by the next tick.
        play.click()
        labdriver.wait_until(lambda: (r := readout(page, index)) and r["step"] > paused["step"] + 10,
                             WIDGET_TIMEOUT, what="play to train on after the pause")
        kernel = lab.session_for(rel)["kernel"]["id"]

        lab.api("POST", f"/api/kernels/{kernel}/interrupt")

        def interrupted():
            r = readout(page, index)
            return r if r and "interrupted" in r["text"] else None

        labdriver.wait_until(interrupted, WIDGET_TIMEOUT, interval=1.5, what="one kernel interrupt to pause training")
        last["step"] = None
        after = labdriver.wait_until(stopped, WIDGET_TIMEOUT, interval=3.0, what="training to stop after the interrupt")
        assert not labdriver.errors(page), f"error output after the interrupt: {labdriver.errors(page)}"
        assert "Traceback" not in after["text"], after["text"]
        cell.screenshot(path=str(artifacts / "01_live-interrupted.png"))
        print(f"live explorer: step 0 ({start['regions']} regions) -> step {stepped['step']} "
              f"({stepped['regions']}) -> played to step {playing['step']} ({playing['regions']}), "
              f"paused at step {paused['step']}, interrupted at step {after['step']}; counts seen {sorted(counts)}")
    except BaseException:
        try:
            page.screenshot(path=str(artifacts / "01_live-failure.png"))
        except Exception:
            pass
        raise
    finally:
        try:
            lab.delete_session(rel)
        finally:
            context.close()
