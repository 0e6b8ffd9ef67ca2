"""The synthetic scene world: five objects under five weathers, with ground truth for every pair.

    from polylens.scenes import render, SceneDataset
    duck = render("duck", "overcast", seed=3)   # (64, 64, 3) float32 in [0, 1]
    truth = render("duck", "sunny", seed=3)     # the same duck on a sunny day
"""

from polylens.scenes.dataset import SceneDataset
from polylens.scenes.render import (
    OBJECTS,
    WEATHERS,
    draw,
    draw_batch,
    object_mask,
    render,
    render_batch,
    scene_params,
    scene_params_batch,
)

__all__ = [
    "OBJECTS",
    "SceneDataset",
    "WEATHERS",
    "draw",
    "draw_batch",
    "object_mask",
    "render",
    "render_batch",
    "scene_params",
    "scene_params_batch",
]
