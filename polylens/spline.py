"""Spline codes: which neurons are on, in every ReLU layer, for each input.

A ReLU network is piecewise affine. The on/off pattern of all its ReLU-like
units (``pre-activation > 0``), read in execution order across layers, is the
input's *spline code*: it names the convex polytope the input lies in, and
inside that polytope the network is a single affine map.

    code = spline_code(model, x)      # SplineCode, bits (batch, neurons) numpy bool
    code.layers                       # [Layer(name, start, stop), ...] in execution order
    code.layer("relu0")               # (batch, width) bits of one layer
    hamming(code[:10], code[10:20])   # (10,) bits that differ, row by row
    hamming(code, pairwise=True)      # (batch, batch)
    m = code_mask(code, agreement=0.9)  # neurons most rows agree on, and their state

Smooth activations have *soft* codes (Balestriero & Baraniuk, "From Hard to
Soft: Understanding Deep Network Nonlinearities via Vector Quantization and
Statistical Inference", ICLR 2019, arXiv:1810.09274): each unit is on with a
probability, and thresholding at 1/2 gives back a hard code. See
:func:`soft_code`.

Bits are numpy ``bool`` arrays, not torch tensors: codes are compared,
packed and counted, never differentiated, and ``np.packbits`` does the
packing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple, Union

import numpy as np
import torch
from torch import nn

from polylens._checks import check_model as _check_model
from polylens._checks import finite_number, real_tensor
from polylens._renamed import renamed
from polylens.hooks import NamesFilter, UnknownNameError, capture, resolve_names

__all__ = [
    "CHUNK_BYTES",
    "MAX_RESULT_BYTES",
    "RELU_LIKE",
    "SMOOTH",
    "CodeMask",
    "Layer",
    "SoftCode",
    "SplineCode",
    "code_mask",
    "eval_mode",
    "hamming",
    "layout",
    "on_fraction",
    "preactivations",
    "soft_code",
    "spline_code",
]

#: Piecewise-linear activations with one kink at 0: their codes are exact.
RELU_LIKE: tuple[type[nn.Module], ...] = (nn.ReLU, nn.LeakyReLU)
#: Smooth activations that have a soft code (see :func:`soft_code`).
SMOOTH: tuple[type[nn.Module], ...] = (nn.GELU, nn.SiLU, nn.Sigmoid, nn.Softplus)

# Memory. mybinder.org gives a notebook about 2 GB, and torch with a model
# already holds a few hundred MB of it, so no public function may need much
# more than 1 GB at once. Work whose answer is small (codes of many inputs,
# crossings along a long path) runs in chunks of rows; an answer that is
# itself too big is refused with a ValueError before it is allocated.
# On a machine with more memory, raise them (``polylens.spline.MAX_RESULT_BYTES
# = 4_000_000_000``); every function reads them when it is called.
#: Largest array (bytes) a function builds as its answer: a code matrix, a
#: pairwise distance matrix, a slice's codes. 1 GB.
MAX_RESULT_BYTES: int = 1_000_000_000
#: Working memory (bytes) for the intermediates of one chunk (pre-activations
#: of a chunk of inputs, a chunk of points along a path). 100 MB.
CHUNK_BYTES: int = 100_000_000


def _size(n_bytes: float) -> str:
    """A byte count for people: '7.2 GB', '350 MB', '12 bytes'."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.3g} {unit}"
    return f"{int(n_bytes)} bytes"


def refuse_if_too_big(n_bytes: float, what: str, instead: str) -> None:
    """Raise a ValueError if an answer of ``n_bytes`` would exceed :data:`MAX_RESULT_BYTES`.

    ``what`` names the array ("pairwise hamming of 30,000 x 30,000 codes, an
    int64 matrix"); ``instead`` says what to pass instead.
    """
    if n_bytes > MAX_RESULT_BYTES:
        raise ValueError(
            f"{what} would take {_size(n_bytes)}, more than polylens.spline.MAX_RESULT_BYTES "
            f"({_size(MAX_RESULT_BYTES)}, so that a notebook fits in the ~2 GB of mybinder.org); {instead}"
        )


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Run ``model`` in eval mode inside the block; give every module its own flag back after.

    Every function that reads codes or pre-activations runs the model this
    way: Dropout is off and BatchNorm uses its running statistics, so an
    input's code depends on that input alone (not on a random mask or on the
    rest of the batch), and BatchNorm's running statistics are not updated.
    Each module's ``training`` flag is restored on exit, even when the block
    raises, so a model in the middle of training stays in train mode. The
    model is not copied.
    """
    flags = [(module, module.training) for module in model.modules()]
    try:
        model.eval()
        yield model
    finally:
        for module, flag in flags:
            module.training = flag


class Layer(NamedTuple):
    """One activation call's slice of a code: ``bits[:, start:stop]``."""

    name: str
    start: int
    stop: int

    @property
    def size(self) -> int:
        return self.stop - self.start


# ------------------------------------------------------------- helpers ---


def _as_input(model: nn.Module, x: Any) -> torch.Tensor:
    """``x`` as a tensor of the model's parameter dtype, checked finite."""
    x = real_tensor(x, "x (the batch of inputs)", dtype=None)
    if x.ndim == 0:
        raise ValueError("x must have a batch dimension, e.g. shape (batch, features)")
    param = next((p for p in model.parameters() if p.is_floating_point()), None)
    if param is not None:
        x = x.to(dtype=param.dtype, device=param.device)
    elif not x.is_floating_point():
        x = x.double()
    if not torch.isfinite(x).all():
        raise ValueError("x contains NaN or inf; spline codes need finite inputs")
    return x


def _activation_names(model: nn.Module, names_filter: NamesFilter, kinds: tuple) -> list[str]:
    _check_model(model)
    modules = dict(model.named_modules())
    try:
        chosen = resolve_names(model, names_filter)
    except UnknownNameError:
        raise  # a misspelt name: its message lists the names there are
    except ValueError:
        chosen = []  # a model with no submodules at all: reported below
    names = [n for n in chosen if isinstance(modules[n], kinds)]
    if names:
        return names
    found = sorted({type(m).__name__ for m in modules.values() if isinstance(m, SMOOTH)})
    uncoded = sorted({type(m).__name__ for m in modules.values()
                      if type(m).__module__ == "torch.nn.modules.activation" and not isinstance(m, RELU_LIKE + SMOOTH)})
    if found and kinds == RELU_LIKE:
        hint = f" It has {', '.join(found)}, which is smooth: use polylens.spline.soft_code for soft codes."
    elif uncoded:
        hint = f" It has {', '.join(uncoded)}, which has no spline code here: build the network with nn.ReLU modules."
    else:
        hint = " Activations must be nn.Module attributes (nn.ReLU()), not F.relu in forward."
    where = "among the modules names_filter selected" if names_filter is not None else "in the model"
    kind_names = "/".join(k.__name__ for k in kinds)
    raise ValueError(f"no {kind_names} module {where}.{hint}")


def _forward(model: nn.Module, x: torch.Tensor, rows: torch.Tensor, names: list[str]) -> tuple[list[str], list[torch.Tensor], dict]:
    """Pre-activations of the named modules for ``rows`` (a chunk of ``x``), one entry per call."""
    with torch.no_grad(), capture(model, names, which="input") as cache:
        try:
            model(rows)
        except RuntimeError as err:
            # Usually a shape mismatch deep inside torch; say it in the learner's terms.
            raise ValueError(
                f"the model could not run on x of shape {tuple(x.shape)} ({err}). "
                "x must be a batch of inputs: (batch, features) for an MLP, (batch, C, H, W) for a conv net"
            ) from err
    keys = list(cache.inputs)
    if not keys:
        raise ValueError(
            "none of the activation modules ran in the forward pass; "
            "check that forward calls them"
        )
    if any(cache.inputs[k].ndim < 2 for k in keys):
        # An unbatched input ran (nn.Linear accepts (features,)), but codes are per example.
        raise ValueError(
            f"x of shape {tuple(x.shape)} has no batch dimension; pass a batch, e.g. x[None] "
            "for one input of shape (features,)"
        )
    modules = dict(model.named_modules())
    owners = {k: modules[k.split("#")[0]] for k in keys}
    return keys, [cache.inputs[k].flatten(1) for k in keys], owners


# The first chunk is small: it tells how wide the code is and how much a row
# costs, before anything big is allocated. Chunks are whole multiples of
# _ROW_ALIGN rows: BLAS rounds the last (rows mod 4, 8 or 16) rows of a batch
# in a different kernel, so such chunks give every row exactly the values
# (and bits) of one big batch.
_FIRST_ROWS = 256
_ROW_ALIGN = 64


def _each_chunk(
    model: nn.Module,
    x: Any,
    names: list[str],
    value_bytes: int,
    what: str,
    use: Callable[[int, slice, list[torch.Tensor], dict], None],
) -> tuple[list[str], list[int], dict]:
    """Run ``model`` on ``x`` in chunks of rows, in eval mode, calling ``use`` on each chunk.

    ``use(n, rows, pre, owners)`` gets the number of inputs, the chunk's rows
    of ``x`` (a slice), its pre-activations (one (chunk, neurons of that
    call) tensor per activation call) and the owner module of each call.
    Once the first chunk gives the code's width, an answer of len(x) x
    neurons x ``value_bytes`` beyond :data:`MAX_RESULT_BYTES` is refused;
    later chunks hold about :data:`CHUNK_BYTES` in all, counting the model's
    own intermediates as three times the captured pre-activations (a layer's
    output, its activation, the next layer's input). Rows do not affect each
    other in eval mode, so the answer is the one a single forward pass gives.

    Returns (call keys, neurons per call, owner module of each key).
    """
    x = _as_input(model, x)
    n = len(x) if x.ndim else 0
    with eval_mode(model):
        start, step, layout = 0, min(_FIRST_ROWS, max(n, 1)), None
        while True:
            rows = slice(start, start + step)
            # Unbatched x (one input of shape (features,)) goes whole, to be refused with its own message.
            keys, pre, owners = _forward(model, x, x[rows] if x.ndim > 1 else x, names)
            sizes = [p.shape[1] for p in pre]
            if layout is None:
                layout = (keys, sizes, owners)
                width = sum(sizes)
                most = max(1, MAX_RESULT_BYTES // max(1, width * value_bytes))
                refuse_if_too_big(
                    n * width * value_bytes,
                    f"{what} of {n:,} inputs x {width:,} neurons",
                    f"pass fewer inputs per call, e.g. a loop over x[i:i + {most}], or select fewer "
                    "layers with names_filter",
                )
                per_row = 4 * max(1, width * pre[0].element_size())
                step = max(_ROW_ALIGN, CHUNK_BYTES // per_row // _ROW_ALIGN * _ROW_ALIGN)
            elif keys != layout[0] or sizes != layout[1]:
                raise ValueError(
                    "the model called its activation modules differently for different inputs "
                    f"({layout[0]} then {keys}); spline codes need forward to call the same modules "
                    "for every input"
                )
            use(n, rows, pre, owners)
            start = rows.stop
            if start >= n:
                return layout


def _run_inputs(model: nn.Module, x: Any, names: list[str]) -> tuple[list[str], list[torch.Tensor], dict]:
    """Pre-activations of the named modules, one (batch, neurons) tensor per call, in execution order.

    Computed in chunks of rows in eval mode (see :func:`_each_chunk`); the
    whole answer is refused if it would exceed :data:`MAX_RESULT_BYTES`.
    """
    out: list[torch.Tensor] = []

    def keep(n: int, rows: slice, pre: list[torch.Tensor], owners: dict) -> None:
        if not out:  # the first chunk: allocate the answer once, fill it chunk by chunk
            out.extend(torch.empty((n, p.shape[1]), dtype=p.dtype, device=p.device) for p in pre)
        for o, p in zip(out, pre):
            o[rows] = p

    param = next((p for p in model.parameters() if p.is_floating_point()), None)
    value_bytes = param.element_size() if param is not None else 8
    keys, _, owners = _each_chunk(model, x, names, value_bytes, "pre-activations", keep)
    return keys, out, owners


def layout(names: Sequence[str], sizes: Sequence[int]) -> tuple[Layer, ...]:
    """The code layout of layers ``names`` with ``sizes`` units each: consecutive column ranges."""
    stops = np.cumsum(sizes).tolist() if len(sizes) else []
    return tuple(Layer(k, stop - n, stop) for k, n, stop in zip(names, sizes, stops))


def _rows(index: Any, n: int) -> Any:
    # An int keeps the row axis so that a single row is still a code.
    if isinstance(index, (int, np.integer)):
        if not -n <= index < n:
            raise IndexError(f"row {index} out of range for {n} rows")
        return slice(index % n, index % n + 1)
    return index


def _layer_slice(layers: Sequence[Layer], name: str) -> Layer:
    for layer in layers:
        if layer.name == name:
            return layer
    raise UnknownNameError.among(name, [l.name for l in layers], what="layer")


# ------------------------------------------------------------ SplineCode ---


@dataclass(eq=False)
class SplineCode:
    """Hard spline codes of a batch of inputs.

    Attributes:
        bits: (batch, neurons) numpy bool; ``True`` where the unit's
            pre-activation is > 0 ("on").
        layers: one :class:`Layer` (name, start, stop) per activation call,
            in execution order; ``bits[:, start:stop]`` is that layer's code.
            Conv layers contribute channels x positions bits, flattened.
    """

    bits: np.ndarray
    layers: tuple[Layer, ...]

    def __post_init__(self) -> None:
        self.bits = _as_bool(self.bits)
        self.layers = tuple(Layer(*l) for l in self.layers)
        if self.bits.ndim != 2:
            raise ValueError(f"bits must be (batch, neurons), got shape {self.bits.shape}")
        n = self.layers[-1].stop if self.layers else 0
        if n != self.bits.shape[1]:
            raise ValueError(f"layers cover {n} neurons but bits has {self.bits.shape[1]} columns")

    @property
    def n_neurons(self) -> int:
        return self.bits.shape[1]

    @property
    def layer_names(self) -> list[str]:
        return [l.name for l in self.layers]

    def __len__(self) -> int:
        return self.bits.shape[0]

    def __getitem__(self, index: Any) -> SplineCode:
        """A subset of rows (int, slice, index array or bool mask), still a SplineCode."""
        return SplineCode(self.bits[_rows(index, len(self))], self.layers)

    def __repr__(self) -> str:
        names = ", ".join(f"{l.name}:{l.size}" for l in self.layers)
        return f"SplineCode({len(self)} rows x {self.n_neurons} neurons; {names})"

    def layer(self, name: str) -> np.ndarray:
        """(batch, layer width) bits of the layer called ``name``."""
        l = _layer_slice(self.layers, name)
        return self.bits[:, l.start : l.stop]

    def packed(self) -> np.ndarray:
        """(batch, ceil(neurons / 8)) uint8, bits packed big-endian by ``np.packbits``."""
        return np.packbits(self.bits, axis=1)

    @classmethod
    def unpack(cls, packed: np.ndarray, layers: Sequence[Layer]) -> SplineCode:
        """Inverse of :meth:`packed` for a code with these ``layers``."""
        n = layers[-1][2] if layers else 0
        return cls(np.unpackbits(np.asarray(packed, dtype=np.uint8), axis=1, count=n).astype(bool), layers)

    @classmethod
    def concat(cls, codes: Sequence[SplineCode]) -> SplineCode:
        """Stack the rows of codes that share one layout."""
        codes = list(codes)
        if not codes:
            raise ValueError("concat needs at least one SplineCode")
        for c in codes[1:]:
            _check_same_layout(codes[0], c)
        return cls(np.concatenate([c.bits for c in codes], axis=0), codes[0].layers)

    def same_layout(self, other: SplineCode) -> bool:
        return self.layers == other.layers


def _as_bool(bits: Any) -> np.ndarray:
    """Bits as numpy bool; numbers are accepted only as exact 0s and 1s (NaN is not "on")."""
    if isinstance(bits, torch.Tensor):
        bits = bits.detach().cpu().numpy()
    bits = np.asarray(bits)
    if bits.dtype == bool:
        return bits
    if bits.dtype.kind not in "iuf" or not np.isin(bits, (0, 1)).all():
        raise ValueError(
            "bits must be booleans (True = on) or 0/1 numbers, e.g. preacts > 0; "
            f"got {bits.dtype} values other than 0 and 1"
        )
    return bits.astype(bool)


def _check_same_layout(a: SplineCode, b: SplineCode) -> None:
    if not a.same_layout(b):
        raise ValueError(
            "codes have different layouts (layers or widths differ): "
            f"{a.layer_names} vs {b.layer_names}; compare codes from the same model and names_filter"
        )


def spline_code(model: nn.Module, x: Any, names_filter: NamesFilter = None) -> SplineCode:
    """The on/off pattern of every ReLU-like unit for a batch of inputs.

    Args:
        model: a ``torch.nn.Module`` whose ReLU/LeakyReLU are modules. It is
            run in eval mode for the call (Dropout off, BatchNorm on its
            running statistics, see :func:`eval_mode`), so a code depends on
            its own input only and agrees with
            :func:`polylens.regions.slice_regions`; every module's
            ``training`` flag is restored afterwards and nothing in the model
            changes.
        x: (batch, ...) inputs, tensor or array; cast to the model's dtype.
        names_filter: which activation modules to read (a name, list of
            names or callable); default every nn.ReLU/nn.LeakyReLU. Selected
            modules that are not ReLU-like are skipped.

    Returns:
        :class:`SplineCode` with bits (batch, neurons): a unit is on when its
        pre-activation is > 0. Layers follow execution order; a module called
        twice appears twice (``relu``, ``relu#1``).

    Memory: inputs run in chunks of rows (about :data:`CHUNK_BYTES` of
    intermediates each), so only the bits are held for the whole batch;
    bits beyond :data:`MAX_RESULT_BYTES` (batch x neurons bytes) are
    refused with a ValueError before anything big is allocated.
    """
    names = _activation_names(model, names_filter, RELU_LIKE)
    out: list[np.ndarray] = []

    def keep(n: int, rows: slice, pre: list[torch.Tensor], owners: dict) -> None:
        if not out:  # allocate the answer once; only one chunk's pre-activations exist at a time
            out.append(np.empty((n, sum(p.shape[1] for p in pre)), dtype=bool))
        start = 0
        for p in pre:
            out[0][rows, start : start + p.shape[1]] = (p > 0).cpu().numpy()
            start += p.shape[1]

    keys, sizes, _ = _each_chunk(model, x, names, 1, "a spline code", keep)
    return SplineCode(out[0], layout(keys, sizes))


def preactivations(model: nn.Module, x: Any, names_filter: NamesFilter = None) -> tuple[torch.Tensor, SplineCode]:
    """Pre-activations of every ReLU-like call, in the layout of :func:`spline_code` (its numeric twin).

    Returns ``(preacts (batch, neurons), code)``: ``code.bits == preacts > 0``.
    Runs the model in eval mode, like :func:`spline_code`.
    """
    keys, values, _ = _run_inputs(model, x, _activation_names(model, names_filter, RELU_LIKE))
    preacts = torch.cat(values, dim=1)
    return preacts, SplineCode((preacts > 0).cpu().numpy(), layout(keys, [v.shape[1] for v in values]))


# -------------------------------------------------------------- SoftCode ---


def _normal_cdf(u: torch.Tensor) -> torch.Tensor:
    return 0.5 * (1.0 + torch.erf(u / math.sqrt(2.0)))


def _prob_on(module: nn.Module, u: torch.Tensor) -> torch.Tensor:
    """Probability that a unit with pre-activation ``u`` is on (see soft_code)."""
    if isinstance(module, RELU_LIKE):
        return (u > 0).to(u.dtype)
    if isinstance(module, nn.GELU):
        return _normal_cdf(u)
    if isinstance(module, nn.Softplus):
        return torch.sigmoid(module.beta * u)
    return torch.sigmoid(u)  # SiLU, Sigmoid


@dataclass(eq=False)
class SoftCode:
    """Soft spline codes: ``probs`` (batch, neurons) float64 numpy in [0, 1].

    ``layers`` as in :class:`SplineCode`. ``threshold(0.5)`` gives the hard
    code; for ReLU units it is exactly :func:`spline_code`.
    """

    probs: np.ndarray
    layers: tuple[Layer, ...]

    def __post_init__(self) -> None:
        self.probs = np.asarray(self.probs, dtype=np.float64)
        self.layers = tuple(Layer(*l) for l in self.layers)

    def __len__(self) -> int:
        return self.probs.shape[0]

    def __getitem__(self, index: Any) -> SoftCode:
        return SoftCode(self.probs[_rows(index, len(self))], self.layers)

    def __repr__(self) -> str:
        names = ", ".join(f"{l.name}:{l.size}" for l in self.layers)
        return f"SoftCode({len(self)} rows x {self.probs.shape[1]} neurons; {names})"

    def layer(self, name: str) -> np.ndarray:
        """(batch, layer width) probabilities of the layer called ``name``."""
        l = _layer_slice(self.layers, name)
        return self.probs[:, l.start : l.stop]

    def threshold(self, p: float = 0.5) -> SplineCode:
        """Hard code: on where the probability is > ``p``."""
        p = finite_number(p, "threshold")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {p}")
        return SplineCode(self.probs > p, self.layers)


def soft_code(model: nn.Module, x: Any, names_filter: NamesFilter = None) -> SoftCode:
    """Per-unit probability of being "on", for smooth and ReLU-like activations.

    Balestriero & Baraniuk (arXiv:1810.09274) read an activation
    ``u -> u * p(u)`` as a soft choice between the "off" (output 0) and "on"
    (output u) pieces, made with probability ``p(u)``:

    * SiLU ``u * sigmoid(u)``: p(u) = sigmoid(u).
    * GELU ``u * Phi(u)``: p(u) = Phi(u), the standard normal CDF
      (also used for the tanh approximation of GELU).
    * Softplus ``log(1 + e^(beta u)) / beta``, the soft maximum of 0 and u:
      p(u) = its derivative, sigmoid(beta * u).
    * Sigmoid: p(u) = sigmoid(u), the unit's own output read as a
      probability (its derivative is not a probability).
    * ReLU and LeakyReLU: the hard step, p(u) = 1 if u > 0 else 0.

    Every p crosses 1/2 at u = 0, so ``soft_code(...).threshold(0.5)`` is the
    sign pattern of the pre-activations.

    Args:
        model, x, names_filter: as in :func:`spline_code` (the model runs in
            eval mode for the call, in chunks of rows); the default selects
            every ReLU, LeakyReLU, GELU, SiLU, Sigmoid and Softplus.

    Returns:
        :class:`SoftCode` with probs (batch, neurons) float64; refused with a
        ValueError if that would exceed :data:`MAX_RESULT_BYTES`.
    """
    names = _activation_names(model, names_filter, RELU_LIKE + SMOOTH)
    out: list[np.ndarray] = []

    def keep(n: int, rows: slice, pre: list[torch.Tensor], owners: dict) -> None:
        if not out:  # allocate the answer once; only one chunk's pre-activations exist at a time
            out.append(np.empty((n, sum(p.shape[1] for p in pre)), dtype=np.float64))
        start = 0
        for k, p in zip(owners, pre):
            out[0][rows, start : start + p.shape[1]] = _prob_on(owners[k], p.double()).cpu().numpy()
            start += p.shape[1]

    keys, sizes, _ = _each_chunk(model, x, names, 8, "a soft code", keep)
    return SoftCode(out[0], layout(keys, sizes))


# --------------------------------------------------------------- hamming ---

CodeLike = Union[SplineCode, np.ndarray, torch.Tensor]
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def _popcount(words: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):  # numpy >= 2.0
        return np.bitwise_count(words)
    return _POPCOUNT[words.view(np.uint8)].reshape(*words.shape, -1).sum(-1, dtype=np.uint8)


def _as_bits(codes: CodeLike, what: str) -> np.ndarray:
    if isinstance(codes, SplineCode):
        return codes.bits
    if isinstance(codes, torch.Tensor):
        codes = codes.detach().cpu().numpy()
    codes = np.asarray(codes)
    if codes.dtype != bool or codes.ndim != 2:
        raise TypeError(
            f"{what} must be a SplineCode or a (rows, neurons) bool array, "
            f"got {codes.dtype} array of shape {codes.shape}"
        )
    return codes


def _words(bits: np.ndarray) -> np.ndarray:
    """(rows, neurons) bool -> (rows, words) uint64, zero-padded: fewer, wider XORs."""
    packed = np.packbits(bits, axis=1)
    pad = (-packed.shape[1]) % 8
    if pad:
        packed = np.pad(packed, ((0, 0), (0, pad)))
    return np.ascontiguousarray(packed).view(np.uint64)


def hamming(a: CodeLike, b: CodeLike | None = None, pairwise: bool = False) -> np.ndarray:
    """Number of units whose state differs between codes.

    Args:
        a: SplineCode or (n, neurons) bool array.
        b: the same layout as ``a``; None means ``a`` against itself (pairwise).
        pairwise: False: row i of a vs row i of b, needs n == m, returns (n,).
            True: every row of a vs every row of b, returns (n, m).

    Returns:
        int64 counts. Computed on packed 64-bit words with a popcount, in
        256 x 256 tiles so memory stays bounded. A pairwise matrix larger
        than :data:`MAX_RESULT_BYTES` (n x m x 8 bytes; 1 GiB is about
        11,500 x 11,500) is refused with a ValueError before it is
        allocated: compare blocks of rows instead.
    """
    bits_a = _as_bits(a, "a")
    if b is None:
        bits_b, pairwise = bits_a, True
    else:
        bits_b = _as_bits(b, "b")
    if isinstance(a, SplineCode) and isinstance(b, SplineCode):
        _check_same_layout(a, b)
    if bits_a.shape[1] != bits_b.shape[1]:
        raise ValueError(
            f"codes have different numbers of neurons ({bits_a.shape[1]} vs {bits_b.shape[1]}); "
            "compare codes from the same model and names_filter"
        )
    if pairwise:
        n, m = len(bits_a), len(bits_b)
        refuse_if_too_big(
            8.0 * n * m,
            f"pairwise hamming of {n:,} x {m:,} codes (an int64 matrix)",
            f"compare blocks of rows, e.g. hamming(a[i:i + {max(1, MAX_RESULT_BYTES // (8 * max(m, 1)))}], b, "
            "pairwise=True) in a loop, keeping only what you need of each block (a minimum, a histogram), "
            "or compare row i with row i (pairwise=False)",
        )
    wa, wb = _words(bits_a), _words(bits_b)
    if not pairwise:
        if len(wa) != len(wb):
            raise ValueError(
                f"elementwise hamming needs the same number of rows ({len(wa)} vs {len(wb)}); "
                "pass pairwise=True to compare every row with every row"
            )
        return _popcount(wa ^ wb).sum(axis=1, dtype=np.int64)
    return _pairwise(wa, wb)


def _pairwise(wa: np.ndarray, wb: np.ndarray, block: int = 256) -> np.ndarray:
    # Word by word over (block x block) tiles: each step is a contiguous
    # XOR + popcount + add on a tile that stays in cache, which numpy does
    # fast; one 3D XOR followed by a sum over words is several times slower.
    out = np.empty((len(wa), len(wb)), dtype=np.int64)
    acc_type = np.uint16 if 64 * wa.shape[1] < 2**16 else np.int64
    wb_t = np.ascontiguousarray(wb.T)
    for i in range(0, len(wa), block):
        rows = wa[i : i + block]
        for j in range(0, len(wb), block):
            cols = wb_t[:, j : j + block]
            acc = np.zeros((len(rows), cols.shape[1]), dtype=acc_type)
            tmp = np.empty(acc.shape, dtype=np.uint64)
            for k in range(wa.shape[1]):
                np.bitwise_xor(rows[:, k, None], cols[k][None, :], out=tmp)
                acc += _popcount(tmp)
            out[i : i + block, j : j + block] = acc
    return out


# ------------------------------------------------------------ agreement ---


def on_fraction(codes: CodeLike) -> np.ndarray:
    """(neurons,) float64: the fraction of rows in which each unit is on."""
    bits = _as_bits(codes, "codes")
    if len(bits) == 0:
        raise ValueError("on_fraction needs at least one row of codes")
    return bits.mean(axis=0)


@dataclass(eq=False)
class CodeMask:
    """Units on which most codes agree, and the state they agree on.

    Attributes:
        neurons: (k,) int64 indices into the full code (columns of ``bits``).
        state: (k,) bool, the agreed state (True = on).
        layers: the layout of the codes the mask was made from.
        fraction: (k,) float64, the fraction of rows in the agreed state.
    """

    neurons: np.ndarray
    state: np.ndarray
    layers: tuple[Layer, ...]
    fraction: np.ndarray

    def __len__(self) -> int:
        return len(self.neurons)

    def __repr__(self) -> str:
        on = int(self.state.sum())
        return f"CodeMask({len(self)} neurons: {on} agreed on, {len(self) - on} agreed off)"

    def layer(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(indices within that layer, agreed states) for the layer called ``name``."""
        l = _layer_slice(self.layers, name)
        inside = (self.neurons >= l.start) & (self.neurons < l.stop)
        return self.neurons[inside] - l.start, self.state[inside]

    def matches(self, codes: CodeLike) -> np.ndarray:
        """(rows,) fraction of masked units that are in the agreed state in each row."""
        bits = _as_bits(codes, "codes")
        if len(self) == 0:
            return np.ones(len(bits))
        return (bits[:, self.neurons] == self.state).mean(axis=1)


def code_mask(codes: CodeLike, agreement: float = 0.9) -> CodeMask:
    """Units in which at least a fraction ``agreement`` of rows share one state.

    Args:
        codes: SplineCode or (rows, neurons) bool array.
        agreement: in (0.5, 1]; 0.9 keeps units on in >= 90% of rows (state
            True) or off in >= 90% of rows (state False).

    Returns:
        :class:`CodeMask`.
    """
    if not 0.5 < finite_number(agreement, "agreement") <= 1.0:
        raise ValueError(f"agreement must be in (0.5, 1] so that one state wins, got {agreement}")
    on = on_fraction(codes)
    state = on >= 0.5
    frac = np.where(state, on, 1.0 - on)
    keep = np.flatnonzero(frac >= agreement - 1e-12)  # 9/10 is not exactly 0.9 in floats
    layers = codes.layers if isinstance(codes, SplineCode) else (Layer("code", 0, len(on)),)
    return CodeMask(keep.astype(np.int64), state[keep], layers, frac[keep])


__getattr__ = renamed("polylens.spline", {"agreement": "on_fraction", "mask": "code_mask"},
                      "module 'polylens.spline' has no attribute {name!r}")
