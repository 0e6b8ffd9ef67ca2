"""Superposition: toy models, their geometry, sparse dictionaries, feature geometry.

    from polylens import superposition as sp
    model = sp.train_tms(5, 2, feature_probability=0.05, n_instances=16)
    sp.feature_dimensionality(model.W)       # (instances, features)

Modules, one per idea:

- ``toy``: toy models of superposition trained as a batch of instances;
- ``metrics``: norms, interference, feature dimensionality, D*, polytopes;
- ``sae``: sparse autoencoders (dictionaries) and ground-truth features;
- ``geometry``: datasets where a dictionary's view and the model's disagree.
"""

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
from polylens.superposition.toy import ToyModel, generate_features, hidden_to_output, train_abs_tms, train_tms

__all__ = [
    "ToyModel",
    "dedicated",
    "digon",
    "dimensions_per_feature",
    "feature_dimensionality",
    "feature_norms",
    "generate_features",
    "hidden_to_output",
    "interference",
    "pentagon",
    "regular_polygon",
    "square_antiprism",
    "tegum",
    "tetrahedron",
    "train_abs_tms",
    "train_tms",
    "triangle",
]
