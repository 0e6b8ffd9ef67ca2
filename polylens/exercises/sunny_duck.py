"""Checks for notebook 06 (the sunny duck: steering a scene autoencoder toward "sunny")."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from polylens import steer
from polylens.exercises import ExerciseFailed, as_array, exercise
from polylens.spline import code_mask


def _bools(value, shape: tuple[int, ...], what: str) -> np.ndarray:
    """``value`` as a bool array of ``shape``; 0/1 numbers are accepted as bools."""
    got = as_array(value, what)
    if got.shape != shape:
        raise ExerciseFailed(f"{what} has shape {got.shape}; it should be {shape}")
    if got.dtype != bool:
        if got.dtype.kind not in "biuf" or not np.isin(got, [0, 1]).all():
            raise ExerciseFailed(
                f"{what} should hold True/False values; yours holds {got.dtype} values like {got.flat[0]}"
            )
        got = got.astype(bool)
    return got


def _rows(mask_: np.ndarray) -> str:
    return str(np.flatnonzero(mask_).tolist())


# ------------------------------------------------- conditional addition ---


def conditional_addition(h: torch.Tensor, d: torch.Tensor, alpha: float, threshold: float) -> torch.Tensor:
    """Reference answer: h + alpha * d_hat on the rows whose projection h . d_hat is below threshold.

    h (batch, dim) activations, d (dim,) a direction of any length; returns a new (batch, dim) tensor.
    """
    d_hat = d / d.norm()
    below = h @ d_hat < threshold  # (batch,): decided per example
    return h + alpha * below[:, None].to(h.dtype) * d_hat


def _library_add(h: torch.Tensor, d: torch.Tensor, alpha: float, threshold: float) -> torch.Tensor:
    """What polylens.steer does: ``add(..., when=dot_below(...))`` at a layer that passes h through."""
    model = nn.Sequential(nn.Identity())
    direction = steer.mean_difference(d[None], torch.zeros_like(d)[None], layer="0")  # unit vector along d
    with torch.no_grad(), steer.add(model, direction, alpha, when=steer.dot_below(direction, threshold)):
        return model(h)


def _steering_case(projections: list[float], d_norm: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Activations whose projections on d_hat are exactly ``projections``, and a d of length ``d_norm``."""
    gen = torch.Generator().manual_seed(seed)
    dim = 6
    d = torch.randn(dim, generator=gen)
    d_hat = d / d.norm()
    h = torch.randn(len(projections), dim, generator=gen)
    h = h - (h @ d_hat)[:, None] * d_hat + torch.tensor(projections)[:, None] * d_hat
    return h, d_hat * d_norm


# Two batches. In the first the mean projection is above the threshold, in the
# second below it, so a batch-wide decision steers nothing in one and everything
# in the other; each has rows on both sides, and rows that a test against the
# un-normalised h . d would put on the wrong side.
_STEERING_CASES = (
    dict(projections=[-0.5, 0.4, 0.8, 1.4, 1.9, 2.3, 2.8, 3.5], d_norm=3.0, alpha=1.5, threshold=1.0, seed=11),
    dict(projections=[-2.0, -1.2, -0.6, 0.1, 0.3, 1.1, 1.6, 2.2], d_norm=2.5, alpha=2.0, threshold=0.5, seed=12),
)


@exercise("conditional_addition", "Steer only the examples that need it", solution=conditional_addition)
def check_conditional_addition(fn: Callable) -> str:
    """``fn(h, d, alpha, threshold)`` must add alpha * d/|d| to each row of h whose h . d/|d| < threshold."""
    for case in _STEERING_CASES:
        h, d = _steering_case(case["projections"], case["d_norm"], case["seed"])
        alpha, threshold = case["alpha"], case["threshold"]
        h_in, d_in = h.clone(), d.clone()
        got = fn(h_in, d_in, alpha, threshold)
        if not torch.equal(h_in, h):
            raise ExerciseFailed(
                "your function changed h in place (the tensor passed in is different afterwards). The caller "
                "still needs the original activations: build a new tensor, e.g. h + alpha * mask[:, None] * d_hat, "
                "instead of h[rows] += ..."
            )
        if not torch.equal(d_in, d):
            raise ExerciseFailed(
                "your function changed d in place (d /= d.norm()); make a new tensor: d_hat = d / d.norm()"
            )
        if not isinstance(got, torch.Tensor):
            raise ExerciseFailed(f"return a torch.Tensor of shape {tuple(h.shape)}, not {type(got).__name__}")
        if got.shape != h.shape:
            raise ExerciseFailed(
                f"you returned shape {tuple(got.shape)}; return every row of h, steered or not: {tuple(h.shape)}"
            )
        got = got.detach().to(h.dtype)
        want = _library_add(h, d, alpha, threshold)
        if torch.allclose(got, want, atol=1e-5):
            continue

        d_hat = d / d.norm()
        proj = h @ d_hat
        n = len(h)
        should = (proj < threshold).numpy()
        moved = ((got - h).norm(dim=1) > 1e-5).numpy()
        batch_decision = bool(proj.mean() < threshold)
        if (moved.all() or not moved.any()) and moved.all() == batch_decision:
            raise ExerciseFailed(
                f"you steered {'all' if moved.all() else 'none'} of the {n} rows, as if the decision were made once "
                f"for the whole batch (the mean projection is {proj.mean():.2f}). Decide per example: rows "
                f"{_rows(should)} project below {threshold} and should move, the others should not. Compare "
                "h @ d_hat (shape (batch,)) with the threshold, without averaging"
            )
        if moved.all():
            raise ExerciseFailed(
                f"you steered every row, but only rows {_rows(should)} project below the threshold {threshold}; "
                f"rows {_rows(~should)} are already sunny enough and must come back unchanged. Gate each row on "
                "(h @ d_hat < threshold)"
            )
        if np.array_equal(moved, ~should):
            raise ExerciseFailed(
                f"you steered rows {_rows(moved)}, whose projections are *above* the threshold; steer the ones "
                f"*below* it ({_rows(should)}): those are not sunny enough yet"
            )
        if np.array_equal(moved, (h @ d < threshold).numpy()):
            raise ExerciseFailed(
                f"you compared h @ d with the threshold, but d has length {d.norm():.2f}, not 1, so every "
                "projection is scaled by that length. Normalise first: d_hat = d / d.norm(), then gate on h @ d_hat"
            )
        if np.array_equal(moved, should):
            step = got[moved] - h[moved]
            if torch.allclose(step, alpha * d.expand_as(step), atol=1e-5):
                raise ExerciseFailed(
                    f"the right rows moved, but by alpha * d, a step of length {alpha * d.norm():.2f}; d has length "
                    f"{d.norm():.2f}. Normalise it, d_hat = d / d.norm(), so that alpha is the distance moved"
                )
            if torch.allclose(step, -alpha * d_hat.expand_as(step), atol=1e-5):
                raise ExerciseFailed("the right rows moved, but backwards: add alpha * d_hat, don't subtract it")
            if not torch.allclose(got[~moved], h[~moved], atol=1e-5):
                raise ExerciseFailed(f"rows {_rows(~should)} must come back exactly as they were")
            raise ExerciseFailed(
                f"the right rows moved (rows {_rows(should)}), but not by alpha * d_hat: each should move by "
                f"exactly {alpha} along d / d.norm()"
            )
        raise ExerciseFailed(
            f"you steered rows {_rows(moved)}; the rows to steer are {_rows(should)}, those with "
            f"h @ d_hat < {threshold} where d_hat = d / d.norm()"
        )
    h, d = _steering_case(_STEERING_CASES[0]["projections"], _STEERING_CASES[0]["d_norm"], _STEERING_CASES[0]["seed"])
    k = int(((h @ (d / d.norm())) < _STEERING_CASES[0]["threshold"]).sum())
    return (f"In the first batch {k} of {len(h)} rows were steered; the other {len(h) - k} already projected past "
            "the threshold and came back unchanged, as with steer.add(..., when=steer.dot_below(d, threshold)).")


# -------------------------------------------------- composition success ---


def composition_success(
    weather_logits: torch.Tensor, object_logits: torch.Tensor, objects: np.ndarray, sunny_index: int
) -> np.ndarray:
    """Reference answer: (batch,) bool, the weather probe's top class is sunny AND the object probe's is the original.

    weather_logits (batch, weathers), object_logits (batch, objects), objects (batch,) int indices.
    """
    sunny = weather_logits.argmax(1).numpy() == sunny_index
    kept = object_logits.argmax(1).numpy() == np.asarray(objects)
    return sunny & kept


def _composition_case(sunny_index: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Twelve images and five classes per probe: every combination of (sunny?, object kept?),
    and images where sunny is the top class with P(sunny) well below 0.5."""
    gen = torch.Generator().manual_seed(seed)
    n, k = 12, 5
    objects = torch.randint(0, k, (n,), generator=gen).numpy()
    # Which rows the weather probe calls sunny, and which keep their object.
    sunny = np.array([1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 0, 1], bool)
    kept = np.array([1, 1, 1, 1, 0, 0, 1, 1, 0, 1, 0, 0], bool)
    flat = np.array([1, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0], bool)  # top class only just ahead: P ~ 0.27
    weather = torch.randn(n, k, generator=gen) * 0.3
    obj = torch.randn(n, k, generator=gen) * 0.3
    for i in range(n):
        top = sunny_index if sunny[i] else (sunny_index + 1 + i % (k - 1)) % k
        if flat[i]:
            weather[i] = 0.6
            weather[i, top] = 1.0
        else:
            weather[i, top] = 3.0
        guess = objects[i] if kept[i] else (objects[i] + 1 + i % (k - 1)) % k
        obj[i, guess] = 3.0
    return weather, obj, objects


@exercise("composition_success", "Composition success, per image", solution=composition_success)
def check_composition_success(fn: Callable) -> str:
    """``fn(weather_logits, object_logits, objects, sunny_index)`` must return (batch,) bools."""
    for sunny_index, seed in ((0, 21), (3, 22)):
        weather, obj, objects = _composition_case(sunny_index, seed)
        n = len(objects)
        want = composition_success(weather, obj, objects, sunny_index)
        raw = fn(weather.clone(), obj.clone(), objects.copy(), sunny_index)
        got = as_array(raw, "your answer")
        if got.ndim == 0:
            raise ExerciseFailed(
                f"you returned one number ({got}); return one True/False per image, shape ({n},). The success "
                "*rate* is the mean of that array, which the notebook takes afterwards"
            )
        got = _bools(got, (n,), "your answer")
        if np.array_equal(got, want):
            continue
        sunny = weather.argmax(1).numpy() == sunny_index
        kept = obj.argmax(1).numpy() == objects
        p_sunny = torch.softmax(weather, 1)[:, sunny_index].numpy()
        if np.array_equal(got, sunny):
            raise ExerciseFailed(
                "you only checked the weather: an image that turned sunny but lost its duck is not a sunny duck. "
                "Also require the object probe's top class to equal the original object"
            )
        if np.array_equal(got, kept):
            raise ExerciseFailed(
                "you only checked the object: keeping the duck is half of it. Also require the weather probe's "
                f"top class to be sunny (index {sunny_index})"
            )
        if np.array_equal(got, sunny | kept):
            raise ExerciseFailed("success needs both at once: sunny AND the original object (&, not |)")
        low = sunny & (p_sunny < 0.5)
        wrong = got != want
        if wrong.any() and (wrong <= low).all() and not got[wrong].any():
            i = int(np.flatnonzero(wrong)[0])
            raise ExerciseFailed(
                f"image {i} has P(sunny) = {p_sunny[i]:.2f}, below 0.5, yet sunny is the probe's most likely of "
                f"its {weather.shape[1]} classes, so the probe says sunny. Use the argmax of the logits, "
                "not a 0.5 threshold on the softmax"
            )
        if sunny_index != 0 and np.array_equal(got, composition_success(weather, obj, objects, 0)):
            raise ExerciseFailed("use the sunny_index argument, not a fixed class number")
        raise ExerciseFailed(
            f"images {_rows(wrong)} are wrong: success is (weather_logits.argmax(1) == sunny_index) & "
            "(object_logits.argmax(1) == objects), one bool per image"
        )
    weather, obj, objects = _composition_case(0, 21)
    want = composition_success(weather, obj, objects, 0)
    low = int((want & (torch.softmax(weather, 1)[:, 0].numpy() < 0.5)).sum())
    return (f"{int(want.sum())} of {len(want)} images are sunny ducks (or sunny boats, ...); {low} of them with "
            "P(sunny) under 0.5. This is the probes' verdict, compose.probe_verdict (score's 'probe_success'); "
            "notebook 06 shows how it is fooled, and lets the answer key decide instead.")


# ------------------------------------------------------- agreement mask ---


def agreement_mask(bits: np.ndarray, agreement: float) -> tuple[np.ndarray, np.ndarray]:
    """Reference answer: (indices of the units at least ``agreement`` of the rows share a state in, those states).

    bits (n, units) bool; returns neurons (k,) int ascending, states (k,) bool (True = on).
    """
    on = np.asarray(bits, dtype=bool).mean(axis=0)
    state = on >= 0.5
    share = np.where(state, on, 1.0 - on)
    neurons = np.flatnonzero(share >= agreement - 1e-12)  # 9/10 is not exactly 0.9 in floats
    return neurons, state[neurons]


def _agreement_case(n: int, on_counts: list[int], seed: int) -> np.ndarray:
    """(n, units) codes in which unit j is on in exactly ``on_counts[j]`` rows, shuffled."""
    rng = np.random.default_rng(seed)
    bits = np.zeros((n, len(on_counts)), bool)
    for j, c in enumerate(on_counts):
        bits[rng.choice(n, size=c, replace=False), j] = True
    return bits


# Units on in all, most, exactly the agreement, just under it, half, ... of the rows, on and off.
_AGREEMENT_CASES = (
    dict(n=10, agreement=0.9, on_counts=[10, 9, 8, 5, 1, 0, 2, 9, 7, 10, 3, 1, 6, 0, 4, 9], seed=31),
    dict(n=8, agreement=0.75, on_counts=[6, 2, 5, 8, 0, 3, 7, 4, 1, 6], seed=32),
)


@exercise("agreement_mask", "The sunny mask: units the sunny codes agree on", solution=agreement_mask)
def check_agreement_mask(fn: Callable) -> str:
    """``fn(bits, agreement)`` must return (neurons, states) as polylens.spline.code_mask does."""
    for case in _AGREEMENT_CASES:
        bits, agreement = _agreement_case(case["n"], case["on_counts"], case["seed"]), case["agreement"]
        n, units = bits.shape
        lib = code_mask(bits, agreement)
        want_n, want_s = lib.neurons, lib.state
        got = fn(bits.copy(), agreement)
        if not (isinstance(got, tuple) and len(got) == 2):
            raise ExerciseFailed(f"return a pair (neurons, states), not {type(got).__name__}")
        neurons, states = as_array(got[0], "neurons"), as_array(got[1], "states")
        zero_one = neurons.shape == (units,) and len(want_n) != units and np.isin(neurons, [0, 1]).all()
        if neurons.dtype == bool or zero_one:
            raise ExerciseFailed(
                f"neurons is a mask over all {units} units (True/False per unit); return the *indices* of the "
                "agreeing units instead, e.g. np.flatnonzero(keep), so neurons[i] and states[i] describe one unit"
            )
        if neurons.ndim != 1 or neurons.dtype.kind not in "iu":
            raise ExerciseFailed(f"neurons should be a 1-D array of unit indices (ints); yours has shape "
                                 f"{neurons.shape} and dtype {neurons.dtype}")
        if states.shape != neurons.shape:
            raise ExerciseFailed(f"states should hold one bool per index in neurons, shape {neurons.shape}; "
                                 f"yours has shape {states.shape}")
        states = _bools(states, neurons.shape, "states")
        if np.array_equal(neurons, want_n) and np.array_equal(states, want_s):
            continue
        on_share = bits.mean(axis=0)
        share = np.maximum(on_share, 1 - on_share)
        exact = np.flatnonzero(np.isclose(share, agreement))
        if np.array_equal(neurons, want_n) and np.array_equal(states, ~want_s):
            raise ExerciseFailed("the units are right but every state is inverted: the state is True where the "
                                 "rows agree the unit is *on* (pre-activation > 0)")
        if np.array_equal(neurons, want_n[want_s]):
            raise ExerciseFailed(
                f"you kept only the units on in at least {agreement:.0%} of rows; a unit *off* in at least "
                f"{agreement:.0%} of rows is agreed on too (state False), e.g. unit {int(want_n[~want_s][0])}. "
                "Sunny pictures share what is off as much as what is on"
            )
        missing, extra = np.setdiff1d(want_n, neurons), np.setdiff1d(neurons, want_n)
        if len(missing) and not len(extra) and np.isin(missing, exact).all():
            exact_on = exact[on_share[exact] > 0.5]
            if np.isin(exact_on, neurons).any() and not np.isin(missing, exact_on).any():
                raise ExerciseFailed(
                    f"you left out unit(s) {missing.tolist()}, *off* in exactly {agreement:.0%} of the rows, but "
                    f"kept the units *on* in exactly {agreement:.0%}: float rounding. 1 - {agreement} is not exactly "
                    f"{1 - agreement:.1g} in floats ({1 - agreement!r}), so on_fraction <= 1 - agreement misses them. "
                    "Compare each unit's share in its majority state, max(on, 1 - on), with agreement"
                )
            raise ExerciseFailed(
                f"you left out unit(s) {missing.tolist()}, where exactly {agreement:.0%} of the {n} rows agree "
                f"({int(round(agreement * n))} of {n}). 'At least agreement' means share >= agreement, not >"
            )
        if sorted(zip(neurons.tolist(), states.tolist())) == list(zip(want_n.tolist(), want_s.tolist())):
            raise ExerciseFailed("the units and states are right but in a different order; list the units in "
                                 "ascending order, as polylens.spline.code_mask does")
        if len(missing) or len(extra):
            raise ExerciseFailed(
                f"with agreement {agreement}, the agreeing units are {want_n.tolist()}; you missed "
                f"{missing.tolist()} and added {extra.tolist()}. For each unit (column) take the fraction of rows "
                "in which it is on, and keep it if that or 1 minus it is >= agreement"
            )
        raise ExerciseFailed(f"the units are right but states are wrong for some: a unit's state is True when it "
                             f"is on in at least {agreement:.0%} of rows")
    case = _AGREEMENT_CASES[0]
    lib = code_mask(_agreement_case(case["n"], case["on_counts"], case["seed"]), case["agreement"])
    on = int(lib.state.sum())
    return (f"{len(lib)} of {len(case['on_counts'])} units agree in at least {case['agreement']:.0%} of the rows: "
            f"{on} on, {len(lib) - on} off. steer.steering_mask builds the same mask, and toward_mask pushes a "
            "picture's units there.")
