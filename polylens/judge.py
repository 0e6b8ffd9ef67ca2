"""The answer-key judge: is a steered picture *this* scene on a sunny day?

The scene world is rendered, so every test scene has an answer key: the
same scene (same seed: object, pose, position, size, colour, horizon and
ground) drawn on a sunny day. Small probes can be fooled (an overcast
picture scored P(sunny) = 0.99; a constant sunny picture passed as a sunny
duck one time in five). The judge asks the renderer instead.

It is an identification test. For each steered picture the renderer draws
the truth and a line-up of *decoys*, each wrong in one way:

* **weather**: the same scene under every other weather (not sunny);
* **object**: the same seed's scene with each other object, and with no
  object at all (the background a painted-over object leaves), all sunny;
* **scene**: the same object on a sunny day in ``n_decoys`` (32) other scenes
  (other positions, sizes, colours, horizons, grounds).

The picture **composes** when it is nearer to the truth than to every decoy,
twice over:

1. over the whole picture (every decoy), leaving out the part of the sky
   where the sun might be (:func:`polylens.scenes.sun_zone`): a picture
   taken under cloud does not say where the sun is, so guessing it must
   neither win nor lose;
2. over the object's own pixels (weighted by its coverage), against the
   object decoys: the object must still be there, and still be this object.

Pictures with NaN or inf never compose. Distances are mean squared errors
on 2 x 2-pooled pictures (32 x 32): the autoencoder draws softly anyway, and
pooling keeps a test split's line-up small enough for Binder.

    key = AnswerKey(objects, seeds)          # (n,) object indices, (n,) scene seeds
    verdict = key.judge(steered)             # steered: (n, 3, 64, 64)
    verdict["success"], verdict["nearest"]   # (n,) bool; the kind of what it looked most like

Chance is what the judge gives a picture that knows nothing of the scene;
:func:`wilson` gives the 95% interval of a rate.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from polylens._checks import whole_number
from polylens.scenes.render import OBJECTS, WEATHERS, draw_batch, scene_params_batch, sun_zone
from polylens.scenes.splits import SUNNY

__all__ = ["AnswerKey", "DECOY_SEEDS", "describe", "wilson"]

# Scene seeds of the scene decoys: decoy j of scene s is DECOY_SEEDS + s * 64 + j,
# far from every split's seeds and the same whatever batch s is judged in.
DECOY_SEEDS = 20_000_000_000
_MAX_DECOYS = 64
_POOL = 2


def _pool(images: np.ndarray) -> np.ndarray:
    """(n, H, W, C) or (n, H, W) -> 2 x 2 means, flattened to (n, H/2 * W/2 * C) float32."""
    n, h, w = images.shape[:3]
    rest = images.shape[3:]
    pooled = images.reshape(n, h // _POOL, _POOL, w // _POOL, _POOL, *rest).mean((2, 4))
    return pooled.reshape(n, -1).astype(np.float32)


class AnswerKey:
    """The truth and decoys of ``n`` scenes, drawn once, to judge any number of steered versions.

    Args:
        objects: (n,) indices into ``OBJECTS`` (or names).
        seeds: (n,) scene seeds (the scene is ``render(OBJECTS[o], weather, seed)``).
        n_decoys: other sunny scenes of the same object in each line-up.

    Memory: about ``n * (n_decoys + 10) * 12`` KB (a 480-scene test split with
    32 decoys: 250 MB; notebook 06's 160 scenes: 80 MB).
    """

    def __init__(self, objects: Any, seeds: Any, n_decoys: int = 32, size: int = 64) -> None:
        n_decoys = whole_number(n_decoys, "n_decoys", low=1)
        if np.size(objects) == 0 or np.size(seeds) == 0:
            raise ValueError("an answer key needs at least one scene; pass (n,) objects and (n,) seeds")
        if n_decoys > _MAX_DECOYS:
            raise ValueError(f"n_decoys must be at most {_MAX_DECOYS}, got {n_decoys}")
        params = scene_params_batch(objects, seeds)
        n = len(params["cx"])
        if size % _POOL:
            raise ValueError(f"size must be even (pictures are judged 2 x 2-pooled), got {size}")
        self.objects, self.seeds, self.size = params["object"], params["seed"], size
        truth, mask = draw_batch(params, SUNNY, size, with_mask=True)
        keep = ~sun_zone(params, size)
        self.truth = truth  # (n, H, W, 3) float32: the answer key itself, for showing
        # Per-pixel weights, repeated over the 3 colour channels, normalised to sum 1 per scene.
        self._w_scene = self._weights(keep)
        self._w_object = self._weights(mask)
        kinds = [f"weather:{w}" for w in WEATHERS if w != SUNNY]
        kinds += [f"object:{name}" for name in OBJECTS] + ["object:none"]
        kinds += [f"scene:{j}" for j in range(n_decoys)]
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
        self._object_decoys = np.array([k.startswith("object:") for k in kinds])
        # |x - d|^2 = |x|^2 - 2 x.d + |d|^2 (weighted): the decoys' own terms once, here, so judging
        # never builds an (n, decoys, pixels) temporary.
        self._decoy_sq = {part: np.stack([(w * self._decoys[:, d] ** 2).sum(1) for d in range(len(kinds))], 1)
                          for part, w in (("scene", self._w_scene), ("object", self._w_object))}

    def lineup(self, i: int) -> dict[str, np.ndarray]:
        """Scene ``i``'s answer key and every decoy, drawn at full size: kind -> (H, W, 3), truth first."""
        i = whole_number(i, "i")
        if i >= len(self):
            raise ValueError(f"i must be below {len(self)}, the number of scenes in the key; got {i}")
        params = scene_params_batch(self.objects[i:i + 1], self.seeds[i:i + 1])
        out = {"truth": draw_batch(params, SUNNY, self.size)[0]}
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
        if group == "object":
            return draw_batch(scene_params_batch(np.full(n, OBJECTS.index(name)), params["seed"]), SUNNY, self.size)
        seeds = DECOY_SEEDS + params["seed"] * _MAX_DECOYS + int(name)
        return draw_batch(scene_params_batch(params["object"], seeds), SUNNY, self.size)

    def _weights(self, pixels: np.ndarray) -> np.ndarray:
        w = _pool(np.repeat(pixels.astype(np.float32)[..., None], 3, axis=-1))
        return w / np.maximum(w.sum(1, keepdims=True), 1e-12)

    def __len__(self) -> int:
        return len(self.seeds)

    def __repr__(self) -> str:
        return f"AnswerKey({len(self)} scenes, {len(self.kinds) - 1} decoys each)"

    def _check(self, steered: Any) -> np.ndarray:
        if not isinstance(steered, (torch.Tensor, np.ndarray)):
            raise TypeError(f"steered must be a (n, 3, H, W) tensor of pictures, got {type(steered).__name__}")
        arr = steered.detach().cpu().numpy() if isinstance(steered, torch.Tensor) else np.asarray(steered)
        if arr.dtype.kind != "f":
            raise TypeError(f"steered must hold floats in [0, 1], got dtype {arr.dtype}")
        want = (len(self), 3, self.size, self.size)
        if arr.shape != want:
            raise ValueError(f"steered must have shape {want} (one picture per scene of the key, "
                             f"channels first), got {tuple(arr.shape)}")
        return arr

    def judge(self, steered: Any) -> dict[str, np.ndarray]:
        """Judge (n, 3, H, W) pictures against the key, one per scene, in the key's order.

        Returns (n,) arrays: ``success`` (bool), ``scene_ok`` and ``object_ok``
        (each half of the test), ``finite``, ``nearest`` (what the picture looks
        most like: "truth" when it composes; else the nearest decoy over the whole
        picture, or over the object when only the object test failed: "weather:night",
        "object:none", "scene:3" ..., or "not finite"; :func:`describe` puts it in words), ``margin`` (nearest decoy's distance
        minus the truth's, over the whole picture; > 0 when the scene test passes).
        """
        arr = self._check(steered)
        finite = np.isfinite(arr).reshape(len(arr), -1).all(1)
        # Non-finite pictures fail whatever their distances; zero them so the arithmetic stays finite.
        pics = _pool(np.clip(np.where(np.isfinite(arr), arr, 0.0), 0, 1).transpose(0, 2, 3, 1))
        out = {}
        for part, w, decoys in (("scene", self._w_scene, self._valid),
                                ("object", self._w_object, self._valid & self._object_decoys)):
            to_truth = (w * (pics - self._truth) ** 2).sum(1)
            cross = np.einsum("np,ndp->nd", w * pics, self._decoys)
            to_decoys = (w * pics ** 2).sum(1)[:, None] - 2 * cross + self._decoy_sq[part]
            to_decoys = np.where(decoys, np.maximum(to_decoys, 0.0), np.inf)
            out[part] = (to_truth, to_decoys)
        to_truth, to_decoys = out["scene"]
        scene_ok = finite & (to_truth < to_decoys.min(1))
        object_ok = finite & (out["object"][0] < out["object"][1].min(1))
        kinds = np.array(self.kinds, dtype=object)
        # What it looks most like: over the whole picture, or, where only the object is wrong, over the object.
        nearest = np.where(scene_ok, kinds[out["object"][1].argmin(1)], kinds[to_decoys.argmin(1)])
        nearest = np.where(scene_ok & object_ok, "truth", nearest)
        nearest = np.where(finite, nearest, "not finite")
        return {"success": scene_ok & object_ok, "scene_ok": scene_ok, "object_ok": object_ok,
                "finite": finite, "nearest": nearest.astype(str),
                "margin": np.where(finite, to_decoys.min(1) - to_truth, -np.inf)}


def describe(kind: str, obj: str, short: bool = False) -> str:
    """A line-up entry in words: ``describe("weather:night", "duck")`` -> "this duck's scene at night".

    ``short=True`` gives a caption of a word or two ("composes", "still night", "duck gone").
    """
    group, _, name = kind.partition(":")
    if short:
        words = {"truth": "composes", "not finite": "NaN or inf"}
        if kind in words:
            return words[kind]
        return {"weather": f"still {name}", "object": f"{obj} gone" if name == "none" else f"a {name}",
                "scene": "another scene"}.get(group, kind)
    if kind == "truth":
        return f"this {obj}'s scene on a sunny day"
    if group == "weather":
        return f"this {obj}'s scene, {name} (not sunny)" if name != "night" else f"this {obj}'s scene at night"
    if group == "object":
        return f"this scene with the {obj} gone" if name == "none" else f"this scene with a {name} instead"
    if group == "scene":
        return f"a sunny {obj} in another scene"
    if kind == "not finite":
        return "nothing: the picture holds NaN or inf"
    raise ValueError(f"unknown line-up entry {kind!r}")


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval (95% by default) of a rate ``successes / n``: (low, high).

    Unlike the normal approximation it stays inside [0, 1] and is sensible at
    0% and 100%, which steering rates often are. ``n == 0`` gives (nan, nan).
    """
    successes = whole_number(successes, "successes")
    n = whole_number(n, "n")
    if successes > n:
        raise ValueError(f"successes ({successes}) cannot exceed n ({n})")
    if n == 0:
        return float("nan"), float("nan")
    p = successes / n
    center = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, center - half), min(1.0, center + half)
