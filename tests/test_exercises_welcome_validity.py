"""Notebook 00's second exercise and notebook 03's two: right answers in any reasonable form pass,
common mistakes get messages in the learner's terms."""

import numpy as np
import pytest
import torch

import polylens as pl
from polylens import exercises


def fails(name, fn, match):
    with pytest.raises(exercises.ExerciseFailed, match=match):
        exercises.check(name, fn, quiet=True)


def pre(model, x, name):
    _, cache = pl.run_with_cache(model, x, names_filter=[name], which="input")
    return cache.inputs[name]


# ----------------------------------------------------------------- on_units ---

@pytest.mark.parametrize("form", [lambda b: b, lambda b: b.int(), lambda b: b.numpy(), lambda b: b.double()])
def test_on_units_accepts_bools_and_zero_one(form):
    assert exercises.check("on_units", lambda model, x, name: form(pre(model, x, name) > 0), quiet=True)


def test_on_units_mistakes():
    fails("on_units", lambda model, x, name: 2 * (pre(model, x, name) > 0).int(), "on or off")
    fails("on_units", lambda model, x, name: pre(model, x, name) <= 0, "swapped")
    fails("on_units", lambda model, x, name: (pre(model, x, name) > 0)[:, :2], "shape")
    fails("on_units", lambda model, x, name: pre(model, x, name).to(torch.complex64), "complex")
    fails("on_units", lambda model, x, name: pre(model, x, "relu0")[:, :5] > 0, "differ")


# -------------------------------------------------------------- scale_along ---

def test_scale_along_accepts_float64_and_numpy():
    assert exercises.check("scale_along", lambda h0, d, g, a: (h0.double() + a * g * d.double() / d.norm()).numpy(),
                           quiet=True)


def test_scale_along_mistakes():
    fails("scale_along", lambda h0, d, g, a: h0 + a * g * d, "unit vector")
    fails("scale_along", lambda h0, d, g, a: h0 + a * d / d.norm(), "gap")
    fails("scale_along", lambda h0, d, g, a: (h0 + a * g * d / d.norm())[0], "shape")
    fails("scale_along", lambda h0, d, g, a: h0 - a * g * d / d.norm(), "differ")


# ------------------------------------------------------------- inside_range ---

def test_inside_range_accepts_ints_and_lists():
    ref = exercises.solution("inside_range")
    assert exercises.check("inside_range", lambda p, data: ref(p, data).astype(int).tolist(), quiet=True)


def test_inside_range_mistakes():
    fails("inside_range", lambda p, data: (p >= data.min()) & (p <= data.max()), "minimum and maximum")
    fails("inside_range", lambda p, data: ~exercises.solution("inside_range")(p, data), "swapped")
    fails("inside_range", lambda p, data: np.zeros(3, bool), "shape")
    fails("inside_range", lambda p, data: (p > np.quantile(data, 0.05)) & (p < np.quantile(data, 0.95)), "ends included")
