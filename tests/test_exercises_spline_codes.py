"""Typical mistakes in notebook 02's exercises get their targeted messages."""

import numpy as np
import pytest
import torch

from polylens import exercises
from polylens.exercises import ExerciseFailed, check
from polylens.hooks import run_with_cache
from polylens.spline import spline_code


def _fails(name, fn, match):
    with pytest.raises(ExerciseFailed, match=match):
        check(name, fn, quiet=True)


def test_stubs_are_not_attempted():
    def stub(*args):
        raise NotImplementedError

    for name in ("spline_code", "hamming", "boundaries_crossed"):
        assert not check(name, stub, quiet=True)


# ------------------------------------------------------------ spline_code ---


def test_spline_code_last_layer_only():
    def last_layer(model, x):
        names = [n for n, m in model.named_modules() if isinstance(m, torch.nn.ReLU)]
        _, cache = run_with_cache(model, x, names_filter=names[-1:], which="input")
        return (cache.inputs[names[-1]] > 0).numpy()

    _fails("spline_code", last_layer, "last layer only.*every ReLU layer")


def test_spline_code_flipped_bits():
    _fails("spline_code", lambda model, x: ~spline_code(model, x).bits, "flipped")


def test_spline_code_real_values_instead_of_bits():
    def activations(model, x):
        _, cache = run_with_cache(model, x, names_filter=lambda n: n.startswith("relu"), which="input")
        return torch.cat(list(cache.inputs.values()), dim=1).numpy()

    _fails("spline_code", activations, "real numbers")


def test_spline_code_layers_in_wrong_order():
    def reversed_layers(model, x):
        code = spline_code(model, x)
        return np.concatenate([code.layer(l.name) for l in reversed(code.layers)], axis=1)

    _fails("spline_code", reversed_layers, "execution order")


def test_spline_code_accepts_a_tensor_answer():
    assert check("spline_code", lambda model, x: torch.from_numpy(spline_code(model, x).bits), quiet=True)


# ---------------------------------------------------------------- hamming ---


def test_hamming_single_number():
    _fails("hamming", lambda a, b: int((a != b).sum()), "one number")


def test_hamming_wrong_axis():
    _fails("hamming", lambda a, b: (a != b).sum(axis=0), "one per neuron")


def test_hamming_counts_agreement():
    _fails("hamming", lambda a, b: (a == b).sum(axis=1), "agree")


def test_hamming_fraction():
    _fails("hamming", lambda a, b: (a != b).mean(axis=1), "fraction")


# ------------------------------------------------------ boundaries_crossed ---


def _codes(model, x0, x1, n):
    t = torch.linspace(0, 1, n)[:, None]
    return spline_code(model, x0 + t * (x1 - x0))


def test_boundaries_summed_hamming():
    def unit_flips(model, x0, x1, n):
        bits = _codes(model, x0, x1, n).bits
        return int((bits[1:] != bits[:-1]).sum())

    _fails("boundaries_crossed", unit_flips, "neurons that flipped")


def test_boundaries_last_layer_only():
    def last_only(model, x0, x1, n):
        code = _codes(model, x0, x1, n)
        bits = code.layer(code.layers[-1].name)
        return int(np.any(bits[1:] != bits[:-1], axis=1).sum())

    _fails("boundaries_crossed", last_only, "last layer only")


def test_boundaries_off_by_one_samples():
    def one_too_many(model, x0, x1, n):
        bits = _codes(model, x0, x1, n + 1).bits
        return int(np.any(bits[1:] != bits[:-1], axis=1).sum())

    _fails("boundaries_crossed", one_too_many, "exactly n_samples points|expected")


# --------------------------------- answers that pass by accident no more ---


def test_spline_code_bits_given_as_zero_and_two_are_refused():
    ref = exercises.solution("spline_code")
    with pytest.raises(exercises.ExerciseFailed, match="on or off"):
        exercises.check("spline_code", lambda model, x: 2 * ref(model, x).astype(int), quiet=True)
    with pytest.raises(exercises.ExerciseFailed, match="dtype complex"):
        exercises.check("spline_code", lambda model, x: ref(model, x).astype(complex), quiet=True)
    assert exercises.check("spline_code", lambda model, x: ref(model, x).astype(np.float64), quiet=True)


def test_hamming_distances_must_be_real_counts():
    ref = exercises.solution("hamming")
    with pytest.raises(exercises.ExerciseFailed, match="dtype complex"):
        exercises.check("hamming", lambda a, b: ref(a, b).astype(complex), quiet=True)
    assert exercises.check("hamming", lambda a, b: ref(a, b).astype(np.float64), quiet=True)


def test_a_crossing_count_must_be_a_whole_number():
    ref = exercises.solution("boundaries_crossed")
    with pytest.raises(exercises.ExerciseFailed, match="not a count"):
        exercises.check("boundaries_crossed", lambda m, x0, x1, n: ref(m, x0, x1, n) + 0.9, quiet=True)
    with pytest.raises(exercises.ExerciseFailed, match="whole number"):
        exercises.check("boundaries_crossed", lambda m, x0, x1, n: complex(ref(m, x0, x1, n)), quiet=True)
    assert exercises.check("boundaries_crossed", lambda m, x0, x1, n: np.int64(ref(m, x0, x1, n)), quiet=True)
    assert exercises.check("boundaries_crossed", lambda m, x0, x1, n: float(ref(m, x0, x1, n)), quiet=True)
    assert exercises.check("boundaries_crossed", lambda m, x0, x1, n: torch.tensor(ref(m, x0, x1, n)), quiet=True)
