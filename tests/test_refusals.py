"""Rough edges a careless or hostile learner hit: each is refused with a clear error, before any work.

Each case failed before its fix: silently (NaN weights, zero yardsticks, NaN pairs) or with an
obscure traceback (an empty batch, a raw safetensors or allocator error).
"""

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import polylens.scenes as pl_scenes
from polylens import compose, steer
from polylens.scenes import SceneAutoencoder, WeightsError, load_autoencoder
from polylens.scenes.weights import WEIGHTS_DIR
from polylens.shipped import sha256


@pytest.fixture(scope="module")
def ae():
    return load_autoencoder()


@pytest.fixture(scope="module")
def pairs():
    sunny, other = pl_scenes.training_scenes(1)
    return pl_scenes.training_pairs(sunny, other)


@pytest.fixture()
def weights_copy(tmp_path):
    target = tmp_path / "weights"
    shutil.copytree(WEIGHTS_DIR, target)
    return target


def _rehash(folder, name):
    manifest = json.loads((folder / "manifest.json").read_text())
    entry = manifest["models"][name]
    entry["sha256"] = sha256(folder / entry["file"])
    entry["bytes"] = (folder / entry["file"]).stat().st_size
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_nan_weights_with_a_matching_checksum_are_refused(weights_copy):
    path = weights_copy / "autoencoder.safetensors"
    state = load_file(path)
    first = next(k for k, v in state.items() if v.is_floating_point())
    state[first] = state[first].clone()
    state[first].view(-1)[0] = float("nan")
    save_file(state, str(path))
    _rehash(weights_copy, "autoencoder")
    with pytest.raises(WeightsError, match="NaN"):
        load_autoencoder(weights_copy)


def test_a_damaged_header_with_a_matching_checksum_is_a_weights_error(weights_copy):
    path = weights_copy / "autoencoder.safetensors"
    path.write_bytes(b"\xff" * 8 + path.read_bytes()[8:])
    _rehash(weights_copy, "autoencoder")
    with pytest.raises(WeightsError, match="not a readable safetensors"):
        load_autoencoder(weights_copy)


def test_a_hand_edited_width_is_measured_not_built(weights_copy):
    manifest = json.loads((weights_copy / "manifest.json").read_text())
    manifest["models"]["autoencoder"]["config"]["width"] = 4096
    (weights_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(WeightsError, match="edited by hand"):
        load_autoencoder(weights_copy)


def test_fit_transport_refuses_what_it_cannot_fit(ae, pairs):
    before, after, starts = pairs
    layer = SceneAutoencoder.BOTTLENECK
    with pytest.raises(ValueError, match="at least one pair"):
        steer.fit_transport(ae, layer, before[:0], after[:0], starts[:0])
    spoiled = before.clone()
    spoiled[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="before holds NaN"):
        steer.fit_transport(ae, layer, spoiled, after, starts)
    with pytest.raises(ValueError, match="starts holds NaN"):
        steer.fit_transport(ae, layer, before, after, np.full(len(before), np.nan))
    with pytest.raises(ValueError, match="radius must be below 8"):
        steer.fit_transport(ae, layer, before, after, starts, radius=50)


def test_compose_refuses_empty_batches_and_meaningless_yardsticks(ae):
    with pytest.raises(ValueError, match="empty"):
        compose.run(ae, torch.zeros(0, 3, 64, 64))
    with pytest.raises(TypeError, match="tensor"):
        compose.run(ae, np.zeros((1, 3, 64, 64), np.float32))
    data = pl_scenes.split("test", 1, objects=("duck",))
    probes = pl_scenes.load_probes()
    for bad in (torch.zeros(len(data)), torch.full((len(data),), float("nan"))):
        with pytest.raises(ValueError, match="positive finite"):
            compose.score(ae, probes, data, own=bad)


def test_prepare_and_evaluate_say_what_a_plan_is(ae):
    sunny, other = pl_scenes.training_scenes(1)
    with pytest.raises(TypeError, match="module names"):
        compose.prepare(ae, "add", None, sunny, other)
    probes = pl_scenes.load_probes()
    with pytest.raises(ValueError, match="each plan"):
        compose.evaluate(ae, probes, plans=["add"], n_train=1, n_val=1, n_test=1)
    with pytest.raises(TypeError, match="SteeringMask"):
        compose.mask_maps(ae, "x")
    with pytest.raises(ValueError, match="no method rows"):
        compose.Table().best()


def test_what_would_not_fit_in_binder_is_refused_before_it_is_allocated():
    from polylens import clustering, datasets, plot
    from polylens.models import MLP
    from polylens.training import TrainingRun

    with pytest.raises(ValueError, match="MAX_RESULT_BYTES"):
        datasets.two_moons(10**9)
    with pytest.raises(ValueError, match="MAX_RESULT_BYTES"):
        clustering.euclidean(np.zeros((30_000, 2)))
    with pytest.raises(ValueError, match="MAX_RESULT_BYTES"):
        plot.distinct_colors(10**8)
    with pytest.raises(ValueError, match="MAX_RESULT_BYTES"):
        pl_scenes.split("test", 600)
    x, y = datasets.two_moons(64)
    with pytest.raises(ValueError, match="at most the number of examples"):
        TrainingRun(MLP([2, 4, 2], seed=0), x, y, batch_size=10**9)
    assert len(datasets.two_moons(64)[0]) == 64 and clustering.euclidean(np.zeros((3, 2))).shape == (3, 3)


def test_the_benchmark_runner_parses_its_arguments():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    shown = subprocess.run([sys.executable, "-m", "benchmarks", "--help"], cwd=root, capture_output=True, text=True,
                           timeout=120)
    assert shown.returncode == 0 and "--only" in shown.stdout and "# polylens benchmarks" not in shown.stdout
    wrong = subprocess.run([sys.executable, "-m", "benchmarks", "--only", "nosuch"], cwd=root, capture_output=True,
                           text=True, timeout=120)
    assert wrong.returncode == 2 and "invalid choice" in wrong.stderr


def test_the_live_explorer_checks_its_grids_and_ticks():
    from polylens.datasets import two_moons
    from polylens.widgets.training import LiveTrainingExplorer

    x, y = two_moons(64)
    for bad in ({"widths": ()}, {"widths": "abc"}, {"lrs": ()}, {"max_step": float("nan")}):
        with pytest.raises((TypeError, ValueError)):
            LiveTrainingExplorer(x, y, **bad)
    for ticks in (0, 2.7):  # once silently 1 and 2
        with pytest.raises((TypeError, ValueError), match="steps_per_tick"):
            LiveTrainingExplorer(x, y, steps_per_tick=ticks)


def test_closing_the_live_explorer_on_another_thread_never_breaks_a_step():
    """close() takes the explorer's lock, so a step drawing meanwhile never finds its figure gone.

    The step is held in the middle of its redraw (after it checked that a figure exists) while
    another thread closes the explorer; before the fix the step then raised AttributeError.
    """
    import threading

    from polylens.datasets import two_moons
    from polylens.widgets.training import LiveTrainingExplorer

    x, y = two_moons(64)
    explorer = LiveTrainingExplorer(x, y, width=4, depth=1, widths=(4,), depths=(1,), max_step=400)
    explorer.widget()
    drawing, errors = threading.Event(), []
    set_data = explorer._curve.set_data

    def slow_set_data(*args):
        drawing.set()
        threading.Event().wait(0.5)  # hold the redraw half-way
        return set_data(*args)

    explorer._curve.set_data = slow_set_data

    def step():
        try:
            explorer.step()
        except Exception as err:  # noqa: BLE001 - the test is that nothing escapes
            errors.append(err)

    worker = threading.Thread(target=step)
    worker.start()
    assert drawing.wait(timeout=120)
    explorer.close()
    worker.join(timeout=300)
    assert not errors, errors[:1]
    assert explorer.area is None  # closed once the step was done


def test_more_obscure_tracebacks_are_now_clear_errors(ae):
    import polylens as pl
    from polylens.models import MLP

    net = MLP([2, 8, 2], seed=0)
    with pytest.raises(ValueError, match="are empty"):
        pl.regions.crossings(net, torch.zeros(0, 2), torch.zeros(0, 2))  # was a ZeroDivisionError
    with pytest.raises(TypeError, match=r"x\.float\(\)"):
        pl.run_with_cache(net, torch.zeros(3, 2, dtype=torch.float64))
    with pytest.raises(TypeError, match="torch.as_tensor"):
        pl.run_with_cache(net, np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match="2\\*\\*63"):
        pl_scenes.render("duck", "sunny", 2**70)
    sunny, other = pl_scenes.training_scenes(1)
    with pytest.raises(ValueError, match="non-empty"):
        compose.prepare(ae, "add", [SceneAutoencoder.BOTTLENECK], sunny[:0], other[:0])
    plan = compose.prepare(ae, "transport", [SceneAutoencoder.BOTTLENECK], sunny, other)
    with torch.no_grad(), plan.context(ae, 1.0):
        assert ae(torch.zeros(0, 3, 64, 64)).shape == (0, 3, 64, 64)  # an empty batch moves nothing


def test_a_not_implemented_error_from_deep_inside_is_not_read_as_not_attempted(tmp_path, monkeypatch):
    import importlib

    from polylens import exercises

    # A library the learner's function calls, in a file of its own (as torch or numpy would be).
    (tmp_path / "unfinished_library.py").write_text(
        "def op(*args):\n    raise NotImplementedError('this op is not built for that dtype')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    library = importlib.import_module("unfinished_library")

    def stub(*args):
        raise NotImplementedError

    def answer(*args):
        return library.op(*args)

    name = exercises.names()[0]
    assert not exercises.check(name, stub, quiet=True)  # the stub: not attempted, no error
    with pytest.raises(exercises.ExerciseFailed, match=r"op\(\) .*not built for that dtype"):
        exercises.check(name, answer, quiet=True)


def test_showing_new_live_explorers_again_and_again_keeps_few_figures_open():
    """Re-running `LiveTrainingExplorer(...).widget()` used to leave one open figure per run."""
    import matplotlib.pyplot as plt

    from polylens.datasets import two_moons
    from polylens.widgets import training

    x, y = two_moons(64)
    before = set(plt.get_fignums())
    explorers = []
    for _ in range(6):
        explorers.append(training.LiveTrainingExplorer(x, y, width=4, depth=1, widths=(4,), depths=(1,)))
        explorers[-1].widget()
    try:
        assert len(set(plt.get_fignums()) - before) <= training.MAX_OPEN
        assert explorers[-1].area is not None and explorers[0].area is None  # the newest kept, the oldest closed
    finally:
        for explorer in explorers:
            explorer.close()
    with pytest.raises(ValueError, match="widths up to"):
        training.LiveTrainingExplorer(x, y, widths=(4, 4096))


def test_shuffled_training_scenes_are_refused_as_pairs():
    sunny, other = pl_scenes.training_scenes(4)
    pl_scenes.training_pairs(sunny, other)  # in order: fine
    shuffled = sunny[torch.randperm(len(sunny), generator=torch.Generator().manual_seed(0))]
    with pytest.raises(ValueError, match="unshuffled"):
        pl_scenes.training_pairs(shuffled, other)


def test_crossings_refuses_a_batch_passed_as_one_segment():
    """20,000 segments of a 2-256-256-2 net, passed as one x0 and x1, once took gigabytes."""
    import polylens as pl
    from polylens.models import MLP

    net = MLP([2, 256, 256, 2], seed=0)
    with pytest.raises(ValueError, match="once per segment"):
        pl.regions.crossings(net, torch.zeros(20_000, 2), torch.ones(20_000, 2))
    assert len(pl.regions.crossings(net, torch.zeros(3, 2), torch.ones(3, 2)).t) >= 0  # a small array is one point
    assert len(pl.regions.crossings(MLP([2, 8, 2], seed=0), torch.zeros(2), torch.ones(2)).t) >= 0


def test_a_long_slice_shows_progress_and_gives_the_same_regions(monkeypatch, capsys):
    """A slice that runs for seconds shows a progress bar (here forced at once); a quick one shows none."""
    import polylens as pl
    from polylens.models import MLP
    from polylens.regions import slices

    net = MLP([2, 16, 16, 2], seed=0)
    plane = (torch.zeros(2), torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]))
    quick = pl.regions.slice_regions(net, *plane)
    assert "slice_regions" not in capsys.readouterr().err
    monkeypatch.setattr(slices, "_SHOW_AFTER", 0.0)
    shown = pl.regions.slice_regions(net, *plane)
    assert "slice_regions: ReLU layers" in capsys.readouterr().err
    assert len(shown) == len(quick) and np.array_equal(shown.codes.bits, quick.codes.bits)


def test_every_exercise_judges_a_float64_answer_by_its_values():
    """A right answer returned as float64 once crashed the pre-activations check (Double did not match Float)."""
    from polylens import exercises

    def widened(fn):
        def answer(*args):
            out = fn(*args)
            widen = lambda o: o.double() if isinstance(o, torch.Tensor) and o.is_floating_point() else (  # noqa: E731
                o.astype(np.float64) if isinstance(o, np.ndarray) and o.dtype.kind == "f" else o)
            return tuple(widen(o) for o in out) if isinstance(out, tuple) else widen(out)
        return answer

    for name in exercises.names():
        assert exercises.check(name, widened(exercises.solution(name).fn), quiet=True), name
