"""Which networks the exact-region functions accept, and their float64 forward passes.

Shared by the slices (:mod:`polylens.regions.slices`), the segments and rays
(:mod:`polylens.regions.segments`) and :mod:`polylens.boundaries`: a network
is accepted when its only nonlinearities are ReLU/LeakyReLU modules; it is
always evaluated as a float64 eval-mode copy, in row chunks that keep memory
bounded and results identical to one big pass.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from torch import nn

from polylens import spline as _spline
from polylens._checks import check_model as _check_model
from polylens._checks import real_tensor
from polylens.hooks import hooked
from polylens.spline import RELU_LIKE, SMOOTH

__all__ = ["Hooked", "Passes", "Stacked", "aligned", "check_reach", "float64_copy", "outputs", "passes", "point", "point_bytes",
           "pre_activations", "relu_calls", "rows_per_pass"]

# Leaf modules that are affine (given eval mode) or ReLU-like.
_AFFINE = (
    nn.Linear, nn.Identity, nn.Flatten, nn.Unflatten,
    nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
    nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d,
    nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
    nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
    nn.ZeroPad1d, nn.ZeroPad2d, nn.ConstantPad1d, nn.ConstantPad2d,
)  # fmt: skip
_REFUSED = {
    nn.GELU: "GELU is smooth, not piecewise linear",
    nn.SiLU: "SiLU is smooth, not piecewise linear",
    nn.Sigmoid: "Sigmoid is smooth, not piecewise linear",
    nn.Tanh: "Tanh is smooth, not piecewise linear",
    nn.Softplus: "Softplus is smooth, not piecewise linear",
    nn.ELU: "ELU is smooth for negative inputs",
    nn.Softmax: "Softmax is smooth",
    nn.LayerNorm: "LayerNorm divides by a norm, which is not piecewise linear",
    nn.MultiheadAttention: "attention multiplies activations together",
    nn.MaxPool1d: "MaxPool is piecewise linear, but its kinks are not ReLU modules",
    nn.MaxPool2d: "MaxPool is piecewise linear, but its kinks are not ReLU modules",
    nn.MaxPool3d: "MaxPool is piecewise linear, but its kinks are not ReLU modules",
    nn.AdaptiveMaxPool1d: "MaxPool is piecewise linear, but its kinks are not ReLU modules",
    nn.AdaptiveMaxPool2d: "MaxPool is piecewise linear, but its kinks are not ReLU modules",
    nn.AdaptiveMaxPool3d: "MaxPool is piecewise linear, but its kinks are not ReLU modules",
    nn.FractionalMaxPool2d: "MaxPool is piecewise linear, but its kinks are not ReLU modules",
    nn.FractionalMaxPool3d: "MaxPool is piecewise linear, but its kinks are not ReLU modules",
    nn.LPPool1d: "LPPool takes a p-norm, which is not piecewise linear",
    nn.LPPool2d: "LPPool takes a p-norm, which is not piecewise linear",
}
# Every other activation (Hardtanh, ReLU6, Softsign, Mish, LogSoftmax ...) and
# normalisation layer in torch.nn: their kinks or curves are not ReLU modules,
# so the enumeration cannot see them. Parameter-free modules of the user's own
# (a reshape, a residual add) are allowed, so these are refused by where
# torch defines them.
_NONLINEAR_TORCH_MODULES = ("torch.nn.modules.activation", "torch.nn.modules.normalization")
# Memory: points go through the model in chunks of about
# polylens.spline.CHUNK_BYTES of activations (see rows_per_pass), and
# answers beyond polylens.spline.MAX_RESULT_BYTES are refused before they
# are allocated, so that a call fits the ~2 GB of a mybinder.org notebook.
# Chunks are whole multiples of ROW_ALIGN rows: BLAS rounds the last
# (rows mod 4, 8 or 16) rows of a batch in a different kernel, so chunks of
# such multiples give every point exactly the values of one big batch.
ROW_ALIGN = 64


# ------------------------------------------------------------ validation ---


def refusal(name: str, module: nn.Module, leaf: bool = True) -> str | None:
    for kind, why in _REFUSED.items():
        if isinstance(module, kind):
            what = (
                "use polylens.spline.soft_code for soft codes of smooth activations"
                if isinstance(module, (nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Softplus, nn.ELU))
                else "replace it (AvgPool for MaxPool) or slice a ReLU-only sub-network"
            )
            return f"module {name!r} ({type(module).__name__}): {why}; regions are not polytopes. Instead, {what}."
    if isinstance(module, RELU_LIKE + _AFFINE):
        return None
    if type(module).__module__ in _NONLINEAR_TORCH_MODULES:
        what = "use polylens.spline.soft_code for its soft code" if isinstance(module, SMOOTH) else (
            "replace it with nn.ReLU / nn.LeakyReLU modules, or slice a ReLU-only sub-network")
        return (f"module {name!r} ({type(module).__name__}) is not a ReLU/LeakyReLU module, and exact regions "
                f"only know where those bend; regions are not polytopes here. Instead, {what}.")
    if leaf and next(module.parameters(recurse=False), None) is not None:
        return (
            f"module {name!r} ({type(module).__name__}) is not a layer polylens knows to be affine; "
            "exact regions support Linear, Conv, eval BatchNorm, AvgPool, Flatten, Dropout, Identity, "
            "residual additions and ReLU/LeakyReLU modules"
        )
    return None


def float64_copy(model: Any) -> nn.Module:
    """A float64, eval-mode deep copy: the user's model is never touched."""
    _check_model(model)
    for name, module in model.named_modules():
        # Containers are checked too: MultiheadAttention is made of Linear leaves.
        why = refusal(name or type(model).__name__, module, leaf=not list(module.children()))
        if why:
            raise ValueError(why)
    return copy.deepcopy(model).double().eval()


def point(x: Any, what: str) -> torch.Tensor:
    t = real_tensor(x.detach().cpu() if isinstance(x, torch.Tensor) else x, what)
    if t.ndim == 0:
        raise ValueError(f"{what} must have the model's input shape (without a batch dimension)")
    # In numpy: a few microseconds less for the one point of a slice or segment.
    if not np.isfinite(t.numpy(force=True)).all():
        raise ValueError(f"{what} contains NaN or inf; pass finite values (a point or direction in the model's input space)")
    return t


def relu_calls(model64: nn.Module, x: torch.Tensor) -> tuple[list[str], list[str], list[int]]:
    """(call keys in execution order, their module names, neurons per call)."""
    names = [n for n, m in model64.named_modules() if n and isinstance(m, RELU_LIKE)]
    keys, modules, sizes = [], [], []

    def record(value, hook):
        keys.append(hook.name)
        modules.append(hook.module_name)
        sizes.append(value[0].numel())

    with torch.no_grad(), hooked(model64, input_hooks=[(n, record) for n in names]):
        try:
            model64(x[None])
        except RuntimeError as err:
            # Usually a shape mismatch deep inside torch; say it in the learner's terms.
            raise ValueError(
                f"the model could not run on one input of shape {tuple(x.shape)} ({err}). Points and "
                "directions must have the model's input shape without the batch dimension: (d,) for an "
                "MLP with d inputs, (C, H, W) for a conv net"
            ) from err
    return keys, modules, sizes


# ---------------------------------------------------------- forward pass ---


class Stop(Exception):
    """Raised by a hook to end a forward pass once the wanted input is seen."""


def point_bytes(model64: nn.Module, x: torch.Tensor) -> int:
    """Bytes of float64 activations one input ``x`` makes in a forward pass (every leaf's output).

    An upper bound of the forward pass's working memory per point: torch
    frees most intermediates as it goes, but a conv net's widest layers are
    held at once.
    """
    total = [x.numel()]

    def count(_module, _args, out):
        if isinstance(out, torch.Tensor):
            total[0] += out.numel()

    leaves = [m for m in model64.modules() if not list(m.children())]
    handles = [m.register_forward_hook(count) for m in leaves]
    try:
        with torch.no_grad():
            model64(x[None])
    finally:
        for h in handles:
            h.remove()
    return 8 * total[0]


def rows_per_pass(model64: nn.Module, x: torch.Tensor, extra: int = 0) -> int:
    """How many points a forward pass may take at once: ~CHUNK_BYTES of activations,
    counting ``extra`` more bytes kept per point; a multiple of ROW_ALIGN."""
    return aligned(_spline.CHUNK_BYTES // (point_bytes(model64, x) + extra))


def aligned(rows: int) -> int:
    return max(ROW_ALIGN, rows - rows % ROW_ALIGN)


def pre_activations(model64: nn.Module, x: torch.Tensor, key: str, module: str, rows: int) -> np.ndarray:
    """(batch, neurons) input of call ``key`` of ``module``, ``rows`` points per pass; the rest of each pass is skipped."""
    out = None
    for i in range(0, max(len(x), 1), rows):
        got = {}

        def grab(value, hook):
            if hook.name == key:
                got["pre"] = value.flatten(1).numpy()
                raise Stop

        try:
            with torch.no_grad(), hooked(model64, input_hooks=[(module, grab)]):
                model64(x[i : i + rows])
        except Stop:
            pass
        if out is None:
            # Filled in place: no list of chunks and a concatenated copy side by side, and no
            # small arrays kept between the passes' big blocks, which fragments the heap.
            out = np.empty((len(x), got["pre"].shape[1]))
        out[i : i + rows] = got["pre"]
    return out


def outputs(model64: nn.Module, x: torch.Tensor, rows: int) -> np.ndarray:
    """(batch, outputs) of the model, ``rows`` points per pass."""
    out = None
    with torch.no_grad():
        for i in range(0, max(len(x), 1), rows):
            y = model64(x[i : i + rows]).flatten(1).numpy()
            if out is None:
                out = np.empty((len(x), y.shape[1]))
            out[i : i + rows] = y
    return out


def check_reach(model64: nn.Module, points: torch.Tensor, what: str, rows: int) -> None:
    """Refuse a slice or segment whose points, or the model's outputs there, overflow float64.

    Checked at the ends or corners: the network is affine between kinks, so its
    values inside are of the same size unless a kink multiplies them enormously,
    and that case is still caught when the affine maps are checked at the end.
    ``rows`` points go through the model at a time.
    """
    _check_reach(model64, points, what, rows)


def _check_reach(run: Any, points: torch.Tensor, what: str, rows: int) -> None:
    if not torch.isfinite(points).all():
        raise ValueError(
            f"{what} reaches beyond the range of float64 numbers (about 1e308); shrink it or scale the directions down"
        )
    with torch.no_grad():
        finite = all(bool(torch.isfinite(run(points[i : i + rows])).all()) for i in range(0, len(points), rows))
    if not finite:
        raise ValueError(
            f"the model's output is inf or NaN on {what}: its inputs are too large for float64 arithmetic; "
            "shrink it or scale the directions down"
        )


# -------------------------------------------------------- forward passes ---


class Passes:
    """The float64 forward passes of one network that the exact-region functions make.

    Made by :func:`passes` (which validates the model) and then :meth:`bind`
    to one input point, which sets ``keys``, ``modules``, ``sizes`` (the
    ReLU-like calls in execution order, as :func:`relu_calls`), ``rows``
    (points per pass, as :func:`rows_per_pass`) and ``n_out`` (outputs per
    point). A plain stack of Linear and ReLU/LeakyReLU modules runs as a
    list of float64 tensors (:class:`Stacked`), any other network through
    hooks on a float64 copy (:class:`Hooked`); both give the same numbers.
    """

    keys: list[str]
    modules: list[str]
    sizes: list[int]
    rows: int
    n_out: int

    def bind(self, x: torch.Tensor) -> Passes:
        """These passes for inputs shaped like ``x`` (one point, no batch dimension)."""
        raise NotImplementedError

    def pre_activations(self, x: torch.Tensor, layer: int) -> np.ndarray:
        """(batch, neurons) input of ReLU call ``layer`` at the points ``x`` (batch, *input shape)."""
        raise NotImplementedError

    def outputs(self, x: torch.Tensor) -> np.ndarray:
        """(batch, outputs) of the network at the points ``x`` (batch, *input shape)."""
        raise NotImplementedError

    def check_reach(self, points: torch.Tensor, what: str) -> None:
        """As :func:`check_reach`: refuse ``points`` (batch, *input shape) where float64 overflows."""
        raise NotImplementedError


class Hooked(Passes):
    """Any accepted network: its float64 copy, run whole, read by hooks."""

    def __init__(self, model64: nn.Module) -> None:
        self.model64 = model64

    def bind(self, x: torch.Tensor) -> Passes:
        self.keys, self.modules, self.sizes = relu_calls(self.model64, x)
        self.rows = rows_per_pass(self.model64, x)
        with torch.no_grad():
            self.n_out = self.model64(x[None]).numel()
        return self

    def pre_activations(self, x: torch.Tensor, layer: int) -> np.ndarray:
        return pre_activations(self.model64, x, self.keys[layer], self.modules[layer], self.rows)

    def outputs(self, x: torch.Tensor) -> np.ndarray:
        return outputs(self.model64, x, self.rows)

    def check_reach(self, points: torch.Tensor, what: str) -> None:
        check_reach(self.model64, points, what, self.rows)


# Leaf modules a stack may hold, by exact type (a subclass may override forward).
_STACK_RELU = (nn.ReLU, nn.LeakyReLU)
_STACK_SAME = (nn.Identity, nn.Dropout)  # identities in eval mode


class Stacked(Passes):
    """A Sequential of Linear, ReLU/LeakyReLU, Identity and Dropout modules, as float64 tensors.

    It calls the functions the modules call (F.linear, F.relu, F.leaky_relu)
    on the same float64 weights and the same chunks of rows, so its numbers
    are those of the hooked float64 copy, bit for bit, without the deep
    copy, module calls and hooks that cost milliseconds per call on a small
    network.
    """

    def __init__(self, model: nn.Module, steps: list[tuple[str, Any, Any]], names: list[str], widths: list[int],
                 n_out: int, point_bytes: int) -> None:
        self.model = model  # for inputs of another shape: the hooked path says what is wrong
        self.steps = steps  # ("linear", weight, bias) or ("relu", negative slope or None, None), in order
        self.keys, self.modules, self.sizes = names, list(names), widths
        self.relu_at = [i for i, step in enumerate(steps) if step[0] == "relu"]
        self.n_in = steps[0][1].shape[1]
        self.n_out = n_out
        self.rows = aligned(_spline.CHUNK_BYTES // point_bytes)

    @staticmethod
    def of(model: nn.Module) -> Stacked | None:
        """The stack of ``model``, or None if it is not a plain stack of those modules.

        Forward hooks on any module, a module used twice, or a first module
        that is not Linear leave it to the hooked path, which runs the model as it is.
        """
        if not isinstance(model, nn.Sequential) or type(model).forward is not nn.Sequential.forward:
            return None
        children = list(model.named_children())  # each module once, however often it is called
        if len(children) != len(model) or _has_hooks(model):
            return None
        steps, names, widths, width, leaf_out = [], [], [], None, 0
        for name, m in children:
            kind = type(m)
            if _has_hooks(m) or next(m.children(), None) is not None:
                return None
            if kind is nn.Linear and m.weight.device.type == "cpu" and width in (None, m.in_features):
                bias = None if m.bias is None else m.bias.detach().to(torch.float64)
                steps.append(("linear", m.weight.detach().to(torch.float64), bias))
                width = m.out_features
            elif kind in _STACK_RELU and width is not None:
                steps.append(("relu", m.negative_slope if kind is nn.LeakyReLU else None, None))
                names.append(name)
                widths.append(width)
            elif not (kind in _STACK_SAME and width is not None):
                return None
            leaf_out += width  # every leaf's output, as point_bytes counts them
        if width is None:
            return None
        return Stacked(model, steps, names, widths, width, 8 * (steps[0][1].shape[1] + leaf_out))

    def bind(self, x: torch.Tensor) -> Passes:
        if x.ndim == 1 and x.numel() == self.n_in:
            return self
        return Hooked(float64_copy(self.model)).bind(x)

    def _run(self, x: torch.Tensor, stop: int | None = None) -> torch.Tensor:
        for kind, a, b in self.steps[:stop]:
            if kind == "linear":
                x = torch.nn.functional.linear(x, a, b)
            elif a is None:
                x = torch.nn.functional.relu(x)
            else:
                x = torch.nn.functional.leaky_relu(x, a)
        return x

    def _chunked(self, x: torch.Tensor, stop: int | None) -> np.ndarray:
        if len(x) <= self.rows:  # one pass: its own array, no copy (every step makes a new tensor)
            with torch.no_grad():
                return self._run(x, stop).numpy()
        out = None
        with torch.no_grad():
            for i in range(0, max(len(x), 1), self.rows):
                y = self._run(x[i : i + self.rows], stop).numpy()
                if out is None:
                    out = np.empty((len(x), y.shape[1]))
                out[i : i + self.rows] = y
        return out

    def pre_activations(self, x: torch.Tensor, layer: int) -> np.ndarray:
        return self._chunked(x, self.relu_at[layer])

    def outputs(self, x: torch.Tensor) -> np.ndarray:
        return self._chunked(x, None)

    def check_reach(self, points: torch.Tensor, what: str) -> None:
        _check_reach(self._run, points, what, self.rows)


def _has_hooks(m: nn.Module) -> bool:
    # Hooks registered on a module (deep-copied with it) run on the hooked path and may edit values.
    return bool(m._forward_hooks or m._forward_pre_hooks)


def passes(model: Any) -> Passes:
    """Validate ``model`` (as :func:`float64_copy`) and return its forward passes, to :meth:`Passes.bind`."""
    _check_model(model)
    return Stacked.of(model) or Hooked(float64_copy(model))
