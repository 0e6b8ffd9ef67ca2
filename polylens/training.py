"""A small, seeded training loop: all at once with snapshots, or a few steps at a time.

``train_classifier`` trains once and keeps the weights at a few steps (to
draw the polytopes there); ``TrainingRun`` is the same loop a few steps per
call, with save/restore, for the live training explorer of notebook 01.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

from polylens._checks import check_model, finite_number, whole_number

__all__ = ["Trajectory", "TrainingRun", "train_classifier"]


@dataclass
class Trajectory:
    """Weights at chosen steps of one training run, with the loss and accuracy there."""

    steps: list[int]
    states: list[dict[str, torch.Tensor]]
    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)

    def model_at(self, model: nn.Module, step: int) -> nn.Module:
        """A copy of ``model`` holding the weights saved at ``step``."""
        if step not in self.steps:
            raise ValueError(f"no snapshot at step {step}; saved steps are {self.steps}")
        out = copy.deepcopy(model)
        out.load_state_dict(self.states[self.steps.index(step)])
        return out.eval()


class TrainingRun:
    """Adam and cross-entropy on (x, y), a few steps at a time: the loop of :func:`train_classifier`.

    A live explorer trains between pictures, so the optimiser's moments and
    the minibatch generator must live from one call to the next; ``save`` and
    ``restore`` let it undo a tick that failed or was interrupted.

    Args:
        model: maps (n, d) inputs to (n, classes) logits; trained in place.
        x: (n, d) float inputs; y: (n,) int64 labels.
        lr: Adam's learning rate, > 0.
        batch_size: examples per step, drawn with a generator seeded by ``seed``;
            None trains on the full batch.
        seed: seeds the minibatch order.
    """

    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, lr: float = 1e-2,
                 batch_size: int | None = None, seed: int = 0) -> None:
        _check_data(x, y, 0)
        self.lr, self.batch_size, _ = _check_settings(0, lr, batch_size, ())
        if self.batch_size is not None and self.batch_size > len(x):
            # Minibatches are drawn with replacement: a batch larger than the data only repeats examples,
            # and 10**9 of them would not fit in memory.
            raise ValueError(f"batch_size must be at most the number of examples ({len(x)}); got {self.batch_size}. "
                             "Pass batch_size=None to train on the whole data each step")
        _check_fits(model, x, y)
        self.model, self.x, self.y = model, x, y
        self.gen = torch.Generator().manual_seed(whole_number(seed, "seed", low=None))
        self.opt = torch.optim.Adam(model.parameters(), lr=self.lr)
        self.step = 0

    def train(self, n: int) -> None:
        """``n`` optimiser steps, in place."""
        for _ in range(whole_number(n, "n")):
            idx = torch.randint(len(self.x), (self.batch_size,), generator=self.gen) if self.batch_size \
                else slice(None)
            loss = nn.functional.cross_entropy(self.model(self.x[idx]), self.y[idx])
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
            self.step += 1

    def save(self) -> tuple:
        """Everything :meth:`train` changes (weights, Adam's moments, the generator, the step), copied."""
        return (copy.deepcopy(self.model.state_dict()), copy.deepcopy(self.opt.state_dict()),
                self.gen.get_state(), self.step)

    def restore(self, saved: tuple) -> None:
        """Go back to what :meth:`save` returned: training on from here repeats the same steps."""
        weights, moments, gen_state, step = saved
        self.model.load_state_dict(weights)
        self.opt.load_state_dict(moments)
        self.gen.set_state(gen_state)
        self.step = step


def train_classifier(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    steps: int = 500,
    lr: float = 1e-2,
    batch_size: int | None = None,
    snapshots: Sequence[int] = (),
    seed: int = 0,
    progress: bool = False,
) -> Trajectory:
    """Train ``model`` in place with Adam and cross-entropy on (x, y).

    Args:
        model: maps (n, d) inputs to (n, classes) logits.
        x: (n, d) float inputs; y: (n,) int64 labels.
        steps: optimiser steps; full batch unless ``batch_size`` is given.
        snapshots: steps (0 = before training) at which to keep a copy of the weights.
        seed: seeds the minibatch order.
        progress: show a tqdm bar.

    Returns:
        A :class:`Trajectory` with the snapshots (and always the final step).
    """
    _check_data(x, y, steps)
    steps = int(steps)
    _, _, snapshots = _check_settings(steps, lr, batch_size, snapshots)
    run = TrainingRun(model, x, y, lr=lr, batch_size=batch_size, seed=seed)
    keep = sorted({*snapshots, steps})
    traj = Trajectory([], [])
    for step in tqdm(range(steps + 1), disable=not progress, desc="training"):
        if step in keep:
            _snapshot(traj, model, x, y, step)
        if step == steps:
            break
        run.train(1)
    return traj


def _snapshot(traj: Trajectory, model: nn.Module, x: torch.Tensor, y: torch.Tensor, step: int) -> None:
    with torch.no_grad():
        logits = model(x)
        traj.loss.append(float(nn.functional.cross_entropy(logits, y)))
        traj.accuracy.append(float((logits.argmax(1) == y).float().mean()))
    traj.steps.append(step)
    traj.states.append({k: v.detach().clone() for k, v in model.state_dict().items()})


def _check_data(x: torch.Tensor, y: torch.Tensor, steps: int) -> None:
    if not (isinstance(x, torch.Tensor) and x.ndim == 2 and x.is_floating_point()):
        raise TypeError("x must be a float tensor of shape (n, d)")
    if not (isinstance(y, torch.Tensor) and y.shape == (len(x),) and y.dtype == torch.int64):
        raise TypeError(f"y must be an int64 tensor of shape ({len(x)},) holding class labels")
    if not torch.isfinite(x).all():
        raise ValueError("x holds NaN or inf; clean the data first")
    try:
        whole_number(steps, "steps")
    except TypeError as err:  # a ValueError, as before numpy and torch ints were accepted
        raise ValueError(str(err)) from None
    if len(y) and y.min() < 0:
        raise ValueError(f"y holds class labels, which must be >= 0; got {int(y.min())}")


def _check_settings(
    steps: int, lr: float, batch_size: int | None, snapshots: Sequence[int]
) -> tuple[float, int | None, list[int]]:
    """(lr, batch_size, snapshots) as Python numbers, checked."""
    lr = finite_number(lr, "lr")
    if not lr > 0:
        raise ValueError(f"lr must be a positive learning rate, e.g. 1e-2; got {lr}")
    if batch_size is not None:
        batch_size = whole_number(batch_size, "batch_size", low=1)
    steps_kept = []
    for step in snapshots:
        if not whole_number(step, "each snapshot step") <= steps:
            raise ValueError(f"snapshot steps must lie in [0, steps] = [0, {steps}], got {step}")
        steps_kept.append(int(step))
    return lr, batch_size, steps_kept


def _check_fits(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
    """One forward pass on one example: the model must take x and give enough logits for y."""
    check_model(model)
    if not len(x):
        raise ValueError("x is empty; pass at least one example")
    try:
        with torch.no_grad():
            logits = model(x[:1])
    except RuntimeError as err:
        raise ValueError(
            f"the model could not run on x of shape {tuple(x.shape)} ({err}); "
            "check that its input width matches x.shape[1]"
        ) from err
    if logits.ndim != 2 or logits.shape[1] <= int(y.max()):
        raise ValueError(
            f"the model gives logits of shape {tuple(logits.shape)} per example, but y has labels up to "
            f"{int(y.max())}; it needs (batch, classes) with classes > the largest label"
        )
