"""Notebook 01's exercises: common mistakes get targeted messages."""

import numpy as np
import pytest
import torch

import polylens as pl
from polylens import exercises


def test_counting_first_layer_codes_only_is_explained():
    def first_layer_only(model, n):
        bits = pl.spline_code(model, pl.plot.plane_grid(n=n), "relu0").bits
        return len(np.unique(bits, axis=0))

    with pytest.raises(exercises.ExerciseFailed, match="every ReLU"):
        exercises.check("grid_region_count", first_layer_only)


def test_overcounting_is_explained():
    with pytest.raises(exercises.ExerciseFailed, match="never invent"):
        exercises.check("grid_region_count", lambda model, n: n * n)


def test_affine_map_without_the_relu_is_explained():
    def no_relu(model, x0):
        w1, b1, w2, b2 = model.linear0.weight, model.linear0.bias, model.out.weight, model.out.bias
        return w2 @ w1, w2 @ b1 + b2

    with pytest.raises(exercises.ExerciseFailed, match="ignores the ReLU"):
        exercises.check("local_affine", no_relu)


def test_forgetting_the_first_bias_in_c_is_explained():
    def bias_skips_relu(model, x0):
        a, _ = exercises.solution("local_affine")(model, x0)
        return a, model.out.bias.detach()

    with pytest.raises(exercises.ExerciseFailed, match="c is wrong"):
        exercises.check("local_affine", bias_skips_relu)


def test_transposed_a_is_explained():
    with pytest.raises(exercises.ExerciseFailed, match=r"shape \(2, 3\)"):
        exercises.check("local_affine", lambda m, x0: (torch.zeros(2, 3), torch.zeros(3)))


def test_a_region_count_may_be_any_whole_number_type():
    import numpy as np
    import torch

    from polylens import exercises

    ref = exercises.solution("grid_region_count")
    for form in (float, np.int64, torch.tensor):
        assert exercises.check("grid_region_count", lambda model, n: form(ref(model, n)), quiet=True)
    with pytest.raises(exercises.ExerciseFailed, match="not a count"):
        exercises.check("grid_region_count", lambda model, n: ref(model, n) - 0.5, quiet=True)
