"""Exercises of notebook 04: typical mistakes get targeted messages."""

import pytest
import torch

from polylens import exercises


@pytest.mark.parametrize("wrong, match", [
    (lambda W, b, x: x @ W.T @ W + b, "before the ReLU"),
    (lambda W, b, x: torch.relu(x @ W.T @ W), "left out the bias"),
    (lambda W, b, x: torch.relu(x @ W.T @ W) + b, "bias \\*before\\* the ReLU"),
    (lambda W, b, x: torch.relu(torch.relu(x @ W.T) @ W + b), "output only"),
    (lambda W, b, x: torch.relu(x @ W @ W.T + b), "shapes did not fit"),
    (lambda W, b, x: torch.zeros(5), "shape \\(5,\\)"),
])
def test_forward_mistakes_are_explained(wrong, match):
    with pytest.raises(exercises.ExerciseFailed, match=match):
        exercises.check("tms_forward", wrong)


@pytest.mark.parametrize("wrong, match", [
    (lambda W: W.shape[1] / (W**2).sum(), "number of \\*features\\*"),
    (lambda W: (W**2).sum() / W.shape[0], "1/D\\*"),
    (lambda W: W.shape[0] / W.norm(), "square the Frobenius norm"),
    (lambda W: W.shape[0] / (W**2).sum(0), "one number"),
    (lambda W: "2/5", "number or a 0-d tensor"),
])
def test_dstar_mistakes_are_explained(wrong, match):
    with pytest.raises(exercises.ExerciseFailed, match=match):
        exercises.check("dimensions_per_feature", wrong)


def test_stubs_are_not_attempted(capsys):
    def stub(*args):
        raise NotImplementedError

    assert not exercises.check("tms_forward", stub)
    assert not exercises.check("dimensions_per_feature", stub)
    assert capsys.readouterr().out.count("not attempted") == 2


def test_a_float_answer_is_accepted():
    assert exercises.check("dimensions_per_feature", lambda W: float(W.shape[0] / (W**2).sum()), quiet=True)
