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
    if not got.is_floating_point():
        raise ExerciseFailed(f"your tensor holds {got.dtype}; pre-activations are real numbers (floats)")
    # Compared in float64, so a float64 answer (the values right, the dtype wider) is judged by its values.
    got, want, post = got.detach().double(), want.double(), post.double()
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



def on_units(model: torch.nn.Module, x: torch.Tensor, name: str) -> torch.Tensor:
    """Reference answer: (batch, neurons) bool, which units of ReLU ``name`` are on (pre-activation > 0)."""
    return preactivations(model, x, name) > 0


@exercise("on_units", "Which units are on", solution=on_units)
def check_on_units(fn: Callable) -> str:
    """``fn(model, x, name)`` must return the on/off pattern of ReLU ``name``: one layer of the spline code."""
    import numpy as np

    from polylens.exercises import as_array
    from polylens.spline import spline_code

    model = MLP([2, 6, 5, 1], seed=4)
    x = torch.randn(40, 2, generator=torch.Generator().manual_seed(1))
    code = spline_code(model, x)
    want = code.layer("relu1")
    got = as_array(fn(model, x, "relu1"), "your answer")
    if got.shape != want.shape:
        raise ExerciseFailed(f"your array has shape {got.shape}; 'relu1' has {want.shape[1]} units, so for "
                             f"{len(x)} inputs return shape {want.shape} (batch, neurons)")
    if got.dtype.kind == "c":
        raise ExerciseFailed("your array holds complex numbers; return booleans (pre-activation > 0)")
    if got.dtype != bool:
        values = set(np.unique(got).tolist())
        if not values <= {0, 1}:
            raise ExerciseFailed(f"your array holds {sorted(values)[:4]}; a unit is on or off: return booleans "
                                 "(pre-activation > 0), or 0 and 1")
        got = got.astype(bool)
    if np.array_equal(got, ~want):
        raise ExerciseFailed("on and off are swapped: a unit is on when its pre-activation is > 0")
    if np.array_equal(got, as_array(preactivations(model, x, "relu1") >= 0, "")) and not np.array_equal(got, want):
        raise ExerciseFailed("a pre-activation of exactly 0 counts as off: use > 0, not >= 0")
    if not np.array_equal(got, want):
        wrong = int((got != want).sum())
        raise ExerciseFailed(f"{wrong} of {want.size} entries differ; compare the *input* of module `name` "
                             "(its pre-activation) with 0, not its output")
    return (f"{want.mean():.0%} of these units are on. Stacked over every ReLU layer, this on/off pattern is the "
            "input's spline code (pl.spline_code), the name of the polytope it lies in: notebook 02.")
