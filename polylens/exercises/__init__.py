"""Exercises checked against the library, with messages in the learner's terms.

A notebook gives a stub, the learner fills it in, and a check cell calls::

    pl.exercises.check("preactivations", my_preactivations)

which prints what passed, or raises :class:`ExerciseFailed` saying what is
wrong ("you returned the ReLU's output, which is never negative ..."). A stub
that still raises ``NotImplementedError`` is reported as not attempted, so a
notebook runs top to bottom before the learner has written anything.

Each notebook's checks live in a module of this package named after the
notebook's idea; they register themselves with :func:`exercise`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["ExerciseFailed", "Exercise", "Result", "Solution", "as_array", "as_bits", "as_count", "check", "exercise",
           "names", "solution"]


class ExerciseFailed(AssertionError):
    """The learner's function ran but gave a wrong answer; the message says why."""


@dataclass(frozen=True)
class Exercise:
    name: str
    title: str
    checker: Callable[[Callable], str]  # raises ExerciseFailed, or returns a success note
    solution: Callable  # a reference answer, shown in the notebook and checked by the tests


_REGISTRY: dict[str, Exercise] = {}


class Result:
    """Whether a check passed: true or false like a bool, silent in a notebook.

    The check has already printed its verdict, so Jupyter shows nothing more
    (a bare ``False`` under "not attempted yet" would only confuse).
    """

    def __init__(self, passed: bool) -> None:
        self.passed = passed

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return f"Result(passed={self.passed})"

    def _ipython_display_(self) -> None:
        pass


def exercise(
    name: str, title: str, solution: Callable
) -> Callable[[Callable[[Callable], str]], Callable[[Callable], str]]:
    """Register ``checker(learner_fn) -> success note`` under ``name``."""

    def register(checker: Callable[[Callable], str]) -> Callable[[Callable], str]:
        _REGISTRY[name] = Exercise(name, title, checker, solution)
        return checker

    return register


def as_array(value, what: str):
    """A learner's answer (tensor, array, list) as a numpy array, or a failure that says what to return."""
    import numpy as np
    import torch

    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        return np.asarray(value)
    except Exception as err:  # noqa: BLE001 - anything unconvertible is the learner's to fix
        raise ExerciseFailed(f"{what} must be an array or tensor, got {type(value).__name__}") from err


def as_count(value, what: str) -> int:
    """A learner's count (int, numpy or 0-d tensor integer, or a float that is a whole number) as an int.

    3.9 or a complex number is not a count: the message says so, instead of rounding it away.
    """
    arr = as_array(value, what)
    if arr.ndim != 0 and arr.size != 1:
        raise ExerciseFailed(f"{what} must be one number, got an array of shape {arr.shape}")
    arr = arr.reshape(())
    if arr.dtype == bool or arr.dtype.kind not in "iuf":
        raise ExerciseFailed(f"{what} must be a whole number (an int), got {arr.dtype} {arr.item()!r}")
    number = arr.item()
    if not float(number).is_integer():
        raise ExerciseFailed(f"{what} must be a whole number: you returned {number}, which is not a count")
    return int(number)


def as_bits(value, what: str):
    """A learner's on/off array as bools: bools, or 0/1 as ints or floats; anything else is refused."""
    import numpy as np

    arr = as_array(value, what)
    if arr.dtype == bool:
        return arr
    if arr.dtype.kind not in "iuf":
        raise ExerciseFailed(f"{what} must hold on/off bits (True/False, or 0/1), got dtype {arr.dtype}")
    values = np.unique(arr)
    if not np.isin(values, [0, 1]).all():
        shown = ", ".join(f"{v:g}" for v in values[:4])
        raise ExerciseFailed(f"{what} holds {shown}{' ...' if len(values) > 4 else ''}: a neuron is on or off, so "
                             "return booleans (pre > 0), or 0 and 1")
    return arr.astype(bool)


class Solution:
    """A reference answer: shown as its source code in a notebook, callable like the function it wraps."""

    def __init__(self, name: str, fn: Callable) -> None:
        self.name, self.fn = name, fn

    @property
    def source(self) -> str:
        """The reference function's source code."""
        return inspect.getsource(self.fn)

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Reference answer to exercise {self.name!r}:\n\n{self.source}"

    def _repr_markdown_(self) -> str:
        return f"Reference answer to exercise `{self.name}`:\n\n```python\n{self.source}```"


def solution(name: str) -> Solution:
    """The reference answer to exercise ``name`` (try first, peek after): shows its source, and can be called."""
    _load_all()
    if name not in _REGISTRY:
        raise KeyError(f"no exercise named {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    return Solution(name, _REGISTRY[name].solution)


def names() -> list[str]:
    """Every registered exercise name."""
    _load_all()
    return sorted(_REGISTRY)


def check(name: str, learner_fn: Callable, *, quiet: bool = False) -> Result:
    """Check ``learner_fn`` for exercise ``name``.

    Returns a :class:`Result` that is true when it passes and false when the
    stub is not filled in yet (it still raises ``NotImplementedError``).
    Raises :class:`ExerciseFailed` with a targeted message when the answer
    is wrong.
    """
    _load_all()
    if name not in _REGISTRY:
        raise KeyError(f"no exercise named {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    if not callable(learner_fn):
        raise TypeError(f"pass your function itself, e.g. check({name!r}, my_function), not its result")
    ex = _REGISTRY[name]
    try:
        note = ex.checker(learner_fn)
    except NotImplementedError as err:
        frame = err.__traceback__
        while frame.tb_next is not None:
            frame = frame.tb_next
        # Only the learner's own code raising NotImplementedError (the stub) means "not attempted"; one
        # raised inside a library the function calls (an op not built for a dtype) is an answer that failed.
        own_file = getattr(getattr(learner_fn, "__code__", None), "co_filename", None)
        if frame.tb_frame.f_code.co_filename != own_file:
            raise ExerciseFailed(
                f"[{ex.title}] your function ran, but {frame.tb_frame.f_code.co_name}() (called from it) raised "
                f"NotImplementedError({str(err)!r}). Only a stub's own `raise NotImplementedError` counts as "
                "not attempted; change the call that raised it.") from err
        if not quiet:
            print(f"[{ex.title}] not attempted yet: fill in the function, then run this cell again.")
        return Result(False)
    if not quiet:
        print(f"[{ex.title}] passed. {note}".rstrip())
    return Result(True)


def _load_all() -> None:
    # Every module of this package registers its checks on import; imported
    # lazily so that `import polylens` stays light.
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
