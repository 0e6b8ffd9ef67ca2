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
    """Refuse anything that is not a ``torch.nn.Module``, and modules without real weights.

    A model built on the meta device (``device="meta"``, or by some loaders
    before weights arrive) has shapes but no values: running it gives
    tensors with no data, and the error comes from deep inside torch.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"expected a torch.nn.Module, got {type(model).__name__}; "
            "pass the network itself (e.g. polylens.models.MLP([2, 16, 1]))"
        )
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        if tensor.is_meta:
            raise ValueError(
                f"the model's {name!r} is on the meta device: it has a shape but no values. "
                "Give it real weights first, e.g. model.to_empty(device='cpu') then "
                "model.load_state_dict(weights), or build it without device='meta'"
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


def _scalar(value: Any, what: str) -> int | float:
    """A Python int or float from a number of any common kind, else ``TypeError``.

    Python ints and floats, numpy scalars (``np.float32(0.1)``, ``np.int64(3)``)
    and one-number arrays and tensors with no dimensions (``torch.tensor(3)``,
    ``np.array(2.0)``) all count: they are what arithmetic in numpy and torch
    hands back, so a learner meets them all the time. ``bool`` is not a number
    (``True`` as a learning rate is a slip, not a 1), nor are strings, complex
    numbers, or arrays with more than one number.
    """
    if isinstance(value, torch.Tensor):
        if value.ndim != 0:
            raise TypeError(
                f"{what} must be a single number, got a tensor of shape {tuple(value.shape)}; "
                "pass one number (e.g. t.item() for a one-element tensor)"
            )
        if value.dtype == torch.bool or value.is_complex():
            raise TypeError(f"{what} must be a number, got a {value.dtype} tensor {value!r}")
        return value.item()
    if isinstance(value, np.ndarray):
        if value.ndim != 0:
            raise TypeError(
                f"{what} must be a single number, got an array of shape {value.shape}; "
                "pass one number (e.g. a.item() for a one-element array)"
            )
        value = value[()]  # the numpy scalar inside
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{what} must be a number, got the bool {value!r}; pass a number such as 1 or 0.5")
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, (str, bytes, complex, np.complexfloating)) or value is None:
        raise TypeError(f"{what} must be a number, got {type(value).__name__} {value!r}")
    try:  # other real numbers (fractions.Fraction, decimal.Decimal, objects with __float__)
        return float(value)
    except OverflowError:
        raise ValueError(f"{what} is too large to be a float, got {_short(value)}") from None
    except (TypeError, ValueError) as err:
        raise TypeError(f"{what} must be a number, got {type(value).__name__}") from err


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:30] + f"... ({len(text)} characters)"


def is_number(value: Any) -> bool:
    """Whether ``value`` is a real number that :func:`finite_number` would read (finite or not)."""
    try:
        _scalar(value, "value")
    except (TypeError, ValueError):
        return False
    return True


def is_whole(value: Any) -> bool:
    """Whether ``value`` is an int that :func:`whole_number` would read (any sign)."""
    try:
        whole_number(value, "value", low=None)
    except (TypeError, ValueError):
        return False
    return True


def finite_number(
    value: Any, what: str, *, low: float | None = None, above: float | None = None, high: float | None = None
) -> float:
    """A finite float: ``TypeError`` for non-numbers, ``ValueError`` for NaN, inf, huge ints or out of range.

    Any number :func:`_scalar` reads is accepted (Python, numpy or 0-d torch).
    ``low`` and ``high`` are inclusive bounds, ``above`` an exclusive lower one.
    """
    number = _scalar(value, what)
    try:
        number = float(number)
    except OverflowError:
        raise ValueError(f"{what} is too large to be a float, got {_short(value)}") from None
    if not math.isfinite(number):
        raise ValueError(f"{what} must be finite, got {number}")
    if low is not None and number < low:
        raise ValueError(f"{what} must be a finite number >= {low:g}, got {number:g}")
    if above is not None and not number > above:
        raise ValueError(f"{what} must be a finite number > {above:g}, got {number:g}")
    if high is not None and number > high:
        raise ValueError(f"{what} must be a finite number <= {high:g}, got {number:g}")
    return number


def whole_number(value: Any, what: str, low: int | None = 0) -> int:
    """An int >= ``low`` (no bound if None).

    Python and numpy ints and 0-d integer tensors are accepted; bools and
    floats (even 3.0: a count written as a float is usually a computed value
    that should have been rounded on purpose) are refused with a ``TypeError``.
    """
    if isinstance(value, torch.Tensor) and value.ndim == 0 and not value.is_floating_point() \
            and not value.is_complex() and value.dtype != torch.bool:
        value = value.item()
    elif isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        shown = f"a tensor of shape {tuple(value.shape)} and dtype {value.dtype}" \
            if isinstance(value, (torch.Tensor, np.ndarray)) else f"{type(value).__name__} {value!r}"
        raise TypeError(f"{what} must be an int, got {shown}")
    if low is not None and value < low:
        raise ValueError(f"{what} must be an int >= {low}, got {value}")
    return int(value)


# ------------------------------------------------ settings of the toy models ---

ArrayLike = float | int | np.ndarray | torch.Tensor | list


def seed_int(seed: Any) -> int:
    """Any int (numpy ints and 0-d int tensors too), as a Python int; ``TypeError`` for anything else."""
    try:
        return whole_number(seed, "seed", low=None)
    except TypeError:
        raise TypeError(f"seed must be an int (e.g. seed=0), got {type(seed).__name__} {seed!r}") from None


def generator(seed: Any) -> torch.Generator:
    """A private generator, so seeding never touches torch's global RNG."""
    return torch.Generator().manual_seed(seed_int(seed))


def numbers(values: Any, what: str, *, low: float | None = None) -> list[float]:
    """A non-empty list of finite numbers (each >= ``low`` if given), e.g. a grid of L1 weights."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise TypeError(f"{what} must be a list of numbers, e.g. [0.01, 0.1, 1.0]; got {type(values).__name__}")
    out = [finite_number(v, f"each value of {what}", low=low) for v in values]
    if not out:
        raise ValueError(f"{what} must be a non-empty list of finite numbers, e.g. [0.01, 0.1, 1.0]")
    return out


def finite_tensor(value: ArrayLike, what: str, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A real tensor of ``dtype`` without NaN or inf."""
    t = real_tensor(value, what, dtype=None).detach().to(dtype)
    if not torch.isfinite(t).all():
        raise ValueError(f"{what} contains NaN or inf; pass finite numbers")
    return t


def per_instance_features(value: ArrayLike, what: str, n_instances: int, n_features: int, one_d: str) -> torch.Tensor:
    """Broadcast a scalar, 1-D or 2-D setting to shape (instances, features).

    ``one_d`` says what a 1-D array means: ``"instances"`` (one value per
    instance, e.g. a sparsity sweep) or ``"features"`` (one value per feature,
    e.g. importance decaying with index).
    """
    t = finite_tensor(value, what)
    if t.ndim == 0:
        return t.expand(n_instances, n_features).clone()
    if t.ndim == 1:
        want = n_instances if one_d == "instances" else n_features
        if t.shape[0] != want:
            raise ValueError(
                f"1-D {what} is read as one value per {one_d[:-1]}, so it needs length {want}; "
                f"got length {t.shape[0]}. Pass a scalar, shape ({want},), or shape "
                f"(n_instances, n_features) = ({n_instances}, {n_features})"
            )
        return (t[:, None] if one_d == "instances" else t[None, :]).expand(n_instances, n_features).clone()
    if t.shape != (n_instances, n_features):
        raise ValueError(
            f"{what} must be a scalar, 1-D, or shape (n_instances, n_features) = "
            f"({n_instances}, {n_features}); got shape {tuple(t.shape)}"
        )
    return t.clone()


def weight_matrix(value: ArrayLike, what: str, dtype: torch.dtype | None = None) -> torch.Tensor:
    """A finite float tensor of shape (hidden, features) or (instances, hidden, features)."""
    t = real_tensor(value, what, dtype=None)
    if not torch.is_floating_point(t):
        t = t.to(torch.float64 if dtype is None else dtype)
    if dtype is not None:
        t = t.to(dtype)
    if t.ndim not in (2, 3):
        raise ValueError(
            f"{what} must have shape (hidden, features) or (instances, hidden, features); got shape {tuple(t.shape)}"
        )
    if not torch.isfinite(t).all():
        raise ValueError(f"{what} contains NaN or inf")
    return t
