"""Small networks for the notebooks and tests.

Every nonlinearity is an ``nn.Module`` (never ``F.relu`` inside ``forward``)
so that ``polylens.hooks`` can find it by name and ``polylens.spline`` can
read its on/off pattern. Every constructor takes a ``seed``: the same seed
gives the same weights, without touching torch's global random state.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from polylens._checks import is_whole, whole_number

__all__ = ["ACTIVATIONS", "MLP", "ResidualMLP", "SmallCNN", "seeded"]

ACTIVATIONS = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "sigmoid": nn.Sigmoid,
    "softplus": nn.Softplus,
}


def _activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


class seeded:
    """Context manager: torch's RNG seeded inside, restored on exit."""

    def __init__(self, seed: int) -> None:
        try:
            self.seed = whole_number(seed, "seed", low=None)
        except TypeError:
            raise TypeError(f"seed must be an int, got {type(seed).__name__} {seed!r}") from None
        self._fork = None

    def __enter__(self) -> None:
        self._fork = torch.random.fork_rng(devices=[])
        self._fork.__enter__()
        torch.manual_seed(self.seed)

    def __exit__(self, *exc) -> None:
        self._fork.__exit__(*exc)


def _check_dtype(dtype: object) -> torch.dtype:
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"dtype must be a floating torch dtype such as torch.float32 or torch.float64, got {dtype!r}")
    return dtype


def _check_widths(widths: Sequence[int], least: int = 2) -> list[int]:
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence):
        raise TypeError(f"widths must be a list of layer sizes, e.g. [2, 16, 16, 1]; got {widths!r}")
    widths = list(widths)
    if len(widths) < least or not all(is_whole(w) and w > 0 for w in widths):
        raise ValueError(
            f"widths must be at least {least} positive ints (input, hidden..., output), "
            f"e.g. [2, 16, 16, 1]; got {widths}"
        )
    return [int(w) for w in widths]  # numpy ints and 0-d tensors become plain ints for nn.Linear


class MLP(nn.Sequential):
    """A fully connected network ``widths[0] -> ... -> widths[-1]``.

    Modules are named ``linear0, relu0, linear1, relu1, ..., out``: one
    activation module after every hidden layer, none after the output.

    Args:
        widths: layer sizes, e.g. ``[2, 16, 16, 1]``.
        activation: ``"relu"`` (default), ``"leaky_relu"``, ``"gelu"``, ...
        seed: weights are drawn from torch's default init under this seed.
        dtype: parameter dtype (float32 default; float64 for exact geometry).

    Shapes: input (batch, widths[0]) -> output (batch, widths[-1]).
    """

    def __init__(
        self,
        widths: Sequence[int],
        activation: str = "relu",
        *,
        bias: bool = True,
        seed: int = 0,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        widths = _check_widths(widths)
        _check_dtype(dtype)
        layers: list[tuple[str, nn.Module]] = []
        with seeded(seed):
            for i, (a, b) in enumerate(zip(widths[:-2], widths[1:-1])):
                layers.append((f"linear{i}", nn.Linear(a, b, bias=bias, dtype=dtype)))
                layers.append((f"{activation}{i}", _activation(activation)))
            layers.append(("out", nn.Linear(widths[-2], widths[-1], bias=bias, dtype=dtype)))
        super().__init__(OrderedDict(layers))
        self.widths = widths


class ResidualBlock(nn.Module):
    """``h + fc2(relu(fc1(h)))``, with the ReLU as a named module."""

    def __init__(self, width: int, hidden: int, activation: str, dtype: torch.dtype) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, hidden, dtype=dtype)
        self.act = _activation(activation)
        self.fc2 = nn.Linear(hidden, width, dtype=dtype)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.fc2(self.act(self.fc1(h)))


class ResidualMLP(nn.Module):
    """A tiny residual MLP: ``inp -> block x depth -> out``.

    Shapes: input (batch, d_in) -> output (batch, d_out).
    """

    def __init__(
        self,
        d_in: int = 2,
        width: int = 16,
        hidden: int = 32,
        depth: int = 2,
        d_out: int = 1,
        activation: str = "relu",
        *,
        seed: int = 0,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        d_in, width, hidden, d_out = _check_widths([d_in, width, hidden, d_out])
        _check_dtype(dtype)
        if not is_whole(depth) or depth < 0:
            raise ValueError(f"depth must be an int number of residual blocks >= 0, got {depth!r}")
        depth = int(depth)
        with seeded(seed):
            self.inp = nn.Linear(d_in, width, dtype=dtype)
            self.blocks = nn.Sequential(
                *(ResidualBlock(width, hidden, activation, dtype) for _ in range(depth))
            )
            self.out = nn.Linear(width, d_out, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.blocks(self.inp(x)))


class SmallCNN(nn.Module):
    """A small ReLU convolutional classifier for (batch, channels, size, size) images.

    conv(3x3) -> ReLU -> avgpool(2) -> conv(3x3) -> ReLU -> avgpool(2) -> flatten -> linear.
    Only piecewise-linear pieces, so exact polytopes apply.
    """

    def __init__(
        self,
        in_channels: int = 1,
        size: int = 8,
        channels: int = 4,
        n_classes: int = 2,
        activation: str = "relu",
        *,
        seed: int = 0,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("channels", channels), ("n_classes", n_classes)):
            if not is_whole(value) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        in_channels, channels, n_classes = int(in_channels), int(channels), int(n_classes)
        _check_dtype(dtype)
        if not is_whole(size) or size % 4 or size < 4:
            raise ValueError(f"size must be a positive multiple of 4 (two 2x poolings), got {size}")
        size = int(size)
        with seeded(seed):
            self.features = nn.Sequential(
                nn.Conv2d(in_channels, channels, 3, padding=1, dtype=dtype),
                _activation(activation),
                nn.AvgPool2d(2),
                nn.Conv2d(channels, channels, 3, padding=1, dtype=dtype),
                _activation(activation),
                nn.AvgPool2d(2),
                nn.Flatten(),
            )
            self.head = nn.Linear(channels * (size // 4) ** 2, n_classes, dtype=dtype)
        self.in_channels, self.size = in_channels, size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
