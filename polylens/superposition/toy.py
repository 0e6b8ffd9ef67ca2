"""Toy models of superposition (Elhage et al. 2022), many instances at once.

A toy model squeezes ``n_features`` sparse features into ``n_hidden < n_features``
dimensions and reads them back out through a ReLU::

    h  = W x                     W: (hidden, features)
    x' = ReLU(W^T h + b)         b: (features,)

Every instance (one per sparsity or importance setting, or one per seed) is a
slice of one batched tensor ``W`` of shape (instances, hidden, features), so a
whole sweep trains in a single loop of ``torch.einsum`` calls.

The ``task="abs"`` variant is the paper's "computation in superposition"
model: features take values in [-1, 1], the hidden layer has its own ReLU and
untied weights, and the target is ``|x|``::

    h = ReLU(W x + b_hidden);    y = ReLU(W_out h + b)
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm.auto import tqdm

from polylens._checks import ArrayLike, finite_number, generator, per_instance_features, seed_int, whole_number

__all__ = ["ToyModel", "generate_features", "hidden_to_output", "train_abs_tms", "train_tms"]

CORRELATIONS = ("none", "correlated", "anticorrelated")
TASKS = ("identity", "abs")
OUTPUT_ACTIVATIONS = ("relu", "linear")
EVAL_SAMPLES = 8192


# ----------------------------------------------------------------------------- data


def _check_probability(p: torch.Tensor, correlation: str) -> torch.Tensor:
    if (p < 0).any() or (p > 1).any():
        raise ValueError(
            f"feature_probability must lie in [0, 1] (it is the chance a feature is non-zero); "
            f"got values from {p.min().item():g} to {p.max().item():g}"
        )
    if correlation == "anticorrelated" and (p > 0.5).any():
        raise ValueError(
            "anticorrelated pairs are active with probability 2p, so feature_probability must be <= 0.5"
        )
    return p


def _sample(
    n_samples: int,
    p: torch.Tensor,
    correlation: str,
    signed: bool,
    gen: torch.Generator,
) -> torch.Tensor:
    """Features of shape (n_samples, instances, features) for p of shape (instances, features)."""
    shape = (n_samples, *p.shape)
    if correlation == "none":
        # One uniform draw gives both: u < p happens with probability p, and
        # given that, u / p is again U[0, 1). Half the random numbers of
        # drawing presence and value apart, and sampling dominates big models.
        u = torch.rand(shape, generator=gen)
        values = torch.where(u < p, u / p.clamp(min=1e-30), 0.0)
        return 2 * values - (values > 0).float() if signed else values
    values = torch.rand(shape, generator=gen)
    if signed:
        values = 2 * values - 1
    # Features come in pairs (0, 1), (2, 3), ...; each pair shares one draw.
    pair_shape = (n_samples, p.shape[0], p.shape[1] // 2)
    p_pair = p[:, 0::2]
    if correlation == "correlated":
        on = torch.rand(pair_shape, generator=gen) < p_pair
        present = torch.stack([on, on], dim=-1)
    else:
        on = torch.rand(pair_shape, generator=gen) < 2 * p_pair
        first = torch.rand(pair_shape, generator=gen) < 0.5
        present = torch.stack([on & first, on & ~first], dim=-1)
    present = present.reshape(shape)
    return values * present


def generate_features(
    n_samples: int,
    n_features: int,
    feature_probability: ArrayLike,
    n_instances: int = 1,
    correlation: str = "none",
    signed: bool = False,
    seed: int = 0,
) -> torch.Tensor:
    """Sparse synthetic features for toy models.

    Each feature is U[0, 1) (or U[-1, 1) when ``signed``) with probability p,
    else 0. ``correlation`` follows the paper's section on correlated features:

    - ``"none"``: every feature is present independently;
    - ``"correlated"``: features (0, 1), (2, 3), ... come in pairs that are
      always present together (values still independent);
    - ``"anticorrelated"``: pairs that never co-occur (the pair is active with
      probability 2p, then exactly one of the two is on).

    Args:
        feature_probability: scalar, (instances,) or (instances, features).

    Returns:
        (n_samples, n_instances, n_features) float32 tensor.
    """
    n_samples = whole_number(n_samples, "n_samples", low=1)
    n_features = whole_number(n_features, "n_features", low=1)
    n_instances = whole_number(n_instances, "n_instances", low=1)
    if correlation not in CORRELATIONS:
        raise ValueError(f"correlation must be one of {CORRELATIONS}, got {correlation!r}")
    if correlation != "none" and n_features % 2:
        raise ValueError(f"{correlation} features come in pairs, so n_features must be even; got {n_features}")
    p = per_instance_features(feature_probability, "feature_probability", n_instances, n_features, "instances")
    _check_probability(p, correlation)
    return _sample(n_samples, p, correlation, signed, generator(seed))


# ----------------------------------------------------------------------------- model


class ToyModel(nn.Module):
    """A batch of toy models of superposition.

    Attributes:
        W: (instances, hidden, features); column ``W[k, :, i]`` is where
            instance k puts feature i in its hidden space.
        b: (instances, features) output bias.
        W_out, b_hidden: only for ``task="abs"``: (instances, features, hidden)
            read-out weights and (instances, hidden) hidden bias.
        feature_probability, importance: (instances, features).
        loss: (instances,) importance-weighted MSE on a fresh seeded batch
            after training (NaN before).
    """

    def __init__(
        self,
        n_features: int,
        n_hidden: int,
        n_instances: int = 8,
        *,
        feature_probability: ArrayLike = 0.05,
        importance: ArrayLike = 1.0,
        activation: str = "relu",
        task: str = "identity",
        correlation: str = "none",
        seed: int = 0,
    ) -> None:
        super().__init__()
        n_features, n_hidden = whole_number(n_features, "n_features", low=1), whole_number(n_hidden, "n_hidden", low=1)
        n_instances = whole_number(n_instances, "n_instances", low=1)
        if activation not in OUTPUT_ACTIVATIONS:
            raise ValueError(f"activation must be one of {OUTPUT_ACTIVATIONS}, got {activation!r}")
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}")
        if correlation not in CORRELATIONS:
            raise ValueError(f"correlation must be one of {CORRELATIONS}, got {correlation!r}")
        if correlation != "none" and n_features % 2:
            raise ValueError(f"{correlation} features come in pairs, so n_features must be even; got {n_features}")
        p = per_instance_features(feature_probability, "feature_probability", n_instances, n_features, "instances")
        imp = per_instance_features(importance, "importance", n_instances, n_features, "features")
        _check_probability(p, correlation)
        if (imp < 0).any():
            raise ValueError("importance must be non-negative (it weights each feature's squared error)")
        self.activation, self.task, self.correlation = activation, task, correlation
        self.register_buffer("feature_probability", p)
        self.register_buffer("importance", imp)
        self.register_buffer("loss", torch.full((n_instances,), math.nan))

        gen = generator(seed)
        # Xavier-normal per instance: std sqrt(2 / (fan_in + fan_out)).
        std = math.sqrt(2.0 / (n_features + n_hidden))
        self.W = nn.Parameter(std * torch.randn(n_instances, n_hidden, n_features, generator=gen))
        self.b = nn.Parameter(torch.zeros(n_instances, n_features))
        if task == "abs":
            self.W_out = nn.Parameter(std * torch.randn(n_instances, n_features, n_hidden, generator=gen))
            self.b_hidden = nn.Parameter(torch.zeros(n_instances, n_hidden))

    @property
    def shape(self) -> tuple[int, int, int]:
        """(instances, hidden, features)."""
        return tuple(self.W.shape)

    def _check_x(self, x: torch.Tensor) -> torch.Tensor:
        n_inst, _, n_feat = self.W.shape
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch tensor (batch, instances, features), got {type(x).__name__}")
        if x.ndim != 3 or x.shape[1:] != (n_inst, n_feat):
            raise ValueError(
                f"x must have shape (batch, instances, features) = (batch, {n_inst}, {n_feat}); "
                f"got {tuple(x.shape)}. For one instance k, build x with x[:, k] set."
            )
        return x.to(self.W.dtype)

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, instances, features) -> (batch, instances, hidden).

        For ``task="abs"`` this is after the hidden ReLU.
        """
        h = torch.einsum("ihf,bif->bih", self.W, self._check_x(x))
        return torch.relu(h + self.b_hidden) if self.task == "abs" else h

    def output_from_hidden(self, h: torch.Tensor) -> torch.Tensor:
        """(batch, instances, hidden) -> (batch, instances, features)."""
        if self.task == "abs":
            pre = torch.einsum("ifh,bih->bif", self.W_out, h)
        else:
            pre = torch.einsum("ihf,bih->bif", self.W, h)
        pre = pre + self.b
        return torch.relu(pre) if self.activation == "relu" else pre

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, instances, features) -> (batch, instances, features)."""
        return self.output_from_hidden(self.hidden(x))

    def target(self, x: torch.Tensor) -> torch.Tensor:
        return x.abs() if self.task == "abs" else x

    def loss_per_instance(self, x: torch.Tensor) -> torch.Tensor:
        """Importance-weighted MSE, averaged over batch and features: (instances,)."""
        err = (self.forward(x) - self.target(x)) ** 2
        return (self.importance * err).mean(dim=(0, 2))

    def sample(self, n_samples: int, gen: torch.Generator) -> torch.Tensor:
        """Draw training data with this model's probabilities: (n_samples, instances, features)."""
        return _sample(n_samples, self.feature_probability, self.correlation, self.task == "abs", gen)

    # ------------------------------------------------------------------ files

    def save(self, path: str | Path) -> None:
        """Write weights and settings to a ``.safetensors`` file (no pickle)."""
        tensors = {k: v.detach().contiguous() for k, v in self.state_dict().items()}
        meta = {"activation": self.activation, "task": self.task, "correlation": self.correlation}
        save_file(tensors, str(path), metadata=meta)

    @classmethod
    def load(cls, path: str | Path) -> ToyModel:
        """Read a model written by :meth:`save`."""
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
        n_inst, n_hidden, n_feat = tensors["W"].shape
        model = cls(
            n_feat,
            n_hidden,
            n_inst,
            feature_probability=tensors["feature_probability"],
            importance=tensors["importance"],
            activation=meta.get("activation", "relu"),
            task=meta.get("task", "identity"),
            correlation=meta.get("correlation", "none"),
        )
        model.load_state_dict(tensors)
        return model


# ----------------------------------------------------------------------------- training


def _train(model: ToyModel, steps: int, lr: float, batch_size: int, seed: int, progress: bool) -> ToyModel:
    steps = whole_number(steps, "steps", low=1)
    batch_size = whole_number(batch_size, "batch_size", low=1)
    lr = finite_number(lr, "lr", above=0)
    seed = seed_int(seed)
    gen = generator(seed + 1)  # seed itself drew the initial weights
    # AdamW with torch's default weight decay (0.01), as in the paper's notebook.
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    for _ in tqdm(range(steps), disable=not progress, desc="toy models", leave=False):
        # Instances are independent, so summing their losses trains each on its own.
        loss = model.loss_per_instance(model.sample(batch_size, gen)).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        eval_gen = generator(seed + 2)
        model.loss.copy_(model.loss_per_instance(model.sample(EVAL_SAMPLES, eval_gen)))
    return model


def train_tms(
    n_features: int,
    n_hidden: int,
    feature_probability: ArrayLike,
    importance: ArrayLike | None = None,
    n_instances: int = 8,
    steps: int = 2000,
    lr: float = 1e-2,
    batch_size: int = 1024,
    seed: int = 0,
    activation: str = "relu",
    progress: bool = True,
    correlation: str = "none",
) -> ToyModel:
    """Train ``n_instances`` toy models ``x' = ReLU(W^T W x + b)`` at once.

    Args:
        feature_probability: chance each feature is non-zero. A scalar, one
            value per instance (instances,), or (instances, features).
        importance: weight of each feature's squared error. None (all 1), a
            scalar, one value per *feature* (features,) such as
            ``0.9 ** torch.arange(n)``, or (instances, features).
        activation: ``"relu"`` (the paper's model) or ``"linear"`` (no ReLU,
            the baseline that cannot use superposition).
        correlation: ``"none"``, ``"correlated"`` or ``"anticorrelated"``
            feature pairs (see :func:`generate_features`).
        seed: initial weights and every training batch.

    Returns:
        A :class:`ToyModel` with ``W`` (instances, hidden, features), ``b``
        (instances, features) and ``loss`` (instances,) measured on a fresh
        batch of 8192 samples after training.
    """
    model = ToyModel(
        n_features,
        n_hidden,
        n_instances,
        feature_probability=feature_probability,
        importance=1.0 if importance is None else importance,
        activation=activation,
        correlation=correlation,
        seed=seed,
    )
    return _train(model, steps, lr, batch_size, seed, progress)


def train_abs_tms(
    n_features: int,
    n_hidden: int,
    feature_probability: ArrayLike,
    importance: ArrayLike | None = None,
    n_instances: int = 8,
    steps: int = 5000,
    lr: float = 1e-3,
    batch_size: int = 1024,
    seed: int = 0,
    progress: bool = True,
) -> ToyModel:
    """Train the paper's absolute-value model: ``y = ReLU(W_out ReLU(W x + b_h) + b) ~ |x|``.

    Features are U[-1, 1) with probability p, else 0. ``n_hidden`` is the
    number of hidden ReLU neurons; when it is smaller than ``n_features`` the
    model must compute in superposition. Arguments as in :func:`train_tms`.
    """
    model = ToyModel(
        n_features,
        n_hidden,
        n_instances,
        feature_probability=feature_probability,
        importance=1.0 if importance is None else importance,
        task="abs",
        seed=seed,
    )
    return _train(model, steps, lr, batch_size, seed, progress)


def hidden_to_output(model: ToyModel, instance: int) -> nn.Sequential:
    """The read-out of one instance as a plain module: hidden -> features.

    Returns ``nn.Sequential(Linear(hidden, features), ReLU())`` with weight
    ``W[instance].T`` (``W_out[instance]`` for ``task="abs"``) and bias
    ``b[instance]``, so region code such as ``polylens.regions.slice_regions``
    can draw the polytopes the output ReLU cuts the hidden space into. The
    ReLU is an ``nn.Identity`` for ``activation="linear"``.

    Shapes: (batch, hidden) -> (batch, features).
    """
    if not isinstance(model, ToyModel):
        raise TypeError(f"model must be a ToyModel (from train_tms), got {type(model).__name__}")
    n_inst, n_hidden, n_feat = model.W.shape
    instance = whole_number(instance, "instance", low=None)
    if not -n_inst <= instance < n_inst:
        raise ValueError(f"instance must be an int in [0, {n_inst}), got {instance!r}")
    weight = model.W_out[instance] if model.task == "abs" else model.W[instance].T
    linear = nn.Linear(n_hidden, n_feat, dtype=model.W.dtype)
    with torch.no_grad():
        linear.weight.copy_(weight)
        linear.bias.copy_(model.b[instance])
    act = nn.ReLU() if model.activation == "relu" else nn.Identity()
    return nn.Sequential(linear, act)
