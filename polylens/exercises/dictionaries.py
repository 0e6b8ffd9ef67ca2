"""Checks for notebook 05 (sparse dictionaries and feature geometry)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from polylens.exercises import ExerciseFailed, exercise
from polylens.superposition.sae import SAE


def mmcs(learned: torch.Tensor, true: torch.Tensor) -> float:
    """Reference answer: mean over true features of the largest signed cosine with any learned atom.

    learned (n_learned, dim), true (n_true, dim), one direction per row; neither need be unit norm.
    """
    a = learned / learned.norm(dim=1, keepdim=True)
    b = true / true.norm(dim=1, keepdim=True)
    return float((b @ a.T).max(dim=1).values.mean())


def _number(got, what: str) -> float:
    if isinstance(got, torch.Tensor):
        if got.numel() != 1:
            raise ExerciseFailed(
                f"you returned a tensor of shape {tuple(got.shape)}; {what} is one number. "
                "Did you forget the final .mean()?"
            )
        got = got.item()
    if not isinstance(got, (int, float)):
        raise ExerciseFailed(f"return a number (a float), not {type(got).__name__}")
    return float(got)


def _mmcs_case() -> tuple[torch.Tensor, torch.Tensor]:
    """Six true features in 8 dimensions; ten learned atoms of mixed lengths.

    Built so that every common mistake gives a different number: atoms are
    not unit norm, there are more atoms than features, one feature is only
    matched by an atom pointing the *opposite* way, and some atoms match nothing.
    """
    gen = torch.Generator().manual_seed(5)
    true = torch.randn(6, 8, generator=gen)
    true = true / true.norm(dim=1, keepdim=True)
    noisy = true[:5] + 0.35 * torch.randn(5, 8, generator=gen)
    learned = torch.cat([noisy, -true[5:6], torch.randn(4, 8, generator=gen)])
    learned = learned * torch.linspace(0.3, 3.0, len(learned))[:, None]  # decoder columns of mixed norm
    return learned, true


@exercise("mmcs", "Mean max cosine similarity", solution=mmcs)
def check_mmcs(fn: Callable) -> str:
    """``fn(learned, true)`` must return MMCS as a float (Sharkey et al.'s convention)."""
    learned, true = _mmcs_case()
    want = mmcs(learned, true)
    try:
        got = fn(learned.clone(), true.clone())
    except RuntimeError as err:
        if "shape" in str(err) or "size" in str(err):
            raise ExerciseFailed(
                f"the matrix shapes did not fit ({err}). Both arguments hold one direction per *row*: learned is "
                f"(n_learned, dim) = {tuple(learned.shape)}, true is (n_true, dim) = {tuple(true.shape)}; the "
                "cosine matrix is true @ learned.T, shape (n_true, n_learned)"
            ) from None
        raise
    got = _number(got, "MMCS")
    if abs(got - want) < 1e-4:
        return f"MMCS {want:.3f} here: five features have a close atom, the sixth only an opposite one."
    a, b = learned / learned.norm(dim=1, keepdim=True), true / true.norm(dim=1, keepdim=True)
    cos = b @ a.T
    mistakes = [
        ((true @ learned.T).max(dim=1).values.mean(),
         "you took dot products with atoms that are not unit length, so long atoms win and the numbers are not "
         "cosines (your value can exceed 1). Normalise every learned atom (row) to unit norm first: "
         "learned / learned.norm(dim=1, keepdim=True); a trained SAE keeps its decoder columns unit norm, but "
         "a dictionary handed to you may not be"),
        (cos.max(dim=0).values.mean(),
         "you took the max over the wrong axis: that is, for each *learned atom*, its best true feature, averaged "
         "over atoms. MMCS asks the other question: for each *true feature*, is there an atom pointing its way? "
         "With cos = true @ learned.T of shape (n_true, n_learned), take cos.max(dim=1)"),
        (cos.abs().max(dim=1).values.mean(),
         "you took the absolute value of the cosines. An SAE's codes are never negative, so an atom pointing at "
         "-f cannot express feature f; MMCS uses the signed cosine"),
        (cos.mean(),
         "you averaged every cosine instead of taking, for each true feature, its *best* (max) atom first"),
        (cos.max(),
         "you returned the single largest cosine; MMCS averages each true feature's best cosine"),
    ]
    for value, message in mistakes:
        if abs(got - float(value)) < 1e-4:
            raise ExerciseFailed(message)
    raise ExerciseFailed(
        f"you returned {got:.4f}; MMCS here is {want:.4f}. Steps: unit-normalise the rows of both matrices, "
        "cos = true @ learned.T, best atom per true feature with .max(dim=1).values, then the mean"
    )


def sae_loss(sae: SAE, x: torch.Tensor, l1: float) -> torch.Tensor:
    """Reference answer: squared error summed over dimensions plus l1 times the codes' L1 norm, batch means."""
    c = sae.encode(x)
    recon = ((sae.decode(c) - x) ** 2).sum(dim=1).mean()
    return recon + l1 * c.abs().sum(dim=1).mean()


@exercise("sae_loss", "The sparse autoencoder's loss", solution=sae_loss)
def check_sae_loss(fn: Callable) -> str:
    """``fn(sae, x, l1)`` must return the scalar training loss of :func:`polylens.superposition.train_sae`."""
    sae = SAE(6, 12, seed=3)
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        sae.encoder.bias.copy_(0.3 * torch.randn(12, generator=gen))
    x = torch.randn(40, 6, generator=gen)
    l1 = 0.25
    with torch.no_grad():
        want = float(sae_loss(sae, x, l1))
        got_t = fn(sae, x.clone(), l1)
    got = _number(got_t, "the loss")
    if abs(got - want) < 1e-4 * max(1.0, abs(want)):
        return "this is what train_sae minimises, one Adam step at a time."
    with torch.no_grad():
        c = sae.encode(x)
        pre = sae.encoder(x)
        err = sae.decode(c) - x
        recon = (err**2).sum(1).mean()
        sparsity = c.abs().sum(1).mean()
        mistakes = [
            ((err**2).mean() + l1 * sparsity,
             "your reconstruction term averages the squared error over dimensions as well as over the batch "
             "(.mean() of everything). Sum the squared error over the dimensions of each input, then average "
             "over the batch: ((x_hat - x) ** 2).sum(dim=1).mean()"),
            (recon + l1 * c.abs().mean(),
             "your sparsity term averages over latents as well as over the batch. The L1 penalty is each "
             "input's *sum* of |code| over latents, averaged over the batch: c.abs().sum(dim=1).mean()"),
            (recon, "you left out the sparsity penalty: add l1 * (mean over the batch of the codes' L1 norm)"),
            (recon + l1 * pre.abs().sum(1).mean(),
             "your L1 penalty is on the encoder's pre-activations; it belongs on the codes *after* the ReLU, "
             "c = sae.encode(x) (never negative)"),
            (recon + l1 * sae.decoder.weight.abs().sum(),
             "your L1 penalty is on the decoder's weights; it belongs on the codes c = sae.encode(x): sparse "
             "*activations*, not sparse weights"),
            (recon + l1 * sae.encoder.weight.abs().sum(),
             "your L1 penalty is on the encoder's weights; it belongs on the codes c = sae.encode(x)"),
            (err.norm(dim=1).mean() + l1 * sparsity,
             "your reconstruction term is the error's length, not its square: use ((x_hat - x) ** 2).sum(dim=1)"),
            (recon + l1 * (c**2).sum(1).mean(),
             "you squared the codes: that is an L2 penalty, which shrinks codes but does not make them sparse. "
             "Use c.abs() (or just c, which is never negative)"),
            (recon + l1 * sparsity**2, "square nothing in the sparsity term: l1 * c.abs().sum(dim=1).mean()"),
        ]
    for value, message in mistakes:
        if abs(got - float(value)) < 1e-4 * max(1.0, abs(float(value))):
            raise ExerciseFailed(message)
    raise ExerciseFailed(
        f"you returned {got:.4f}; the loss here is {want:.4f} (reconstruction {float(recon):.4f} + "
        f"{l1} x sparsity {float(sparsity):.4f}). Encode with sae.encode, decode with sae.decode"
    )


def latent_kind(atom: torch.Tensor, objects: torch.Tensor, conditions: torch.Tensor, threshold: float = 0.9) -> str:
    """Reference answer: "atomic", "combination" or "other" for one dictionary atom (dim,).

    Compared by cosine with every object and condition (rows of (n, dim)) and
    with every normalised sum object + condition; the best match wins if it
    reaches ``threshold`` (ties go to atomic).
    """
    a = atom / atom.norm()
    singles = torch.cat([objects, conditions])
    singles = singles / singles.norm(dim=1, keepdim=True)
    combos = (objects[:, None, :] + conditions[None, :, :]).flatten(0, 1)
    combos = combos / combos.norm(dim=1, keepdim=True)
    best_single, best_combo = float((singles @ a).max()), float((combos @ a).max())
    if best_single >= best_combo and best_single >= threshold:
        return "atomic"
    if best_combo > best_single and best_combo >= threshold:
        return "combination"
    return "other"


@exercise("latent_kind", "Atomic or combination?", solution=latent_kind)
def check_latent_kind(fn: Callable) -> str:
    """``fn(atom, objects, conditions)`` must name the kind of one atom."""
    gen = torch.Generator().manual_seed(11)
    objects = torch.randn(8, 16, generator=gen)
    objects = objects / objects.norm(dim=1, keepdim=True)
    conditions = torch.randn(8, 16, generator=gen)
    conditions = conditions / conditions.norm(dim=1, keepdim=True)
    noise = 0.05 * torch.randn(16, generator=gen)
    cases = [
        (objects[5] + noise, "an atom pointing at object 5 (plus a little noise) is atomic. Did you compare it with "
                             "object + condition sums without normalising them? Those sums are about 1.4 long, so "
                             "their dot products beat the true single match; divide each sum by its norm"),
        (0.4 * objects[2], "an atom along object 2 but only 0.4 long is atomic; your answer depends on its length: "
                           "normalise the atom first, cosines do not care how long a vector is"),
        (3.0 * (objects[1] + conditions[1]), "3 (o1 + c1) is a combination latent (the 'sunny duck'): it must "
                                             "be compared with the normalised sums object + condition, not only "
                                             "with single objects and conditions (its cosine with o1 is only ~0.7)"),
        (0.8 * objects[3] + 0.6 * conditions[6] + noise,
         "0.8 o3 + 0.6 c6 is closest to the combination (o3 + c6)/|o3 + c6| (cosine ~0.99); every pair of one object "
         "and one condition counts as a combination, not only the partners"),
        (-objects[0], "-o0 points *away* from object 0: its codes are never negative, so it cannot express o0. "
                      "Use signed cosines, not absolute values: this one is 'other'"),
        (torch.randn(16, generator=gen), "a random direction matches nothing well: it should be 'other' (best "
                                         "cosine below the 0.9 threshold)"),
        (conditions[4] + noise, "an atom pointing at condition 4 is atomic: compare with conditions as well as "
                                "objects"),
    ]
    for atom, message in cases:
        want = latent_kind(atom, objects, conditions)
        got = fn(atom.clone(), objects.clone(), conditions.clone())
        if not isinstance(got, str):
            raise ExerciseFailed(f"return one of the strings 'atomic', 'combination', 'other'; got {got!r}")
        if got != want:
            raise ExerciseFailed(f"you said {got!r}, it is {want!r}: {message}")
    return "this is how atomic_vs_combination sorts a whole dictionary's latents in the explorer above."
