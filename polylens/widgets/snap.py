"""Snap a control's value to one an explorer precomputed, and say why.

Every explorer draws states computed up front on a grid of settings (widths,
strengths, sparsities, ...). Its ``view`` is also called from code, with
anything a learner types. The promise "widgets never raise" is kept here, in
one place: a value that is not one number shows the explorer's default, a
number off the grid shows the nearest grid value, and either way a note for
the readout says what was shown instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["as_number", "short", "snap", "whole"]


def as_number(value) -> float:
    """``value`` as a float: NaN for anything that is not one real number (None, text, arrays, True/False, 1+2j).

    An int too large for a float (``10**400``) is as far out as it gets: +-inf.
    """
    if isinstance(value, (str, bytes, bool, np.bool_, complex, np.complexfloating)):  # True is not a strength
        return math.nan
    # Nor are bool or complex arrays and tensors (float() would read tensor(True) as 1, or raise on complex).
    if isinstance(value, torch.Tensor) and (value.dtype == torch.bool or value.is_complex()):
        return math.nan
    if isinstance(value, np.ndarray) and value.dtype.kind in "bc":
        return math.nan
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf
    except Exception:  # TypeError, ValueError, torch's RuntimeError, ...: whatever it is, it is not one number
        return math.nan


def short(value) -> str:
    """A repr short enough for a readout (10**400 has 401 digits)."""
    text = repr(value)
    return text if len(text) <= 24 else text[:20] + "..."


def snap(options: Sequence, value, name: str, notes: list[str], *, missing: str = "was not precomputed",
         default=None, log: bool = False):
    """The option nearest to ``value``, with a note appended to ``notes`` unless ``value`` is one.

    Args:
        options: the precomputed settings, numbers (any order).
        value: what was asked for; anything at all.
        name: the control's name, as the readout says it ("strength").
        notes: the view's list of messages; one is added when another value is shown.
        missing: why an in-range value off the grid was not shown ("was not trained").
        default: shown when ``value`` is not a number (default: ``options[0]``).
        log: nearest on a log scale (for positive grids such as L1 coefficients).

    Returns:
        An element of ``options``.
    """
    options = list(options)
    default = options[0] if default is None else default
    number = as_number(value)
    if math.isnan(number):
        notes.append(f"{name} must be a number, got {short(value)}; showing {default:g}")
        return default
    low, high = min(options), max(options)
    inside = min(max(number, low), high)  # inf snaps to an end, not to the default
    if log and low > 0:
        near = min(options, key=lambda o: abs(math.log(o) - math.log(inside)))
    else:
        near = min(options, key=lambda o: abs(o - inside))
    if number < low or number > high:
        notes.append(f"{name} runs from {low:g} to {high:g}; showing the nearest, {near:g}")
    elif abs(number - near) > 1e-9 * max(1.0, abs(near)):
        notes.append(f"{name} {number:g} {missing}; showing the nearest, {near:g}")
    return near


def whole(value, default: int, name: str, notes: list[str]) -> int:
    """``value`` as an int (rounded, with a note, if it is not a whole number); ``default`` if not a number."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return int(value)
    number = as_number(value)
    if not math.isfinite(number):
        notes.append(f"{name} must be a whole number, got {short(value)}; showing {default}")
        return default
    if not number.is_integer():
        notes.append(f"{name} must be a whole number, got {short(value)}; showing {round(number)}")
    return round(number)
