"""The shipped scene networks: architecture, weights against manifest, refusal of bad files, quality."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from torch import nn

from polylens.scenes import OBJECTS, WEATHERS, SceneDataset, load_autoencoder, load_probes
from polylens.scenes.networks import SceneAutoencoder, SceneProbe
from polylens.scenes.weights import WEIGHTS_DIR, WeightsError, load_manifest, sha256


@pytest.fixture(scope="module")
def manifest():
    return load_manifest()


@pytest.fixture(scope="module")
def ae():
    return load_autoencoder()


@pytest.fixture(scope="module")
def probes():
    return load_probes()


# ------------------------------------------------------------ architecture


def test_autoencoder_is_relu_and_affine_only():
    model = SceneAutoencoder()
    allowed = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.ReLU, nn.Flatten, nn.Unflatten, nn.Sequential)
    for name, module in model.named_modules():
        if name:
            assert isinstance(module, allowed), f"{name} is {type(module).__name__}: not ReLU or affine"
    names = dict(model.named_modules())
    assert isinstance(names[model.BOTTLENECK], nn.ReLU)  # the bottleneck
    assert all(isinstance(names[n], nn.ReLU) for n in model.PATHWAY)


def test_autoencoder_shapes_and_bad_input():
    model = SceneAutoencoder()
    x = torch.rand(2, 3, 64, 64)
    z = model.encode(x)
    assert z.shape == (2, 8 * 8 * 8) and (z >= 0).all()  # 8 maps of 8 x 8
    assert [model.unit_shape(n) for n in model.PATHWAY] == [(8, 8, 8), (32, 8, 8), (32, 16, 16)]
    with pytest.raises(ValueError, match="no layer"):
        model.unit_shape("encoder.99")
    assert model.decode(z).shape == (2, 3, 64, 64)
    with pytest.raises(ValueError, match="permute"):
        model(torch.rand(2, 64, 64, 3))
    with pytest.raises(TypeError, match="torch tensor"):
        model.encode(np.zeros((2, 3, 64, 64), dtype=np.float32))
    with pytest.raises(ValueError, match="codes"):
        model.decode(torch.rand(2, 5))


def test_same_seed_same_weights():
    a, b = SceneProbe(5, seed=3), SceneProbe(5, seed=3)
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q)


# ------------------------------------------------------------ shipped weights


def test_shipped_weights_match_manifest(manifest):
    assert set(manifest["models"]) == {"autoencoder", "probe_object", "probe_weather"}
    total = 0
    for entry in manifest["models"].values():
        path = WEIGHTS_DIR / entry["file"]
        assert path.suffix == ".safetensors"
        assert sha256(path) == entry["sha256"]
        total += path.stat().st_size
    assert total < 8 * 2**20  # a few MB in all
    assert manifest["models"]["autoencoder"]["held_out"] == [["duck", "sunny"]]
    assert manifest["models"]["probe_object"]["classes"] == list(OBJECTS)
    assert manifest["models"]["probe_weather"]["classes"] == list(WEATHERS)
    assert isinstance(manifest["training"]["seed"], int)


def test_shipped_models_load_in_eval_mode(ae, probes):
    assert isinstance(ae, SceneAutoencoder) and not ae.training
    assert isinstance(probes.object, SceneProbe) and not probes.weather.training
    obj, weather = probes  # a named tuple: unpacks too
    assert obj is probes.object and weather is probes.weather


@pytest.fixture()
def weights_copy(tmp_path):
    target = tmp_path / "weights"
    shutil.copytree(WEIGHTS_DIR, target)
    return target


def test_corrupt_weights_are_refused_with_retrain_hint(weights_copy):
    path = weights_copy / "autoencoder.safetensors"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match=r"corrupt.*python -m polylens\.scenes\.train"):
        load_autoencoder(weights_copy)
    load_probes(weights_copy)  # the untouched files still load


def test_missing_weights_and_manifest_are_refused(weights_copy, tmp_path):
    (weights_copy / "probe_weather.safetensors").unlink()
    with pytest.raises(WeightsError, match=r"missing.*python -m polylens\.scenes\.train"):
        load_probes(weights_copy)
    with pytest.raises(WeightsError, match=r"no manifest.json.*python -m polylens\.scenes\.train"):
        load_autoencoder(tmp_path / "nowhere")


def test_manifest_that_lies_about_a_file_is_refused(weights_copy):
    manifest = json.loads((weights_copy / "manifest.json").read_text())
    manifest["models"]["probe_object"]["sha256"] = "0" * 64
    (weights_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(WeightsError, match="sha256"):
        load_probes(weights_copy)


# ------------------------------------------------------------ quality on fresh scenes


@pytest.fixture(scope="module")
def fresh():
    # Seeds disjoint from training (dataset seeds 1 and 2) and from the manifest's figures.
    return SceneDataset(300, exclude=[], seed=4242)


def test_probes_recognise_fresh_scenes(probes, fresh):
    x = fresh.tensor()
    obj = (probes.object.predict(x).numpy() == fresh.objects).mean()
    weather = (probes.weather.predict(x).numpy() == fresh.weathers).mean()
    assert obj >= 0.98, f"object probe accuracy {obj:.3f}"
    assert weather >= 0.98, f"weather probe accuracy {weather:.3f}"


def test_autoencoder_reconstructs_seen_and_held_out_scenes(ae, manifest):
    seen = SceneDataset(120, seed=4243).tensor()
    ducks = SceneDataset(60, objects=["duck"], weathers=["sunny"], exclude=[], seed=4244).tensor()
    with torch.no_grad():
        mse_seen = torch.mean((ae(seen).clamp(0, 1) - seen) ** 2).item()
        mse_ducks = torch.mean((ae(ducks).clamp(0, 1) - ducks) ** 2).item()
    # Far better than predicting the mean image, and in line with the manifest.
    baseline = torch.mean((seen - seen.mean(0)) ** 2).item()
    assert mse_seen < baseline / 5
    assert mse_seen < 2 * manifest["figures"]["ae_mse_seen"]
    assert mse_ducks < 2 * manifest["figures"]["ae_mse_unseen_sunny_duck"]


# ------------------------------------------------------------ retraining


def test_training_script_writes_loadable_weights(tmp_path):
    from polylens.scenes.train import main

    out = tmp_path / "retrained"
    manifest = main(["--steps", "2", "--n-train", "40", "--n-eval", "10", "--threads", "1", "--out", str(out), "--quiet"])
    for entry in manifest["models"].values():
        assert (out / entry["file"]).is_file()
        assert sha256(out / entry["file"]) == entry["sha256"]
    assert json.loads((out / "manifest.json").read_text()) == json.loads(json.dumps(manifest))
    assert set(manifest["figures"]) >= {"ae_mse_seen", "ae_mse_unseen_sunny_duck", "probe_object_acc"}
    assert isinstance(load_autoencoder(out), SceneAutoencoder)
    assert isinstance(load_probes(out).weather, SceneProbe)
    # Deterministic: the same seed gives the same weights.
    again = main(["--steps", "2", "--n-train", "40", "--n-eval", "10", "--threads", "1",
                  "--out", str(tmp_path / "again"), "--quiet"])
    assert again["models"]["autoencoder"]["sha256"] == manifest["models"]["autoencoder"]["sha256"]
