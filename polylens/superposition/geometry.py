"""Feature geometry: datasets where what a dictionary finds is not what a model reads.

Two worlds, each with its ground truth attached:

- **Animals in attribute space** (from the discussion the course grew from): many sparse animals, each a
  dense combination of a few dozen attribute directions. A dictionary finds
  the animals, but the attribute values the model's linear read-outs use are
  not carried by any single latent.
- **Objects x conditions**: every sample is one object plus one condition
  ("duck" + "sunny"). Independent pairs give atomic latents; pairs that
  nearly always co-occur give "sunny duck" combination latents.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from polylens._checks import finite_number, generator, whole_number
from polylens.superposition.sae import SAE, dead_latents

__all__ = [
    "AnimalsDataset",
    "ObjectsConditions",
    "animal_readout_error",
    "animals_in_attribute_space",
    "atomic_vs_combination",
    "attribute_readout_error",
    "objects_conditions",
    "single_latent_readout_error",
]


def _unit_rows(n: int, dim: int, gen: torch.Generator) -> torch.Tensor:
    v = torch.randn(n, dim, generator=gen)
    return v / v.norm(dim=1, keepdim=True)


# ----------------------------------------------------------------------------- animals


@dataclass
class AnimalsDataset:
    """Ground truth of the animals world.

    Attributes:
        data: (n_samples, dim) activations, sum of active animals' vectors.
        animal_activations: (n_samples, n_animals) sparse, non-negative.
        animals: (n_animals, dim) unit animal directions.
        attributes: (n_attributes, dim) orthonormal attribute directions.
        animal_attributes: (n_animals, n_attributes) each animal's attribute
            coefficients: ``animals = animal_attributes @ attributes``.
    """

    data: torch.Tensor
    animal_activations: torch.Tensor
    animals: torch.Tensor
    attributes: torch.Tensor
    animal_attributes: torch.Tensor

    @property
    def attribute_values(self) -> torch.Tensor:
        """What a linear read-out of each attribute sees: (n_samples, n_attributes), dense."""
        return self.data @ self.attributes.T


def animals_in_attribute_space(
    n_animals: int = 1000,
    n_attributes: int = 50,
    dim: int | None = None,
    n_samples: int = 20000,
    avg_active: float = 3.0,
    seed: int = 0,
) -> AnimalsDataset:
    """Sparse animals spanned by dense attributes.

    ``n_attributes`` orthonormal attribute directions span a subspace of a
    ``dim``-dimensional space (``dim`` defaults to ``n_attributes``). Each
    animal is a random dense combination of all attributes, normalised to
    unit length, so animals are nearly orthogonal to each other but none
    has a direction of its own outside the attribute subspace. Each sample
    has on average ``avg_active`` animals present, each with value U[0, 1).
    """
    n_animals, n_attributes = whole_number(n_animals, "n_animals", low=1), whole_number(n_attributes, "n_attributes", low=1)
    n_samples = whole_number(n_samples, "n_samples", low=1)
    dim = n_attributes if dim is None else whole_number(dim, "dim", low=1)
    if dim < n_attributes:
        raise ValueError(f"dim ({dim}) must be >= n_attributes ({n_attributes}) to hold orthonormal attributes")
    avg_active = finite_number(avg_active, "avg_active")
    if not 0 < avg_active <= n_animals:
        raise ValueError(f"avg_active must lie in (0, n_animals], got {avg_active!r}")
    gen = generator(seed)
    q, _ = torch.linalg.qr(torch.randn(dim, n_attributes, generator=gen))
    attributes = q.T.contiguous()
    coeff = torch.randn(n_animals, n_attributes, generator=gen)
    coeff = coeff / coeff.norm(dim=1, keepdim=True)
    animals = coeff @ attributes
    present = torch.rand(n_samples, n_animals, generator=gen) < avg_active / n_animals
    acts = present * torch.rand(n_samples, n_animals, generator=gen)
    return AnimalsDataset(acts @ animals, acts, animals, attributes, coeff)


@torch.no_grad()
def single_latent_readout_error(sae: SAE, data: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """How well the best *single* latent, rescaled, tracks each target variable.

    For target k and latent j the least-squares fit ``t_k ~ s * c_j`` leaves
    a fraction ``1 - (c_j . t_k)^2 / (|c_j|^2 |t_k|^2)`` of ``|t_k|^2``
    unexplained; this returns the smallest over latents.

    Shapes: data (n_samples, dim), targets (n_samples, n_targets) -> (n_targets,)
    in [0, 1]; 0 means some latent is that variable.
    """
    if targets.ndim != 2 or targets.shape[0] != data.shape[0]:
        raise ValueError(f"targets must have shape (n_samples, n_targets) with n_samples={data.shape[0]}")
    codes = sae.encode(data.float())
    dots = codes.T @ targets.float()  # (latents, targets)
    denom = (codes**2).sum(0)[:, None] * (targets.float() ** 2).sum(0)[None, :]
    explained = torch.where(denom > 0, dots**2 / denom.clamp(min=1e-30), torch.zeros_like(dots))
    return 1 - explained.max(dim=0).values


def attribute_readout_error(sae: SAE, dataset: AnimalsDataset) -> float:
    """Mean unexplained fraction when each attribute is read from its best single latent.

    Near 1 for an SAE trained on the animals world: the attributes the model's
    read-outs use are dense, so no sparse latent carries one.
    """
    return float(single_latent_readout_error(sae, dataset.data, dataset.attribute_values).mean())


def animal_readout_error(sae: SAE, dataset: AnimalsDataset) -> float:
    """Mean unexplained fraction when each animal is read from its best single latent (low when recovered)."""
    return float(single_latent_readout_error(sae, dataset.data, dataset.animal_activations).mean())


# ----------------------------------------------------------------------------- objects x conditions


@dataclass
class ObjectsConditions:
    """Ground truth of the objects x conditions world.

    Attributes:
        data: (n_samples, dim) = object magnitude * object + condition magnitude * condition.
        object_index, condition_index: (n_samples,) long.
        objects: (n_objects, dim) and conditions: (n_conditions, dim), unit rows.
        partner: (n_objects,) the condition each object co-occurs with.
        cooccurrence: chance a sample's condition is its object's partner
            instead of a uniformly random one.
    """

    data: torch.Tensor
    object_index: torch.Tensor
    condition_index: torch.Tensor
    objects: torch.Tensor
    conditions: torch.Tensor
    partner: torch.Tensor
    cooccurrence: float


def objects_conditions(
    n_objects: int = 8,
    n_conditions: int = 8,
    cooccurrence: float = 0.0,
    dim: int = 32,
    n_samples: int = 20000,
    magnitude_spread: float = 0.2,
    seed: int = 0,
) -> ObjectsConditions:
    """One object and one condition per sample, with tunable co-occurrence.

    With ``cooccurrence=0`` the condition is independent of the object; with
    ``cooccurrence`` near 1 object i nearly always comes with condition
    ``partner[i] = i % n_conditions``. Magnitudes are U[1 - spread, 1 + spread).
    """
    n_objects, n_conditions = whole_number(n_objects, "n_objects", low=1), whole_number(n_conditions, "n_conditions", low=1)
    dim, n_samples = whole_number(dim, "dim", low=1), whole_number(n_samples, "n_samples", low=1)
    cooccurrence = finite_number(cooccurrence, "cooccurrence")
    if not 0 <= cooccurrence <= 1:
        raise ValueError(f"cooccurrence must lie in [0, 1] (0: independent, 1: always paired), got {cooccurrence!r}")
    magnitude_spread = finite_number(magnitude_spread, "magnitude_spread")
    if not 0 <= magnitude_spread < 1:
        raise ValueError(f"magnitude_spread must lie in [0, 1), got {magnitude_spread!r}")
    gen = generator(seed)
    objects, conditions = _unit_rows(n_objects, dim, gen), _unit_rows(n_conditions, dim, gen)
    partner = torch.arange(n_objects) % n_conditions
    obj = torch.randint(0, n_objects, (n_samples,), generator=gen)
    paired = torch.rand(n_samples, generator=gen) < cooccurrence
    cond = torch.where(paired, partner[obj], torch.randint(0, n_conditions, (n_samples,), generator=gen))
    mags = 1 + magnitude_spread * (2 * torch.rand(n_samples, 2, generator=gen) - 1)
    data = mags[:, :1] * objects[obj] + mags[:, 1:] * conditions[cond]
    return ObjectsConditions(data, obj, cond, objects, conditions, partner, float(cooccurrence))


@torch.no_grad()
def atomic_vs_combination(sae: SAE, dataset: ObjectsConditions, threshold: float = 0.9) -> dict[str, float]:
    """Classify each live latent as atomic, combination or neither.

    A latent's atom is compared (cosine) with every object, every condition
    ("atoms") and every normalised object + condition sum ("combinations").
    It is *atomic* or *combination* by its best match, if that cosine is at
    least ``threshold``, else *other*. Dead latents (active on at most 1 in
    1,000 samples, see :func:`~polylens.superposition.sae.dead_latents`)
    are left out.

    Returns:
        dict with fractions of live latents ``atomic``, ``combination``,
        ``other`` and the count ``live``.
    """
    live = ~dead_latents(sae, dataset.data)
    atoms = torch.cat([dataset.objects, dataset.conditions])
    combos = (dataset.objects[:, None, :] + dataset.conditions[None, :, :]).flatten(0, 1)
    combos = combos / combos.norm(dim=1, keepdim=True)
    d = sae.dictionary[live]
    best_atom = (d @ atoms.T).max(dim=1).values
    best_combo = (d @ combos.T).max(dim=1).values
    atomic = (best_atom >= best_combo) & (best_atom >= threshold)
    combination = (best_combo > best_atom) & (best_combo >= threshold)
    n = max(int(live.sum()), 1)
    return {
        "atomic": float(atomic.sum()) / n,
        "combination": float(combination.sum()) / n,
        "other": float((~atomic & ~combination).sum()) / n,
        "live": float(live.sum()),
    }
