"""Input checks shared by the library.

Learners call polylens from notebooks, so bad input is refused early with a
``TypeError`` (wrong kind of thing) or ``ValueError`` (right kind, bad
value) whose message says what to pass instead, never an error from deep
inside torch or numpy, and never a silently wrong answer (a complex array
whose imaginary part is dropped, NaN flowing through a computation).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

_KINDS = {"c": "complex numbers", "O": "Python objects", "U": "strings", "S": "bytes", "M": "dates", "m": "time spans"}


def check_model(model: Any) -> None:
    """Refuse anything that is not a ``torch.nn.Module``."""
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"expected a torch.nn.Module, got {type(model).__name__}; "
            "pass the network itself (e.g. polylens.models.MLP([2, 16, 1]))"
        )


def _refuse_kind(kind: str, what: str) -> None:
    if kind in "biuf":
        return
    found = _KINDS.get(kind, f"dtype kind {kind!r}")
    hint = " (take .real if the imaginary part is meant to be zero)" if kind == "c" else ""
    raise TypeError(f"{what} must hold real numbers, but it holds {found}{hint}; pass a float array or tensor")


def real_array(value: Any, what: str, dtype: Any = np.float64) -> np.ndarray:
    """``value`` (tensor, array, nested lists, number) as a numpy array of real numbers.

    Complex, object and string data are refused with a ``TypeError``;
    ragged nested lists with a ``ValueError``. Non-finite values are kept:
    callers say what NaN or inf means for them.
    """
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        _refuse_kind("c" if value.is_complex() else "f", what)
        value = value.numpy()
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as err:  # ragged lists: rows of different lengths
        raise ValueError(f"{what} must be a rectangular array of numbers (every row the same length): {err}") from err
    _refuse_kind(arr.dtype.kind, what)
    return arr.astype(dtype, copy=False) if dtype is not None else arr


def real_tensor(value: Any, what: str, dtype: torch.dtype | None = torch.float64) -> torch.Tensor:
    """``value`` as a real torch tensor (of ``dtype`` unless None); tensors stay on their device."""
    if isinstance(value, torch.Tensor):
        _refuse_kind("c" if value.is_complex() else "f", what)
        return value if dtype is None else value.to(dtype)
    arr = real_array(value, what, dtype=None)
    # Contiguous so that reversed views (x[::-1]) convert; 0-d arrays stay 0-d.
    t = torch.as_tensor(np.ascontiguousarray(arr) if arr.ndim else arr)
    return t if dtype is None else t.to(dtype)


def finite_number(value: Any, what: str) -> float:
    """A finite float: ``TypeError`` for non-numbers, ``ValueError`` for NaN, inf or huge ints."""
    if isinstance(value, (str, bytes, complex)) or value is None:
        raise TypeError(f"{what} must be a number, got {type(value).__name__} {value!r}")
    try:
        number = float(value)
    except OverflowError:
        raise ValueError(f"{what} is too large to be a float, got {value!r}") from None
    except (TypeError, ValueError) as err:
        raise TypeError(f"{what} must be a number, got {type(value).__name__}") from err
    if not math.isfinite(number):
        raise ValueError(f"{what} must be finite, got {number}")
    return number


def whole_number(value: Any, what: str, low: int = 0) -> int:
    """An int >= ``low`` (numpy ints accepted, bools and floats refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{what} must be an int, got {type(value).__name__} {value!r}")
    if value < low:
        raise ValueError(f"{what} must be an int >= {low}, got {value}")
    return int(value)
