"""The synthetic scene world: five objects under five weathers, with ground truth for every pair.

    from polylens.scenes import render, SceneDataset, load_autoencoder, load_probes
    duck = render("duck", "overcast", seed=3)   # (64, 64, 3) float32 in [0, 1]
    truth = render("duck", "sunny", seed=3)     # the same duck on a sunny day
    ae = load_autoencoder()                     # trained without a single sunny duck
    probes = load_probes()                      # score any image: probes.object, probes.weather

Modules: ``render`` (drawing), ``dataset`` (SceneDataset), ``networks``
(architectures), ``weights`` (loading with sha256 checks), ``splits``
(train, validation and test splits with their sunny truth), ``train``
(``python -m polylens.scenes.train`` retrains everything).
"""

from polylens.scenes.dataset import SceneDataset, to_tensor
from polylens.scenes.networks import SceneAutoencoder, SceneProbe
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
    sun_zone,
)
from polylens.scenes.splits import (
    BASE_WEATHERS,
    SPLIT_SEEDS,
    SUNNY,
    TRAINING_OBJECTS,
    Split,
    split,
    training_pairs,
    training_scenes,
)
from polylens.scenes.weights import Probes, WeightsError, load_autoencoder, load_manifest, load_probes

__all__ = [
    "BASE_WEATHERS",
    "OBJECTS",
    "SPLIT_SEEDS",
    "SUNNY",
    "Split",
    "TRAINING_OBJECTS",
    "Probes",
    "SceneAutoencoder",
    "SceneDataset",
    "SceneProbe",
    "WEATHERS",
    "WeightsError",
    "draw",
    "draw_batch",
    "load_autoencoder",
    "load_manifest",
    "load_probes",
    "object_mask",
    "render",
    "render_batch",
    "scene_params",
    "scene_params_batch",
    "split",
    "sun_zone",
    "training_pairs",
    "training_scenes",
    "to_tensor",
]
