"""Steering: composing a feature with an input, in activation space or code space.

The sunny-duck question: take the activations of a duck picture, take what
sunny pictures have in common, combine them. Every operation here is a
context manager over :mod:`polylens.hooks` (hooks removed on exit, even
after an exception), acts on any named module, decides per example (never
for a whole batch at once), and keeps dtype and device.

Directions in activation space::

    d = mean_difference(acts_sunny, acts_other, layer="encoder.6")
    with add(model, d, alpha=2.0):                                   # h + 2 d
    with add(model, d, alpha=2.0, when=dot_below(d, 0.5)):           # only where h.d < 0.5
    with add_to_projection(model, d, quantile=0.5):                  # raise h.d to the sunny median

Masks in spline-code space (the discussion's "flip the neurons toward the sunny
mask")::

    mask = steering_mask(sunny_codes, agreement=0.9, preacts=sunny_preacts)
    with toward_mask(model, mask, strength=1.0):                     # every masked unit in its sunny state

Displacements that depend on where the input starts, learned from pairs (the
same scene before and after)::

    plan = fit_transport(model, "encoder.8", before, after, starts=weathers, inputs=["encoder.3", "encoder.5"])
    with transport(model, plan, strength=1.0):                       # each patch moved by its own affine map
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from polylens import spline
from polylens._checks import finite_number, real_array, whole_number
from polylens._renamed import renamed
from polylens.hooks import HookPoint, collect, hooked, single_use
from polylens.spline import CodeMask, Layer, SplineCode, preactivations, refuse_if_too_big

__all__ = [
    "CodeDirection",
    "FeatureDirection",
    "PairedTransport",
    "SteeringMask",
    "add",
    "add_to_projection",
    "code_direction",
    "dot_above",
    "dot_below",
    "fit_transport",
    "mean_difference",
    "paired_pca",
    "preactivations",
    "sae_direction",
    "separation",
    "steering_mask",
    "toward_mask",
    "transport",
]

Gate = Callable[[torch.Tensor], torch.Tensor]  # (batch, ...) activations -> (batch,) bool tensor


# -------------------------------------------------------------- directions ---


@dataclass(eq=False)
class FeatureDirection:
    """A unit direction at one layer, with the data's projections along it.

    Attributes:
        layer: the module name whose output the direction lives in.
        vector: unit vector, the shape of one example's activation.
        projections: (n,) projections of the positive examples (e.g. sunny)
            onto ``vector``: the data's own distribution along it.
        baseline: (m,) projections of the negative examples.
    """

    layer: str
    vector: torch.Tensor
    projections: torch.Tensor
    baseline: torch.Tensor

    def project(self, acts: torch.Tensor) -> torch.Tensor:
        """(batch,) projections of activations (batch, *vector.shape)."""
        _check_acts(acts, self.vector.shape, "acts")
        return acts.flatten(1) @ self.vector.flatten().to(acts)

    def quantile(self, q: float) -> float:
        """The ``q`` quantile of the positive examples' projections."""
        if not 0.0 <= finite_number(q, "quantile") <= 1.0:
            raise ValueError(f"quantile must be in [0, 1], got {q}")
        return float(torch.quantile(self.projections.double(), q))

    def __repr__(self) -> str:
        lo, hi = self.quantile(0.05), self.quantile(0.95)
        return f"FeatureDirection({self.layer!r}, dim {self.vector.numel()}, positives project to [{lo:.3g}, {hi:.3g}] (5-95%))"


def _check_acts(acts: Any, shape: torch.Size | None, what: str) -> torch.Tensor:
    if not isinstance(acts, torch.Tensor):
        raise TypeError(f"{what} must be a torch.Tensor of activations (batch, ...), got {type(acts).__name__}")
    if acts.ndim < 2 or len(acts) == 0:
        raise ValueError(f"{what} must have shape (batch, ...) with at least one example, got {tuple(acts.shape)}")
    if not acts.is_floating_point():
        raise TypeError(f"{what} must be floating point, got {acts.dtype}")
    if shape is not None and acts.shape[1:] != shape:
        raise ValueError(f"{what} has per-example shape {tuple(acts.shape[1:])}; the direction has {tuple(shape)}")
    if not torch.isfinite(acts).all():
        raise ValueError(f"{what} holds NaN or inf")
    return acts


def mean_difference(pos: torch.Tensor, neg: torch.Tensor, layer: str = "") -> FeatureDirection:
    """The unit vector from the mean of ``neg`` to the mean of ``pos``.

    Args:
        pos, neg: (n, ...) and (m, ...) activations at ``layer``.
        layer: the module they were captured from (used by :func:`add`).
    """
    pos, neg = _check_acts(pos, None, "pos"), _check_acts(neg, pos.shape[1:], "neg")
    # float64: the means of float32 activations near float32's range cannot overflow there.
    diff = pos.double().mean(0) - neg.double().mean(0)
    return _direction(layer, diff, pos, neg)


def paired_pca(pos: torch.Tensor, neg: torch.Tensor, layer: str = "") -> FeatureDirection:
    """First principal direction of paired differences ``pos[i] - neg[i]``.

    For pairs that differ only in the feature (the same scene, sunny and not),
    the differences share the feature's direction; their first principal
    component (uncentred, so a constant shift counts) estimates it. The sign
    is chosen to agree with the mean difference.
    """
    pos, neg = _check_acts(pos, None, "pos"), _check_acts(neg, pos.shape[1:], "neg")
    if len(pos) != len(neg):
        raise ValueError(f"paired_pca needs pairs: got {len(pos)} positives and {len(neg)} negatives")
    diffs = (pos.double() - neg.double()).flatten(1)
    if not torch.isfinite(diffs).all():
        raise ValueError("pos - neg overflows float64: the activations are too large; divide both by a common scale")
    if not diffs.abs().max() > 0:
        # Every difference is zero: the SVD would still return some unit vector, an arbitrary direction.
        raise ValueError(
            "every pair is identical (pos[i] == neg[i] for all i): there is no direction between them; "
            "pass pairs that differ in the feature (e.g. the same scene, sunny and not)"
        )
    diffs = diffs / diffs.abs().max()  # scale-free: the SVD of huge numbers would overflow
    _, _, vh = torch.linalg.svd(diffs, full_matrices=False)
    top = vh[0] * torch.sign(vh[0] @ diffs.mean(0) + 1e-300)
    return _direction(layer, top.reshape(pos.shape[1:]), pos, neg)


def _direction(layer: str, vec: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> FeatureDirection:
    """Normalise ``vec`` (in float64, scaled first so that no square overflows) and project the data on it."""
    vec = vec.detach().double()
    if not torch.isfinite(vec).all():
        raise ValueError(
            "the direction overflows float64: the activations are too large; divide pos and neg by a common scale"
        )
    biggest = vec.abs().max()
    if not biggest > 0:
        raise ValueError("pos and neg have the same mean: there is no direction between them")
    unit64 = (vec / biggest) / (vec / biggest).norm()
    unit = unit64.to(pos.dtype)
    flat = unit64.flatten()
    projections = [(a.detach().flatten(1).double() @ flat).to(pos.dtype) for a in (pos, neg)]
    if not all(torch.isfinite(p).all() for p in projections):
        raise ValueError(
            f"projections onto the direction overflow {pos.dtype}: the activations are too large; "
            "divide pos and neg by a common scale (or pass float64)"
        )
    return FeatureDirection(layer, unit, *projections)


def separation(sae: nn.Module, pos: torch.Tensor, neg: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """(n_latents,) how well each dictionary latent tells ``pos`` from ``neg``.

    The gap between the latent's mean activation on the two sets, in units of
    their pooled standard deviation (a latent that fires on every sunny
    scene and on no other scores high). ``scale``: the dictionary was
    trained on activations divided by it.
    """
    pos, neg = _check_acts(pos, None, "pos"), _check_acts(neg, pos.shape[1:], "neg")
    with torch.no_grad():
        a, b = sae.encode(pos.flatten(1) / scale), sae.encode(neg.flatten(1) / scale)
    spread = ((a.var(0) + b.var(0)) / 2).sqrt()
    return (a.mean(0) - b.mean(0)) / (spread + 1e-6 * spread.max().clamp(min=1e-12))


def sae_direction(
    sae: nn.Module, pos: torch.Tensor, neg: torch.Tensor, layer: str = "", *, scale: float = 1.0,
    latent: int | None = None,
) -> FeatureDirection:
    """The dictionary atom of the latent that best separates ``pos`` from ``neg``.

    Args:
        sae: a sparse autoencoder over this layer's activations (an
            :class:`polylens.superposition.SAE`: ``encode`` and unit-norm
            ``dictionary`` rows).
        pos, neg: (n, ...) and (m, ...) activations at ``layer``.
        scale: the SAE was trained on activations divided by ``scale``.
        latent: use this latent instead of the best-separating one.
    """
    scale = finite_number(scale, "scale")
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    scores = separation(sae, pos, neg, scale)
    if latent is None:
        latent = int(scores.argmax())
    if not 0 <= whole_number(latent, "latent", low=None) < len(scores):
        raise ValueError(f"latent must be an int in [0, {len(scores)}), got {latent!r}")
    latent = int(latent)
    atom = sae.dictionary[latent].to(pos.dtype).reshape(pos.shape[1:])
    return _direction(layer, atom, pos, neg)


# ------------------------------------------------------------------ gates ---


def dot_below(direction: FeatureDirection, threshold: float) -> Gate:
    """Gate: steer only examples whose projection on ``direction`` is below ``threshold``."""
    _check_direction(direction)
    threshold = finite_number(threshold, "threshold")
    return lambda h: direction.project(h) < threshold


def dot_above(direction: FeatureDirection, threshold: float) -> Gate:
    """Gate: steer only examples whose projection on ``direction`` is above ``threshold``."""
    _check_direction(direction)
    threshold = finite_number(threshold, "threshold")
    return lambda h: direction.project(h) > threshold


def _rows(gate: Gate | None, h: torch.Tensor) -> torch.Tensor:
    """(batch, 1, ...) 0/1 multiplier: which examples the gate lets through."""
    if gate is None:
        return torch.ones((len(h),) + (1,) * (h.ndim - 1), dtype=h.dtype, device=h.device)
    keep = gate(h)
    # Only bools: a gate returning scores (0.3) or counts (2) would silently scale alpha.
    if not (isinstance(keep, torch.Tensor) and keep.dtype == torch.bool):
        got = f"a {keep.dtype} tensor" if isinstance(keep, torch.Tensor) else type(keep).__name__
        raise TypeError(
            f"a gate must return a bool tensor, one True/False per example; got {got}. "
            "Compare instead of returning scores, e.g. lambda h: direction.project(h) < 0.5"
        )
    if keep.shape != (len(h),):
        raise ValueError(f"a gate must return one bool per example, shape ({len(h)},); got {tuple(keep.shape)}")
    return keep.to(device=h.device, dtype=h.dtype).reshape((len(h),) + (1,) * (h.ndim - 1))


def _check_result(new: torch.Tensor, old: torch.Tensor, name: str, what: str) -> torch.Tensor:
    """Refuse an edit that turned finite activations into inf or NaN (overflow), instead of passing it on."""
    if not torch.isfinite(new).all() and torch.isfinite(old).all():
        raise ValueError(
            f"steering {name!r} overflowed {old.dtype}: the edited activations hold inf or NaN. "
            f"Use a smaller {what}, or run the model in float64"
        )
    return new


# ----------------------------------------------------------------- adding ---


def _check_direction(direction: Any) -> None:
    if not isinstance(direction, FeatureDirection):
        raise TypeError(
            f"direction must be a FeatureDirection, got {type(direction).__name__}; "
            "make one with mean_difference(pos, neg, layer=...) or paired_pca(...)"
        )


def _layer_of(direction: FeatureDirection, layer: str | None) -> str:
    layer = layer or direction.layer
    if not layer:
        raise ValueError("say which module to steer: pass layer=..., or build the direction with layer=...")
    return layer


@single_use
def add(
    model: nn.Module, direction: FeatureDirection, alpha: float, *, when: Gate | None = None, layer: str | None = None
) -> Iterator[nn.Module]:
    """``h + alpha * d`` at ``direction.layer``, for the examples ``when`` lets through.

    Args:
        model: any ``nn.Module``.
        direction: a :class:`FeatureDirection` (its ``layer`` is used unless ``layer`` is given).
        alpha: how far to move, in units of activation norm.
        when: optional gate, e.g. ``dot_below(direction, 0.5)``; decided per example.
    """
    _check_direction(direction)
    alpha = finite_number(alpha, "alpha")

    def edit(h: torch.Tensor, hook: HookPoint) -> torch.Tensor:
        _check_shape(h, direction.vector.shape, hook.name)
        return _check_result(h + alpha * _rows(when, h) * direction.vector.to(h), h, hook.name, "alpha")

    with hooked(model, [(_layer_of(direction, layer), edit)]):
        yield model


@single_use
def add_to_projection(
    model: nn.Module,
    direction: FeatureDirection,
    *,
    quantile: float = 0.5,
    target: float | None = None,
    layer: str | None = None,
) -> Iterator[nn.Module]:
    """Raise each example's projection on ``d`` to a target, never lower it.

    The target is ``target`` if given, else the ``quantile`` of the positive
    data's projections: "as sunny as a typical sunny picture", so the
    strength needs no tuning. Examples already past the target are left alone.
    """
    _check_direction(direction)
    goal = finite_number(target, "target") if target is not None else direction.quantile(quantile)

    def edit(h: torch.Tensor, hook: HookPoint) -> torch.Tensor:
        _check_shape(h, direction.vector.shape, hook.name)
        short = (goal - direction.project(h)).clamp(min=0)
        new = h + short.reshape((len(h),) + (1,) * (h.ndim - 1)) * direction.vector.to(h)
        return _check_result(new, h, hook.name, "target")

    with hooked(model, [(_layer_of(direction, layer), edit)]):
        yield model


def _check_shape(h: torch.Tensor, shape: torch.Size, name: str) -> None:
    if not isinstance(h, torch.Tensor) or h.shape[1:] != shape:
        got = tuple(h.shape[1:]) if isinstance(h, torch.Tensor) else type(h).__name__
        raise ValueError(
            f"module {name!r} produces per-example shape {got} but the direction has {tuple(shape)}: "
            "steer the layer the direction was computed at"
        )


# ------------------------------------------------------------ code masks ---


@dataclass(eq=False)
class SteeringMask(CodeMask):
    """A :class:`~polylens.spline.CodeMask` with a typical pre-activation size per unit.

    ``magnitude`` (k,): the median |pre-activation| of the masked unit over
    the examples that are in the agreed state; :func:`toward_mask` at
    strength 1 puts each unit there, on the agreed side of zero.
    """

    magnitude: np.ndarray | None = None

    def __repr__(self) -> str:
        on = int(self.state.sum())
        names = ", ".join(f"{l.name}:{len(self.layer(l.name)[0])}" for l in self.layers)
        return f"SteeringMask({len(self)} units: {on} on, {len(self) - on} off; {names})"


def _numpy(values: torch.Tensor | np.ndarray) -> np.ndarray:
    return np.asarray(values.detach().cpu() if isinstance(values, torch.Tensor) else values, dtype=np.float64)


def steering_mask(
    codes: SplineCode, agreement: float = 0.9, *, preacts: torch.Tensor | np.ndarray | None = None
) -> SteeringMask:
    """Units whose on/off state at least ``agreement`` of ``codes`` share.

    Args:
        codes: spline codes of the examples that have the feature (e.g. sunny).
        agreement: in (0.5, 1].
        preacts: (rows, neurons) their pre-activations (from :func:`preactivations`);
            needed by :func:`toward_mask` to know how far "on" is.
    """
    base = spline.code_mask(codes, agreement)
    magnitude = None
    if preacts is not None:
        u = _numpy(preacts)
        bits = codes.bits if isinstance(codes, SplineCode) else np.asarray(codes)
        if u.shape != bits.shape:
            raise ValueError(f"preacts has shape {u.shape}; it must match the codes, {bits.shape}")
        if not np.isfinite(u).all():
            raise ValueError("preacts contains NaN or inf; pass the finite pre-activations from preactivations(model, x)")
        cols = u[:, base.neurons]
        agreed = (cols > 0) == base.state
        magnitude = np.array([np.median(np.abs(c[a])) if a.any() else 0.0 for c, a in zip(cols.T, agreed.T)])
    return SteeringMask(base.neurons, base.state, base.layers, base.fraction, magnitude)


@single_use
def toward_mask(model: nn.Module, mask: SteeringMask, strength: float, *, margin: float | None = None) -> Iterator[nn.Module]:
    """Push each masked unit's pre-activation toward its agreed state.

    ``u <- u + strength * (target - u)`` for every unit in the mask, with
    ``target = +magnitude`` for units agreed on and ``-magnitude`` for units
    agreed off. Strength 0 changes nothing; strength 1 puts every masked
    unit in its agreed state at a typical magnitude. A mask spanning several
    layers steers all of them (a multi-layer "pathway" mask): earlier edits
    change later pre-activations, and the later layers' units are then set too.

    Args:
        model: the network the codes came from.
        mask: from :func:`steering_mask` with ``preacts``.
        strength: >= 0 (values above 1 overshoot).
        margin: use this magnitude (> 0) for every unit instead of ``mask.magnitude``;
            a negative one would push every unit to the *opposite* of its agreed state.
    """
    if not isinstance(mask, CodeMask):
        raise TypeError(f"mask must be a SteeringMask from steering_mask(codes, preacts=...), got {type(mask).__name__}")
    strength = finite_number(strength, "strength")
    if strength < 0:
        raise ValueError(f"strength must be >= 0 (0 leaves the model unchanged), got {strength}")
    magnitude = _magnitudes(mask, margin)
    edits = []
    for layer in mask.layers:
        index, state = mask.layer(layer.name)
        if len(index) == 0:
            continue
        k = np.isin(mask.neurons, index + layer.start)
        edits.append(_mask_edit(layer, index, state, magnitude[k], strength))
    with hooked(model, input_hooks=edits):
        yield model


def _magnitudes(mask: SteeringMask, margin: float | None) -> np.ndarray:
    if margin is not None:
        margin = finite_number(margin, "margin")
        if not margin > 0:
            raise ValueError(
                f"margin must be > 0, got {margin:g}: it is how far past zero each unit is put, on its agreed "
                "side (a negative margin would flip every unit to the opposite state); e.g. margin=1.0"
            )
        return np.full(len(mask), margin)
    if getattr(mask, "magnitude", None) is None:
        raise ValueError(
            "this mask does not know how large 'on' is: build it with steering_mask(codes, preacts=...) "
            "or pass margin=..."
        )
    magnitude = real_array(mask.magnitude, "mask.magnitude")
    if magnitude.shape != (len(mask),) or not np.isfinite(magnitude).all() or (magnitude < 0).any():
        raise ValueError(
            f"mask.magnitude must hold {len(mask)} finite numbers >= 0 (one per masked unit); "
            "build the mask with steering_mask(codes, preacts=...) rather than editing it"
        )
    return magnitude


def _mask_edit(layer: Layer, index: np.ndarray, state: np.ndarray, magnitude: np.ndarray, strength: float):
    module_name = layer.name.split("#")[0]
    idx = torch.as_tensor(index, dtype=torch.long)
    target_np = np.where(state, magnitude, -magnitude)

    def edit(u: torch.Tensor, hook: HookPoint) -> torch.Tensor | None:
        if hook.name != layer.name:  # a shared module: steer only the call the mask names
            return None
        flat = u.flatten(1).clone()
        if flat.shape[1] != layer.size:
            raise ValueError(f"{hook.name!r} has {flat.shape[1]} units but the mask was made for {layer.size}")
        target = torch.as_tensor(target_np, dtype=u.dtype, device=u.device)
        cols = flat[:, idx.to(u.device)]
        flat[:, idx.to(u.device)] = cols + strength * (target - cols)
        return _check_result(flat.reshape(u.shape), u, hook.name, "strength or margin")

    return (module_name, edit)


# ------------------------------------------------------- code directions ---


@dataclass(eq=False)
class CodeDirection:
    """A direction in spline-code space: per unit, how much more often it is on.

    ``weights`` (neurons,) in [-1, 1]: on-fraction among positives minus
    on-fraction among negatives, over the concatenated multi-layer code (a
    direction in "pathway space").
    """

    weights: np.ndarray
    layers: tuple[Layer, ...]

    __getattr__ = renamed("CodeDirection", {"to_mask": "steering_mask"},
                          "'CodeDirection' object has no attribute {name!r}")

    def steering_mask(self, threshold: float = 0.5, preacts: torch.Tensor | np.ndarray | None = None) -> SteeringMask:
        """Units with ``|weight| >= threshold``, to be pushed to the sign of their weight.

        Args:
            threshold: in (0, 1]; 0 would take in units the direction does not care about.
            preacts: (rows, neurons) finite pre-activations in this code's layout
                (from :func:`preactivations`), for the typical size of "on".
        """
        keep = np.flatnonzero(np.abs(self.weights) >= _threshold(threshold))
        magnitude = None
        if preacts is not None:
            u = real_array(preacts.detach().cpu() if isinstance(preacts, torch.Tensor) else preacts, "preacts")
            neurons = len(self.weights)
            if u.ndim != 2 or u.shape[1] != neurons or len(u) == 0:
                raise ValueError(
                    f"preacts must have shape (rows, {neurons}), one column per unit of this code direction; "
                    f"got {u.shape}. Use preactivations(model, x) with the layers the codes came from"
                )
            if not np.isfinite(u).all():
                raise ValueError("preacts contains NaN or inf; pass the finite pre-activations from preactivations(model, x)")
            magnitude = np.median(np.abs(u[:, keep]), axis=0) if len(keep) else np.zeros(0)
        return SteeringMask(keep, self.weights[keep] > 0, self.layers, np.abs(self.weights[keep]), magnitude)

    def wants(self, threshold: float = 0.5) -> np.ndarray:
        """(neurons,) -1, 0 or +1: which units this direction would turn off, leave, turn on."""
        return np.where(np.abs(self.weights) >= _threshold(threshold), np.sign(self.weights), 0).astype(np.int8)

    def interaction(self, other: CodeDirection, threshold: float = 0.5) -> dict[str, int]:
        """How two code directions overlap: units both want to change, and how many they disagree on."""
        if not isinstance(other, CodeDirection) or other.weights.shape != self.weights.shape:
            raise ValueError("interaction compares two CodeDirections of the same layout (from code_direction)")
        a, b = self.wants(threshold), other.wants(threshold)
        both = (a != 0) & (b != 0)
        return {
            "only_self": int(((a != 0) & (b == 0)).sum()),
            "only_other": int(((b != 0) & (a == 0)).sum()),
            "both": int(both.sum()),
            "both_agree": int((both & (a == b)).sum()),
            "both_conflict": int((both & (a != b)).sum()),
        }


def _threshold(threshold: Any) -> float:
    # Weights are on-fraction differences in [-1, 1]: a threshold outside (0, 1] selects every unit or none.
    value = finite_number(threshold, "threshold")
    if not 0 < value <= 1:
        raise ValueError(f"threshold must be in (0, 1] (weights are differences of on-fractions), got {value:g}")
    return value


def code_direction(pos: SplineCode, neg: SplineCode) -> CodeDirection:
    """Mean difference of two sets of spline codes (same layout)."""
    if not (isinstance(pos, SplineCode) and isinstance(neg, SplineCode)):
        raise TypeError("code_direction takes two SplineCode objects (from polylens.spline_code)")
    if not pos.same_layout(neg):
        raise ValueError("the two sets of codes come from different layers; compute both with the same model and filter")
    return CodeDirection(pos.bits.mean(0) - neg.bits.mean(0), pos.layers)



# ------------------------------------------------------- paired transport ---
# "Sunny" is not one displacement: from night the way is long and different
# from the way from overcast, and a patch of sky moves differently from a
# patch of duck. A transport learns, from pairs (the same scene before and
# after), one affine map per starting state that takes each position's local
# activations (its neighbourhood in the edited layer and in the layers that
# feed it) to that position's displacement. Which map applies is decided per
# example, from the input's own code (the nearest start centroid), and what
# it does is decided per position, from that position's own activations.


def _spatial(t: torch.Tensor, shape: tuple[int, int, int], name: str) -> torch.Tensor:
    """(n, C*H*W) or (n, C, H, W) activations -> (n, C, H, W)."""
    if t.ndim == 2 and t.shape[1] == int(np.prod(shape)):
        return t.reshape(len(t), *shape)
    if t.ndim == 4 and tuple(t.shape[1:]) == tuple(shape):
        return t
    raise ValueError(f"{name!r} gives activations of shape {tuple(t.shape[1:])}; the transport was fitted "
                     f"for {tuple(shape)} (or that many numbers flattened)")


@dataclass(eq=False)
class PairedTransport:
    """Affine maps from local activations to a displacement, one per starting state. See :func:`fit_transport`.

    ``layer``: the edited module; ``shape``: its output as (C, H, W); ``inputs``:
    earlier modules whose (n, c, h, w) outputs also feed the maps (h and w
    multiples of H and W); ``radius``: neighbourhood radius at ``layer`` (inputs
    use 1); ``starts``: names of the starting states; ``centroids`` (K, C*H*W):
    each start's mean activation; ``weights`` (K, features, C).
    """

    layer: str
    shape: tuple[int, int, int]
    inputs: tuple[str, ...]
    radius: int
    starts: tuple[str, ...]
    centroids: torch.Tensor
    weights: torch.Tensor

    def features(self, h: torch.Tensor, acts: dict[str, torch.Tensor]) -> torch.Tensor:
        """(n * H * W, features): each position's neighbourhoods, its place one-hot, and a constant 1."""
        h = _spatial(h, self.shape, self.layer).float()
        n, _, height, width = h.shape
        parts = [torch.nn.functional.unfold(h, 2 * self.radius + 1, padding=self.radius)]
        for name in self.inputs:
            a = acts[name].float()
            if a.ndim != 4 or a.shape[2] % height or a.shape[3] % width or a.shape[2] // height != a.shape[3] // width:
                raise ValueError(f"{name!r} gives activations of shape {tuple(a.shape[1:])}; a transport input "
                                 f"must be (c, h, w) with h, w a multiple of {height}, {width}")
            a = torch.nn.functional.pixel_unshuffle(a, a.shape[2] // height)  # a position's sub-grid as channels
            parts.append(torch.nn.functional.unfold(a, 3, padding=1))
        local = torch.cat(parts, 1).transpose(1, 2).reshape(n * height * width, -1)
        place = torch.eye(height * width).repeat(n, 1)
        return torch.cat([local, place, torch.ones(len(local), 1)], 1)

    def start(self, h: torch.Tensor) -> torch.Tensor:
        """(n,) index into ``starts`` of each example: the start whose centroid its code is nearest."""
        return torch.cdist(h.reshape(len(h), -1).float(), self.centroids).argmin(1)

    def displacement(self, h: torch.Tensor, acts: dict[str, torch.Tensor]) -> torch.Tensor:
        """The move of every unit of ``h`` (same shape as ``h``), each example by its own start's map."""
        feats = self.features(h, acts)
        c, height, width = self.shape
        rows = height * width
        start = self.start(h).repeat_interleave(rows)
        move = torch.empty(len(feats), c)
        for k in range(len(self.starts)):
            sel = start == k
            if sel.any():
                move[sel] = feats[sel] @ self.weights[k]
        move = move.reshape(len(h), height, width, c).permute(0, 3, 1, 2)
        return move.reshape(h.shape).to(h)

    def __repr__(self) -> str:
        return (f"PairedTransport({self.layer} {self.shape}, fed by {list(self.inputs)}, radius {self.radius}, "
                f"starts {list(self.starts)}, {self.weights.shape[1]} features)")


_FIT_CHUNK = 64  # pairs per step of fit_transport: features for 64 x 64 positions take about 30 MB


def fit_transport(model: nn.Module, layer: str, before: torch.Tensor, after: torch.Tensor, starts: Any, *,
                  inputs: Sequence[str] = (), shape: tuple[int, int, int] | None = None, radius: int = 2,
                  ridge: float = 0.1) -> PairedTransport:
    """Fit one affine map per starting state, from pairs, that moves ``layer`` from ``before`` toward ``after``.

    Args:
        model: the network (run as a whole on ``before`` and ``after``).
        layer: the spatial layer to edit, e.g. a conv net's bottleneck.
        before, after: (n, ...) model inputs in pairs: ``after[i]`` is ``before[i]``
            changed in the one way to learn (the same scene on a sunny day).
        starts: (n,) the starting state of each pair (names or ints), e.g. its weather.
        inputs: earlier spatial layers whose local activations also feed the maps.
        shape: ``layer``'s output as (C, H, W); default ``model.unit_shape(layer)``.
        radius: neighbourhood radius at ``layer``; ridge: the ridge penalty.

    Returns:
        A :class:`PairedTransport` for :func:`transport`.
    """
    if not isinstance(before, torch.Tensor) or not isinstance(after, torch.Tensor) or before.shape != after.shape:
        raise ValueError("before and after must be tensors of the same shape: pairs of inputs, in the same order")
    if len(before) == 0:
        raise ValueError("fit_transport needs at least one pair; pass polylens.scenes.training_pairs(...)")
    for what, t in (("before", before), ("after", after)):
        # A NaN in one picture would make every weight NaN, and the error would surface later as a bad strength.
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise ValueError(f"{what} holds NaN or inf; pass finite pictures")
    starts = np.asarray(starts)
    if starts.shape != (len(before),):
        raise ValueError(f"starts must give one starting state per pair: shape ({len(before)},), got {starts.shape}")
    if starts.dtype.kind == "f" and not np.isfinite(starts).all():
        raise ValueError("starts holds NaN or inf; pass one name (or int) per pair, e.g. its weather")
    radius = whole_number(radius, "radius", low=0)
    ridge = finite_number(ridge, "ridge", above=0)
    if shape is None:
        if not hasattr(model, "unit_shape"):
            raise ValueError(f"pass shape=(C, H, W), the shape of {layer!r}'s output")
        shape = tuple(model.unit_shape(layer))
    if radius >= max(shape[1], shape[2]):
        raise ValueError(f"radius must be below {max(shape[1], shape[2])}, the size of {layer!r}'s map "
                         f"(a larger neighbourhood adds only padding); got {radius}")
    n_features = shape[0] * (2 * radius + 1) ** 2 + shape[1] * shape[2] + 1
    refuse_if_too_big(8 * n_features ** 2, f"the normal equations of a transport with radius {radius} "
                      f"({n_features} features per position, squared, float64)", "pass a smaller radius")
    names = list(dict.fromkeys([layer, *inputs]))
    plan = PairedTransport(layer, tuple(int(v) for v in shape), tuple(inputs), radius, (), torch.empty(0), torch.empty(0))
    labels = sorted(set(starts.tolist()), key=str)
    weights, centroids = [], []
    for label in labels:
        pick = np.flatnonzero(starts == label)
        # Normal equations summed over chunks of pairs: the (pairs x positions, features) matrix never exists whole.
        gram, cross, total, count = 0.0, 0.0, 0.0, 0
        for i in range(0, len(pick), _FIT_CHUNK):
            rows = torch.as_tensor(pick[i:i + _FIT_CHUNK])
            acts = collect(model, before[rows], names)
            h0 = _spatial(acts[layer], plan.shape, layer)
            h1 = _spatial(collect(model, after[rows], [layer])[layer], plan.shape, layer)
            x = plan.features(h0, acts).double()
            y = (h1 - h0).permute(0, 2, 3, 1).reshape(-1, plan.shape[0]).double()
            gram, cross = gram + x.T @ x, cross + x.T @ y
            total, count = total + h0.reshape(len(h0), -1).double().sum(0), count + len(h0)
        eye = torch.eye(gram.shape[0], dtype=torch.float64)
        weights.append(torch.linalg.solve(gram + ridge * eye, cross).float())
        centroids.append((total / count).float())
    plan.starts = tuple(str(v) for v in labels)
    plan.centroids, plan.weights = torch.stack(centroids), torch.stack(weights)
    return plan


@single_use
def transport(model: nn.Module, plan: PairedTransport, strength: float) -> Iterator[nn.Module]:
    """Move ``plan.layer`` by ``strength`` times each example's own displacement (1 = all the way).

    The displacement of each example comes from its own start's map (the start
    its code is nearest), and of each position from its own neighbourhood.
    The layers in ``plan.inputs`` are read on the way (not changed).
    """
    if not isinstance(plan, PairedTransport):
        raise TypeError(f"plan must be a PairedTransport from steer.fit_transport, got {type(plan).__name__}")
    strength = finite_number(strength, "strength", low=0)
    seen: dict[str, torch.Tensor] = {}

    def keep(t: torch.Tensor, hook: HookPoint) -> None:
        seen[hook.name.split("#")[0]] = t.detach()

    def move(h: torch.Tensor, hook: HookPoint) -> torch.Tensor:
        if len(h) == 0:  # an empty batch has nothing to move
            return h
        missing = [name for name in plan.inputs if name not in seen]
        if missing:
            raise RuntimeError(f"{missing} did not run before {plan.layer!r}: transport inputs must come earlier")
        out = h + strength * plan.displacement(h.detach(), seen)
        return _check_result(out, h, hook.name, "strength")

    with hooked(model, [(name, keep) for name in plan.inputs] + [(plan.layer, move)]):
        yield model


__getattr__ = renamed(
    "polylens.steer", {"code_mask": "steering_mask (a CodeMask with magnitudes; polylens.spline.code_mask makes one "
                                    "without)"}, "module 'polylens.steer' has no attribute {name!r}")
