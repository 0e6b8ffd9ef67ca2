"""Checks for notebook 00 (first captures)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from polylens.exercises import ExerciseFailed, exercise
from polylens.hooks import run_with_cache
from polylens.models import MLP


def preactivations(model: torch.nn.Module, x: torch.Tensor, name: str) -> torch.Tensor:
    """Reference answer: the input of module ``name``, shape (batch, neurons)."""
    _, cache = run_with_cache(model, x, names_filter=[name], which="input")
    return cache.inputs[name]


@exercise("preactivations", "Pre-activations of a ReLU", solution=preactivations)
def check_preactivations(fn: Callable) -> str:
    """``fn(model, x, name)`` must return the input of ReLU module ``name``."""
    model = MLP([2, 6, 5, 1], seed=3)
    x = torch.randn(32, 2, generator=torch.Generator().manual_seed(0))
    _, cache = run_with_cache(model, x, names_filter=["relu1"], which="both")
    want, post = cache.inputs["relu1"], cache["relu1"]
    got = fn(model, x, "relu1")
    if not isinstance(got, torch.Tensor):
        raise ExerciseFailed(f"return a torch.Tensor, not {type(got).__name__}")
    if got.shape != want.shape:
        raise ExerciseFailed(
            f"your tensor has shape {tuple(got.shape)}; the pre-activations of 'relu1' for "
            f"a batch of {len(x)} inputs have shape {tuple(want.shape)} (batch, neurons)"
        )
    if torch.allclose(got, post):
        raise ExerciseFailed(
            "you returned the ReLU's output, which is never negative; the pre-activation is "
            "its *input*: capture with which='input' (or 'both') and read cache.inputs[name]"
        )
    if not torch.allclose(got, want, atol=1e-6):
        raise ExerciseFailed(
            "the shape is right but the values differ from the input of 'relu1'; capture the "
            "module whose name is passed in as `name` (not a fixed one) and read cache.inputs[name]"
        )
    frac_on = (want > 0).float().mean().item()
    return f"{frac_on:.0%} of these pre-activations are positive: those neurons are on."

