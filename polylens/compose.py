"""The sunny duck, scored against ground truth.

Take a scene under some weather, push the scene autoencoder's activations
toward "sunny" by one of the methods of :mod:`polylens.steer`, decode, and
compare with the *true* render of the same scene (same seed) on a sunny day.
Because the world is synthetic, every steered picture has an answer key.

Honesty rules, built in:

* directions and masks come from *training* scenes (the autoencoder's own
  training distribution, which holds no sunny duck);
* each method's strength is chosen on a *validation* split;
* the table is computed on a *test* split of fresh scenes;
* the never-seen (duck, sunny) combination is reported on its own.

Scores per steered image: pixel error relative to the autoencoder's own
error on the true sunny scene (1.0 = as good as encoding the real thing),
the weather probe's P(sunny), whether the object probe still sees the
original object, and *composition success* = the weather probe says sunny
and the object probe says the original object.

    table = evaluate(load_autoencoder(), load_probes())
    print(table)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from polylens import steer
from polylens.hooks import capture
from polylens.scenes.dataset import to_tensor
from polylens.scenes.networks import SceneAutoencoder
from polylens.scenes.render import OBJECTS, WEATHERS, render_batch
from polylens.scenes.weights import Probes
from polylens.spline import spline_code
from polylens.superposition.sae import train_sae

__all__ = ["METHODS", "Method", "Scenes", "Table", "evaluate", "mask_maps", "prepare", "reference_error", "scenes", "score", "training_scenes"]

SUNNY = "sunny"
BASE_WEATHERS = tuple(w for w in WEATHERS if w != SUNNY)
# Scene seeds for each split, far from the autoencoder's training and measuring seeds.
SPLIT_SEEDS = {"train": 1_000_000, "val": 7_000_000_000, "test": 8_000_000_000}


# ------------------------------------------------------------------ data ---


@dataclass
class Scenes:
    """Scenes under a base weather with their sunny ground truth (same seeds).

    ``images``/``truth``: (n, 3, 64, 64) float32; ``objects``: (n,) indices
    into OBJECTS; ``weathers``: (n,) indices into WEATHERS; ``seeds``: (n,).
    """

    images: torch.Tensor
    truth: torch.Tensor
    objects: np.ndarray
    weathers: np.ndarray
    seeds: np.ndarray

    def __len__(self) -> int:
        return len(self.seeds)

    def subset(self, keep: np.ndarray) -> Scenes:
        return Scenes(self.images[keep], self.truth[keep], self.objects[keep], self.weathers[keep], self.seeds[keep])


def scenes(split: str, per_combination: int, objects: Sequence[str] = OBJECTS,
           weathers: Sequence[str] = BASE_WEATHERS) -> Scenes:
    """Every (object, base weather) pair ``per_combination`` times, from ``split``'s seeds."""
    if split not in SPLIT_SEEDS:
        raise ValueError(f"split must be one of {sorted(SPLIT_SEEDS)}, got {split!r}")
    if not isinstance(per_combination, int) or per_combination < 1:
        raise ValueError(f"per_combination must be a positive int, got {per_combination!r}")
    obj, wea, k = np.meshgrid(np.arange(len(objects)), np.arange(len(weathers)), np.arange(per_combination), indexing="ij")
    obj, wea, k = obj.ravel(), wea.ravel(), k.ravel()
    # One seed per (object, k): the same scene appears under every base weather.
    seeds = SPLIT_SEEDS[split] + obj * 100_000 + k
    names_o, names_w = np.array(objects)[obj], np.array(weathers)[wea]
    images = render_batch(names_o, names_w, seeds)
    truth = render_batch(names_o, SUNNY, seeds)
    return Scenes(to_tensor(images), to_tensor(truth), np.array([OBJECTS.index(o) for o in names_o]),
                  np.array([WEATHERS.index(w) for w in names_w]), seeds.astype(np.int64))


def training_scenes(per_combination: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(sunny, other) training scenes as (n, 3, 64, 64) tensors; no sunny ducks (held out of training)."""
    others = [o for o in OBJECTS if o != "duck"]
    sunny = render_batch(np.repeat(others, per_combination), SUNNY,
                         SPLIT_SEEDS["train"] + np.arange(len(others) * per_combination))
    rest = scenes("train", per_combination)
    return to_tensor(sunny), rest.images


# --------------------------------------------------------------- methods ---


@dataclass
class Method:
    """A prepared steering method: ``context(model, strength)`` steers inside a ``with``."""

    name: str
    layer: str
    context: Callable[[nn.Module, float], AbstractContextManager]
    note: str = ""
    # What it was built from, to look at: "direction", "mask", "code_direction", "sae", "latent".
    parts: dict = field(default_factory=dict)


def _acts(model: nn.Module, x: torch.Tensor, layer: str) -> torch.Tensor:
    with torch.no_grad(), capture(model, layer) as cache:
        model(x)
    return cache[layer]


def _prepare_add(model, layer, sunny, other, kind):
    d = steer.mean_difference(_acts(model, sunny, layer), _acts(model, other, layer), layer=layer)
    gap = float(d.projections.mean() - d.baseline.mean())
    if kind == "add":
        return Method("add", layer, lambda m, s: steer.add(m, d, alpha=s * gap),
                      "h + strength * gap * d, gap = mean sunny minus mean other projection", {"direction": d})
    if kind == "add_if_below":
        threshold = float((d.projections.mean() + d.baseline.mean()) / 2)
        return Method("add_if_below", layer,
                      lambda m, s: steer.add(m, d, alpha=s * gap, when=steer.dot_below(d, threshold)),
                      "the same, only where h.d is below the midpoint between the two means",
                      {"direction": d, "threshold": threshold})
    return Method("to_quantile", layer,
                  lambda m, s: steer.add_to_projection(m, d, quantile=float(np.clip(s, 0, 1))),
                  "raise h.d to the strength-quantile of the sunny projections", {"direction": d})


def _prepare_mask(model, layers, sunny, kind, other=None):
    preacts, codes = steer.preactivations(model, sunny, list(layers))
    parts = {}
    if kind == "code_direction":
        _, other_codes = steer.preactivations(model, other, list(layers))
        parts["code_direction"] = steer.code_direction(codes, other_codes)
        mask = parts["code_direction"].to_mask(0.5, preacts=preacts)
        note = "units whose on-rate differs by >= 0.5 between sunny and other, pushed toward the sunny side"
    else:
        mask = steer.code_mask(codes, agreement=0.9, preacts=preacts)
        note = "units 90% of sunny scenes agree on, pushed to that state"
    return Method(kind, "+".join(layers), lambda m, s: steer.toward_mask(m, mask, strength=s), note,
                  {**parts, "mask": mask})


# The dictionary for "sae_feature". The training scenes' codes span few dimensions, so 256
# latents suffice; 600 short steps keep it to a few seconds on one core.
SAE_SETTINGS = {"n_latents": 256, "l1": 0.03, "steps": 600, "batch_size": 128, "lr": 1e-3, "seed": 0}


def _prepare_sae(model, layer, sunny, other):
    pos, neg = _acts(model, sunny, layer), _acts(model, other, layer)
    data = torch.cat([pos, neg]).flatten(1)
    # Unit mean norm, so one L1 coefficient suits any layer's scale.
    scale = float(data.norm(dim=1).mean().clamp(min=1e-8))
    cfg = SAE_SETTINGS
    sae = train_sae(data / scale, n_latents=cfg["n_latents"], l1=cfg["l1"], steps=cfg["steps"],
                    batch_size=cfg["batch_size"], lr=cfg["lr"], seed=cfg["seed"], progress=False)
    d = steer.sae_direction(sae, pos, neg, layer, scale=scale)
    gap = float(d.projections.mean() - d.baseline.mean())
    latent = int(steer.separation(sae, pos, neg, scale).argmax())
    return Method("sae_feature", layer, lambda m, s: steer.add(m, d, alpha=s * gap),
                  f"h + strength * gap * atom of the SAE latent ({latent}) that best separates sunny from other",
                  {"direction": d, "sae": sae, "latent": latent, "scale": scale})


METHODS = ("add", "add_if_below", "to_quantile", "mask", "pathway_mask", "code_direction", "sae_feature")


def prepare(model: nn.Module, method: str, layers: Sequence[str], sunny: torch.Tensor,
            other: torch.Tensor) -> Method:
    """Build ``method`` from training activations of sunny and other scenes.

    ``layers``: one module name for the activation-space methods and "mask";
    several for "pathway_mask" and "code_direction".
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {METHODS}")
    layers = [layers] if isinstance(layers, str) else list(layers)
    if method in ("add", "add_if_below", "to_quantile"):
        return _prepare_add(model, layers[-1], sunny, other, method)
    if method == "sae_feature":
        return _prepare_sae(model, layers[-1], sunny, other)
    if method == "mask":
        return _prepare_mask(model, layers[-1:], sunny, "mask")
    return _prepare_mask(model, layers, sunny, method if method == "code_direction" else "pathway_mask", other)


# ---------------------------------------------------------------- scoring ---


@torch.no_grad()
@torch.no_grad()
def reference_error(model: nn.Module, data: Scenes) -> torch.Tensor:
    """(n,) the autoencoder's own pixel error on each sunny truth: the yardstick of ``rel_error``."""
    truth_rec = model(data.truth).clamp(0, 1)
    return ((truth_rec - data.truth) ** 2).mean((1, 2, 3)).clamp(min=1e-8)


@torch.no_grad()
def score(model: nn.Module, probes: Probes, data: Scenes, steered: torch.Tensor | None = None, *,
          own: torch.Tensor | None = None) -> dict[str, np.ndarray]:
    """Per-image scores of ``steered`` (default: the plain reconstruction) against the sunny truth.

    ``own``: :func:`reference_error` of ``data``, when scoring the same scenes many times.
    Returns (n,) arrays: ``rel_error``, ``p_sunny``, ``object`` (the object probe's guess),
    ``p_object`` (its probability of the original object), ``object_kept`` and ``success``.
    """
    if steered is None:
        steered = model(data.images)
    out = steered.clamp(0, 1)
    own = reference_error(model, data) if own is None else own
    err = ((out - data.truth) ** 2).mean((1, 2, 3))
    weather = probes.weather(out)
    p_sunny = torch.softmax(weather, 1)[:, WEATHERS.index(SUNNY)]
    p_obj = torch.softmax(probes.object(out), 1)
    guess = p_obj.argmax(1).numpy()
    kept = guess == data.objects
    sunny = weather.argmax(1).numpy() == WEATHERS.index(SUNNY)
    return {"rel_error": (err / own).numpy(), "p_sunny": p_sunny.numpy(), "object": guess,
            "p_object": p_obj[torch.arange(len(out)), torch.as_tensor(data.objects)].numpy(),
            "object_kept": kept, "success": kept & sunny}


def _summary(scores: dict[str, np.ndarray], keep: np.ndarray | None = None) -> dict[str, float]:
    keep = np.ones(len(scores["success"]), bool) if keep is None else keep
    return {
        "success": float(scores["success"][keep].mean()),
        "p_sunny": float(scores["p_sunny"][keep].mean()),
        "object_kept": float(scores["object_kept"][keep].mean()),
        "rel_error": float(np.median(scores["rel_error"][keep])),
    }


@dataclass
class Table:
    """Results of :func:`evaluate`: one row per (method, layer, strength), plus references."""

    rows: list[dict] = field(default_factory=list)

    def chosen(self) -> list[dict]:
        """The row of each (method, layer) at its validation-chosen strength, best first."""
        picked = [r for r in self.rows if r.get("chosen")]
        return sorted(picked, key=lambda r: (-r["success"], r["rel_error"]))

    def best(self) -> dict:
        """The method row with the highest test success at its chosen strength."""
        return self.chosen()[0]

    def reference(self, name: str) -> dict:
        """The "no steering" or "oracle" row."""
        return next(r for r in self.rows if r["method"] == name)

    def by_weather(self) -> str:
        """Test success of each chosen method by the weather the scene was photographed in."""
        weathers = list(self.rows[0]["by_weather"])
        head = f"{'method':<15}" + "".join(f"{w:>10}" for w in weathers)
        lines = [head, "-" * len(head)]
        for r in [self.reference("oracle")] + self.chosen():
            lines.append(f"{r['method']:<15}" + "".join(f"{r['by_weather'][w]:>10.0%}" for w in weathers))
        return "\n".join(lines)

    def curves(self, key: str = "success") -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """method -> (strengths, ``key`` at each strength) on the test split, for plotting."""
        out: dict[str, tuple[list, list]] = {}
        for r in self.rows:
            if r["method"] not in ("no steering", "oracle"):
                xs, ys = out.setdefault(r["method"], ([], []))
                xs.append(float(r["strength"]))
                ys.append(float(r[key]))
        return {m: (np.array(xs), np.array(ys)) for m, (xs, ys) in out.items()}

    def __str__(self) -> str:
        """References, then each method at its validation-chosen strength, best first."""
        return self._format(self.chosen(), mark=False)

    def full(self) -> str:
        """Every method at every strength tried (chosen strengths marked *), in evaluation order."""
        return self._format([r for r in self.rows if r["method"] not in ("no steering", "oracle")], mark=True)

    def _format(self, rows: list[dict], mark: bool) -> str:
        head = f"{'method':<15}{'layer':<28}{'strength':>9}{'success':>9}{'duck':>7}{'P(sunny)':>10}{'object':>8}{'rel.err':>9}"
        lines = [head, "-" * len(head)]
        refs = [r for r in self.rows if r["method"] in ("no steering", "oracle")]
        for r in refs + rows:
            strength = f"{r['strength']}{'*' if mark and r.get('chosen') else ''}"
            lines.append(
                f"{r['method']:<15}{r['layer']:<28}{strength:>9}{r['success']:>9.0%}{r['duck_success']:>7.0%}"
                f"{r['p_sunny']:>10.2f}{r['object_kept']:>8.0%}{r['rel_error']:>9.2f}"
            )
        return "\n".join(lines)


def _row(method: str, layer: str, strength, scores: dict, data: Scenes, **extra) -> dict:
    row = {"method": method, "layer": layer, "strength": strength, **_summary(scores)}
    ducks = data.objects == OBJECTS.index("duck")
    row["duck_success"] = _summary(scores, ducks)["success"] if ducks.any() else float("nan")
    # Success by the weather the scene was photographed in: "sunny" may not be one displacement.
    row["by_weather"] = {WEATHERS[w]: float(scores["success"][data.weathers == w].mean())
                         for w in np.unique(data.weathers)}
    return {**row, **extra}


@torch.no_grad()
def evaluate(
    model: nn.Module,
    probes: Probes,
    *,
    plans: Sequence[tuple[str, Sequence[str]]] | None = None,
    strengths: Sequence[float] = (0.5, 1.0, 1.5, 2.0, 3.0),
    n_train: int = 40,
    n_val: int = 6,
    n_test: int = 12,
) -> Table:
    """Steer held-out scenes toward sunny by every method; score against ground truth.

    Args:
        model: the scene autoencoder (steered as a whole: image in, image out).
        probes: the independent object and weather probes.
        plans: (method, layers) pairs; default: every method at the bottleneck
            and a three-layer pathway.
        strengths: tried on the validation split; every one is also reported on test.
        n_train, n_val, n_test: scenes per (object, base weather) pair in each split.

    Returns:
        A :class:`Table` (``str(table)`` prints it; ``table.rows`` has every strength).
    """
    plans = plans or default_plans()
    sunny, other = training_scenes(n_train)
    val, test = scenes("val", n_val), scenes("test", n_test)
    own = reference_error(model, test)
    table = Table()
    table.rows.append(_row("no steering", "-", "-", score(model, probes, test, own=own), test))
    table.rows.append(_row("oracle", "-", "-", score(model, probes, test, model(test.truth), own=own), test))
    for name, layers in plans:
        method = prepare(model, name, layers, sunny, other)
        chosen = _choose(model, probes, method, val, strengths)
        for s in strengths:
            with method.context(model, s):
                steered = model(test.images)
            table.rows.append(_row(name, method.layer, s, score(model, probes, test, steered, own=own), test,
                                   chosen=(s == chosen), note=method.note))
    return table


def _choose(model, probes, method: Method, val: Scenes, strengths: Sequence[float]) -> float:
    """The strength with the best validation success (ties: lower pixel error)."""
    best, own = None, reference_error(model, val)
    for s in strengths:
        with method.context(model, s):
            summary = _summary(score(model, probes, val, model(val.images), own=own))
        key = (summary["success"], -summary["rel_error"])
        if best is None or key > best[0]:
            best = (key, s)
    return best[1]


def default_plans() -> list[tuple[str, list[str]]]:
    """Every method at the bottleneck; masks also along a decoder pathway."""
    bottleneck, pathway = SceneAutoencoder.BOTTLENECK, list(SceneAutoencoder.PATHWAY)
    return [("add", [bottleneck]), ("add_if_below", [bottleneck]), ("to_quantile", [bottleneck]),
            ("mask", [bottleneck]), ("pathway_mask", pathway), ("code_direction", pathway),
            ("sae_feature", [bottleneck])]


def mask_maps(model: SceneAutoencoder, mask: steer.SteeringMask) -> dict[str, np.ndarray]:
    """Where in the picture a spline-code mask lives.

    Returns, for each layer of ``mask``, a (2, H, W) array: how many of the
    mask's units at each spatial position of that layer's feature map it
    wants *on* (``[0]``) and *off* (``[1]``), summed over channels.
    """
    maps = {}
    for layer in mask.layers:
        channels, h, w = model.unit_shape(layer.name.split("#")[0])
        index, state = mask.layer(layer.name)
        counts = np.zeros((2, h * w))
        np.add.at(counts[0], index[state] % (h * w), 1)
        np.add.at(counts[1], index[~state] % (h * w), 1)
        maps[layer.name] = counts.reshape(2, h, w)
    return maps
