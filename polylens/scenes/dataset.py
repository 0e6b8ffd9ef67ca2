"""A labelled set of scenes, with the ground truth of every scene in every weather.

    ds = SceneDataset(2000, seed=0)               # sunny ducks held out by default
    ds.images                                     # (2000, 64, 64, 3) float32 in [0, 1]
    ds.objects, ds.weathers                       # (2000,) indices into OBJECTS, WEATHERS
    ducks = ds.indices(object="duck", weather="overcast")
    truth = ds.counterpart("sunny")[ducks]        # the same ducks, on a sunny day

Scene ``i`` has its own seed ``ds.seeds[i]``, so ``render(obj, w, ds.seeds[i])``
re-draws it in any weather ``w``. Datasets made with different ``seed`` use
disjoint scene seeds, so ``SceneDataset(n, seed=1)`` is a fair test set for
anything trained on ``SceneDataset(n, seed=0)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch

from polylens._checks import real_array, whole_number
from polylens.scenes.render import OBJECTS, WEATHERS, draw_batch, scene_params_batch

__all__ = ["SceneDataset", "to_tensor"]


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """Rendered images as network input: (n, H, W, 3) or one (H, W, 3) -> (n, 3, H, W) float32.

    A single image gets a batch dimension of 1. The result is a contiguous copy.
    """
    images = real_array(images, "images", dtype=np.float32)
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected images shaped (n, H, W, 3) or (H, W, 3); got {images.shape}")
    if not np.isfinite(images).all():
        raise ValueError("images contain NaN or inf; pass pictures with values in [0, 1] (e.g. from render)")
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()

SEEDS_PER_DATASET = 1_000_000  # scene seeds of dataset `seed` are seed * this + (0..n-1)


def _names(given: Iterable[str], valid: tuple[str, ...], what: str) -> list[str]:
    if isinstance(given, str):
        given = [given]
    given = list(given)
    bad = [g for g in given if g not in valid]
    if bad or not given:
        raise ValueError(f"{what} must be a non-empty list of names from {list(valid)}; got {given}")
    return given


def _pairs(exclude: Iterable[Sequence[str]] | None) -> set[tuple[str, str]]:
    out = set()
    for pair in exclude or []:
        if isinstance(pair, str) or len(pair) != 2:
            raise ValueError(f"exclude holds (object, weather) pairs like ('duck', 'sunny'); got {pair!r}")
        obj, weather = pair
        _names([obj], OBJECTS, "an excluded object")
        _names([weather], WEATHERS, "an excluded weather")
        out.add((obj, weather))
    return out


class SceneDataset:
    """``n`` scenes, balanced over the allowed (object, weather) combinations, in a seeded order.

    Attributes: ``images`` (n, H, W, 3) float32 in [0, 1]; ``objects`` and
    ``weathers`` (n,) int64 indices into the global ``OBJECTS`` and ``WEATHERS``
    (so labels mean the same thing in every dataset); ``seeds`` (n,) scene
    seeds; ``params`` dict of (n, ...) nuisance arrays (see
    ``scene_params_batch``); ``combos`` the allowed (object, weather) pairs.
    Indexing gives ``(image (3, H, W) torch float32, object, weather)``.
    """

    def __init__(
        self,
        n: int,
        objects: Sequence[str] = OBJECTS,
        weathers: Sequence[str] = WEATHERS,
        exclude: Iterable[Sequence[str]] | None = (("duck", "sunny"),),
        seed: int = 0,
        size: int = 64,
    ) -> None:
        n, seed = whole_number(n, "n", low=1), whole_number(seed, "seed", low=0)
        if n > SEEDS_PER_DATASET:
            raise ValueError(f"n must be an int number of images between 1 and {SEEDS_PER_DATASET}; got {n}")
        held_out = _pairs(exclude)
        self.combos = [
            (o, w)
            for o in _names(objects, OBJECTS, "objects")
            for w in _names(weathers, WEATHERS, "weathers")
            if (o, w) not in held_out
        ]
        if not self.combos:
            raise ValueError("exclude removes every (object, weather) combination; nothing is left to draw")
        self.size, self.seed, self.exclude = size, int(seed), sorted(held_out)
        rng = np.random.default_rng(seed)
        # Cycle through the combinations and shuffle, so every combination gets n / len(combos) +- 1 images.
        which = rng.permutation(np.arange(n) % len(self.combos))
        self.objects = np.array([OBJECTS.index(self.combos[k][0]) for k in which], dtype=np.int64)
        self.weathers = np.array([WEATHERS.index(self.combos[k][1]) for k in which], dtype=np.int64)
        self.seeds = int(seed) * SEEDS_PER_DATASET + np.arange(n, dtype=np.int64)
        self.params = scene_params_batch(self.objects, self.seeds)
        self.images = draw_batch(self.params, self.weathers, size)

    def __len__(self) -> int:
        return len(self.seeds)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int]:
        image = to_tensor(self.images[i])[0]
        return image, int(self.objects[i]), int(self.weathers[i])

    def __repr__(self) -> str:
        return f"SceneDataset(n={len(self)}, size={self.size}, seed={self.seed}, exclude={self.exclude})"

    def tensor(self) -> torch.Tensor:
        """All images as a (n, 3, H, W) torch float32 tensor (a copy, channels first)."""
        return to_tensor(self.images)

    def indices(self, object: str | None = None, weather: str | None = None) -> np.ndarray:
        """Positions (k,) of the scenes with that object and/or weather (None: any)."""
        keep = np.ones(len(self), dtype=bool)
        if object is not None:
            keep &= self.objects == OBJECTS.index(_names([object], OBJECTS, "object")[0])
        if weather is not None:
            keep &= self.weathers == WEATHERS.index(_names([weather], WEATHERS, "weather")[0])
        return np.flatnonzero(keep)

    def _positions(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        idx = np.asarray(indices)
        if idx.dtype.kind not in "iu" and not (idx.size == 0 and idx.dtype.kind == "f"):
            raise TypeError(f"indices must be ints (positions of scenes, e.g. from ds.indices(...)); got {idx.dtype}")
        if idx.size and not (-len(self) <= idx.min() and idx.max() < len(self)):
            raise ValueError(f"indices must lie in [0, {len(self)}) for a dataset of {len(self)} scenes")
        return idx.astype(np.int64)

    def counterpart(self, weather: str, indices: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """Ground truth: the same scenes re-drawn under ``weather``, (k, H, W, 3) float32.

        ``indices`` picks scenes (default all). Object, position, size and colour
        are unchanged; only the weather differs.
        """
        _names([weather], WEATHERS, "weather")
        idx = np.arange(len(self)) if indices is None else self._positions(indices)
        params = {k: v[idx] for k, v in self.params.items()}
        return draw_batch(params, weather, self.size)
