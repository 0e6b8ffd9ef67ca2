"""Toy 2D tasks and the snapshotting training loop."""

import pytest
import torch

from polylens.datasets import spirals, two_moons
from polylens.models import MLP
from polylens.training import TrainingRun, train_classifier


@pytest.mark.parametrize("make", [two_moons, spirals])
def test_tasks_are_seeded_balanced_and_in_the_square(make):
    x, y = make(400, seed=3)
    x2, y2 = make(400, seed=3)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert not torch.equal(x, make(400, seed=4)[0])
    assert x.shape == (400, 2) and x.dtype == torch.float32
    assert x.abs().max() < 1.2
    assert torch.bincount(y).tolist() == [200, 200]


def test_training_learns_moons_and_keeps_snapshots():
    x, y = two_moons(256, seed=0)
    model = MLP([2, 16, 16, 2], seed=0)
    traj = train_classifier(model, x, y, steps=300, lr=1e-2, snapshots=[0, 100])
    assert traj.steps == [0, 100, 300]
    assert traj.accuracy[-1] > 0.97 > traj.accuracy[0]
    early = traj.model_at(model, 0)
    assert torch.equal(early.linear0.weight, traj.states[0]["linear0.weight"])
    assert not torch.equal(early.linear0.weight, model.linear0.weight)


def test_bad_input_is_explained():
    x, y = two_moons(16, seed=0)
    model = MLP([2, 4, 2], seed=0)
    with pytest.raises(TypeError, match="int64"):
        train_classifier(model, x, y.float())
    with pytest.raises(ValueError, match="NaN"):
        train_classifier(model, torch.full_like(x, float("nan")), y)
    with pytest.raises(ValueError, match="no snapshot"):
        train_classifier(model, x, y, steps=1).model_at(model, 5)
    with pytest.raises(ValueError, match="noise"):
        two_moons(10, noise=-1)


@pytest.mark.parametrize("batch_size", [None, 16])
def test_a_training_run_in_pieces_is_train_classifier(batch_size):
    """The live explorer trains a few steps per picture: in any pieces, the same weights as one call."""
    x, y = two_moons(64, seed=1)
    whole = MLP([2, 8, 2], seed=3)
    train_classifier(whole, x, y, steps=12, lr=1e-2, batch_size=batch_size, seed=5)
    run = TrainingRun(MLP([2, 8, 2], seed=3), x, y, lr=1e-2, batch_size=batch_size, seed=5)
    for n in (5, 0, 4, 3):
        run.train(n)
    assert run.step == 12
    for a, b in zip(whole.parameters(), run.model.parameters()):
        assert torch.equal(a, b)


def test_restore_undoes_steps_so_that_training_on_repeats_them():
    x, y = two_moons(64, seed=1)
    run = TrainingRun(MLP([2, 8, 2], seed=0), x, y, lr=3e-2, batch_size=8, seed=2)
    run.train(3)
    saved = run.save()
    run.train(4)
    after = [p.detach().clone() for p in run.model.parameters()]
    run.restore(saved)
    assert run.step == 3
    run.train(4)
    assert all(torch.equal(a, b) for a, b in zip(after, run.model.parameters()))


def test_a_training_run_checks_its_inputs_like_train_classifier():
    x, y = two_moons(16, seed=0)
    with pytest.raises(TypeError, match="int64"):
        TrainingRun(MLP([2, 4, 2]), x, y.float())
    with pytest.raises(ValueError, match="lr must be a positive"):
        TrainingRun(MLP([2, 4, 2]), x, y, lr=0.0)
    with pytest.raises(TypeError, match="n must be an int"):
        TrainingRun(MLP([2, 4, 2]), x, y).train(2.5)
