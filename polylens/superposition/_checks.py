"""Input checks shared by the superposition modules.

Each check raises ``ValueError``/``TypeError`` with a message that says what
to pass instead, because learners call these functions from notebooks.
"""

from __future__ import annotations

import numpy as np
import torch

from polylens._checks import finite_number, real_tensor, whole_number

# finite_number is the one number check of the library (Python, numpy and 0-d torch numbers; bool refused).
__all__ = ["finite_number", "finite_tensor", "generator", "matrix", "numbers", "per_instance_features",
           "positive_int", "seed_int"]

ArrayLike = float | int | np.ndarray | torch.Tensor | list


def positive_int(name: str, value: object) -> int:
    """An int >= 1 (numpy ints and 0-d int tensors too): ``TypeError`` for other kinds, ``ValueError`` below 1."""
    return whole_number(value, name, low=1)


def seed_int(seed: object) -> int:
    """Any int (numpy ints and 0-d int tensors too), as a Python int."""
    try:
        return whole_number(seed, "seed", low=None)
    except TypeError:
        raise TypeError(f"seed must be an int (e.g. seed=0), got {type(seed).__name__} {seed!r}") from None


def numbers(name: str, values: object, *, low: float | None = None) -> list[float]:
    """A non-empty list of finite numbers (each >= ``low`` if given), e.g. a grid of L1 weights."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise TypeError(f"{name} must be a list of numbers, e.g. [0.01, 0.1, 1.0]; got {type(values).__name__}")
    out = [finite_number(v, f"each value of {name}", low=low) for v in values]
    if not out:
        raise ValueError(f"{name} must be a non-empty list of finite numbers, e.g. [0.01, 0.1, 1.0]")
    return out


def generator(seed: int) -> torch.Generator:
    """A private generator, so seeding never touches torch's global RNG."""
    return torch.Generator().manual_seed(seed_int(seed))


def finite_tensor(name: str, value: ArrayLike, dtype=torch.float32) -> torch.Tensor:
    t = real_tensor(value, name, dtype=None).detach().to(dtype)
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or inf; pass finite numbers")
    return t


def per_instance_features(
    name: str,
    value: ArrayLike,
    n_instances: int,
    n_features: int,
    one_d: str,
) -> torch.Tensor:
    """Broadcast a scalar, 1-D or 2-D setting to shape (instances, features).

    ``one_d`` says what a 1-D array means: ``"instances"`` (one value per
    instance, e.g. a sparsity sweep) or ``"features"`` (one value per feature,
    e.g. importance decaying with index).
    """
    t = finite_tensor(name, value)
    if t.ndim == 0:
        return t.expand(n_instances, n_features).clone()
    if t.ndim == 1:
        want = n_instances if one_d == "instances" else n_features
        if t.shape[0] != want:
            raise ValueError(
                f"1-D {name} is read as one value per {one_d[:-1]}, so it needs length {want}; "
                f"got length {t.shape[0]}. Pass a scalar, shape ({want},), or shape "
                f"(n_instances, n_features) = ({n_instances}, {n_features})"
            )
        return (t[:, None] if one_d == "instances" else t[None, :]).expand(n_instances, n_features).clone()
    if t.shape != (n_instances, n_features):
        raise ValueError(
            f"{name} must be a scalar, 1-D, or shape (n_instances, n_features) = "
            f"({n_instances}, {n_features}); got shape {tuple(t.shape)}"
        )
    return t.clone()


def matrix(name: str, value: ArrayLike, dtype=None) -> torch.Tensor:
    """A finite float tensor with 2 or 3 dims."""
    t = real_tensor(value, name, dtype=None)
    if not torch.is_floating_point(t):
        t = t.to(torch.float64 if dtype is None else dtype)
    if dtype is not None:
        t = t.to(dtype)
    if t.ndim not in (2, 3):
        raise ValueError(
            f"{name} must have shape (hidden, features) or (instances, hidden, features); got shape {tuple(t.shape)}"
        )
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or inf")
    return t
