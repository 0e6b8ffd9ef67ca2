"""Notebook 01's live training explorer, driven without a browser."""

import math
import signal

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

import polylens as pl
import polylens.widgets.training as live_module
from polylens.widgets import LiveTrainingExplorer

SMALL = dict(width=8, depth=2, widths=(4, 8), depths=(1, 2), seeds=(0, 1, 2))


@pytest.fixture(scope="module")
def data():
    return pl.datasets.two_moons(200, seed=0)


def _pressed_play(e: LiveTrainingExplorer) -> widgets.Play:
    """Build the widget and press play (the browser then sends ticks: tests set ``play.value``)."""
    e.widget()
    play = e._controls["play"]
    play.playing = True
    return play


def _weights(e: LiveTrainingExplorer) -> list[torch.Tensor]:
    return [p.detach().clone() for p in e.model.parameters()]


def test_same_seed_same_region_counts_at_every_step(data):
    a, b = LiveTrainingExplorer(*data, **SMALL), LiveTrainingExplorer(*data, **SMALL)
    for _ in range(6):
        a.step()
    b.step(ticks=6)  # one call for six ticks: the same steps, the same counts
    fa, fb = a.view(), b.view()
    assert fa.step == fb.step == 30
    assert fa.steps.tolist() == fb.steps.tolist() == [0, 5, 10, 15, 20, 25, 30]
    assert fa.counts.tolist() == fb.counts.tolist()
    assert all(torch.equal(p, q) for p, q in zip(_weights(a), _weights(b)))
    other = LiveTrainingExplorer(*data, **{**SMALL, "seed": 1})
    other.step(ticks=6)
    assert other.view().counts.tolist() != fa.counts.tolist()


def test_minibatches_are_seeded_too(data):
    runs = [LiveTrainingExplorer(*data, **SMALL, batch_size=16) for _ in range(2)]
    for e in runs:
        e.step(ticks=4)
    assert runs[0].view().counts.tolist() == runs[1].view().counts.tolist()
    assert all(torch.equal(p, q) for p, q in zip(_weights(runs[0]), _weights(runs[1])))


def test_full_batch_training_is_the_notebooks_static_training(data):
    e = LiveTrainingExplorer(*data, **SMALL, steps_per_tick=7)
    e.step(ticks=6)  # 42 steps in ticks of 7
    model = pl.models.MLP([2, 8, 8, 2], seed=0)
    pl.training.train_classifier(model, *data, steps=42, lr=1e-2)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), e.model.parameters()))


def test_region_count_changes_during_training_and_regions_are_exact(data):
    e = LiveTrainingExplorer(*data, **SMALL)
    frame = e.update(step=100)
    assert frame.step == 100 and len(frame.counts) == 21  # counted at step 0 and after every tick
    assert len(set(frame.counts.tolist())) > 1
    assert abs(frame.regions.areas.sum() - 9.0) < 1e-9
    assert frame.accuracy > 0.9 and frame.loss < e.update(step=0).loss
    assert f"regions: {len(frame.regions)}" in frame.readout and "step 100" in frame.readout


def test_update_goes_on_or_starts_again(data):
    e = LiveTrainingExplorer(*data, **SMALL)
    e.update(step=20)
    counts = e.view().counts.tolist()
    assert e.update(step=30).counts.tolist()[: len(counts)] == counts  # went on from step 20
    back = e.update(step=10)  # earlier: a fresh network, trained again to step 10
    assert back.step == 10 and back.steps.tolist() == [0, 5, 10]
    assert e.update(width=4).step == 0  # another setting, no step given: a fresh network at step 0


def test_a_control_change_resets_training(data):
    e = LiveTrainingExplorer(*data, **SMALL)
    box = e.widget()
    controls = {w.description: w for w in _all(box) if isinstance(w, widgets.ValueWidget)}
    for name, value in (("width", 4), ("depth", 1), ("learning rate", 3e-3), ("seed", 2)):
        e.step(ticks=2)
        assert e.view().step == 10
        before = e._readout.value
        controls[name].value = value
        assert e.view().step == 0 and len(e.view().counts) == 1, name
        assert e._readout.value != before and "step 0" in e._readout.value, name
    assert e.settings == dict(width=4, depth=1, lr=3e-3, seed=2)
    step_button, reset_button = (b for b in _all(box) if isinstance(b, widgets.Button))
    step_button.click()
    assert e.view().step == 5
    reset_button.click()
    assert e.view().step == 0
    e.update(width=8, step=5)  # update moves the sliders along, without a second reset
    assert controls["width"].value == 8 and e.view().step == 5
    e.close()


def test_play_ticks_train_and_the_stop_button_only_pauses(data):
    e = LiveTrainingExplorer(*data, **SMALL)
    e.widget()
    play = e._controls["play"]
    for k in (1, 2, 3):
        play.value = k  # what the browser's Play timer sends
    assert e.view().step == 15 and len(e.frame_seconds) == 3
    play.value = 0  # Play's stop button: back to 0, which must not train
    assert e.view().step == 15
    assert play.interval >= e.interval_ms
    e.close()


def test_one_explorer_trains_at_a_time(data):
    a, b = LiveTrainingExplorer(*data, **SMALL), LiveTrainingExplorer(*data, **SMALL)
    a.widget()
    b.widget()
    a._controls["play"].playing = True
    b._controls["play"].playing = True
    assert b.playing and not a.playing
    a.close()
    b.close()


def test_close_stops_playing_and_releases_the_figure(data):
    e = LiveTrainingExplorer(*data, **SMALL)
    box = e.widget()
    play = e._controls["play"]
    play.playing = True
    fig = e.area.fig
    e.close()
    assert not play.playing and play.comm is None and box.comm is None
    assert e.area is None and not plt.fignum_exists(fig.number)
    play.value = 7  # a tick still in flight from the browser
    assert e.view().step == 0
    e.close()  # twice is fine
    assert e.step().step == 5  # and the explorer still answers without a figure


def test_closing_the_widget_closes_the_explorer(data):
    e = LiveTrainingExplorer(*data, **SMALL)
    box = e.widget()
    play = e._controls["play"]
    play.playing = True
    box.close()
    assert not play.playing and e.area is None


def test_a_kernel_interrupt_pauses_and_undoes_the_unfinished_tick(data, monkeypatch):
    e = LiveTrainingExplorer(*data, **SMALL)
    e.widget()
    e.step(ticks=2)
    e._controls["play"].playing = True
    calls = {"n": 0}
    real = live_module.slice_regions

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(live_module, "slice_regions", interrupted)
    frame = e.step(ticks=3)
    assert "interrupted" in frame.message and frame.step == 10 and not e.playing
    assert "interrupted" in e._readout.value
    monkeypatch.setattr(live_module, "slice_regions", real)
    e.step(ticks=4)
    clean = LiveTrainingExplorer(*data, **SMALL)
    clean.step(ticks=6)
    assert e.view().counts.tolist() == clean.view().counts.tolist()  # as if never interrupted
    assert all(torch.equal(p, q) for p, q in zip(_weights(e), _weights(clean)))
    e.close()


def test_an_interrupt_while_drawing_pauses_without_a_traceback(data):
    e = LiveTrainingExplorer(*data, **SMALL)
    play = _pressed_play(e)

    def interrupted():
        raise KeyboardInterrupt

    e.area.refresh = interrupted
    play.value = 1  # a Play tick whose redraw is interrupted
    assert not play.playing and "interrupted: paused" in e._readout.value
    e.close()


def test_an_interrupt_between_ticks_pauses_at_the_next_tick(data):
    e = LiveTrainingExplorer(*data, **SMALL)
    play = _pressed_play(e)
    play.value = 1
    live_module._INTERRUPTED.set()  # what the kernel's SIGINT handler does while no tick runs
    play.value = 2
    assert not play.playing and e.view().step == 5 and "interrupted: paused at step 5" in e._readout.value
    play.playing = True  # pressing play again: the old interrupt is not meant for this run
    play.value = 3
    assert play.playing and e.view().step == 10
    e.close()


def test_the_interrupt_handler_notes_the_interrupt_and_keeps_the_old_behaviour():
    before = signal.getsignal(signal.SIGINT)
    live_module._INTERRUPTED.clear()
    try:
        live_module._install_sigint()  # on the main thread, as the kernel's loop would run it
        assert signal.getsignal(signal.SIGINT) is live_module._on_sigint
        with pytest.raises(KeyboardInterrupt):  # pytest's handler, kept: Ctrl-C still stops the run
            signal.raise_signal(signal.SIGINT)
        assert live_module._INTERRUPTED.is_set()
        assert live_module.watch_interrupts() is True  # already in place: nothing to do
    finally:
        signal.signal(signal.SIGINT, before)
        live_module._INTERRUPTED.clear()
    assert live_module.watch_interrupts() is False  # no kernel here: nothing to install


def test_a_diverging_network_shows_a_message(data):
    e = LiveTrainingExplorer(*data, **SMALL)
    e.widget()
    with torch.no_grad():
        e.model.linear0.weight[0, 0] = math.nan
    frame = e.step()
    assert "diverged" in frame.message and frame.step == 0
    assert "Lower the learning rate" in e._readout.value
    e.close()


def test_the_last_step_pauses(data):
    e = LiveTrainingExplorer(*data, **SMALL, max_step=12)
    assert e.step(ticks=5).step == 12
    assert "last step" in e.step().message and e.view().step == 12


BAD = [None, "lots", math.nan, math.inf, -math.inf, -1, 10**400, 1e308, [1], {}, np.array([0.5, 0.7]), 1 + 2j,
       torch.tensor([1.0, 2.0])]


@pytest.mark.parametrize("name", ["width", "depth", "lr", "seed", "step"])
def test_odd_values_show_a_message_instead_of_raising(data, name):
    e = LiveTrainingExplorer(*data, **SMALL, max_step=50)
    e.widget()
    for value in BAD[1:]:  # None keeps a setting as it is
        frame = e.update(**{name: value})
        assert frame.message, (name, value)
        assert e.settings["width"] in e.widths and 0 <= frame.step <= 50
    for value in BAD:
        assert e.step(ticks=value).message
    e.close()


def test_bad_data_is_refused_when_the_explorer_is_built(data):
    x, y = data
    with pytest.raises(TypeError, match=r"\(n, 2\)"):
        LiveTrainingExplorer(torch.zeros(10, 3), y[:10])
    with pytest.raises(ValueError, match="two classes"):
        LiveTrainingExplorer(x, torch.full_like(y, 2))
    with pytest.raises(TypeError, match="int64"):
        LiveTrainingExplorer(x, y.float())


def test_one_kept_step_hides_the_polytope_explorers_step_slider(data):
    explorer = pl.widgets.PolytopeExplorer(*data, widths=(4,), depths=(1, 2), steps=(50,), progress=False)
    box = explorer.widget(width=4, depth=1)
    described = {w.description for w in _all(box) if isinstance(w, widgets.ValueWidget)}
    assert "train step" not in described and {"width", "depth", "layer"} <= described
    assert "step 50" in explorer._readout.value
    plt.close(explorer.area.fig)


def _all(box: widgets.Widget) -> list[widgets.Widget]:
    found = [box]
    for child in getattr(box, "children", ()):
        found += _all(child)
    return found


def test_a_second_widget_call_retires_the_first(data):
    """The old box, buttons and readout close, and closing the old box leaves the new one working."""
    e = LiveTrainingExplorer(*data, **SMALL)
    first = e.widget()
    old_step, _ = e._buttons
    second = e.widget()
    assert old_step.comm is None, "the old step button is closed"
    first.close()
    assert not e._closed and e._controls, "closing the first box does not close the explorer"
    e.step()
    assert e.view().step == 5
    second.close()
    assert e._closed


def test_reset_from_code_moves_the_sliders(data):
    e = LiveTrainingExplorer(*data, **SMALL)
    e.widget()
    e.reset(width=4)
    assert e._controls["width"].value == 4
    e._controls["seed"].value = 2  # a slider move resets with the width just set, not a stale one
    assert e.settings["width"] == 4 and e.settings["seed"] == 2
    e.close()


def test_a_tick_while_a_cell_holds_the_explorer_is_skipped(data):
    """Ticks may arrive on another thread than cells: one of them at a time changes the network."""
    e = LiveTrainingExplorer(*data, **SMALL)
    play = _pressed_play(e)
    with e._lock:
        import threading

        done = threading.Event()
        threading.Thread(target=lambda: (setattr(play, "value", 1), done.set())).start()
        assert done.wait(60)
    assert e.view().step == 0, "the tick did not train while the lock was held"
    play.value = 2
    assert e.view().step == 5
    e.close()


def test_stopping_play_puts_the_kernels_interrupt_handler_back():
    before = signal.getsignal(signal.SIGINT)
    live_module._install_sigint()
    assert signal.getsignal(signal.SIGINT) is live_module._on_sigint
    live_module._uninstall_sigint()
    assert signal.getsignal(signal.SIGINT) is before
