"""The sunny duck, scored against ground truth.

Take a scene under some weather, push the scene autoencoder's activations
toward "sunny" by one of the methods of :mod:`polylens.steer`, decode, and
ask the renderer's answer key whether the result is *this* scene on a sunny
day (:mod:`polylens.judge`), part by part: the sky and ground, the object,
and the object's own cast shadow, each nearer to the truth than to every
decoy that is wrong in that part and about as good as the autoencoder can
draw it. Because the world is synthetic, every steered picture has an answer key.

Honesty rules, built in:

* directions and masks come from *training* scenes (the autoencoder's own
  training distribution, which holds no sunny duck); the sunny and the other
  training scenes are the same scenes (same seeds, same objects) in
  different weathers, so "sunny" cannot also mean "not a duck";
* each method's strength is chosen on a *validation* split;
* the table is computed on a *test* split of fresh scenes, with 95%
  intervals on every rate, beside chance lines (pictures that know the
  weather but not the scene, and a per-pixel colour map with no network,
  the simplest thing that recolours without composing) and the oracle;
* the never-seen (duck, sunny) combination is reported on its own;
* success is decided by the answer key alone. The probes stay as columns
  (``probe_success``: the weather probe says sunny and the object probe says
  the original object) because it is instructive how often they disagree.

    table = evaluate(load_autoencoder(), load_probes())
    print(table)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from polylens import steer
from polylens._checks import finite_number, whole_number
from polylens.hooks import capture, collect
from polylens.judge import wilson
from polylens.scenes.colour_map import fit_colour_map
from polylens.scenes.dataset import to_tensor
from polylens.scenes.networks import SceneAutoencoder
from polylens.scenes.render import OBJECTS, WEATHERS, draw_batch, render_batch, scene_params_batch
from polylens.scenes.splits import SUNNY, Split, split, training_pairs, training_scenes
from polylens.scenes.weights import Probes
from polylens.spline import spline_code
from polylens.superposition.sae import train_sae

__all__ = ["CHANCE", "COLOUR_MAP", "METHODS", "MUST_COMPOSE", "Method", "Table", "blur", "chance_pictures", "evaluate",
           "gated", "geometry", "known_pictures", "known_table", "mask_maps", "prepare", "probe_verdict", "reference_error", "run",
           "score", "with_interval"]

# Scenes the "other scene" chance line paints: scene s borrows scene CHANCE_SEEDS + s.
CHANCE_SEEDS = 30_000_000_000


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
    return collect(model, x, [layer], batch=BATCH)[layer]


def _direction(model, layer, sunny, other):
    d = steer.mean_difference(_acts(model, sunny, layer), _acts(model, other, layer), layer=layer)
    return d, float(d.projections.mean() - d.baseline.mean())


def _prepare_add(model, layers, sunny, other):
    d, gap = _direction(model, layers[-1], sunny, other)
    return Method("add", d.layer, lambda m, s: steer.add(m, d, alpha=s * gap),
                  "h + strength * gap * d, gap = mean sunny minus mean other projection", {"direction": d, "gap": gap})


def gated(method: Method, threshold: float) -> Method:
    """``method`` (an "add_if_below" from :func:`prepare`) with its gate at ``threshold`` instead.

    Only pictures whose projection ``h.d`` is below ``threshold`` are steered.
    """
    if not isinstance(method, Method) or "threshold" not in method.parts:
        raise TypeError("gated takes an 'add_if_below' method from compose.prepare")
    threshold = finite_number(threshold, "threshold")
    d, gap = method.parts["direction"], method.parts["gap"]
    return Method(method.name, method.layer,
                  lambda m, s: steer.add(m, d, alpha=s * gap, when=steer.dot_below(d, threshold)),
                  f"the same as add, only where h.d is below {threshold:g}",
                  {**method.parts, "threshold": threshold})


def _prepare_add_if_below(model, layers, sunny, other):
    d, gap = _direction(model, layers[-1], sunny, other)
    midpoint = float((d.projections.mean() + d.baseline.mean()) / 2)
    plain = Method("add_if_below", d.layer, None, "", {"direction": d, "gap": gap, "threshold": midpoint})
    method = gated(plain, midpoint)
    method.note = "the same as add, only where h.d is below the midpoint between the two means"
    return method


def _prepare_to_quantile(model, layers, sunny, other):
    d, _ = _direction(model, layers[-1], sunny, other)
    return Method("to_quantile", d.layer, lambda m, s: steer.add_to_projection(m, d, quantile=float(np.clip(s, 0, 1))),
                  "raise h.d to the strength-quantile of the sunny projections", {"direction": d})


def _prepare_mask(model, layers, sunny, kind, other=None):
    preacts, codes = steer.preactivations(model, sunny, list(layers))
    parts = {}
    if kind == "code_direction":
        _, other_codes = steer.preactivations(model, other, list(layers))
        parts["code_direction"] = steer.code_direction(codes, other_codes)
        mask = parts["code_direction"].steering_mask(0.5, preacts=preacts)
        note = "units whose on-rate differs by >= 0.5 between sunny and other, pushed toward the sunny side"
    else:
        mask = steer.steering_mask(codes, agreement=0.9, preacts=preacts)
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


# The encoder layers that feed the bottleneck: the transport reads their local activations too.
TRANSPORT_INPUTS = ("encoder.3", "encoder.5")


def _prepare_transport(model, layer, sunny, other):
    before, after, starts = training_pairs(sunny, other)
    plan = steer.fit_transport(model, layer, before, after, starts, inputs=TRANSPORT_INPUTS)
    return Method("transport", layer, lambda m, s: steer.transport(m, plan, strength=s),
                  "each patch moved by an affine map of its neighbourhood, fitted on (weather, sunny) pairs; "
                  "one map per starting weather, picked by the input's own code", {"transport": plan})


# One builder per method name: (model, layers, sunny, other) -> Method.
_BUILDERS = {
    "add": _prepare_add,
    "add_if_below": _prepare_add_if_below,
    "to_quantile": _prepare_to_quantile,
    "mask": lambda model, layers, sunny, other: _prepare_mask(model, layers[-1:], sunny, "mask"),
    "pathway_mask": lambda model, layers, sunny, other: _prepare_mask(model, layers, sunny, "pathway_mask"),
    "code_direction": lambda model, layers, sunny, other: _prepare_mask(model, layers, sunny, "code_direction", other),
    "sae_feature": lambda model, layers, sunny, other: _prepare_sae(model, layers[-1], sunny, other),
    "transport": lambda model, layers, sunny, other: _prepare_transport(model, layers[-1], sunny, other),
}
METHODS = tuple(_BUILDERS)


def prepare(model: nn.Module, method: str, layers: Sequence[str], sunny: torch.Tensor,
            other: torch.Tensor) -> Method:
    """Build ``method`` from training activations of sunny and other scenes.

    ``layers``: one module name for the activation-space methods, "mask" and
    "transport"; several for "pathway_mask" and "code_direction". "transport"
    needs ``sunny`` and ``other`` exactly as :func:`training_scenes` returns
    them: it learns from the pairs their order makes (see :func:`training_pairs`).
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {METHODS}")
    for what, pictures in (("sunny", sunny), ("other", other)):
        if not isinstance(pictures, torch.Tensor) or pictures.ndim != 4 or len(pictures) == 0:
            raise ValueError(f"{what} must be a non-empty (n, 3, 64, 64) tensor of training scenes, as "
                             "polylens.scenes.training_scenes(k) returns")
    if isinstance(layers, str):
        layers = [layers]
    elif not isinstance(layers, Sequence) or not all(isinstance(name, str) for name in layers):
        raise TypeError(f"layers must be module names, e.g. [{SceneAutoencoder.BOTTLENECK!r}]; got {layers!r}")
    layers = list(layers)
    if not layers:
        raise ValueError(f"layers must name at least one module, e.g. [{SceneAutoencoder.BOTTLENECK!r}]")
    return _BUILDERS[method](model, layers, sunny, other)


# ---------------------------------------------------------------- scoring ---


# Pictures per forward pass: the autoencoder's activations for 160 pictures take
# about 200 MB, so a 480-scene test split never holds all of them at once.
BATCH = 160


@torch.no_grad()
def run(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """``model(images)`` in batches of ``BATCH`` (same result, bounded memory), inside any open steering context.

    Steering edits act per picture, so batching changes nothing but the peak memory.
    """
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        raise TypeError(f"images must be a (n, 3, H, W) tensor of pictures, got "
                        f"{tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__}")
    if len(images) == 0:
        raise ValueError("images is empty: pass at least one (3, H, W) picture")
    return torch.cat([model(images[i:i + BATCH]) for i in range(0, len(images), BATCH)])


def _steering_hooks(model: nn.Module) -> bool:
    """Whether any forward hook is on the model (a steering context is open)."""
    return any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def _check_scenes(data: Any) -> None:
    if not isinstance(data, Split):
        raise TypeError(f"data must be polylens.scenes.Split (e.g. pl.scenes.split('test', 8)), got {type(data).__name__}")


@torch.no_grad()
def reference_error(model: nn.Module, data: Split) -> torch.Tensor:
    """(n,) the autoencoder's own pixel error on each sunny truth: the yardstick of ``rel_error``.

    Computed outside any steering context (it refuses to run inside one: the
    yardstick would be steered too).
    """
    _check_scenes(data)
    if _steering_hooks(model):
        raise RuntimeError(
            "reference_error runs the autoencoder on the true sunny scenes as a yardstick, but hooks are on "
            "the model (a steering context is open), so the yardstick would be steered too. Compute "
            "own = compose.reference_error(model, data) before the `with`, and pass score(..., own=own)")
    truth_rec = run(model, data.truth).clamp(0, 1)
    return ((truth_rec - data.truth) ** 2).mean((1, 2, 3)).clamp(min=1e-8)


def _check_steered(steered: Any, data: Split) -> torch.Tensor:
    if not isinstance(steered, torch.Tensor):
        raise TypeError(f"steered must be a torch tensor of pictures (n, 3, 64, 64), got {type(steered).__name__}")
    if not steered.is_floating_point():
        raise TypeError(f"steered must hold floats in [0, 1], got dtype {steered.dtype}")
    want = (len(data), *data.images.shape[1:])
    if tuple(steered.shape) != want:
        raise ValueError(f"steered must have shape {want}: one picture per scene of data, in the same order; "
                         f"got {tuple(steered.shape)}")
    return steered.detach().float()


@torch.no_grad()
def score(model: nn.Module, probes: Probes, data: Split, steered: torch.Tensor | None = None, *,
          own: torch.Tensor | None = None) -> dict[str, np.ndarray]:
    """Per-image verdicts on ``steered`` (default: the plain reconstruction) against the answer key.

    ``success`` is the answer key's verdict (:meth:`polylens.judge.AnswerKey.judge`):
    this scene, on a sunny day. ``own``: :func:`reference_error` of ``data``;
    pass it when scoring inside a steering context or many times over.

    Returns (n,) arrays: ``success``, the parts' verdicts ``background_ok``
    (sky and ground), ``object_ok`` and ``shadow_ok``, ``shadow_contrast``
    (how much of the truth's cast shadow the picture shows: 1 = all of it),
    ``nearest`` (the first part that failed, as the decoy it looks most like;
    :func:`polylens.judge.describe`), ``rel_error`` (pixel error against the
    truth / the autoencoder's own error on it; inf for non-finite pictures),
    and the probes' view: ``p_sunny``, ``object`` (the object probe's guess),
    ``p_object`` (its probability of the original object), ``object_kept``
    and ``probe_success`` (sunny and the original object, by the probes).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be the scene autoencoder (an nn.Module), got {type(model).__name__}")
    if not isinstance(probes, Probes):
        raise TypeError(f"probes must be polylens.scenes.load_probes()'s Probes, got {type(probes).__name__}")
    _check_scenes(data)
    own = reference_error(model, data) if own is None else own
    if not isinstance(own, torch.Tensor) or tuple(own.shape) != (len(data),):
        raise ValueError(f"own must be compose.reference_error(model, data): a ({len(data)},) tensor")
    if not (torch.isfinite(own) & (own > 0)).all():
        raise ValueError("own must hold positive finite errors, as compose.reference_error(model, data) gives; "
                         "a zero or NaN would make every rel_error inf or NaN")
    steered = run(model, data.images) if steered is None else steered
    steered = _check_steered(steered, data)
    verdict = data.key.judge(steered)
    finite = torch.as_tensor(verdict["finite"])
    # The probes and the pixel error see a finite stand-in; a non-finite picture fails regardless.
    out = torch.nan_to_num(steered, nan=0.0, posinf=1.0, neginf=0.0).clamp(0, 1)
    err = ((out - data.truth) ** 2).mean((1, 2, 3))
    weather, objects = run(probes.weather, out), run(probes.object, out)
    p_sunny = torch.softmax(weather, 1)[:, WEATHERS.index(SUNNY)]
    p_obj = torch.softmax(objects, 1)
    guess = p_obj.argmax(1).numpy()
    kept = (guess == data.objects) & verdict["finite"]
    return {"success": verdict["success"], "background_ok": verdict["background_ok"],
            "object_ok": verdict["object_ok"], "shadow_ok": verdict["shadow_ok"],
            "shadow_contrast": verdict["shadow_contrast"], "finite": verdict["finite"], "nearest": verdict["nearest"],
            "rel_error": torch.where(finite, err / own, torch.tensor(float("inf"))).numpy(),
            "p_sunny": torch.where(finite, p_sunny, torch.tensor(float("nan"))).numpy(), "object": guess,
            "p_object": p_obj[torch.arange(len(out)), torch.as_tensor(data.objects)].numpy(),
            "object_kept": kept, "probe_success": probe_verdict(weather, objects, data.objects) & verdict["finite"]}


def probe_verdict(weather_logits: torch.Tensor, object_logits: torch.Tensor, objects: np.ndarray) -> np.ndarray:
    """(n,) bool: the weather probe's top class is sunny and the object probe's is ``objects`` (n,).

    The probes' view of success, kept as a column: it is easily fooled (a constant
    sunny picture, a grey picture the probe calls sunny), so it never decides.
    """
    sunny = weather_logits.argmax(1).numpy() == WEATHERS.index(SUNNY)
    return sunny & (object_logits.argmax(1).numpy() == np.asarray(objects))


def _rate(hits: np.ndarray) -> tuple[float, float, float]:
    """(rate, low, high): the share of True in ``hits`` and its 95% Wilson interval."""
    n = int(len(hits))
    low, high = wilson(int(np.sum(hits)), n)
    return (float(np.mean(hits)) if n else float("nan")), low, high


def _mean_contrast(scores: dict[str, np.ndarray], keep: np.ndarray) -> float:
    """Mean shadow contrast over ``keep``, a non-finite picture counting as no shadow (0)."""
    values = np.where(scores["finite"], scores["shadow_contrast"], 0.0)[keep]
    return float(values.mean()) if len(values) else float("nan")


def _summary(scores: dict[str, np.ndarray], data: Split) -> dict:
    ducks = data.objects == OBJECTS.index("duck")
    return {
        "n": len(data),
        "success": _rate(scores["success"]),
        "duck": _rate(scores["success"][ducks]),
        "n_ducks": int(ducks.sum()),
        # The parts, for reading why a method fails: sky and ground, the object, its shadow.
        "background": _rate(scores["background_ok"]),
        "object": _rate(scores["object_ok"]),
        "shadow": _rate(scores["shadow_ok"]),
        "shadow_contrast": _mean_contrast(scores, np.ones(len(data), bool)),
        "duck_shadow_contrast": _mean_contrast(scores, ducks),
        "p_sunny": float(np.nanmean(scores["p_sunny"])) if np.isfinite(scores["p_sunny"]).any() else float("nan"),
        "object_kept": float(scores["object_kept"].mean()),
        "probe_success": float(scores["probe_success"].mean()),
        "rel_error": float(np.median(scores["rel_error"])),
        # Success by the weather the scene was photographed in: "sunny" may not be one displacement.
        "by_weather": {WEATHERS[w]: _rate(scores["success"][data.weathers == w]) for w in np.unique(data.weathers)},
        "by_cell": {(OBJECTS[o], WEATHERS[w]): _rate(scores["success"][(data.objects == o) & (data.weathers == w)])
                    for o in np.unique(data.objects) for w in np.unique(data.weathers)},
        "verdicts": scores["success"].copy(),
    }


def _cell(rate: tuple[float, float, float]) -> str:
    """'27% [20-35]': a rate and its 95% interval, in percent."""
    p, low, high = rate
    if not np.isfinite(p):
        return "-"
    return f"{p:.0%} [{low * 100:.0f}-{high * 100:.0f}]"


def with_interval(hits: Any) -> str:
    """(n,) bools -> their rate and 95% Wilson interval in percent: '27% [20-35]'."""
    return _cell(_rate(np.asarray(hits, bool)))


REFERENCES = ("no steering", "oracle")
CHANCE = ("constant sunny picture", "another scene, sunny", "pixel mean difference", "colour map (no network)")
COLOUR_MAP = CHANCE[3]


@dataclass
class Table:
    """Results of :func:`evaluate`: one row per (method, layer, strength), plus references and chance lines.

    Each row: ``method``, ``layer``, ``strength``, ``kind`` ("reference", "chance"
    or "method"), ``success`` and ``duck`` as (rate, low, high) with 95%
    intervals, ``n`` and ``n_ducks``, the probes' ``p_sunny``,
    ``object_kept`` and ``probe_success``, the median ``rel_error``, the
    parts' pass rates ``background``, ``object`` and ``shadow`` (rate, low,
    high), the mean ``shadow_contrast`` and ``duck_shadow_contrast`` (share of
    the truth's shadow), ``by_weather`` {weather: (rate, low, high)},
    ``by_cell`` {(object, weather): (rate, low, high)}, ``verdicts`` (n,) bools
    per test scene, and for methods ``chosen`` (the validation-chosen strength).
    """

    rows: list[dict] = field(default_factory=list)

    def chosen(self) -> list[dict]:
        """The row of each (method, layer) at its validation-chosen strength, best first."""
        picked = [r for r in self.rows if r.get("chosen")]
        return sorted(picked, key=lambda r: (-r["success"][0], r["rel_error"]))

    def best(self) -> dict:
        """The method row with the highest test success at its chosen strength."""
        chosen = self.chosen()
        if not chosen:
            raise ValueError("this table holds no method rows yet; make one with compose.evaluate(...)")
        return chosen[0]

    def reference(self, name: str) -> dict:
        """A reference or chance row by name: "no steering", "oracle", or one of ``CHANCE``."""
        for r in self.rows:
            if r["method"] == name and r["kind"] != "method":
                return r
        raise KeyError(f"no reference row {name!r}; there are {[r['method'] for r in self._fixed()]}")

    def row(self, method: str) -> dict:
        """A method's row at its validation-chosen strength."""
        for r in self.chosen():
            if r["method"] == method:
                return r
        raise KeyError(f"no method {method!r}; the table holds {[r['method'] for r in self.chosen()]}")

    def chance(self) -> float:
        """The highest success of any chance line: a method is interesting only above it."""
        return max(r["success"][0] for r in self.rows if r["kind"] == "chance")

    def _fixed(self) -> list[dict]:
        return [r for r in self.rows if r["kind"] != "method"]

    def by_weather(self) -> str:
        """Test success (95% interval) of the oracle, the chance lines and each chosen method,
        by the weather the scene was photographed in."""
        weathers = list(self.rows[0]["by_weather"])
        head = f"{'method':<27}" + "".join(f"{w:>14}" for w in weathers)
        lines = [head, "-" * len(head)]
        fixed = [r for r in self._fixed() if r["method"] != "no steering"]
        for r in fixed + self.chosen():
            lines.append(f"{r['method']:<27}" + "".join(f"{_cell(r['by_weather'][w]):>14}" for w in weathers))
        return "\n".join(lines)

    def by_cell(self, name: str) -> str:
        """Test success (95% interval) of one row, by object (rows) and starting weather (columns).

        ``name``: a method (at its chosen strength), a reference or a chance line.
        """
        try:
            r = self.row(name)
        except KeyError:
            r = self.reference(name)
        cells = r["by_cell"]
        objects = list(dict.fromkeys(o for o, _ in cells))
        weathers = list(dict.fromkeys(w for _, w in cells))
        head = f"{'object':<12}" + "".join(f"{w:>14}" for w in weathers)
        lines = [f"{name}: success by object and starting weather", head, "-" * len(head)]
        for o in objects:
            lines.append(f"{o:<12}" + "".join(f"{_cell(cells[(o, w)]):>14}" for w in weathers))
        return "\n".join(lines)

    def curves(self, key: str = "success") -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """method -> (strengths, ``key`` at each strength) on the test split, for plotting.

        ``key``: "success" or "duck" (rates), or "p_sunny", "object_kept", "probe_success", "rel_error".
        """
        out: dict[str, tuple[list, list]] = {}
        for r in self.rows:
            if r["kind"] == "method":
                xs, ys = out.setdefault(r["method"], ([], []))
                xs.append(float(r["strength"]))
                ys.append(float(r[key][0] if isinstance(r[key], tuple) else r[key]))
        return {m: (np.array(xs), np.array(ys)) for m, (xs, ys) in out.items()}

    def __str__(self) -> str:
        """References, chance lines, then each method at its validation-chosen strength, best first."""
        return self._format(self.chosen(), mark=False)

    def full(self) -> str:
        """Every method at every strength tried (chosen strengths marked *), with its layers."""
        return self._format([r for r in self.rows if r["kind"] == "method"], mark=True)

    def _format(self, rows: list[dict], mark: bool) -> str:
        # The parts' columns: how often sky and ground, the object and the shadow pass, and the mean
        # shadow contrast (share of the truth's shadow the pictures show).
        name_w = 26
        head = (f"{'method':<{name_w}}{'strength':>9}{'success':>14}{'duck':>14}{'sky+ground':>11}{'object':>7}"
                f"{'shadow':>7}{'contrast':>9}{'probes':>7}{'rel.err':>8}" + ("  layer" if mark else ""))
        lines = [head, "-" * len(head)]
        fixed = self._fixed()
        for group in (fixed, rows):
            for r in group:
                strength = f"{r['strength']}{'*' if mark and r.get('chosen') else ''}"
                lines.append(
                    f"{r['method']:<{name_w}}{strength:>9}{_cell(r['success']):>14}{_cell(r['duck']):>14}"
                    f"{r['background'][0]:>11.0%}{r['object'][0]:>7.0%}{r['shadow'][0]:>7.0%}"
                    f"{r['shadow_contrast']:>9.2f}{r['probe_success']:>7.0%}{r['rel_error']:>8.1f}"
                    + (f"  {r['layer']}" if mark else ""))
            if group is fixed:
                lines.append("-" * len(head))
        return "\n".join(lines)


def chance_pictures(model: nn.Module, data: Split, sunny: torch.Tensor, other: torch.Tensor) -> dict[str, torch.Tensor]:
    """Pictures that know the target weather but not the scene: the chance lines of every table.

    * ``constant sunny picture``: the mean of the autoencoder's reconstructions of
      the sunny training scenes, the same for every input;
    * ``another scene, sunny``: the autoencoder's reconstruction of the same object
      on a sunny day in another scene (seed ``CHANCE_SEEDS + seed``);
    * ``pixel mean difference``: the input plus (mean sunny - mean other) training
      picture, in pixel space;
    * ``colour map (no network)``: each pixel through an affine colour map of its
      position and the input's starting weather, fitted on the training pairs
      (:mod:`polylens.scenes.colour_map`): right sky and ground, and no shadow.

    Each (n, 3, 64, 64), in the order of ``data``. ``sunny`` and ``other`` as
    :func:`polylens.scenes.training_scenes` returns them (their order pairs them).
    """
    _check_scenes(data)
    colour_map = fit_colour_map(*training_pairs(sunny, other))
    with torch.no_grad():
        constant = run(model, sunny).clamp(0, 1).mean(0, keepdim=True).expand(len(data), -1, -1, -1)
        borrowed = to_tensor(render_batch(data.objects, SUNNY, CHANCE_SEEDS + data.seeds))
        return {
            CHANCE[0]: constant,
            CHANCE[1]: run(model, borrowed),
            CHANCE[2]: (data.images + sunny.mean(0) - other.mean(0)).clamp(0, 1),
            CHANCE[3]: colour_map(data.images),
        }


def blur(pictures: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
    """(n, 3, H, W) pictures blurred by a Gaussian of ``sigma`` pixels (edges repeated): (n, 3, H, W)."""
    sigma = finite_number(sigma, "sigma (pixels)", above=0)
    r = max(1, int(np.ceil(3 * sigma)))
    k = torch.exp(-torch.arange(-r, r + 1.0, dtype=torch.float64) ** 2 / (2 * sigma ** 2))
    k = (k / k.sum()).to(pictures.dtype)
    x = pictures.reshape(-1, 1, *pictures.shape[2:])
    x = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    x = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1))
    return x.reshape(pictures.shape)


def known_pictures(model: nn.Module, data: Split, sunny: torch.Tensor, other: torch.Tensor) -> dict[str, torch.Tensor]:
    """Pictures whose verdict is known in advance, to test the judge on ``data``: name -> (n, 3, 64, 64).

    Must compose: ``truth``, ``truth, blurred`` (Gaussian, 1 pixel), ``oracle``
    (the autoencoder's drawing of the truth). Must not: ``no steering`` (the
    reconstruction), ``input unchanged``, every chance line of
    :func:`chance_pictures` (the colour map among them), ``truth without its shadow``,
    ``object mirrored``, ``same kind elsewhere`` (another object of the same
    kind on this scene's background) and ``all NaN``.
    """
    from polylens.judge import elsewhere_params

    _check_scenes(data)
    params = scene_params_batch(data.objects, data.seeds)
    with torch.no_grad():
        return {
            "truth": data.truth,
            "truth, blurred": blur(data.truth),
            "oracle": run(model, data.truth),
            "no steering": run(model, data.images),
            "input unchanged": data.images,
            **chance_pictures(model, data, sunny, other),
            "truth without its shadow": to_tensor(draw_batch(params, SUNNY, with_shadow=False)),
            "object mirrored": to_tensor(draw_batch({**params, "flip": -params["flip"]}, SUNNY)),
            "same kind elsewhere": to_tensor(draw_batch(elsewhere_params(params), SUNNY)),
            "all NaN": torch.full_like(data.images, float("nan")),
        }


MUST_COMPOSE = ("truth", "truth, blurred", "oracle")


def known_table(scores: Mapping[str, dict], data: Split) -> str:
    """The judge on known pictures, one line each: ``scores`` maps a name to :func:`score`'s output on ``data``.

    Columns: success and duck success with 95% intervals, how often each part
    passes (sky and ground, object, shadow), the mean shadow contrast (a
    non-finite picture counts as no shadow) and how often the probes accept.
    """
    _check_scenes(data)
    ducks = data.objects == OBJECTS.index("duck")
    head = (f"{'picture':<26}{'success':>15}{'ducks':>15}{'sky+ground':>11}{'object':>7}{'shadow':>7}"
            f"{'contrast':>9}{'probes':>7}")
    lines = [head, "-" * len(head)]
    for name, s in scores.items():
        ok = s["success"]
        lines.append(f"{name:<26}{with_interval(ok):>15}{with_interval(ok[ducks]):>15}"
                     f"{s['background_ok'].mean():>11.0%}{s['object_ok'].mean():>7.0%}{s['shadow_ok'].mean():>7.0%}"
                     f"{_mean_contrast(s, np.ones(len(ok), bool)):>9.2f}{s['probe_success'].mean():>7.0%}")
    return "\n".join(lines)


def _row(method: str, layer: str, strength, kind: str, scores: dict, data: Split, **extra) -> dict:
    return {"method": method, "layer": layer, "strength": strength, "kind": kind, **_summary(scores, data), **extra}


@torch.no_grad()
def evaluate(
    model: nn.Module,
    probes: Probes,
    *,
    plans: Sequence[tuple[str, Sequence[str]]] | None = None,
    methods: Mapping[str, Method] | None = None,
    strengths: Sequence[float] = (0.5, 1.0, 1.5, 2.0, 3.0),
    n_train: int = 40,
    n_val: int = 6,
    n_test: int = 24,
    objects: Sequence[str] = OBJECTS,
) -> Table:
    """Steer held-out scenes toward sunny by every method; judge each picture by the answer key.

    Args:
        model: the scene autoencoder (steered as a whole: image in, image out).
        probes: the independent object and weather probes (extra columns; they decide nothing).
        plans: (method, layers) pairs for :func:`prepare`; default: every method at
            the bottleneck and a three-layer pathway. ``[]``: none (only ``methods``).
        methods: more methods, already prepared (name -> :class:`Method`), put through
            the same validation and test protocol.
        strengths: tried on the validation split; every one is also reported on test.
        n_train, n_val, n_test: scenes per (object, base weather) pair in each split.
            The default test split (24) holds 96 ducks: the duck interval is at most
            +-10 points.
        objects: the objects of the validation and test scenes (training scenes are
            always every object but the duck); ``("duck",)`` judges ducks alone.

    Returns:
        A :class:`Table` (``str(table)`` prints it; ``table.rows`` has every strength).
    """
    plans = default_plans() if plans is None else list(plans)
    for plan in plans:  # checked before any scene is rendered
        if (not isinstance(plan, (tuple, list)) or len(plan) != 2 or plan[0] not in METHODS
                or isinstance(plan[1], str) or not all(isinstance(name, str) for name in plan[1])):
            raise ValueError(f"each plan must be (method, [module names]) with a method from {METHODS}, "
                             f"e.g. ('add', ['{SceneAutoencoder.BOTTLENECK}']); got {plan!r}")
    extra = dict(methods or {})
    if not plans and not extra:
        raise ValueError("nothing to evaluate: pass plans=None for every method, or methods={name: Method}")
    if any(not isinstance(m, Method) for m in extra.values()):
        raise TypeError("methods must map names to compose.Method (e.g. from compose.prepare)")
    if isinstance(strengths, (str, bytes)) or not isinstance(strengths, Sequence) or not strengths:
        raise ValueError(f"strengths must be a non-empty list of numbers, e.g. (0.5, 1.0, 2.0); got {strengths!r}")
    strengths = [finite_number(s, "each strength", low=0) for s in strengths]
    n_train, n_val, n_test = (whole_number(v, k, low=1) for v, k in
                              ((n_train, "n_train"), (n_val, "n_val"), (n_test, "n_test")))
    sunny, other = training_scenes(n_train)
    val, test = split("val", n_val, objects=objects), split("test", n_test, objects=objects)
    own, own_val = reference_error(model, test), reference_error(model, val)
    table = Table()
    table.rows.append(_row("no steering", "-", "-", "reference", score(model, probes, test, own=own), test))
    table.rows.append(_row("oracle", "-", "-", "reference", score(model, probes, test, run(model, test.truth), own=own),
                           test))
    for name, pictures in chance_pictures(model, test, sunny, other).items():
        table.rows.append(_row(name, "-", "-", "chance", score(model, probes, test, pictures, own=own), test))
    prepared = [prepare(model, name, layers, sunny, other) for name, layers in plans]
    prepared += [Method(name, m.layer, m.context, m.note, m.parts) for name, m in extra.items()]
    for method in prepared:
        chosen = _choose(model, probes, method, val, strengths, own_val)
        for s in strengths:
            with method.context(model, s):
                steered = run(model, test.images)
            table.rows.append(_row(method.name, method.layer, s, "method", score(model, probes, test, steered, own=own),
                                   test, chosen=(s == chosen), note=method.note))
    return table


def _choose(model, probes, method: Method, val: Split, strengths: Sequence[float], own: torch.Tensor) -> float:
    """The strength with the best validation success (ties: lower median pixel error)."""
    best = None
    for s in strengths:
        with method.context(model, s):
            steered = run(model, val.images)
        scores = score(model, probes, val, steered, own=own)
        key = (float(scores["success"].mean()), -float(np.median(scores["rel_error"])))
        if best is None or key > best[0]:
            best = (key, s)
    return best[1]


@torch.no_grad()
def geometry(model: SceneAutoencoder, data: Split, moves: Mapping[str, tuple[Method, float]],
             direction: steer.FeatureDirection, n_crossings: int = 2) -> dict[str, dict[str, float]]:
    """Where steering at the bottleneck takes each code, in polytope terms, beside the oracle's code.

    ``moves``: name -> (method acting at the bottleneck, strength). For each, and
    for the oracle (the code of the true sunny scene), over the scenes of ``data``:

    * ``units moved``: mean share of bottleneck units whose value changed;
    * ``decoder code off``: mean share of the decoder's ReLUs (its spline code)
      in another state than for the oracle's code: 0 = the same decoder polytope;
    * ``boundaries crossed``: median number of decoder region boundaries on the
      straight path from the input's code to the steered one, exactly
      (:func:`polylens.regions.crossings`), over the first ``n_crossings`` scenes;
    * ``inside sunny range``: share of steered codes whose projection on
      ``direction`` lies between the 5% and 95% quantiles of the sunny training codes.
    """
    from polylens.regions import crossings

    n_crossings = whole_number(n_crossings, "n_crossings", low=0)
    layer = model.BOTTLENECK
    start = _acts(model, data.images, layer)
    codes = {"oracle": _acts(model, data.truth, layer)}
    for name, (method, strength) in moves.items():
        if method.layer != layer:
            raise ValueError(f"{name} acts at {method.layer}; geometry compares moves of the bottleneck ({layer})")
        with method.context(model, strength), capture(model, layer) as cache:
            run(model, data.images)
        codes[name] = cache[layer]
    truth_code = spline_code(model.decoder, codes["oracle"]).bits
    low, high = direction.quantile(0.05), direction.quantile(0.95)
    out = {}
    for name, h in codes.items():
        proj = direction.project(h)
        out[name] = {
            "units moved": float((h - start).abs().gt(1e-6).float().mean()),
            "decoder code off": float((spline_code(model.decoder, h).bits != truth_code).mean()),
            "boundaries crossed": float(np.median([len(crossings(model.decoder, start[i], h[i]).t)
                                                   for i in range(min(n_crossings, len(h)))]))
            if n_crossings else float("nan"),
            "inside sunny range": float(((proj >= low) & (proj <= high)).float().mean()),
        }
    return out


def default_plans() -> list[tuple[str, list[str]]]:
    """Every method at the bottleneck; masks also along a decoder pathway."""
    bottleneck, pathway = SceneAutoencoder.BOTTLENECK, list(SceneAutoencoder.PATHWAY)
    return [("add", [bottleneck]), ("add_if_below", [bottleneck]), ("to_quantile", [bottleneck]),
            ("mask", [bottleneck]), ("pathway_mask", pathway), ("code_direction", pathway),
            ("sae_feature", [bottleneck]), ("transport", [bottleneck])]


def mask_maps(model: SceneAutoencoder, mask: steer.SteeringMask) -> dict[str, np.ndarray]:
    """Where in the picture a spline-code mask lives.

    Returns, for each layer of ``mask``, a (2, H, W) array: how many of the
    mask's units at each spatial position of that layer's feature map it
    wants *on* (``[0]``) and *off* (``[1]``), summed over channels.
    """
    if not isinstance(mask, steer.SteeringMask):
        raise TypeError(f"mask must be a polylens.steer.SteeringMask (e.g. a Method's parts['mask']), "
                        f"got {type(mask).__name__}")
    maps = {}
    for layer in mask.layers:
        channels, h, w = model.unit_shape(layer.name.split("#")[0])
        index, state = mask.layer(layer.name)
        counts = np.zeros((2, h * w))
        np.add.at(counts[0], index[state] % (h * w), 1)
        np.add.at(counts[1], index[~state] % (h * w), 1)
        maps[layer.name] = counts.reshape(2, h, w)
    return maps
