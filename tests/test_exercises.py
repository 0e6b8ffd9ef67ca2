"""polylens.exercises: reference answers pass, common mistakes get targeted messages."""

import pytest
import torch

import polylens as pl
from polylens import exercises


@pytest.mark.parametrize("name", exercises.names())
def test_every_reference_solution_passes(name, capsys):
    assert exercises.check(name, exercises.solution(name))
    assert "passed" in capsys.readouterr().out


def test_a_stub_is_reported_as_not_attempted(capsys):
    def stub(model, x, name):
        raise NotImplementedError

    assert not exercises.check("preactivations", stub)
    assert "not attempted" in capsys.readouterr().out


def test_returning_the_relu_output_is_explained():
    def outputs(model, x, name):
        _, cache = pl.run_with_cache(model, x, names_filter=[name])
        return cache[name]

    with pytest.raises(exercises.ExerciseFailed, match="which='input'"):
        exercises.check("preactivations", outputs)


def test_wrong_shape_is_explained():
    with pytest.raises(exercises.ExerciseFailed, match=r"shape \(32, 5\)"):
        exercises.check("preactivations", lambda model, x, name: torch.zeros(5))


def test_unknown_exercise_and_non_function_are_refused():
    with pytest.raises(KeyError, match="preactivations"):
        exercises.check("pre_activations", lambda: None)
    with pytest.raises(TypeError, match="function itself"):
        exercises.check("preactivations", torch.zeros(3))


def test_a_check_result_shows_nothing_more_in_a_notebook():
    result = exercises.check("preactivations", lambda m, x, n: (_ for _ in ()).throw(NotImplementedError), quiet=True)
    assert not result and hasattr(result, "_ipython_display_") and result._ipython_display_() is None
