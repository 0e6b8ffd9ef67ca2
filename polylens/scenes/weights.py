"""Load the shipped scene networks, checking every file against its manifest.

    from polylens.scenes import load_autoencoder, load_probes
    ae = load_autoencoder()             # SceneAutoencoder, eval mode
    probes = load_probes()              # Probes(object=SceneProbe, weather=SceneProbe)
    probes.object.predict(x)            # (batch,) indices into OBJECTS

Weights are safetensors files (plain tensors, never pickle) in
``polylens/scenes/weights/``; ``manifest.json`` beside them records each
file's sha256, the architecture, the training seed and the measured figures.
A missing or altered file, or a manifest that is not the one training wrote
(hand-edited, truncated), is refused with a ``WeightsError`` that says how to
make new ones: ``python -m polylens.scenes.train --out DIR`` writes them to a
folder of your own, loaded with ``load_autoencoder(DIR)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple, Union

import torch
from safetensors.torch import load_file, save_file

from polylens.scenes.networks import SceneAutoencoder, SceneProbe
from polylens.shipped import manifest, sha256, verified

__all__ = ["WEIGHTS_DIR", "Probes", "WeightsError", "load_autoencoder", "load_manifest", "load_probes", "save_model"]

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
RETRAIN = "python -m polylens.scenes.train"
_CLASSES = {"SceneAutoencoder": SceneAutoencoder, "SceneProbe": SceneProbe}

PathLike = Union[str, Path]


class WeightsError(RuntimeError):
    """A weight file or the manifest is missing, altered or does not fit its network."""


class Probes(NamedTuple):
    """The two independent classifiers that score scenes: ``object`` and ``weather``."""

    object: SceneProbe
    weather: SceneProbe


def _retrain_hint(directory: Path) -> str:
    if directory == WEIGHTS_DIR:
        return ("Restore the shipped weights (reinstall polylens, or `git checkout polylens/scenes/weights` in a "
                f"clone), or retrain with `{RETRAIN} --out scene-weights` (about 15 minutes on two CPU cores) and "
                "load them with load_autoencoder('scene-weights').")
    return f"Retrain them with `{RETRAIN} --out {directory}` (about 15 minutes on two CPU cores)."


def load_manifest(directory: PathLike | None = None) -> dict:
    """The manifest (files, sha256, architectures, seed, figures) as a dict."""
    directory = Path(directory) if directory is not None else WEIGHTS_DIR
    manifest(directory, error=WeightsError, hint=_retrain_hint(directory), table="models")  # checks its shape
    return manifest(directory, error=WeightsError, hint=_retrain_hint(directory))


def _load(name: str, directory: PathLike | None) -> torch.nn.Module:
    directory = Path(directory) if directory is not None else WEIGHTS_DIR
    hint = _retrain_hint(directory)
    models = manifest(directory, error=WeightsError, hint=hint, table="models")
    path, entry = verified(directory, models, name, error=WeightsError, hint=hint, fields=("class", "config"))
    if entry["class"] not in _CLASSES or not isinstance(entry["config"], dict) \
            or not all(isinstance(k, str) for k in entry["config"]):
        raise WeightsError(f"the manifest entry for {name!r} in {directory} has class {entry['class']!r} and config "
                           f"{entry['config']!r}; the class must be one of {sorted(_CLASSES)} and the config a table "
                           f"of constructor arguments: the manifest was edited by hand or damaged. {hint}")
    try:
        # Built on the meta device first: a hand-edited config (width 4096) is measured, not allocated.
        with torch.device("meta"):
            shell = _CLASSES[entry["class"]](**entry["config"])
    except (TypeError, ValueError) as err:
        raise WeightsError(f"the manifest in {directory} gives {entry['class']} the config {entry['config']}, which "
                           f"it does not take ({err}): the manifest was edited by hand. {hint}") from None
    needed = sum(p.numel() * p.element_size() for p in shell.state_dict().values())
    if needed > 2 * path.stat().st_size + 4096:
        raise WeightsError(f"the manifest gives {entry['class']} the config {entry['config']}, a network of "
                           f"{needed / 1e6:.1f} MB, but {path.name} holds {path.stat().st_size / 1e6:.1f} MB: "
                           f"the manifest was edited by hand. {hint}")
    model = _CLASSES[entry["class"]](**entry["config"])
    try:
        state = load_file(path)
    except Exception as err:  # safetensors raises its own error type for a damaged header
        raise WeightsError(f"{path} is not a readable safetensors file ({err}). {hint}") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise WeightsError(f"{path} does not fit {entry['class']}({entry['config']}): {err}. {hint}") from None
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise WeightsError(f"{path} holds NaN or inf in {', '.join(bad[:3])}: these weights were saved from a "
                           f"failed training run. {hint}")
    return model.eval()


def load_autoencoder(directory: PathLike | None = None) -> SceneAutoencoder:
    """The shipped scene autoencoder (trained without sunny ducks), in eval mode."""
    return _load("autoencoder", directory)


def load_probes(directory: PathLike | None = None) -> Probes:
    """The shipped object and weather probes (trained on every combination), in eval mode."""
    return Probes(object=_load("probe_object", directory), weather=_load("probe_weather", directory))


def save_model(model: torch.nn.Module, name: str, directory: PathLike) -> dict:
    """Write ``model`` as ``<name>.safetensors`` in ``directory``; returns its manifest entry."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.safetensors"
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    save_file(state, str(path))
    return {
        "file": path.name,
        "class": type(model).__name__,
        "config": dict(model.config),
        "sha256": sha256(path),
        "bytes": path.stat().st_size,
    }
