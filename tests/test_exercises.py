"""polylens.exercises: reference answers pass, common mistakes get targeted messages."""

import json
import re
from pathlib import Path

import numpy as np
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


def test_a_solution_shows_its_source_and_still_runs():
    """In a notebook, `pl.exercises.solution(name)` displays the reference code, not '<function ...>'."""
    ref = exercises.solution("hamming")
    assert "def " in repr(ref) and "<function" not in repr(ref)
    assert ref._repr_markdown_().count("```python") == 1
    a = np.array([[True, False, True]])
    assert int(np.asarray(ref(a, ~a)).ravel()[0]) == 3


NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"


def _exercises_and_solutions():
    """(notebook, exercise name, the learner's function name, the solution block's code) for every exercise."""
    found = []
    for path in sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        for i, cell in enumerate(cells):
            match = re.search(r'pl\.exercises\.check\("(\w+)", (\w+)\)', "".join(cell["source"]))
            if cell["cell_type"] != "code" or not match:
                continue
            after = "".join(cells[i + 1]["source"]) if i + 1 < len(cells) else ""
            block = re.search(r"<details><summary>Solution.*?```python\n(.*?)```", after, re.S)
            found.append((path.stem, match.group(1), match.group(2), block.group(1) if block else None))
    return found


def test_every_registered_exercise_is_in_a_notebook():
    """So that the test below cannot pass by finding no exercises (a check call written another way)."""
    assert {name for _, name, _, _ in _exercises_and_solutions()} == set(exercises.names())


@pytest.mark.parametrize("notebook,name,fn,code", _exercises_and_solutions(), ids=lambda v: str(v)[:30])
def test_every_exercise_has_a_collapsed_solution_right_after_it_that_passes(notebook, name, fn, code, capsys):
    assert code is not None, f"{notebook}: exercise {name!r} has no <details> solution block after its check cell"
    namespace = {"pl": pl, "np": np, "torch": torch}
    exec(code, namespace)  # the notebook's own solution text, as a learner would paste it
    assert exercises.check(name, namespace[fn]), f"{notebook}: the shown solution to {name!r} does not pass"
