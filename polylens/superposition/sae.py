"""Sparse dictionaries: take features back out of superposition.

A sparse autoencoder (SAE) learns an overcomplete dictionary of directions
(decoder columns, kept at unit norm) and a ReLU encoder whose codes are kept
sparse by an L1 penalty::

    c = ReLU(W_enc x + b_enc)      (batch, n_latents)
    x_hat = W_dec c                (batch, dim)
    loss = ||x - x_hat||^2 + l1 * ||c||_1     (each averaged over the batch)

On synthetic data made from known ground-truth features (Sharkey et al.,
"Taking features out of superposition with sparse autoencoders", 2022) the
learned dictionary is scored by mean max cosine similarity (MMCS).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm.auto import tqdm

from polylens._checks import ArrayLike, finite_number, generator, real_tensor, seed_int, whole_number
from polylens.shipped import sha256

__all__ = ["DEAD_RATE", "SAE", "checked_data", "dead_latents", "ground_truth_features", "l0", "mmcs",
           "sparse_activations", "train_sae", "unit_rows"]


# SAELens's file names for an SAE saved to a folder.
CFG_FILE, WEIGHTS_FILE = "cfg.json", "sae_weights.safetensors"

# A latent that fires on at most this fraction of samples counts as dead: one that
# fires on a handful of 8,192 inputs reconstructs nothing, though it is not exactly silent.
DEAD_RATE = 1e-3


def ground_truth_features(n_features: int, dim: int, seed: int = 0) -> torch.Tensor:
    """Random unit-norm feature directions: (n_features, dim), one per row."""
    n_features = whole_number(n_features, "n_features", low=1)
    dim = whole_number(dim, "dim", low=1)
    f = torch.randn(n_features, dim, generator=generator(seed))
    return f / f.norm(dim=1, keepdim=True)


def feature_probabilities(n_features: int, avg_active: float, decay: float) -> torch.Tensor:
    """p_i proportional to exp(-decay * i / n), scaled so sum p_i = avg_active: (n_features,)."""
    w = torch.exp(-decay * torch.arange(n_features, dtype=torch.float64) / n_features)
    return (avg_active * w / w.sum()).clamp(max=1.0).float()


def sparse_activations(
    n_samples: int,
    n_features: int,
    avg_active: float = 5.0,
    decay: float = 1.0,
    correlated: bool = False,
    seed: int = 0,
) -> torch.Tensor:
    """Sparse non-negative feature coefficients: (n_samples, n_features).

    Feature i is present with probability p_i that decays with its index
    (``decay=0``: all equal), so that on average ``avg_active`` features are
    present; a present feature's value is U[0, 1). With ``correlated=True``
    the presence of features is correlated through a Gaussian copula with a
    random (seeded) low-rank correlation matrix, so some features tend to
    appear together.

    Multiply by :func:`ground_truth_features` to get data:
    ``data = sparse_activations(...) @ ground_truth_features(...)``.
    """
    n_samples = whole_number(n_samples, "n_samples", low=1)
    n_features = whole_number(n_features, "n_features", low=1)
    avg_active = finite_number(avg_active, "avg_active")
    if not 0 < avg_active <= n_features:
        raise ValueError(f"avg_active must lie in (0, n_features], got {avg_active!r}")
    decay = finite_number(decay, "decay", low=0)
    gen = generator(seed)
    p = feature_probabilities(n_features, avg_active, decay)
    if correlated:
        factors = torch.randn(n_features, max(1, n_features // 8), generator=gen)
        cov = factors @ factors.T + torch.eye(n_features)
        std = cov.diagonal().sqrt()
        corr = cov / std[:, None] / std[None, :]
        z = torch.randn(n_samples, n_features, generator=gen) @ torch.linalg.cholesky(corr).T
        u = 0.5 * (1 + torch.erf(z / math.sqrt(2)))  # normal CDF: uniform marginals
    else:
        u = torch.rand(n_samples, n_features, generator=gen)
    return (u < p) * torch.rand(n_samples, n_features, generator=gen)


class SAE(nn.Module):
    """A sparse autoencoder with untied weights and unit-norm decoder columns.

    Modules: ``encoder`` (Linear dim -> n_latents), ``relu`` (ReLU),
    ``decoder`` (Linear n_latents -> dim, no bias).

    Shapes: ``encode`` (batch, dim) -> (batch, n_latents); ``decode`` the
    reverse; ``forward`` (batch, dim) -> (batch, dim) reconstruction.
    """

    def __init__(self, dim: int, n_latents: int, seed: int = 0) -> None:
        super().__init__()
        dim = whole_number(dim, "dim", low=1)
        n_latents = whole_number(n_latents, "n_latents", low=1)
        gen = generator(seed)
        self.encoder = nn.Linear(dim, n_latents)
        self.relu = nn.ReLU()
        self.decoder = nn.Linear(n_latents, dim, bias=False)
        with torch.no_grad():
            atoms = torch.randn(dim, n_latents, generator=gen)
            self.decoder.weight.copy_(atoms / atoms.norm(dim=0, keepdim=True))
            # Start the encoder as the decoder's transpose; they train apart.
            self.encoder.weight.copy_(self.decoder.weight.T)
            self.encoder.bias.zero_()

    @property
    def dictionary(self) -> torch.Tensor:
        """Learned atoms, one unit-norm direction per row: (n_latents, dim)."""
        return self.decoder.weight.detach().T

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.encoder(x))

    def decode(self, c: torch.Tensor) -> torch.Tensor:
        return self.decoder(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def save(self, folder: str | Path, *, overwrite: bool = False) -> Path:
        """Write the SAE as SAELens stores one: ``cfg.json`` and ``sae_weights.safetensors`` in ``folder``.

        Tensors, with SAELens's names and shapes (its "standard" ReLU architecture):
        ``W_enc`` (d_in, d_sae), ``b_enc`` (d_sae,), ``W_dec`` (d_sae, d_in) and
        ``b_dec`` (d_in,), all zeros here (this SAE has no decoder bias, so
        ``apply_b_dec_to_input`` is false and nothing is subtracted). ``cfg.json``
        holds ``d_in``, ``d_sae``, ``architecture``, ``apply_b_dec_to_input``,
        ``dtype``, ``normalize_activations`` and, for polylens's own check on
        loading, the weights file's sha256. No pickle. Existing files are never
        replaced unless ``overwrite=True``. Returns the folder.
        """
        folder = Path(folder)
        files = [folder / CFG_FILE, folder / WEIGHTS_FILE]
        if not overwrite and any(f.exists() for f in files):
            raise FileExistsError(f"{folder} already holds an SAE ({', '.join(f.name for f in files if f.exists())}); "
                                  "pass overwrite=True to replace it, or another folder")
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {
            "W_enc": self.encoder.weight.detach().T.contiguous().clone(),
            "b_enc": self.encoder.bias.detach().contiguous().clone(),
            "W_dec": self.decoder.weight.detach().T.contiguous().clone(),
            "b_dec": torch.zeros(self.decoder.out_features, dtype=self.decoder.weight.dtype),
        }
        save_file(tensors, str(files[1]))
        cfg = {"d_in": self.encoder.in_features, "d_sae": self.encoder.out_features, "architecture": "standard",
               "apply_b_dec_to_input": False, "dtype": str(self.decoder.weight.dtype).replace("torch.", ""),
               "normalize_activations": "none", "polylens_weights_sha256": sha256(files[1])}
        files[0].write_text(json.dumps(cfg, indent=2) + "\n")
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> SAE:
        """An SAE from ``folder``'s ``cfg.json`` and ``sae_weights.safetensors`` (as :meth:`save` or SAELens writes them).

        Refuses, with a ``ValueError`` saying why: a missing or unreadable file, a
        sha256 that does not match (when ``cfg.json`` records one), another
        architecture, tensors of the wrong shape, NaN or inf, or a nonzero
        ``b_dec`` (this SAE has no decoder bias to hold it).
        """
        folder = Path(folder)
        cfg_path, weights_path = folder / CFG_FILE, folder / WEIGHTS_FILE
        for path in (cfg_path, weights_path):
            if not path.is_file():
                raise ValueError(f"{path} is missing; an SAE folder holds {CFG_FILE} and {WEIGHTS_FILE}")
        try:
            cfg = json.loads(cfg_path.read_text())
            d_in, d_sae = whole_number(cfg["d_in"], "d_in", low=1), whole_number(cfg["d_sae"], "d_sae", low=1)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{cfg_path} is not an SAE config with whole numbers d_in and d_sae ({err})") from None
        if cfg.get("architecture", "standard") != "standard":
            raise ValueError(f"{folder} holds a {cfg['architecture']!r} SAE; polylens's SAE is the standard ReLU one")
        want = cfg.get("polylens_weights_sha256")
        if want is not None and sha256(weights_path) != want:
            raise ValueError(f"{weights_path} does not match the sha256 in {CFG_FILE}: it was changed or damaged")
        try:
            tensors = load_file(str(weights_path))
        except Exception as err:  # safetensors raises its own error type for a damaged header
            raise ValueError(f"{weights_path} is not a readable safetensors file ({err})") from None
        shapes = {"W_enc": (d_in, d_sae), "b_enc": (d_sae,), "W_dec": (d_sae, d_in), "b_dec": (d_in,)}
        for name, shape in shapes.items():
            if name not in tensors or tuple(tensors[name].shape) != shape:
                got = tuple(tensors[name].shape) if name in tensors else "missing"
                raise ValueError(f"{weights_path}: {name} must have shape {shape} for d_in={d_in}, d_sae={d_sae}; "
                                 f"got {got}")
            if not torch.isfinite(tensors[name]).all():
                raise ValueError(f"{weights_path}: {name} holds NaN or inf")
        if bool(tensors["b_dec"].any()):
            raise ValueError(f"{weights_path} has a nonzero b_dec; polylens's SAE has no decoder bias, so it would "
                             "reconstruct differently. Load it with SAELens instead")
        sae = cls(d_in, d_sae)
        with torch.no_grad():
            sae.encoder.weight.copy_(tensors["W_enc"].T)
            sae.encoder.bias.copy_(tensors["b_enc"])
            sae.decoder.weight.copy_(tensors["W_dec"].T)
        return sae

    @torch.no_grad()
    def normalize_decoder(self) -> None:
        # Without this the L1 penalty is dodged by shrinking codes and growing atoms.
        w = self.decoder.weight
        w.div_(w.norm(dim=0, keepdim=True).clamp(min=1e-8))


def _data(data: ArrayLike) -> torch.Tensor:
    t = real_tensor(data, "data", dtype=None).detach().float()
    if t.ndim != 2 or t.shape[0] < 1:
        raise ValueError(f"data must have shape (n_samples, dim); got {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError("data contains NaN or inf; clean it before training a dictionary")
    return t


def train_sae(
    data: ArrayLike,
    n_latents: int,
    l1: float = 0.3,
    steps: int = 3000,
    lr: float = 1e-3,
    batch_size: int = 256,
    seed: int = 0,
    progress: bool = True,
) -> SAE:
    """Train a sparse autoencoder on rows of ``data`` (n_samples, dim).

    Minibatches are drawn from ``data`` with replacement; after every Adam
    step the decoder columns are renormalised to unit norm.

    Args:
        l1: weight of the L1 penalty on latent activations. Too small and the
            codes are dense (atoms mix features); too large and latents die.
            The default suits unit-norm features with values in [0, 1) and
            a few active per sample; sweep it for other data.
    """
    x = _data(data)
    n_latents = whole_number(n_latents, "n_latents", low=1)
    steps = whole_number(steps, "steps", low=1)
    batch_size = whole_number(batch_size, "batch_size", low=1)
    l1 = finite_number(l1, "l1", low=0)
    lr = finite_number(lr, "lr", above=0)
    seed = seed_int(seed)
    sae = SAE(x.shape[1], n_latents, seed=seed)
    gen = generator(seed + 1)
    opt = torch.optim.Adam(sae.parameters(), lr=lr)
    # Training works even when called inside torch.no_grad() (e.g. from an evaluation).
    with torch.enable_grad():
        for _ in tqdm(range(steps), disable=not progress, desc="SAE", leave=False):
            batch = x[torch.randint(0, x.shape[0], (batch_size,), generator=gen)]
            c = sae.encode(batch)
            recon = ((sae.decode(c) - batch) ** 2).sum(dim=1).mean()
            loss = recon + l1 * c.abs().sum(dim=1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sae.normalize_decoder()
    return sae


def _rows(name: str, value: ArrayLike | SAE) -> torch.Tensor:
    t = value.dictionary if isinstance(value, SAE) else real_tensor(value, name, dtype=None).detach().float()
    if t.ndim != 2:
        raise ValueError(f"{name} must have shape (n_atoms, dim), one direction per row; got {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or inf")
    return t


def unit_rows(name: str, value: ArrayLike | SAE) -> torch.Tensor:
    """(n, dim) directions as unit rows (an :class:`SAE` gives its atoms), checked to be finite."""
    t = _rows(name, value)
    return t / t.norm(dim=1, keepdim=True).clamp(min=1e-12)


def mmcs(learned: ArrayLike | SAE, true: ArrayLike) -> float:
    """Mean max cosine similarity: for each *true* feature, the largest
    (signed) cosine with any learned atom, averaged over true features.

    This is Sharkey et al.'s convention: 1 means every true feature has a
    learned atom pointing its way. Signed, because SAE codes are
    non-negative, so an atom at -f cannot express f.

    Args:
        learned: (n_learned, dim) atoms, or an :class:`SAE`.
        true: (n_true, dim) ground-truth directions.
    """
    a, b = unit_rows("learned", learned), unit_rows("true", true)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"learned atoms have dim {a.shape[1]} but true features have dim {b.shape[1]}")
    return float((b @ a.T).max(dim=1).values.mean())


def checked_data(sae: SAE, data: ArrayLike) -> torch.Tensor:
    """``data`` checked to fit ``sae``: (n_samples, dim) in the SAE's dtype, finite."""
    if not isinstance(sae, SAE):
        raise TypeError(f"sae must be an SAE (from train_sae), got {type(sae).__name__}")
    x = _data(data)
    if x.shape[1] != sae.encoder.in_features:
        raise ValueError(
            f"data has dim {x.shape[1]} but this SAE was trained on dim {sae.encoder.in_features}; "
            "pass data of the kind it was trained on"
        )
    return x.to(sae.encoder.weight.dtype)


@torch.no_grad()
def dead_latents(sae: SAE, data: ArrayLike, threshold: float = DEAD_RATE) -> torch.Tensor:
    """Latents that fire on at most a ``threshold`` fraction of ``data``'s samples: (n_latents,) bool.

    Args:
        sae: a trained :class:`SAE`.
        data: (n_samples, dim) inputs of the kind the SAE was trained on.
        threshold: a latent is dead when it is active (code > 0) on at most
            this fraction of samples. The default, 1e-3, calls a latent that
            fires on 8 of 8,192 samples dead; ``threshold=0`` keeps only the
            latents that never fire at all.
    """
    threshold = finite_number(threshold, "threshold", low=0)
    if threshold >= 1:
        raise ValueError(f"threshold is a fraction of samples in [0, 1), got {threshold!r}; "
                         "e.g. 1e-3 for 'fires on at most 1 in 1,000 samples', 0 for 'never fires'")
    x = checked_data(sae, data)
    rate = (sae.encode(x) > 0).float().mean(dim=0)
    return rate <= threshold


@torch.no_grad()
def l0(sae: SAE, data: ArrayLike) -> float:
    """Mean number of latents active per sample of ``data`` (n_samples, dim)."""
    x = checked_data(sae, data)
    return float((sae.encode(x) > 0).sum(dim=1).float().mean())
