"""Render the synthetic scene world: one object under one weather.

A scene is built in two steps so that weather is a clean counterfactual::

    params = scene_params("duck", seed=3)      # where, how big, which colour ...
    sunny  = draw(params, "sunny")            # (64, 64, 3) float32 in [0, 1]
    night  = draw(params, "night")            # same duck, same place, at night

Everything that is not the object or the weather (position, size, colour
jitter, horizon height, left/right flip, grass or water) comes from the seed
alone, so ``render("duck", w, seed)`` for two weathers ``w`` differ only in
lighting, sky and overlays (rain, stars, snow). The object's silhouette never
moves.

Shapes are signed distance fields in the object's own frame (``u`` to the
right of the way it faces, ``v`` up from where it stands), turned into
anti-aliased coverage with a one-pixel soft edge. Everything is vectorised
over a batch of images with numpy broadcasting; random numbers come from a
counter-based hash of the seed, so a scene does not depend on which batch it
was drawn in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Union

import numpy as np

from polylens._checks import whole_number

__all__ = [
    "OBJECTS",
    "SUNNY",
    "WEATHERS",
    "draw",
    "draw_batch",
    "object_mask",
    "render",
    "render_batch",
    "scene_params",
    "scene_params_batch",
    "sun_zone",
]

OBJECTS = ("duck", "boat", "house", "tree", "car")
WEATHERS = ("sunny", "overcast", "rainy", "night", "snowy")
SUNNY = "sunny"  # the target weather of the sunny-duck question; the only one with cast shadows

MIN_SIZE, MAX_SIZE = 16, 512
# Where the sun's centre may sit (image fractions): x in [start, start + span] on
# the side away from the object, y in [_SUN_Y, _SUN_Y + span]. Its disc has
# radius 0.07 and its glow fades to about 1% of full strength 0.2 from the centre.
_SUN_X_LEFT, _SUN_X_RIGHT = (0.12,), (0.66,)
_SUN_Y = 0.09
_SUN_SPAN = (0.22, 0.12)
_SUN_REACH = 0.2
_CHUNK_PIXELS = 1 << 21  # images per chunk * H * W: keeps temporaries ~8 MB

Names = Union[str, Sequence[str], np.ndarray]
Seeds = Union[int, Sequence[int], np.ndarray]


# ---------------------------------------------------------------- validation


def _index_of(names: Names, valid: tuple[str, ...], what: str) -> np.ndarray:
    """Names (or int indices) -> int64 indices into ``valid``, with a helpful error."""
    arr = np.atleast_1d(np.asarray(names))
    if arr.dtype.kind in "iu":
        if arr.size and (arr.min() < 0 or arr.max() >= len(valid)):
            raise ValueError(f"{what} index out of range; valid {what}s are {list(valid)} (0..{len(valid) - 1})")
        return arr.astype(np.int64)
    if arr.dtype.kind not in "UO":
        raise TypeError(f"{what} must be a name like {valid[0]!r} or a list of names, got {names!r}")
    lookup = {name: i for i, name in enumerate(valid)}
    out = np.empty(arr.shape, dtype=np.int64)
    for i, name in enumerate(arr.tolist()):
        if name not in lookup:
            raise ValueError(f"unknown {what} {name!r}; choose one of {list(valid)}")
        out[i] = lookup[name]
    return out


def _check_size(size: int) -> int:
    size = whole_number(size, "size (pixels, e.g. 64)", low=None)
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"size must be between {MIN_SIZE} and {MAX_SIZE} pixels, e.g. 64; got {size}")
    return int(size)


def _check_seeds(seeds: Seeds) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(seeds))
    # numpy keeps ints beyond 64 bits as Python objects: say the range instead of "must be ints".
    if arr.dtype == object and all(isinstance(s, int) and not isinstance(s, bool) for s in arr.ravel()):
        raise ValueError(f"seeds must be ints from 0 to 2**63 - 1; got {seeds!r}")
    if arr.dtype.kind not in "iu":
        raise TypeError(f"seeds must be ints (e.g. 0, or np.arange(100)), got {seeds!r}")
    if arr.size and arr.min() < 0:
        raise ValueError(f"seeds must be non-negative ints, got minimum {arr.min()}")
    return arr.astype(np.uint64)


# ------------------------------------------------------------ randomness


def _uniform(seeds: np.ndarray, stream: int, k: int) -> np.ndarray:
    """(n,) uint64 seeds -> (n, k) float64 uniforms in [0, 1), a pure function of (seed, stream, j).

    A splitmix64 hash of a counter: the same seed gives the same numbers
    whatever else is in the batch, and whole batches are hashed at once.
    """
    with np.errstate(over="ignore"):
        x = (
            seeds[:, None] * np.uint64(0x9E3779B97F4A7C15)
            + np.uint64(stream) * np.uint64(0xD1B54A32D192ED03)
            + np.arange(1, k + 1, dtype=np.uint64)[None, :] * np.uint64(0xBF58476D1CE4E5B9)
        )
        for shift, mult in ((30, 0xBF58476D1CE4E5B9), (27, 0x94D049BB133111EB)):
            x = (x ^ (x >> np.uint64(shift))) * np.uint64(mult)
        x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)


# ------------------------------------------------------------ shapes (SDFs)
# Every function takes coordinates u, v (any matching shapes) and returns the
# signed distance: negative inside, positive outside, in the same units.

SDF = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _ellipse(cu: float, cv: float, ru: float, rv: float) -> SDF:
    # Scaled radial distance: exact for circles, close enough near the edge of
    # an ellipse for a one-pixel anti-aliased border.
    def sdf(u, v):
        return (np.sqrt(((u - cu) / ru) ** 2 + ((v - cv) / rv) ** 2) - 1.0) * min(ru, rv)

    return sdf


def _circle(cu: float, cv: float, r: float) -> SDF:
    return _ellipse(cu, cv, r, r)


def _box(u0: float, u1: float, v0: float, v1: float, radius: float = 0.0) -> SDF:
    cu, cv = (u0 + u1) / 2, (v0 + v1) / 2
    hu, hv = (u1 - u0) / 2 - radius, (v1 - v0) / 2 - radius

    def sdf(u, v):
        qu, qv = np.abs(u - cu) - hu, np.abs(v - cv) - hv
        if radius == 0.0:
            return np.maximum(qu, qv)
        outside = np.sqrt(np.maximum(qu, 0) ** 2 + np.maximum(qv, 0) ** 2)
        return outside + np.minimum(np.maximum(qu, qv), 0) - radius

    return sdf


def _polygon(*points: tuple[float, float]) -> SDF:
    """Convex polygon as the intersection of half-planes (either winding)."""
    pts = np.asarray(points, dtype=np.float64)
    center = pts.mean(axis=0)
    planes = []
    for a, b in zip(pts, np.roll(pts, -1, axis=0)):
        normal = np.array([b[1] - a[1], a[0] - b[0]])
        normal /= np.linalg.norm(normal)
        offset = normal @ a
        if normal @ center > offset:  # make the normal point outwards
            normal, offset = -normal, -offset
        planes.append((float(normal[0]), float(normal[1]), float(offset)))

    def sdf(u, v):
        d = None
        for nu, nv, c in planes:
            side = nu * u + nv * v - c
            d = side if d is None else np.maximum(d, side)
        return d

    return sdf


def _union(*shapes: SDF) -> SDF:
    def sdf(u, v):
        d = shapes[0](u, v)
        for shape in shapes[1:]:
            d = np.minimum(d, shape(u, v))
        return d

    return sdf


# ------------------------------------------------------------ the objects
# Each object: parts drawn back to front as (shape, colour). A colour is an
# RGB triple or "main" (the object's seed-jittered body colour) or
# ("main", f) for the body colour scaled by f, or ("lamp", rgb): a window or
# light that glows (unlit by the weather) at night. Frame: u points the way the
# object faces, v up from the ground line; about one unit tall.

Colour = Union[tuple, str]

_PARTS: dict[str, list[tuple[SDF, Colour]]] = {
    "duck": [
        (_polygon((-0.28, 0.32), (-0.62, 0.46), (-0.40, 0.14)), "main"),  # tail
        (_ellipse(-0.02, 0.21, 0.42, 0.21), "main"),  # body
        (_ellipse(0.25, 0.38, 0.10, 0.17), "main"),  # neck
        (_circle(0.29, 0.57, 0.15), "main"),  # head
        (_ellipse(-0.08, 0.25, 0.23, 0.10), ("main", 0.78)),  # wing
        (_polygon((0.38, 0.63), (0.64, 0.54), (0.38, 0.49)), (0.98, 0.50, 0.05)),  # beak
        (_circle(0.33, 0.61, 0.038), (0.05, 0.05, 0.05)),  # eye
    ],
    "boat": [
        (_box(-0.025, 0.025, 0.2, 1.0), (0.30, 0.20, 0.12)),  # mast
        (_polygon((0.06, 0.30), (0.06, 0.97), (0.50, 0.30)), (0.97, 0.96, 0.92)),  # mainsail
        (_polygon((-0.06, 0.32), (-0.06, 0.86), (-0.40, 0.32)), (0.93, 0.92, 0.88)),  # jib
        (_polygon((-0.58, 0.24), (0.62, 0.24), (0.42, 0.0), (-0.42, 0.0)), "main"),  # hull
        (_box(-0.55, 0.59, 0.17, 0.22), (0.95, 0.95, 0.95)),  # stripe
    ],
    "house": [
        (_box(0.18, 0.30, 0.55, 0.92), (0.45, 0.22, 0.18)),  # chimney
        (_box(-0.40, 0.40, 0.0, 0.52), "main"),  # walls
        (_polygon((-0.50, 0.50), (0.50, 0.50), (0.0, 0.92)), (0.65, 0.16, 0.12)),  # roof
        (_box(0.08, 0.26, 0.0, 0.32), (0.40, 0.24, 0.12)),  # door
        (_box(-0.31, -0.05, 0.19, 0.41), (0.25, 0.20, 0.18)),  # window frame
        (_box(-0.28, -0.08, 0.22, 0.38), ("lamp", (0.55, 0.80, 0.95))),  # window glass: lit at night
    ],
    "tree": [
        (_box(-0.065, 0.065, 0.0, 0.52), (0.42, 0.26, 0.12)),  # trunk
        (_union(_circle(0.0, 0.74, 0.27), _circle(-0.21, 0.56, 0.21), _circle(0.21, 0.56, 0.21)), "main"),
        (_circle(0.07, 0.80, 0.11), ("main", 1.2)),  # a lighter clump reads as foliage
    ],
    "car": [
        (_box(-0.56, 0.56, 0.08, 0.31, radius=0.07), "main"),  # body
        (_polygon((-0.34, 0.29), (0.32, 0.29), (0.17, 0.52), (-0.23, 0.52)), "main"),  # cabin
        (_polygon((-0.27, 0.31), (-0.04, 0.31), (-0.04, 0.47), (-0.19, 0.47)), (0.55, 0.78, 0.92)),
        (_polygon((0.02, 0.31), (0.25, 0.31), (0.14, 0.47), (0.02, 0.47)), (0.55, 0.78, 0.92)),
        (_box(0.49, 0.56, 0.20, 0.26), ("lamp", (1.0, 0.92, 0.55))),  # headlight: on at night
        (_circle(-0.32, 0.11, 0.115), (0.08, 0.08, 0.08)),  # wheels
        (_circle(0.32, 0.11, 0.115), (0.08, 0.08, 0.08)),
        (_circle(-0.32, 0.11, 0.05), (0.65, 0.65, 0.65)),  # hubs
        (_circle(0.32, 0.11, 0.05), (0.65, 0.65, 0.65)),
    ],
}
_SILHOUETTE: dict[str, SDF] = {name: _union(*(s for s, _ in parts)) for name, parts in _PARTS.items()}

# Body colour, nominal scale (object units -> image fraction) and the chance
# that the ground is water, per object.
_MAIN = {
    "duck": (1.00, 0.84, 0.18),
    "boat": (0.72, 0.18, 0.15),
    "house": (0.93, 0.86, 0.68),
    "tree": (0.22, 0.58, 0.20),
    "car": (0.20, 0.35, 0.80),
}
_SCALE = {"duck": 0.50, "boat": 0.42, "house": 0.44, "tree": 0.44, "car": 0.48}
_HALF_WIDTH = {"duck": 0.64, "boat": 0.62, "house": 0.50, "tree": 0.42, "car": 0.56}  # furthest |u| of any part
_WATER = {"duck": 0.6, "boat": 1.0, "house": 0.0, "tree": 0.0, "car": 0.0}


# ------------------------------------------------------------ the weathers
# Lighting turns an albedo colour c into gain * (lum + sat * (c - lum)) + tint.
# Sky: colour at the top and at the horizon.

_LIGHT = {  # gain, saturation, tint
    "sunny": (1.08, 1.25, (0.03, 0.02, -0.02)),
    "overcast": (0.78, 0.45, (0.04, 0.04, 0.05)),
    "rainy": (0.55, 0.55, (0.02, 0.03, 0.05)),
    "night": (0.34, 0.45, (0.00, 0.01, 0.07)),
    "snowy": (0.85, 0.55, (0.06, 0.07, 0.09)),
}
_SKY = {
    "sunny": ((0.10, 0.42, 0.92), (0.50, 0.76, 1.00)),
    "overcast": ((0.62, 0.64, 0.67), (0.76, 0.77, 0.79)),
    "rainy": ((0.27, 0.29, 0.32), (0.42, 0.44, 0.47)),
    "night": ((0.01, 0.02, 0.09), (0.06, 0.09, 0.24)),
    "snowy": ((0.78, 0.80, 0.85), (0.90, 0.91, 0.94)),
}
_GROUND_GAIN = {"sunny": 1.0, "overcast": 1.0, "rainy": 0.72, "night": 1.0, "snowy": 1.0}
_GRASS = (0.34, 0.62, 0.22)
_WATER_RGB = (0.18, 0.45, 0.72)
_LAMP = np.array([1.0, 0.82, 0.40], dtype=np.float32)  # warm light in windows at night
_SNOW, _ICE = (0.95, 0.96, 0.98), (0.62, 0.70, 0.78)
_SHADOW_DARKNESS = 0.6  # fraction of light a sunny cast shadow removes
_SHADOW_DROP, _SHADOW_SLANT = 0.32, 0.85  # shadow length down / sideways per unit height


def _table(values: dict, keys: tuple[str, ...]) -> np.ndarray:
    return np.array([values[k] for k in keys], dtype=np.float32)


# ------------------------------------------------------------ parameters


def scene_params_batch(objs: Names, seeds: Seeds) -> dict[str, np.ndarray]:
    """Nuisance parameters of many scenes: a dict of arrays with leading dimension n.

    ``objs`` (n,) names or indices, ``seeds`` (n,) ints (either may be a single
    value, broadcast). Keys: ``object`` (n,) index into OBJECTS, ``seed`` (n,),
    ``cx`` horizontal centre, ``horizon`` and ``base`` heights (fractions of
    the image from the top), ``scale`` (image fraction per object unit),
    ``flip`` (+1 faces right, -1 faces left), ``water`` (bool), ``colour``
    (n, 3) body colour, ``ground`` (n, 3) grass/water colour, ``sun`` (n, 2)
    where the sun (or moon) sits, ``phase`` water ripple phase.
    Everything depends on the seed only, except that colour, size and water
    follow the object's own ranges and a wide object slides less far from the
    centre; the weather plays no part, so a seed is one scene in every weather.
    """
    obj = _index_of(objs, OBJECTS, "object")
    seed = _check_seeds(seeds)
    obj, seed = np.broadcast_arrays(obj, seed)
    r = _uniform(seed, stream=1, k=12)
    names = np.array(OBJECTS)[obj]
    horizon = 0.42 + 0.18 * r[:, 1]
    base = horizon + 0.16 + 0.14 * r[:, 2]
    scale = np.array([_SCALE[n] for n in names]) * (0.82 + 0.26 * r[:, 11])
    # Slide the object left or right, but never out of the frame.
    room = np.minimum(0.2, 0.46 - scale * np.array([_HALF_WIDTH[n] for n in names]))
    cx = 0.5 + room * (2 * r[:, 0] - 1)
    colour = np.array([_MAIN[n] for n in names]) + 0.16 * (r[:, 3:6] - 0.5)
    # The sun keeps clear of the object: it sits on the far side of the sky.
    sun_x = np.where(cx < 0.5, _SUN_X_RIGHT[0], _SUN_X_LEFT[0]) + _SUN_SPAN[0] * r[:, 8]
    sun = np.stack([sun_x, _SUN_Y + _SUN_SPAN[1] * r[:, 9]], axis=1)
    water = r[:, 7] < np.array([_WATER[n] for n in names])
    ground = np.where(water[:, None], _WATER_RGB, _GRASS) + 0.08 * (r[:, 10:11] - 0.5)
    return {
        "object": obj.copy(),
        "seed": seed.astype(np.int64),
        "cx": cx,
        "horizon": horizon,
        "base": base,
        "scale": scale,
        "flip": np.where(r[:, 6] < 0.5, 1.0, -1.0),
        "water": water,
        "colour": np.clip(colour, 0.0, 1.0),
        "ground": np.clip(ground, 0.0, 1.0),
        "sun": sun,
        "phase": 2 * np.pi * r[:, 10],
    }


def sun_zone(params: dict, size: int = 64) -> np.ndarray:
    """Where the sun's disc and glow may be, given only what a non-sunny picture shows: (n, size, size) bool.

    Under overcast, rain or snow the sun is hidden, so a picture tells which
    side of the sky it is on (the far side from the object) but not where on
    that side. This zone covers every place the sun and the visible part of
    its glow could be for that side, so a judge can leave it out: nothing may
    win or lose by guessing the hidden sun's position.
    ``params`` as from :func:`scene_params_batch`.
    """
    size = _check_size(size)
    p = _stack_params(params)
    c = (np.arange(size) + 0.5) / size
    x, y = c[None, None, :], c[None, :, None]
    left = np.where(np.asarray(p["cx"]) < 0.5, _SUN_X_RIGHT[0], _SUN_X_LEFT[0])[:, None, None]
    dx = np.maximum(np.maximum(left - x, x - (left + _SUN_SPAN[0])), 0.0)
    dy = np.maximum(np.maximum(_SUN_Y - y, y - (_SUN_Y + _SUN_SPAN[1])), 0.0)
    return np.hypot(dx, dy) < _SUN_REACH


def scene_params(obj: str, seed: int = 0) -> dict:
    """Nuisance parameters of one scene (see ``scene_params_batch``), as scalars and (3,) arrays."""
    seed = whole_number(seed, "seed", low=None)
    if not isinstance(obj, str):
        raise TypeError(f"obj must be an object name, one of {list(OBJECTS)}; got {obj!r}")
    batch = scene_params_batch(obj, seed)
    return {key: value[0] for key, value in batch.items()}


def _stack_params(params: dict | Sequence[dict]) -> dict[str, np.ndarray]:
    """One scene's params, a batch's params, or a list of scenes' params -> a batch (arrays, leading n)."""
    if isinstance(params, dict):
        if np.ndim(params["cx"]) == 0:
            return {k: np.asarray(v)[None] for k, v in params.items()}
        return {k: np.asarray(v) for k, v in params.items()}
    if not params:
        raise ValueError("params is empty; make them with scene_params(obj, seed)")
    return {k: np.stack([np.asarray(p[k]) for p in params]) for k in params[0]}


# ------------------------------------------------------------ drawing


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (1, H, W): x to the right, y down, both in [0, 1]."""
    c = (np.arange(size, dtype=np.float32) + 0.5) / size
    return c[None, None, :], c[None, :, None]


def _coverage(d: np.ndarray, pixels_per_unit: np.ndarray) -> np.ndarray:
    """Signed distance -> coverage in [0, 1] with a one-pixel soft edge."""
    return np.clip(0.5 - d * pixels_per_unit, 0.0, 1.0)


def _light(rgb: np.ndarray, weather: np.ndarray) -> np.ndarray:
    """Albedo colours (m, 3, ...) under each image's weather (m,): same shape back."""
    gain = _table({k: v[0] for k, v in _LIGHT.items()}, WEATHERS)[weather]
    sat = _table({k: v[1] for k, v in _LIGHT.items()}, WEATHERS)[weather]
    tint = _table({k: v[2] for k, v in _LIGHT.items()}, WEATHERS)[weather]
    trail = (1,) * (rgb.ndim - 2)
    lum = (0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2])[:, None]
    sat, gain = sat.reshape((-1, 1) + trail), gain.reshape((-1, 1) + trail)
    return gain * (lum + sat * (rgb - lum)) + tint.reshape((-1, 3) + trail)


def _object_frame(p: dict, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Image coordinates -> object frame (u, v), and pixels per object unit. Shapes (m, 1, 1)."""
    col = lambda a: np.asarray(a, dtype=np.float32)[:, None, None]  # noqa: E731
    s = col(p["scale"])
    u = col(p["flip"]) * (x - col(p["cx"])) / s
    v = (col(p["base"]) - y) / s
    return u, v, s


def _rgb(r: float, g: float, b: float) -> np.ndarray:
    """A colour shaped (3, 1, 1) to broadcast over (m, 3, H, W) images."""
    return np.array([r, g, b], dtype=np.float32)[:, None, None]


def _part_colour(colour: Colour, body: np.ndarray, weather: np.ndarray) -> np.ndarray:
    """A part's colour (m, 3) as seen under each image's weather."""
    if isinstance(colour, str):
        return _light(body, weather)
    if colour[0] == "main":
        return _light(np.clip(body * colour[1], 0, 1), weather)
    if colour[0] == "lamp":
        lit = _light(np.broadcast_to(np.asarray(colour[1], dtype=np.float32), body.shape), weather)
        return np.where((weather == WEATHERS.index("night"))[:, None], _LAMP, lit)
    return _light(np.broadcast_to(np.asarray(colour, dtype=np.float32), body.shape), weather)


def _splat(n: int, size: int, px: np.ndarray, py: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Bilinear splats of points (n, k) in pixel units -> (n, H, W) accumulated weight."""
    x0, y0 = np.floor(px - 0.5), np.floor(py - 0.5)
    fx, fy = px - 0.5 - x0, py - 0.5 - y0
    img = np.arange(n)[:, None] * size * size
    idx, wts = [], []
    for dx, wx in ((0, 1 - fx), (1, fx)):
        for dy, wy in ((0, 1 - fy), (1, fy)):
            xi, yi = (x0 + dx).astype(np.int64), (y0 + dy).astype(np.int64)
            inside = (xi >= 0) & (xi < size) & (yi >= 0) & (yi < size)
            idx.append((img + yi * size + xi)[inside])
            wts.append((weight * wx * wy)[inside])
    flat = np.bincount(np.concatenate(idx), weights=np.concatenate(wts), minlength=n * size * size)
    return flat.reshape(n, size, size).astype(np.float32)


def _sky(p: dict, weather: np.ndarray, x, y, size: int) -> np.ndarray:
    """(m, 3, H, W): gradient sky with sun, moon and stars."""
    m = len(weather)
    top = _table({k: v[0] for k, v in _SKY.items()}, WEATHERS)[weather][:, :, None, None]
    low = _table({k: v[1] for k, v in _SKY.items()}, WEATHERS)[weather][:, :, None, None]
    t = np.clip(y / np.asarray(p["horizon"], dtype=np.float32)[:, None, None], 0, 1)[:, None]
    sky = top + (low - top) * t
    sky = np.broadcast_to(sky, (m, 3, size, size)).copy()
    sx = np.asarray(p["sun"][:, 0], dtype=np.float32)[:, None, None]
    sy = np.asarray(p["sun"][:, 1], dtype=np.float32)[:, None, None]
    dist = np.sqrt((x - sx) ** 2 + (y - sy) ** 2)
    sunny, night = weather == WEATHERS.index("sunny"), weather == WEATHERS.index("night")
    if sunny.any():
        d = dist[sunny]
        glow = (0.35 * np.exp(-(((d - 0.07) / 0.07) ** 2)) * (d > 0.07) + _coverage(d - 0.07, size))[:, None]
        sky[sunny] += glow * (_rgb(1.0, 0.96, 0.60) - sky[sunny])
    if night.any():
        d = dist[night]
        # A crescent: the moon's disc minus a disc shifted towards the sun-side edge.
        shifted = np.sqrt((x - sx[night] - 0.03) ** 2 + (y - sy[night] + 0.012) ** 2)
        moon = (_coverage(d - 0.065, size) * (1 - _coverage(shifted - 0.058, size)))[:, None]
        sky[night] += moon * (_rgb(0.96, 0.95, 0.82) - sky[night])
        seeds = np.asarray(p["seed"], dtype=np.uint64)[night]
        r = _uniform(seeds, stream=2, k=3 * 24).reshape(-1, 24, 3)
        star_y = r[..., 1] * np.asarray(p["horizon"])[night][:, None] * 0.85
        stars = _splat(int(night.sum()), size, r[..., 0] * size, star_y * size, 0.55 + 0.45 * r[..., 2])
        stars = np.minimum(stars * (1 - moon[:, 0]), 1.0)[:, None]
        sky[night] += stars * (0.95 - sky[night])
    return sky


def _ground(p: dict, weather: np.ndarray, x, y, size: int) -> np.ndarray:
    """(m, 3, H, W) ground albedo: grass or water, snow-covered when snowy, with texture."""
    snowy = (weather == WEATHERS.index("snowy"))[:, None]
    water = np.asarray(p["water"])[:, None]
    base = np.where(snowy, np.where(water, _ICE, _SNOW), np.asarray(p["ground"]))
    base = base.astype(np.float32)[:, :, None, None]
    h = np.asarray(p["horizon"], dtype=np.float32)[:, None, None]
    depth = np.clip(y - h, 0, 1)
    # Far ground is paler (haze); water carries horizontal ripples that bunch up near the horizon.
    shade = 1.0 - 0.35 * depth
    phase = np.asarray(p["phase"], dtype=np.float32)[:, None, None]
    ripple = 0.07 * np.sin(90.0 * np.sqrt(depth) + phase) * np.sin(17.0 * x + 2 * phase)
    shade = shade + np.where(np.asarray(p["water"])[:, None, None], ripple, 0.0).astype(np.float32)
    gain = _table(_GROUND_GAIN, WEATHERS)[weather][:, None, None, None]
    return base * shade[:, None] * gain


def _shadow(p: dict, obj: str, x, y, size: int) -> np.ndarray:
    """(m, H, W) coverage of the object's shadow cast forward and away from the sun.

    A ground point below the base at drop ``dy`` is shaded if the object
    occupies the point at height dy / DROP above the base, shifted back
    towards the sun.
    """
    sun_x = np.asarray(p["sun"][:, 0], dtype=np.float32)[:, None, None]
    cx = np.asarray(p["cx"], dtype=np.float32)[:, None, None]
    base = np.asarray(p["base"], dtype=np.float32)[:, None, None]
    away = np.sign(cx - sun_x)
    height = (y - base) / _SHADOW_DROP
    sx = x - away * _SHADOW_SLANT * height
    u, v, s = _object_frame(p, sx, base - height)
    d = _SILHOUETTE[obj](u, v)
    return _coverage(d, s * size * _SHADOW_DROP) * (height > -0.01)


def _rain(seeds: np.ndarray, size: int) -> np.ndarray:
    """(m, H, W) rain streak intensity: 70 slanted streaks per image."""
    k, steps = 70, max(int(0.16 * size), 4)
    r = _uniform(seeds, stream=3, k=3 * k).reshape(-1, k, 3)
    t = np.linspace(0, 1, steps)[None, None, :]
    length = (0.08 + 0.1 * r[..., 2])[..., None]
    px = (r[..., 0, None] * 1.2 - 0.1 + 0.3 * length * t) * size
    py = (r[..., 1, None] * 1.1 - 0.1 + length * t) * size
    w = np.broadcast_to(0.9 * np.ones_like(length), px.shape)
    return np.minimum(_splat(len(seeds), size, px.reshape(len(seeds), -1), py.reshape(len(seeds), -1),
                             w.reshape(len(seeds), -1)), 1.0)


def _snow(seeds: np.ndarray, size: int) -> np.ndarray:
    """(m, H, W) snowflake coverage: 90 soft flakes per image."""
    k = 90
    r = _uniform(seeds, stream=4, k=3 * k).reshape(-1, k, 3)
    flakes = _splat(len(seeds), size, r[..., 0] * size, r[..., 1] * size, 1.2 + 0.6 * r[..., 2])
    return np.minimum(flakes, 0.95)


def _draw_chunk(p: dict, weather: np.ndarray, size: int, with_object: bool = True,
                with_shadow: bool = True) -> tuple[np.ndarray, np.ndarray]:
    m = len(weather)
    x, y = _grid(size)
    horizon = np.asarray(p["horizon"], dtype=np.float32)[:, None, None]
    on_ground = _coverage(horizon - y, size)[:, None]
    ground = _ground(p, weather, x, y, size)
    sunny = weather == WEATHERS.index("sunny")
    # Without the object, nothing casts a shadow or is drawn over the background.
    objects = np.asarray(p["object"]) if with_object else np.full(m, -1)
    for k, name in enumerate(OBJECTS if with_shadow else ()):
        sel = sunny & (objects == k)
        if sel.any():
            shade = _shadow({key: val[sel] for key, val in p.items()}, name, x, y, size)
            ground[sel] *= 1 - _SHADOW_DARKNESS * shade[:, None]
    image = _sky(p, weather, x, y, size)
    image += on_ground * (_light(ground, weather) - image)

    mask = np.zeros((m, size, size), dtype=np.float32)
    body = np.asarray(p["colour"], dtype=np.float32)
    for k, name in enumerate(OBJECTS):
        sel = objects == k
        if not sel.any():
            continue
        sub = {key: val[sel] for key, val in p.items()}
        u, v, s = _object_frame(sub, x, y)
        pixels = s * size
        part_image, part_mask = image[sel], mask[sel]
        for shape, colour in _PARTS[name]:
            alpha = _coverage(shape(u, v), pixels)
            lit = _part_colour(colour, body[sel], weather[sel])[:, :, None, None]
            part_image += alpha[:, None] * (lit - part_image)
            np.maximum(part_mask, alpha, out=part_mask)
        image[sel], mask[sel] = part_image, part_mask

    seeds = np.asarray(p["seed"], dtype=np.uint64)
    for name, overlay, colour, strength in (
        ("rainy", _rain, (0.78, 0.80, 0.86), 0.55),
        ("snowy", _snow, (1.0, 1.0, 1.0), 1.0),
    ):
        sel = weather == WEATHERS.index(name)
        if sel.any():
            a = strength * overlay(seeds[sel], size)[:, None]
            image[sel] += a * (_rgb(*colour) - image[sel])
    return np.clip(image, 0.0, 1.0), mask


def draw_batch(params: dict, weathers: Names, size: int = 64, with_mask: bool = False, *,
               with_object: bool = True, with_shadow: bool = True):
    """Draw many scenes. ``params`` from ``scene_params_batch`` (n entries), ``weathers`` (n,) or one name.

    Returns images (n, H, W, 3) float32 in [0, 1]; with ``with_mask`` also the
    object's coverage (n, H, W) in [0, 1], which does not depend on weather.
    ``with_object=False`` draws the same scenes without their object (and its
    shadow): the background the object stands in front of (the mask is then empty).
    ``with_shadow=False`` draws the object but not the shadow it casts on a sunny
    day: the one part of a sunny picture that depends on the object.
    """
    for flag, value in (("with_object", with_object), ("with_shadow", with_shadow)):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{flag} must be True or False; got {value!r}")
    size = _check_size(size)
    p = _stack_params(params)
    n = len(p["cx"])
    weather = np.broadcast_to(_index_of(weathers, WEATHERS, "weather"), (n,))
    images = np.empty((n, size, size, 3), dtype=np.float32)
    masks = np.empty((n, size, size), dtype=np.float32)
    step = max(1, _CHUNK_PIXELS // (size * size))
    for start in range(0, n, step):
        part = slice(start, min(n, start + step))
        chunk, masks[part] = _draw_chunk({k: v[part] for k, v in p.items()}, weather[part], size,
                                                bool(with_object), bool(with_shadow))
        images[part] = chunk.transpose(0, 2, 3, 1)  # drawn channels-first: numpy's inner loops run along rows
    return (images, masks) if with_mask else images


def draw(params: dict, weather: str, size: int = 64) -> np.ndarray:
    """Draw one scene from ``scene_params(obj, seed)`` under ``weather``: (H, W, 3) float32 in [0, 1]."""
    if not isinstance(params, dict) or "cx" not in params:
        raise TypeError("params must be the dict returned by scene_params(obj, seed)")
    if not isinstance(weather, str):
        raise TypeError(f"weather must be a name, one of {list(WEATHERS)}; got {weather!r}")
    return draw_batch(params, weather, size)[0]


def render(obj: str, weather: str, seed: int = 0, size: int = 64) -> np.ndarray:
    """One scene: ``obj`` in ``weather``, nuisances from ``seed``. Returns (size, size, 3) float32 in [0, 1].

    The same seed in two weathers is the same scene: the object has the same
    position, size, colour and orientation; only lighting, sky and weather
    overlays change.
    """
    return draw(scene_params(obj, seed), weather, size)


def render_batch(objs: Names, weathers: Names, seeds: Seeds, size: int = 64) -> np.ndarray:
    """Many scenes at once: ``objs``, ``weathers``, ``seeds`` each (n,) or a single value (broadcast).

    Returns (n, size, size, 3) float32 in [0, 1]; image i equals
    ``render(objs[i], weathers[i], seeds[i], size)``.
    """
    obj = _index_of(objs, OBJECTS, "object")
    weather = _index_of(weathers, WEATHERS, "weather")
    seed = _check_seeds(seeds)
    try:
        obj, weather, seed = np.broadcast_arrays(obj, weather, seed)
    except ValueError:
        raise ValueError(
            f"objs, weathers and seeds must have the same length (or be single values); "
            f"got lengths {len(obj)}, {len(weather)}, {len(seed)}"
        ) from None
    return draw_batch(scene_params_batch(obj, seed), weather, size)


def object_mask(obj: str, seed: int = 0, size: int = 64) -> np.ndarray:
    """Coverage (size, size) float32 in [0, 1] of the object in scene ``seed``: the same in every weather."""
    return draw_batch(scene_params(obj, seed), "overcast", size, with_mask=True)[1][0]
