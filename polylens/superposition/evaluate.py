"""How good is a dictionary? The metrics SAELens reports, beside MMCS.

Notebook 05 scores a sparse autoencoder by mean max cosine similarity (MMCS,
Sharkey et al. 2022). SAELens, the field's common library, evaluates SAEs on
synthetic data with other names and one other matching; a learner moving on
should be able to compare numbers. Here, for an SAE with atoms ``a_j`` (unit
decoder rows), inputs ``x`` and reconstructions ``x_hat``, and true features
``f_i``:

* ``mmcs`` (polylens): mean over true features of ``max_j cos(f_i, a_j)``. One
  atom may be the best match of many true features (an atom halfway between
  two features scores 0.71 for both).
* ``mcc``: a **one-to-one** matching of atoms to true features (the Hungarian
  algorithm, :func:`scipy.optimize.linear_sum_assignment`, maximising the sum
  of ``|cos|``), then the mean ``|cos|`` over matched pairs, as SAELens's
  ``mean_correlation_coefficient`` computes it. An atom can serve one feature
  only, so a dictionary that merges two features is caught. SAELens takes the
  absolute cosine; MMCS here is signed (SAE codes are non-negative, so an atom
  at ``-f`` cannot express ``f``): on a dictionary with flipped atoms the two
  disagree for that reason too.
* ``explained_variance``: ``1 - sum ||x - x_hat||^2 / sum ||x - mean(x)||^2``
  (R^2 of the reconstruction; 1 = perfect, 0 = no better than the mean).
* ``sae_l0``: mean number of latents active per sample (:func:`~polylens.superposition.sae.l0`).
* ``dead_latents``: SAELens's convention, latents that **never** fire on the
  evaluation data (a count). ``dead_latents_at_rate`` is polylens's notebook
  convention, latents active on at most ``DEAD_RATE`` (1e-3) of samples.
* ``shrinkage``: mean of ``||x_hat|| / ||x||`` over samples with ``x != 0``
  (1 = no shrinkage; an L1 penalty pulls it below 1).

    scores = evaluate_sae(sae, data, true_features=features)
    scores["mcc"], scores["mmcs"], scores["explained_variance"]
"""

from __future__ import annotations

from typing import Any

import torch

from polylens.spline import refuse_if_too_big
from polylens.superposition.sae import DEAD_RATE, SAE, checked_data, dead_latents, l0, mmcs, unit_rows

__all__ = ["evaluate_sae", "explained_variance", "mcc", "shrinkage"]


def mcc(learned: Any, true: Any) -> float:
    """Mean |cos| over a one-to-one matching of learned atoms to true features (SAELens's MCC).

    Args:
        learned: (n_learned, dim) atoms, or an :class:`~polylens.superposition.sae.SAE`.
        true: (n_true, dim) ground-truth directions.

    With fewer atoms than features, only ``n_learned`` features are matched
    (and the reverse): the mean is over ``min(n_learned, n_true)`` pairs.
    """
    a, b = unit_rows("learned", learned), unit_rows("true", true)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"learned atoms have dim {a.shape[1]} but true features have dim {b.shape[1]}")
    refuse_if_too_big(8 * len(a) * len(b), f"the cosine matrix of {len(a)} atoms and {len(b)} features",
                      "match a sample of the features")
    from scipy.optimize import linear_sum_assignment  # loaded when first needed: `import polylens` stays light

    cos = (a.double() @ b.double().T).abs().numpy()
    rows, cols = linear_sum_assignment(cos, maximize=True)
    return float(cos[rows, cols].mean())


def _pairs(sae: SAE, data: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, reconstructions), float64: (n_samples, dim) each."""
    x = checked_data(sae, data)
    with torch.no_grad():
        return x.double(), sae(x).double()


def explained_variance(sae: SAE, data: Any) -> float:
    """R^2 of ``sae``'s reconstruction of ``data`` (n_samples, dim): 1 - residual / total sum of squares."""
    x, x_hat = _pairs(sae, data)
    total = ((x - x.mean(0)) ** 2).sum()
    if float(total) == 0.0:
        raise ValueError("data has no variance (every sample is the same): explained variance is undefined")
    return float(1.0 - ((x - x_hat) ** 2).sum() / total)


def shrinkage(sae: SAE, data: Any) -> float:
    """Mean ``||x_hat|| / ||x||`` over the samples of ``data`` that are not zero (1 = no shrinkage)."""
    x, x_hat = _pairs(sae, data)
    norms = x.norm(dim=1)
    keep = norms > 0
    if not bool(keep.any()):
        raise ValueError("every sample of data is zero: shrinkage is undefined")
    return float((x_hat.norm(dim=1)[keep] / norms[keep]).mean())


def evaluate_sae(sae: SAE, data: Any, true_features: Any = None, *, dead_rate: float = DEAD_RATE) -> dict:
    """Every metric above in one dict, with SAELens's names where they mean the same thing.

    Keys: ``sae_l0``, ``dead_latents`` (never active, a count), ``dead_latents_at_rate``
    (active on at most ``dead_rate`` of samples, a count; polylens's notebook
    convention), ``dead_rate``, ``shrinkage``, ``explained_variance``, and with
    ``true_features`` (n_true, dim) also ``mcc`` and ``mmcs``.
    """
    out = {
        "sae_l0": l0(sae, data),
        "dead_latents": int(dead_latents(sae, data, threshold=0).sum()),
        "dead_latents_at_rate": int(dead_latents(sae, data, threshold=dead_rate).sum()),
        "dead_rate": float(dead_rate),
        "shrinkage": shrinkage(sae, data),
        "explained_variance": explained_variance(sae, data),
    }
    if true_features is not None:
        out["mcc"] = mcc(sae, true_features)
        out["mmcs"] = mmcs(sae, true_features)
    return out

