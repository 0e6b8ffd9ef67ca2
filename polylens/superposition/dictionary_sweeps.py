"""Many small sparse autoencoders trained at once, for sliders that answer instantly.

    saes = train_sae_grid(data, n_latents=64, l1=[0.01, 0.1, 1.0], steps=1000)

Each SAE of the grid follows exactly the recipe of
:func:`polylens.superposition.sae.train_sae` (same initialisation for a given
seed, Adam, unit-norm decoder columns after every step, squared error summed
over dimensions plus ``l1`` times the L1 norm of the codes, each averaged over
the batch). The instances are stacked along a leading axis and trained in one
loop: Adam works elementwise, so stacking changes nothing but the speed
(six SAEs cost about as much as two trained one by one).

Nothing here is shipped as data: on one CPU core the notebook-05 grid trains
in a few seconds.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from polylens._checks import generator, numbers, seed_int, whole_number
from polylens.superposition.sae import SAE

__all__ = ["train_sae_grid"]


def _stack(data, n: int) -> torch.Tensor:
    if isinstance(data, (list, tuple)):
        x = torch.stack([torch.as_tensor(d).detach().float() for d in data])
    else:
        x = torch.as_tensor(data).detach().float()
        if x.ndim == 2:
            x = x.expand(n, -1, -1)
    if x.ndim != 3 or x.shape[1] < 1:
        raise ValueError(
            f"data must be (n_samples, dim) shared by every SAE, or one (n_samples, dim) per SAE; got {tuple(x.shape)}"
        )
    if x.shape[0] != n:
        raise ValueError(f"got {x.shape[0]} datasets for {n} SAEs (one l1 value each)")
    if not torch.isfinite(x).all():
        raise ValueError("data contains NaN or inf; clean it before training a dictionary")
    return x


def train_sae_grid(
    data,
    n_latents: int,
    l1: Sequence[float],
    steps: int = 1000,
    lr: float = 1e-3,
    batch_size: int = 256,
    seed: int = 0,
) -> list[SAE]:
    """Train one SAE per value of ``l1`` (and per dataset), all in one batched loop.

    Args:
        data: (n_samples, dim) shared by every SAE, or a list / (n_sae, n_samples, dim)
            tensor with one dataset per SAE (all the same shape).
        n_latents: dictionary size, the same for every SAE of the grid.
        l1: one L1 weight per SAE.

    Returns:
        ``len(l1)`` ordinary :class:`SAE` modules, in the order of ``l1``.
    """
    l1 = numbers(l1, "l1", low=0)
    n = len(l1)
    x = _stack(data, n)
    n_latents = whole_number(n_latents, "n_latents", low=1)
    steps = whole_number(steps, "steps", low=1)
    batch_size = whole_number(batch_size, "batch_size", low=1)
    seed = seed_int(seed)
    dim = x.shape[2]
    init = SAE(dim, n_latents, seed=seed)
    # Stacked parameters: (n, latents, dim), (n, latents), (n, dim, latents).
    w_enc = init.encoder.weight.detach().repeat(n, 1, 1).requires_grad_()
    b_enc = init.encoder.bias.detach().repeat(n, 1).requires_grad_()
    w_dec = init.decoder.weight.detach().repeat(n, 1, 1).requires_grad_()
    weights = torch.tensor(l1)[:, None]
    gen = generator(seed + 1)
    opt = torch.optim.Adam([w_enc, b_enc, w_dec], lr=lr)
    rows = torch.arange(n)[:, None]
    for _ in range(steps):
        idx = torch.randint(0, x.shape[1], (batch_size,), generator=gen)
        batch = x[rows, idx[None, :]]  # (n, batch, dim)
        c = torch.relu(torch.baddbmm(b_enc[:, None, :], batch, w_enc.transpose(1, 2)))
        recon = torch.bmm(c, w_dec.transpose(1, 2))
        loss_each = ((recon - batch) ** 2).sum(-1).mean(-1) + weights[:, 0] * c.abs().sum(-1).mean(-1)
        opt.zero_grad(set_to_none=True)
        loss_each.sum().backward()
        opt.step()
        with torch.no_grad():
            w_dec.div_(w_dec.norm(dim=1, keepdim=True).clamp(min=1e-8))
    saes = []
    for k in range(n):
        sae = SAE(dim, n_latents, seed=seed)
        with torch.no_grad():
            sae.encoder.weight.copy_(w_enc[k])
            sae.encoder.bias.copy_(b_enc[k])
            sae.decoder.weight.copy_(w_dec[k])
        saes.append(sae.eval())
    return saes
