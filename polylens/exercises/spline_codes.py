"""Checks for notebook 02 (spline codes, Hamming distance, boundaries along a path)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from polylens.exercises import ExerciseFailed, as_array, as_bits, as_count, exercise
from polylens.hooks import run_with_cache
from polylens.models import MLP
from polylens.spline import spline_code


# ----------------------------------------------------------- spline code ---


def spline_code_bits(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    """Reference answer: (batch, neurons) bool, pre-activation > 0 for every ReLU, in layer order."""
    names = [n for n, m in model.named_modules() if isinstance(m, torch.nn.ReLU)]
    _, cache = run_with_cache(model, x, names_filter=names, which="input")
    return torch.cat([cache.inputs[n] > 0 for n in names], dim=1).numpy()


@exercise("spline_code", "A spline code across every layer", solution=spline_code_bits)
def check_spline_code(fn: Callable) -> str:
    """``fn(model, x)`` must return (batch, neurons) bools covering every ReLU layer."""
    model = MLP([2, 5, 4, 3, 1], seed=7)
    x = torch.randn(40, 2, generator=torch.Generator().manual_seed(1))
    want = spline_code(model, x).bits
    got = as_array(fn(model, x), "your spline code")
    widths = [l.size for l in spline_code(model, x).layers]
    if got.ndim != 2 or got.shape[0] != len(x):
        raise ExerciseFailed(
            f"your code has shape {got.shape}; it should be (batch, neurons) = {want.shape}: "
            "one row per input, one column per ReLU neuron"
        )
    if got.shape[1] != want.shape[1]:
        if got.shape[1] in widths:
            which = "the last layer" if got.shape[1] == widths[-1] else "one layer"
            raise ExerciseFailed(
                f"your spline code has 1 bit per neuron of {which} only ({got.shape[1]} columns); it should "
                f"cover every ReLU layer ({' + '.join(map(str, widths))} = {want.shape[1]} columns), "
                "concatenated in execution order"
            )
        raise ExerciseFailed(
            f"your code has {got.shape[1]} columns; the network has {want.shape[1]} ReLU neurons "
            f"({' + '.join(map(str, widths))}). Did you include the output layer? It has no ReLU."
        )
    if got.dtype.kind == "f" and not np.isin(np.unique(got), [0.0, 1.0]).all():
        raise ExerciseFailed(
            "your code holds real numbers, not on/off bits: compare the pre-activation with 0 "
            "(pre > 0), don't return the activations themselves"
        )
    got = as_bits(got, "your spline code")
    if np.array_equal(got, ~want):
        raise ExerciseFailed("every bit is flipped: a neuron is *on* where its pre-activation is > 0")
    layer_bits = [got[:, l.start:l.stop] for l in spline_code(model, x).layers]
    if all(np.array_equal(b, np.zeros_like(b)) for b in layer_bits[1:]) and want[:, widths[0]:].any():
        raise ExerciseFailed("your later layers are all off: read each layer's own pre-activations")
    if not np.array_equal(got, want):
        wrong = np.flatnonzero((got != want).any(axis=0))
        raise ExerciseFailed(
            f"the shape is right but {len(wrong)} column(s) differ (first: {wrong[0]}); keep the layers in "
            "execution order (relu0, relu1, relu2) and the neurons in order within each layer"
        )
    return f"this net has {len(np.unique(want, axis=0))} distinct codes among {len(x)} random inputs."


# ---------------------------------------------------------------- hamming ---


def hamming_rows(a_bits: np.ndarray, b_bits: np.ndarray) -> np.ndarray:
    """Reference answer: (n,) int, the number of positions where row i of a and row i of b differ."""
    return (np.asarray(a_bits, dtype=bool) != np.asarray(b_bits, dtype=bool)).sum(axis=1)


@exercise("hamming", "Hamming distance between codes", solution=hamming_rows)
def check_hamming(fn: Callable) -> str:
    """``fn(a_bits, b_bits)`` with (n, neurons) bool arrays must return (n,) counts of differing bits."""
    rng = np.random.default_rng(3)
    a = rng.random((12, 20)) < 0.5
    b = a.copy()
    flips = np.arange(12) % 6  # row i differs in i % 6 bits
    for i, k in enumerate(flips):
        b[i, rng.choice(20, size=k, replace=False)] ^= True
    got = as_array(fn(a, b), "your distances")
    if got.dtype == bool or got.dtype.kind not in "iuf":
        raise ExerciseFailed(f"return counts (whole numbers), one per row; yours have dtype {got.dtype}")
    if got.ndim == 0:
        raise ExerciseFailed(
            f"you returned one number ({got}); return one distance per row, shape ({len(a)},): compare "
            "row i of a with row i of b and count along the neuron axis (axis=1)"
        )
    if got.shape == (a.shape[1],):
        raise ExerciseFailed(
            f"you returned {a.shape[1]} numbers, one per neuron; count along axis=1 to get one per row"
        )
    if got.shape != (len(a),):
        raise ExerciseFailed(f"return shape ({len(a)},), one distance per row; yours is {got.shape}")
    if np.allclose(got, (a == b).sum(axis=1)):
        raise ExerciseFailed("you counted the bits that *agree*; Hamming distance counts those that differ")
    if np.allclose(got, flips / a.shape[1]):
        raise ExerciseFailed("you returned the fraction of bits that differ; return the count (an integer)")
    if not np.allclose(got, flips):
        raise ExerciseFailed(
            f"for rows differing in {flips[:6].tolist()} bits you returned {np.asarray(got)[:6].tolist()}; "
            "count positions where a and b differ: (a != b).sum(axis=1)"
        )
    return "on codes, the Hamming distance counts the boundaries between two regions' hyperplane arrangements."


# ------------------------------------------------------ sampled crossings ---


def boundaries_crossed(model: torch.nn.Module, x0: torch.Tensor, x1: torch.Tensor, n_samples: int) -> int:
    """Reference answer: code changes between consecutive samples of n_samples points from x0 to x1."""
    t = torch.linspace(0.0, 1.0, n_samples, dtype=x0.dtype)[:, None]
    bits = spline_code(model, x0 + t * (x1 - x0)).bits
    return int(np.any(bits[1:] != bits[:-1], axis=1).sum())


@exercise("boundaries_crossed", "Counting boundaries by sampling a path", solution=boundaries_crossed)
def check_boundaries_crossed(fn: Callable) -> str:
    """``fn(model, x0, x1, n_samples)``: how many times the code changes between consecutive samples."""
    model = MLP([2, 8, 8, 8, 2], seed=5)
    x0, x1 = torch.tensor([-1.5, 0.7]), torch.tensor([1.5, -0.4])
    for n in (2, 9, 64):
        want = boundaries_crossed(model, x0, x1, n)
        got = as_count(fn(model, x0, x1, n), "the number of code changes")
        if got == want:
            continue
        t = torch.linspace(0.0, 1.0, n)[:, None]
        code = spline_code(model, x0 + t * (x1 - x0))
        unit_flips = int((code.bits[1:] != code.bits[:-1]).sum())
        last = code.layers[-1]
        last_bits = code.bits[:, last.start:last.stop]
        last_only = int(np.any(last_bits[1:] != last_bits[:-1], axis=1).sum())
        if got == unit_flips:
            raise ExerciseFailed(
                f"with {n} samples you returned {got}, the number of neurons that flipped (summed Hamming "
                f"distances); count the *steps* at which the code changed at all ({want})"
            )
        if got == last_only:
            raise ExerciseFailed(
                f"with {n} samples you returned {got}, which counts changes in the last layer only; the "
                "spline code covers every ReLU layer"
            )
        if n == 2 and got in (0, 1) and got != want:
            raise ExerciseFailed("with 2 samples (just x0 and x1) the answer is 1 if their codes differ, else 0")
        if abs(got - want) <= 2:
            raise ExerciseFailed(
                f"with {n} samples you returned {got}, expected {want}: use exactly n_samples points including "
                "both ends, torch.linspace(0, 1, n_samples), and compare each with the next"
            )
        raise ExerciseFailed(f"with {n} samples you returned {got}, expected {want} code changes")
    return "fewer samples see fewer boundaries: a step of the path can cross several at once."
