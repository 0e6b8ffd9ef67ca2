"""Superposition: toy models, their geometry, sparse dictionaries, feature geometry.

    from polylens import superposition as sp
    model = sp.train_tms(5, 2, feature_probability=0.05, n_instances=16)
    sp.feature_dimensionality(model.W)       # (instances, features)

Modules, one per idea:

- ``toy``: toy models of superposition trained as a batch of instances;
- ``metrics``: norms, interference, feature dimensionality, D*, polytopes;
- ``sae``: sparse autoencoders (dictionaries) and ground-truth features, saved as SAELens saves them;
- ``evaluate``: MCC, explained variance, shrinkage, both dead-latent conventions (SAELens's names);
- ``geometry``: datasets where a dictionary's view and the model's disagree;
- ``plots``: arrows, W^T W heatmaps, norm bars, hidden-space polytopes;
- ``sweeps``: shipped sweeps too slow for a notebook, checked by sha256 at load.
"""

from polylens.superposition.geometry import (
    AnimalsDataset,
    ObjectsConditions,
    animal_readout_error,
    animals_in_attribute_space,
    atomic_vs_combination,
    attribute_readout_error,
    objects_conditions,
    single_latent_readout_error,
)
from polylens.superposition.metrics import (
    dedicated,
    digon,
    dimensions_per_feature,
    feature_dimensionality,
    feature_norms,
    interference,
    pentagon,
    regular_polygon,
    square_antiprism,
    tegum,
    tetrahedron,
    triangle,
)
from polylens.superposition.sae import (
    SAE,
    dead_latents,
    ground_truth_features,
    l0,
    mmcs,
    sparse_activations,
    train_sae,
)
from polylens.superposition.evaluate import evaluate_sae, explained_variance, mcc, shrinkage
from polylens.superposition import sweeps
from polylens.superposition.toy import ToyModel, generate_features, hidden_to_output, train_abs_tms, train_tms

__all__ = [
    "animal_readout_error",
    "animals_in_attribute_space",
    "AnimalsDataset",
    "atomic_vs_combination",
    "attribute_readout_error",
    "dead_latents",
    "dedicated",
    "evaluate_sae",
    "explained_variance",
    "digon",
    "dimensions_per_feature",
    "feature_dimensionality",
    "feature_norms",
    "generate_features",
    "ground_truth_features",
    "hidden_to_output",
    "interference",
    "l0",
    "mcc",
    "mmcs",
    "objects_conditions",
    "ObjectsConditions",
    "pentagon",
    "plots",
    "regular_polygon",
    "SAE",
    "single_latent_readout_error",
    "shrinkage",
    "sparse_activations",
    "square_antiprism",
    "sweeps",
    "tegum",
    "tetrahedron",
    "ToyModel",
    "train_abs_tms",
    "train_sae",
    "train_tms",
    "triangle",
]

# Notebook 05: many SAEs trained in one batched loop, and their drawings.
from polylens.superposition import dictionary_sweeps  # noqa: E402
from polylens.superposition.dictionary_sweeps import train_sae_grid  # noqa: E402

__all__ += ["dictionary_plots", "dictionary_sweeps", "train_sae_grid"]

# The drawing modules import matplotlib.pyplot; they load on first use, so `import polylens`
# (a script, a test, a server) never starts a plotting backend it does not need.
_DRAWING = ("plots", "dictionary_plots")


def __getattr__(name: str):
    if name in _DRAWING:
        import importlib

        return importlib.import_module(f"polylens.superposition.{name}")
    raise AttributeError(f"module 'polylens.superposition' has no attribute {name!r}")
