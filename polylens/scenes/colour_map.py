"""A colour map with no network: the simplest thing that turns a picture sunny without composing anything.

For every pixel position and every starting weather, one affine map of
colours (a 3 x 3 matrix and an offset: 12 numbers) is fitted by least
squares on training pairs (the same scene under that weather and sunny). A
new picture's starting weather is the one whose mean training picture is
nearest; then each pixel goes through its own position's map.

It knows what sunny skies, grass and water look like at each place in the
picture, and nothing about the objects in it. That is why it is a chance
line for the sunny duck (:mod:`polylens.compose`): it gets the sky, the
light and the ground right, and it cannot draw an object's cast shadow,
which depends on where the object is and what shape it has.

    cmap = fit_colour_map(before, after, starts)   # from polylens.scenes.training_pairs
    sunny_looking = cmap(images)                    # (n, 3, H, W) -> (n, 3, H, W) in [0, 1]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from polylens._checks import finite_tensor

__all__ = ["ColourMap", "fit_colour_map"]

# A tiny ridge keeps every pixel's 4 x 4 system solvable (a pixel that is one colour in every
# training picture, such as a corner of plain sky, has a singular one).
_RIDGE = 1e-3


@dataclass
class ColourMap:
    """Per-pixel affine colour maps, one set per starting weather.

    ``starts``: the weather names; ``maps``: (weathers, H * W, 4, 3) float64 (rows:
    r, g, b, 1; columns: the sunny r, g, b); ``centroids``: (weathers, 3, H, W)
    float64, the mean training picture of each starting weather.
    """

    starts: tuple[str, ...]
    maps: torch.Tensor
    centroids: torch.Tensor

    def start(self, images: Any) -> np.ndarray:
        """(n,) index into ``starts``: the weather whose mean training picture is nearest each picture."""
        x = self._check(images)
        dist = torch.stack([((x - c) ** 2).flatten(1).sum(1) for c in self.centroids], 1)
        return dist.argmin(1).numpy()

    def __call__(self, images: Any) -> torch.Tensor:
        """(n, 3, H, W) pictures in [0, 1] -> (n, 3, H, W) float32: each pixel through its position's map."""
        x = self._check(images)
        n, _, h, w = x.shape
        pixels = x.permute(0, 2, 3, 1).reshape(n, h * w, 3)
        pixels = torch.cat([pixels, torch.ones(n, h * w, 1, dtype=pixels.dtype)], -1)
        out = torch.empty(n, h * w, 3, dtype=torch.float64)
        start = torch.as_tensor(self.start(x))
        for k in range(len(self.starts)):
            sel = start == k
            if sel.any():
                out[sel] = torch.einsum("npi,pio->npo", pixels[sel], self.maps[k])
        return out.reshape(n, h, w, 3).permute(0, 3, 1, 2).clamp(0, 1).float().contiguous()

    def _check(self, images: Any) -> torch.Tensor:
        x = finite_tensor(images, "images", dtype=torch.float64)
        want = tuple(self.centroids.shape[1:])
        if x.ndim != 4 or tuple(x.shape[1:]) != want:
            raise ValueError(f"images must have shape (n, {', '.join(map(str, want))}): pictures channels first, "
                             f"like the training pairs; got {tuple(x.shape)}")
        return x

    def __repr__(self) -> str:
        h, w = self.centroids.shape[2:]
        return f"ColourMap({len(self.starts)} starting weathers x {h * w} pixels, 12 numbers each)"


def fit_colour_map(before: Any, after: Any, starts: Any) -> ColourMap:
    """Fit a :class:`ColourMap` on training pairs.

    Args:
        before: (n, 3, H, W) pictures under their starting weather.
        after: (n, 3, H, W) the same scenes, sunny (pair ``i`` is ``before[i]``, ``after[i]``).
        starts: (n,) the starting weather's name of each pair.

    Fitted in float64, so the maps do not depend on which CPU kernels torch picks.
    """
    x = finite_tensor(before, "before", dtype=torch.float64)
    y = finite_tensor(after, "after", dtype=torch.float64)
    names = np.asarray(starts)
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"before must be (n, 3, H, W) pictures, got shape {tuple(x.shape)}")
    if tuple(y.shape) != tuple(x.shape):
        raise ValueError(f"after must have the shape of before {tuple(x.shape)} (one sunny twin per picture), "
                         f"got {tuple(y.shape)}")
    if names.shape != (len(x),) or names.dtype.kind not in "UO":
        raise ValueError(f"starts must be ({len(x)},) weather names, one per pair; got {names.shape}")
    if len(x) == 0:
        raise ValueError("a colour map needs training pairs; pass polylens.scenes.training_pairs(...)")
    n, _, h, w = x.shape
    pixels = torch.cat([x.permute(0, 2, 3, 1).reshape(n, h * w, 3), torch.ones(n, h * w, 1, dtype=x.dtype)], -1)
    target = y.permute(0, 2, 3, 1).reshape(n, h * w, 3)
    kinds = tuple(sorted(set(names.tolist())))
    maps, centroids = [], []
    for kind in kinds:
        sel = torch.as_tensor(names == kind)
        a, b = pixels[sel].transpose(0, 1), target[sel].transpose(0, 1)  # (H * W, m, 4), (H * W, m, 3)
        gram = a.transpose(1, 2) @ a + _RIDGE * torch.eye(4, dtype=x.dtype)
        maps.append(torch.linalg.solve(gram, a.transpose(1, 2) @ b))
        centroids.append(x[sel].mean(0))
    return ColourMap(kinds, torch.stack(maps), torch.stack(centroids))
