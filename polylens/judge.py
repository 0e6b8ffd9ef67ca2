"""The answer-key judge: is a steered picture *this* scene on a sunny day, part by part?

The scene world is rendered, so every test scene has an answer key: the
same scene (same seed: object, pose, position, size, colour, horizon and
ground) drawn on a sunny day. Small probes can be fooled, and so can a judge
that looks only at colours: a colour map with no network at all, fitted
pixel by pixel on training pairs, turns an overcast sky blue and grass
green as well as any steering method. What it cannot draw is the part of a
sunny picture that depends on the object: **the object's own cast shadow**.
So the judge asks for three parts, each against the renderer's answer key:

* **sky and ground** (the *background*: every pixel that is neither the
  object nor its shadow, leaving out the part of the sky where the sun might
  be, :func:`polylens.scenes.sun_zone`, since a picture taken under cloud
  does not say where the sun is);
* **the object** (its own pixels, from the renderer's object mask);
* **the shadow** (the ground the object darkens on a sunny day: the renderer
  draws the truth with and without it, and the difference is the shadow).

A part passes two tests, one against decoys and one against the oracle:

1. **Nearer to the truth than to every decoy that is wrong in that part.**
   The line-up of each scene holds

   - for sky and ground: the same scene under every other weather (not
     sunny), and the same object on a sunny day in ``n_decoys`` (32) other
     scenes (other positions, sizes, colours, horizons, grounds);
   - for the object: the same seed with each other object and with none,
     the object **mirrored** (facing the other way), and **another object of
     the same kind** placed elsewhere on this scene's own background;
   - for the shadow: the truth **without its shadow**. A picture's *shadow
     contrast* is how much of the truth's darkening it shows on those pixels
     (1 = the truth's, 0 = no shadow), fitted after allowing the picture to be
     lighter or darker overall: a night picture is dark everywhere, which is
     not a shadow.

2. **About as good as the decoder can draw it.** The autoencoder draws
   softly, so no picture it decodes matches the truth. The *oracle* is the
   autoencoder's own drawing of the truth: the best a steered picture could
   hope for. Sky and ground, and the object, must each come within
   ``RATIO`` (3) times the oracle's pixel error on that part; the shadow's
   contrast must reach ``SHADOW_SHARE`` (half) of the oracle's, and at least
   ``SHADOW_FLOOR`` (a quarter) of the truth's.

A picture **composes** when all three parts pass. Pictures with NaN or inf
never compose. Distances are mean squared errors on 2 x 2-pooled pictures
(32 x 32); the shadow is fitted at full size.

    key = AnswerKey(objects, seeds)          # (n,) object indices, (n,) scene seeds
    verdict = key.judge(steered)             # steered: (n, 3, 64, 64)
    verdict["success"]                       # (n,) bool
    verdict["background_ok"], verdict["object_ok"], verdict["shadow_ok"], verdict["shadow_contrast"]
    verdict["nearest"]                       # the first part that failed, as a line-up entry
    in_words(verdict, i, "duck")             # "sky and ground right, duck right, no shadow"

Chance is what the judge gives a picture that knows nothing of the scene;
:func:`wilson` gives the 95% interval of a rate.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from polylens._checks import finite_number, whole_number
from polylens.scenes.render import OBJECTS, SUNNY, WEATHERS, draw_batch, scene_params_batch, sun_zone
from polylens.spline import refuse_if_too_big

__all__ = ["AnswerKey", "DECOY_SEEDS", "ELSEWHERE_SEEDS", "RATIO", "SHADOW_FLOOR", "SHADOW_SHARE", "describe",
           "in_words", "wilson"]

# Scene seeds of the scene decoys: decoy j of scene s is DECOY_SEEDS + s * 64 + j,
# far from every split's seeds and the same whatever batch s is judged in.
DECOY_SEEDS = 20_000_000_000
# The "same kind, elsewhere" decoy of scene s borrows the object of scene ELSEWHERE_SEEDS + s.
ELSEWHERE_SEEDS = 40_000_000_000
_MAX_DECOYS = 64
_POOL = 2
# The rules against the oracle (see the module docstring).
RATIO = 3.0
SHADOW_SHARE = 0.5
SHADOW_FLOOR = 0.25
# A pixel is in the shadow when the truth is darker there than without the shadow by more than this
# (luminance; a full sunny shadow darkens grass by about 0.3), and off the object.
_SHADOW_DARKER = 0.02
_SHADOW_RING = 3  # pixels of plain ground around the shadow that the contrast fit also sees
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
_PARTS = ("background", "object")
# Bytes the key holds per scene and line-up entry (a pooled picture and a weight), for the size check.
_BYTES_PER_ENTRY = 64 * 64 * 3 * 4 // (_POOL * _POOL)


def _pool(images: np.ndarray) -> np.ndarray:
    """(n, H, W, C) or (n, H, W) -> 2 x 2 means, flattened to (n, H/2 * W/2 * C) float32."""
    n, h, w = images.shape[:3]
    rest = images.shape[3:]
    pooled = images.reshape(n, h // _POOL, _POOL, w // _POOL, _POOL, *rest).mean((2, 4))
    return pooled.reshape(n, -1).astype(np.float32)


def _dilate(pixels: np.ndarray, r: int) -> np.ndarray:
    """(n, H, W) bool grown by ``r`` pixels in every direction (a square neighbourhood)."""
    out = pixels.copy()
    h, w = pixels.shape[1:]
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            out[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] |= \
                pixels[:, max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def elsewhere_params(params: dict) -> dict:
    """Each scene of ``params`` with its object swapped for another of the same kind: (n,)-arrays like ``params``.

    The object's position, size, facing and colour come from scene
    ``ELSEWHERE_SEEDS + seed``; horizon, ground, water and sun stay this
    scene's. The new object stays on the same side of the picture, so the sun
    is still on the far side from it.
    """
    other = scene_params_batch(params["object"], ELSEWHERE_SEEDS + np.asarray(params["seed"]))
    out = {k: np.array(v, copy=True) for k, v in params.items()}
    same_side = (other["cx"] < 0.5) == (np.asarray(params["cx"]) < 0.5)
    out["cx"] = np.where(same_side, other["cx"], 1.0 - other["cx"])
    out["base"] = np.asarray(params["horizon"]) + (other["base"] - other["horizon"])
    for k in ("scale", "flip", "colour"):
        out[k] = other[k]
    return out


def _oracle(truth: np.ndarray) -> np.ndarray:
    """The shipped autoencoder's own drawing of each truth (n, H, W, 3) -> (n, H, W, 3) in [0, 1].

    A fresh copy of the weights, so no steering context open on a learner's model can touch it.
    """
    from polylens.scenes.weights import load_autoencoder  # the weights module is only needed here

    model = load_autoencoder()
    x = torch.from_numpy(np.ascontiguousarray(truth.transpose(0, 3, 1, 2)))
    with torch.no_grad():
        out = torch.cat([model(x[i:i + 160]) for i in range(0, len(x), 160)]).clamp(0, 1)
    return out.permute(0, 2, 3, 1).numpy()


class AnswerKey:
    """The truth, its parts and the decoys of ``n`` scenes, drawn once, to judge any number of steered versions.

    Args:
        objects: (n,) indices into ``OBJECTS`` (or names).
        seeds: (n,) scene seeds (the scene is ``render(OBJECTS[o], weather, seed)``).
        n_decoys: other sunny scenes of the same object in each line-up.
        size: picture size in pixels (even).
        oracle: (n, 3, size, size) pictures: the best the decoder can draw of each
            truth. Default: the shipped scene autoencoder's drawing of the truth
            (only for ``size=64``, the autoencoder's size).

    Memory: about ``n * (n_decoys + 14) * 12`` KB (notebook 06's 160 scenes with
    32 decoys: 95 MB; a 480-scene test split: 280 MB). A key that would pass
    ``polylens.spline.MAX_RESULT_BYTES`` is refused before anything is drawn.
    """

    def __init__(self, objects: Any, seeds: Any, n_decoys: int = 32, size: int = 64, oracle: Any = None) -> None:
        n_decoys = whole_number(n_decoys, "n_decoys", low=1)
        size = whole_number(size, "size (pixels, e.g. 64)", low=1)
        if np.size(objects) == 0 or np.size(seeds) == 0:
            raise ValueError("an answer key needs at least one scene; pass (n,) objects and (n,) seeds")
        if n_decoys > _MAX_DECOYS:
            raise ValueError(f"n_decoys must be at most {_MAX_DECOYS}, got {n_decoys}")
        if size % _POOL:
            raise ValueError(f"size must be even (pictures are judged 2 x 2-pooled), got {size}")
        if np.size(objects) != np.size(seeds) and np.size(seeds) == 1:
            # One seed for many objects would judge one scene several times, once per object.
            raise ValueError(f"got {np.size(objects)} objects but one seed: pass one seed per scene, "
                             "or the same scene would be judged several times")
        if np.size(objects) != np.size(seeds) and np.size(objects) != 1:
            raise ValueError(f"objects and seeds must have the same length (or one object for every seed); "
                             f"got {np.size(objects)} and {np.size(seeds)}")
        n = max(np.size(objects), np.size(seeds))
        kinds = [f"weather:{w}" for w in WEATHERS if w != SUNNY]
        kinds += [f"object:{name}" for name in OBJECTS] + ["object:none", "object:mirrored", "object:elsewhere"]
        kinds += [f"scene:{j}" for j in range(n_decoys)]
        scale = (size / 64) ** 2
        refuse_if_too_big(int(n * (len(kinds) + 2 * len(_PARTS) + 3) * _BYTES_PER_ENTRY * scale),
                          f"an answer key of {n} scenes",
                          "judge fewer scenes at a time (each key holds every scene's line-up)")
        params = scene_params_batch(objects, seeds)
        self.objects, self.seeds, self.size = params["object"], params["seed"], size
        truth, mask = draw_batch(params, SUNNY, size, with_mask=True)
        shadowless = draw_batch(params, SUNNY, size, with_shadow=False)
        self.truth = truth  # (n, H, W, 3) float32: the answer key itself, for showing
        self.mask = mask  # (n, H, W) the object's coverage
        # The shadow: how much darker the truth is than the same picture without it, off the object.
        self._shadowless_luma = shadowless @ _LUMA
        self._darkening = self._shadowless_luma - truth @ _LUMA
        self.shadow = (self._darkening > _SHADOW_DARKER) & (mask < 0.05)  # (n, H, W) bool
        self._fit_pixels = _dilate(self.shadow, _SHADOW_RING) & (mask < 0.05)
        background = ~sun_zone(params, size) & (mask < 0.05) & ~self._fit_pixels
        self._w = {"background": self._weights(background), "object": self._weights(mask)}
        self.kinds = kinds
        self._truth = _pool(truth)
        # Each decoy is pooled as soon as it is drawn: only one full-size line-up entry exists at a time.
        self._decoys = np.empty((n, len(kinds), self._truth.shape[1]), np.float32)
        for d, kind in enumerate(kinds):
            self._decoys[:, d] = _pool(self._draw(kind, params))
        # The decoy drawing the same object as the scene is the truth's twin: not a decoy.
        own = np.array([kinds.index(f"object:{OBJECTS[o]}") for o in self.objects])
        self._valid = np.ones((n, len(kinds)), bool)
        self._valid[np.arange(n), own] = False
        is_object = np.array([k.startswith("object:") for k in kinds])
        self._against = {"background": self._valid & ~is_object, "object": self._valid & is_object}
        # |x - d|^2 = |x|^2 - 2 x.d + |d|^2 (weighted): the decoys' own terms once, here, so judging
        # never builds an (n, decoys, pixels) temporary.
        self._decoy_sq = {part: np.stack([(w * self._decoys[:, d] ** 2).sum(1) for d in range(len(kinds))], 1)
                          for part, w in self._w.items()}
        if oracle is None:
            if size != 64:
                raise ValueError(f"the shipped autoencoder draws 64 x 64 pictures; at size {size} pass "
                                 "oracle=(n, 3, size, size) pictures, the best a decoder can draw of each truth")
            oracle_pictures = _oracle(truth)
        else:
            oracle_pictures = self._check(oracle, "oracle").transpose(0, 2, 3, 1)
            if not np.isfinite(oracle_pictures).all():
                raise ValueError("oracle holds NaN or inf; pass the decoder's drawing of each truth")
        self.oracle = np.clip(oracle_pictures, 0, 1).astype(np.float32)  # (n, H, W, 3)
        self.oracle_errors = self._errors(_pool(self.oracle))  # part -> (n,)
        self.oracle_contrast = self.shadow_contrast(self.oracle)  # (n,)

    def lineup(self, i: int) -> dict[str, np.ndarray]:
        """Scene ``i``'s answer key, its oracle and every decoy, at full size: kind -> (H, W, 3), truth first.

        The shadow's decoy is ``"shadow:none"`` (the truth without its cast shadow).
        """
        i = whole_number(i, "i")
        if i >= len(self):
            raise ValueError(f"i must be below {len(self)}, the number of scenes in the key; got {i}")
        params = scene_params_batch(self.objects[i:i + 1], self.seeds[i:i + 1])
        out = {"truth": self.truth[i], "oracle": self.oracle[i],
               "shadow:none": draw_batch(params, SUNNY, self.size, with_shadow=False)[0]}
        for kind in self.kinds:
            if self._valid[i, self.kinds.index(kind)]:
                out[kind] = self._draw(kind, params)[0]
        return out

    def _draw(self, kind: str, params: dict) -> np.ndarray:
        """One line-up entry for every scene of ``params``: (n, H, W, 3)."""
        group, _, name = kind.partition(":")
        n = len(params["cx"])
        if group == "weather":
            return draw_batch(params, name, self.size)
        if name == "none":
            return draw_batch(params, SUNNY, self.size, with_object=False)
        if name == "mirrored":
            return draw_batch({**params, "flip": -np.asarray(params["flip"])}, SUNNY, self.size)
        if name == "elsewhere":
            return draw_batch(elsewhere_params(params), SUNNY, self.size)
        if group == "object":
            return draw_batch(scene_params_batch(np.full(n, OBJECTS.index(name)), params["seed"]), SUNNY, self.size)
        seeds = DECOY_SEEDS + params["seed"] * _MAX_DECOYS + int(name)
        return draw_batch(scene_params_batch(params["object"], seeds), SUNNY, self.size)

    def _weights(self, pixels: np.ndarray) -> np.ndarray:
        w = _pool(np.repeat(pixels.astype(np.float32)[..., None], 3, axis=-1))
        return w / np.maximum(w.sum(1, keepdims=True), 1e-12)

    def _errors(self, pooled: np.ndarray) -> dict[str, np.ndarray]:
        """Part -> (n,) weighted mean squared error of pooled pictures against the truth."""
        return {part: (w * (pooled - self._truth) ** 2).sum(1) for part, w in self._w.items()}

    def shadow_contrast(self, pictures: np.ndarray) -> np.ndarray:
        """(n, H, W, 3) pictures -> (n,) how much of the truth's cast shadow each shows (1 = all, 0 = none).

        On the shadow and a ring of plain ground around it, the picture's
        luminance is fitted as ``a * shadowless + b - s * darkening`` (least
        squares, per scene): ``s`` is the shadow contrast. ``a`` and ``b``
        absorb a picture that is lighter or darker overall, so a night picture
        with no shadow gets 0, not a dark "shadow".
        """
        luma = np.asarray(pictures, np.float64) @ _LUMA.astype(np.float64)
        w = self._fit_pixels.astype(np.float64)
        regressors = np.stack([self._shadowless_luma, np.ones_like(self._darkening), -self._darkening], -1)
        regressors = regressors.astype(np.float64)
        gram = np.einsum("nhwi,nhwj,nhw->nij", regressors, regressors, w) + 1e-9 * np.eye(3)
        rhs = np.einsum("nhwi,nhw,nhw->ni", regressors, luma, w)
        return np.linalg.solve(gram, rhs[..., None])[:, 2, 0]

    def __len__(self) -> int:
        return len(self.seeds)

    def __repr__(self) -> str:
        return f"AnswerKey({len(self)} scenes, {len(self.kinds) - 1} decoys each and the shadowless truth)"

    def _check(self, steered: Any, what: str = "steered") -> np.ndarray:
        if not isinstance(steered, (torch.Tensor, np.ndarray)):
            raise TypeError(f"{what} must be a (n, 3, H, W) tensor of pictures, got {type(steered).__name__}")
        arr = steered.detach().cpu().numpy() if isinstance(steered, torch.Tensor) else np.asarray(steered)
        if arr.dtype.kind != "f":
            raise TypeError(f"{what} must hold floats in [0, 1], got dtype {arr.dtype}")
        want = (len(self), 3, self.size, self.size)
        if arr.shape != want:
            raise ValueError(f"{what} must have shape {want} (one picture per scene of the key, "
                             f"channels first), got {tuple(arr.shape)}")
        return arr

    def judge(self, steered: Any) -> dict[str, np.ndarray]:
        """Judge (n, 3, H, W) pictures against the key, one per scene, in the key's order.

        Each verdict depends on its own picture only (the order of a batch changes nothing).
        Returns (n,) arrays:

        * ``success`` (bool): every part passes;
        * ``background_ok``, ``object_ok``, ``shadow_ok``: each part's verdict;
        * ``finite``: no NaN or inf;
        * ``shadow_contrast``: how much of the truth's shadow the picture shows (1 = all);
        * ``background_error``, ``object_error``: each part's pixel error over the oracle's;
        * ``nearest``: "truth" when it composes; else, for the first part that
          fails (sky and ground, then the object, then the shadow), the decoy it
          looks most like ("weather:night", "object:mirrored", "scene:3" ...),
          "worse:<part>" where it is nearest the truth but too far from it,
          "shadow:none" where only the shadow is missing, or "not finite".
          :func:`describe` puts it in words, :func:`in_words` every part.
        * ``margin``: the nearest sky-and-ground decoy's distance minus the truth's (> 0: nearer the truth).
        """
        arr = self._check(steered)
        finite = np.isfinite(arr).reshape(len(arr), -1).all(1)
        # Non-finite pictures fail whatever their distances; zero them so the arithmetic stays finite.
        full = np.clip(np.where(np.isfinite(arr), arr, 0.0), 0, 1).transpose(0, 2, 3, 1)
        pics = _pool(full)
        errors = self._errors(pics)
        lineup_ok, ratio_ok, nearest_decoy, margin = {}, {}, {}, None
        for part, w in self._w.items():
            cross = np.einsum("np,ndp->nd", w * pics, self._decoys)
            to_decoys = (w * pics ** 2).sum(1)[:, None] - 2 * cross + self._decoy_sq[part]
            to_decoys = np.where(self._against[part], np.maximum(to_decoys, 0.0), np.inf)
            lineup_ok[part] = errors[part] < to_decoys.min(1)
            ratio_ok[part] = errors[part] <= RATIO * self.oracle_errors[part]
            nearest_decoy[part] = np.array(self.kinds, dtype=object)[to_decoys.argmin(1)]
            if part == "background":
                margin = to_decoys.min(1) - errors[part]
        contrast = self.shadow_contrast(full)
        needed = np.maximum(SHADOW_FLOOR, SHADOW_SHARE * self.oracle_contrast)
        ok = {part: finite & lineup_ok[part] & ratio_ok[part] for part in _PARTS}
        ok["shadow"] = finite & (contrast >= needed)
        nearest = np.full(len(arr), "truth", dtype=object)
        # The first failing part names the verdict; later parts are only reached when earlier ones pass.
        for part in ("shadow", "object", "background"):
            if part == "shadow":
                why = np.full(len(arr), "shadow:none", dtype=object)
            else:
                why = np.where(lineup_ok[part], f"worse:{part}", nearest_decoy[part])
            nearest = np.where(ok[part], nearest, why)
        nearest = np.where(finite, nearest, "not finite")
        return {"success": ok["background"] & ok["object"] & ok["shadow"],
                "background_ok": ok["background"], "object_ok": ok["object"], "shadow_ok": ok["shadow"],
                "finite": finite, "nearest": nearest.astype(str),
                "shadow_contrast": np.where(finite, contrast, np.nan),
                "background_error": np.where(finite, errors["background"] / self.oracle_errors["background"], np.inf),
                "object_error": np.where(finite, errors["object"] / self.oracle_errors["object"], np.inf),
                "margin": np.where(finite, margin, -np.inf)}


def describe(kind: str, obj: str, short: bool = False) -> str:
    """A line-up entry in words: ``describe("weather:night", "duck")`` -> "this duck's scene at night".

    ``short=True`` gives a caption of a word or two ("composes", "still night", "no shadow").
    """
    group, _, name = kind.partition(":")
    if short:
        words = {"truth": "composes", "not finite": "NaN or inf", "shadow:none": "no shadow",
                 "object:none": f"{obj} gone", "object:mirrored": "faces the other way",
                 "object:elsewhere": f"another {obj}", "worse:object": f"{obj} smeared",
                 "worse:background": "sky/ground off"}
        if kind in words:
            return words[kind]
        return {"weather": f"still {name}", "object": f"a {name}", "scene": "another scene"}.get(group, kind)
    long = {"truth": f"this {obj}'s scene on a sunny day", "not finite": "nothing: the picture holds NaN or inf",
            "shadow:none": f"this {obj}'s scene on a sunny day, but without the {obj}'s shadow",
            "object:none": f"this scene with the {obj} gone", "object:mirrored": f"this {obj} facing the other way",
            "object:elsewhere": f"another {obj}, elsewhere in this scene",
            "worse:object": f"this {obj}, but drawn more than {RATIO:g}x worse than the autoencoder can",
            "worse:background": f"this scene's sky and ground, but more than {RATIO:g}x worse than the autoencoder can",
            "weather:night": f"this {obj}'s scene at night"}
    if kind in long:
        return long[kind]
    if group == "weather":
        return f"this {obj}'s scene, {name} (not sunny)"
    if group == "object":
        return f"this scene with a {name} instead"
    if group == "scene":
        return f"a sunny {obj} in another scene"
    raise ValueError(f"unknown line-up entry {kind!r}")


def in_words(verdict: dict[str, np.ndarray], i: int, obj: str) -> str:
    """Every part of picture ``i``'s verdict in words: "sky and ground right, duck right, no shadow".

    ``verdict`` from :meth:`AnswerKey.judge`; ``obj`` the scene's object name.
    """
    i = whole_number(i, "i")
    if not verdict["finite"][i]:
        return "NaN or inf: nothing to judge"
    # A picture lighter than the ground around the shadow fits a negative contrast: it shows no shadow.
    contrast = max(float(verdict["shadow_contrast"][i]), 0.0)
    shadow = ("shadow right" if verdict["shadow_ok"][i] else "no shadow" if contrast < 0.1
              else "too faint a shadow") + f" ({contrast:.2f} of the truth's)"
    return (f"sky and ground {'right' if verdict['background_ok'][i] else 'wrong'}, "
            f"{obj} {'right' if verdict['object_ok'][i] else 'wrong'}, {shadow}")


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval (95% by default) of a rate ``successes / n``: (low, high).

    Unlike the normal approximation it stays inside [0, 1] and is sensible at
    0% and 100%, which steering rates often are. ``n == 0`` gives (nan, nan).
    ``z`` is the normal quantile of the interval's coverage: a positive number.
    """
    successes = whole_number(successes, "successes")
    n = whole_number(n, "n")
    z = finite_number(z, "z (the normal quantile, 1.96 for a 95% interval)", above=0)
    if successes > n:
        raise ValueError(f"successes ({successes}) cannot exceed n ({n})")
    if n == 0:
        return float("nan"), float("nan")
    p = successes / n
    center = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, center - half), min(1.0, center + half)
