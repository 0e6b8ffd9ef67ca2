"""Rough use that used to give a silently wrong answer or an obscure traceback.

Each test names what a learner did and what they now get: a right answer,
or an error that says what to do instead. Simple one-line refusals live in
the tables of ``test_bad_input.py``; here are the cases that need a setup
(a compiled model, a retraining run, a folder of weights with a hand-edited
manifest).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import polylens as pl
from polylens import steer
from polylens.scenes import (
    SceneProbe,
    WeightsError,
    load_autoencoder,
    load_manifest,
    load_probes,
)
from polylens.scenes import train as scene_train
from polylens.scenes.weights import WEIGHTS_DIR, sha256
from polylens.superposition import sweeps

X = torch.randn(5, 2, generator=torch.Generator().manual_seed(0))


def mlp() -> nn.Module:
    return pl.models.MLP([2, 4, 2], seed=0)


# ------------------------------------------------------ compiled models ---
# torch.compile(model) runs a compiled graph that skips hooks added after its
# first call: captures came back empty and edits did nothing. Compiling needs
# a C compiler and ~15 s on CPU, so these tests build the wrapper without
# calling it (the refusal does not depend on having run it); the end-to-end
# check below runs only with POLYLENS_SLOW_TESTS=1.


@pytest.fixture(scope="module")
def compiled() -> nn.Module:
    return torch.compile(mlp())


@pytest.mark.parametrize(
    "use",
    [
        lambda m: pl.capture(m, "_orig_mod.relu0").__enter__(),
        lambda m: pl.hooked(m, [("_orig_mod.relu0", lambda t, h: 2 * t)]).__enter__(),
        lambda m: pl.run_with_cache(m, X),
        lambda m: pl.run_with_hooks(m, X, fwd_hooks=[("_orig_mod.out", lambda t, h: t)]),
        lambda m: steer.add(m, steer.mean_difference(X + 1, X), 1.0, layer="_orig_mod.out").__enter__(),
    ],
    ids=["capture", "hooks", "run_with_cache", "run_with_hooks", "steer.add"],
)
def test_a_compiled_model_is_refused_with_the_module_to_pass(compiled, use):
    with pytest.raises(TypeError, match=r"torch.compile.*model\._orig_mod"):
        use(compiled)


def test_a_compiled_submodule_is_refused_and_named(compiled):
    outer = nn.Sequential(compiled, nn.ReLU())
    with pytest.raises(TypeError, match=r"model\.0 was compiled.*model\.0\._orig_mod"):
        pl.run_with_cache(outer, X)


def test_the_module_a_compiled_model_wraps_works(compiled):
    out, cache = pl.run_with_cache(compiled._orig_mod, X, names_filter="relu0")
    assert cache["relu0"].shape == (5, 4) and out.shape == (5, 2)


@pytest.mark.skipif(os.environ.get("POLYLENS_SLOW_TESTS") != "1", reason="compiles for ~15 s; POLYLENS_SLOW_TESTS=1")
def test_after_a_compiled_call_hooks_are_refused_not_skipped():
    model = torch.compile(mlp())
    model(X)  # compiles: from here on, hooks added to the submodules are not run
    with pytest.raises(TypeError, match="_orig_mod"), pl.capture(model, "_orig_mod.relu0"):
        model(X)


# --------------------------------------------------------- hooks, reuse ---


def test_a_capture_object_serves_one_block_and_says_so():
    model = mlp()
    manager = pl.capture(model, "relu0")
    with manager as cache:
        model(X)
    assert cache["relu0"].shape == (5, 4)
    with pytest.raises(RuntimeError, match=r"already used.*call capture\(\.\.\.\) again"), manager:
        model(X)
    assert not model.relu0._forward_hooks and not model._forward_pre_hooks  # nothing left behind


def test_a_hooks_object_and_a_steering_object_serve_one_block():
    model = mlp()
    manager = pl.hooked(model, [("relu0", lambda t, h: 0 * t)])
    with manager:
        model(X)
    with pytest.raises(RuntimeError, match="call hooked"), manager:
        pass
    adding = steer.add(model, steer.mean_difference(X + 1, X), 1.0, layer="out")
    with adding:
        model(X)
    with pytest.raises(RuntimeError, match="call add"), adding:
        pass


# ----------------------------------------- modules called with keywords ---


class KeywordReLU(nn.Module):
    """Calls its ReLU as ``relu(input=h)``: nothing positional for a hook to see."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 3)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(input=self.linear(x))


def test_a_relu_called_with_a_keyword_records_its_input_not_an_empty_tuple():
    model = KeywordReLU()
    _, cache = pl.run_with_cache(model, X, which="both")
    pre = model.linear(X).detach()
    assert torch.equal(cache.inputs["relu"], pre)
    assert torch.equal(cache["relu"], pre.relu())
    code = pl.spline_code(model, X)
    assert np.array_equal(code.bits, (pre > 0).numpy())


def test_an_input_hook_edits_a_keyword_input():
    model = KeywordReLU()
    out = pl.run_with_hooks(model, X, input_hooks=[("relu", lambda u, h: u + 100.0)])
    assert torch.allclose(out, (model.linear(X) + 100.0).relu())


def test_an_input_hook_on_a_module_called_with_several_keywords_is_refused():
    class TwoKeywords(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bilinear = nn.Bilinear(2, 2, 1)

        def forward(self, x):
            return self.bilinear(input1=x, input2=x)

    with pytest.raises(TypeError, match="keyword arguments only"):
        pl.run_with_hooks(TwoKeywords(), X, input_hooks=[("bilinear", lambda u, h: u)])


# ------------------------------------------------ wrongly shaped inputs ---


def test_a_wrongly_shaped_input_says_what_the_first_layer_expects():
    with pytest.raises(ValueError, match=r"first layer 'linear0' expects \(batch, 2\)") as info:
        pl.run_with_cache(mlp(), torch.zeros(3, 5))
    assert isinstance(info.value.__cause__, RuntimeError)  # torch's own message stays attached


def test_the_shape_message_names_the_first_layer_run_not_the_first_defined():
    class HeadFirst(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.head = nn.Linear(8, 2)  # defined first, runs last
            self.body = nn.Sequential(nn.Flatten(), nn.Linear(6, 8), nn.ReLU())

        def forward(self, x):
            return self.head(self.body(x))

    with pytest.raises(ValueError, match=r"shape \(3, 2, 2\) \(it reached the first layer as \(3, 4\)\).*'body.1'"):
        pl.run_with_cache(HeadFirst(), torch.zeros(3, 2, 2))
    out, _ = pl.run_with_cache(HeadFirst(), torch.zeros(3, 2, 3))
    assert out.shape == (3, 2)


def test_an_error_inside_a_model_with_a_fitting_input_is_left_alone():
    class Broken(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(2, 2)

        def forward(self, x):
            raise RuntimeError("the learner's own bug")

    with pytest.raises(RuntimeError, match="the learner's own bug"):
        pl.run_with_cache(Broken(), X)


# ---------------------------------------------------- scene networks ---


def test_predict_on_an_empty_batch_gives_an_empty_answer():
    out = SceneProbe(5).predict(torch.zeros(0, 3, 64, 64))
    assert out.shape == (0,) and out.dtype == torch.long


def test_a_float64_network_takes_float64_images():
    ae = pl.scenes.SceneAutoencoder(channels=1, width=2).double()
    assert ae(torch.zeros(1, 3, 64, 64, dtype=torch.float64)).dtype == torch.float64
    with pytest.raises(TypeError, match=r"x\.to\(torch\.float64\)"):
        ae(torch.zeros(1, 3, 64, 64))


# -------------------------------------------- retraining the scene nets ---


def _tiny(out_args: list[str]) -> list[str]:
    return ["--steps", "2", "--n-train", "40", "--n-eval", "10", "--threads", "1", "--quiet", *out_args]


def test_retraining_without_out_writes_to_a_folder_of_your_own(tmp_path, monkeypatch):
    shipped = {p.name: sha256(p) for p in WEIGHTS_DIR.iterdir()}
    monkeypatch.chdir(tmp_path)
    scene_train.main(_tiny([]))
    written = tmp_path / scene_train.DEFAULT_OUT
    assert sorted(p.name for p in written.iterdir()) == sorted(shipped)
    assert {p.name: sha256(p) for p in WEIGHTS_DIR.iterdir()} == shipped  # the package was not touched
    assert load_manifest(written)["training"]["steps"]["autoencoder"] == 2
    assert load_manifest()["training"]["steps"]["autoencoder"] == 8000  # the default still loads the shipped ones
    load_autoencoder(written), load_probes(written)


@pytest.mark.parametrize("out", [WEIGHTS_DIR, WEIGHTS_DIR.parent, WEIGHTS_DIR / "sub"])
def test_retraining_refuses_to_write_inside_the_package_unless_asked(out, capsys):
    with pytest.raises(SystemExit):
        scene_train.main(_tiny(["--out", str(out)]))
    assert "--overwrite-shipped" in capsys.readouterr().err


def test_overwrite_shipped_is_the_explicit_way_to_replace_the_shipped_weights(capsys):
    # Only the argument parsing: where a run would write, without training.
    assert scene_train._parse(_tiny(["--overwrite-shipped"])).out == WEIGHTS_DIR
    assert scene_train._parse(_tiny([])).out == scene_train.DEFAULT_OUT
    with pytest.raises(SystemExit):
        scene_train._parse(_tiny(["--overwrite-shipped", "--out", "elsewhere"]))
    assert "leave out --out" in capsys.readouterr().err


def test_the_missing_weights_hint_names_a_folder_outside_the_package(tmp_path):
    with pytest.raises(WeightsError, match=f"--out {tmp_path}"):
        load_autoencoder(tmp_path)
    hint = pl.scenes.weights._retrain_hint(WEIGHTS_DIR)
    assert "--out scene-weights" in hint and "load_autoencoder('scene-weights')" in hint


# ------------------------------------------------- hand-edited manifests ---


@pytest.fixture
def weights(tmp_path) -> Path:
    target = tmp_path / "weights"
    shutil.copytree(WEIGHTS_DIR, target)
    return target


def _edit_manifest(folder: Path, change) -> None:
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


MANIFEST_EDITS = [
    pytest.param(lambda m: m["models"]["autoencoder"].pop("sha256"), "lacks sha256", id="no sha256"),
    pytest.param(lambda m: m["models"]["autoencoder"].update(file="../autoencoder.safetensors"), "file name",
                 id="file outside the folder"),
    pytest.param(lambda m: m["models"]["autoencoder"].update(file=7), "file name", id="file a number"),
    pytest.param(lambda m: m["models"]["autoencoder"].update({"class": "Autoencoder"}), "one of",
                 id="unknown class"),
    pytest.param(lambda m: m["models"]["autoencoder"]["config"].update(channels="8"), "does not take",
                 id="config a string"),
    pytest.param(lambda m: m["models"]["autoencoder"]["config"].update(depth=3), "does not take",
                 id="config unknown key"),
    pytest.param(lambda m: m["models"].update(autoencoder=["autoencoder.safetensors"]), "not a table",
                 id="entry a list"),
    pytest.param(lambda m: m.update(models=[]), "no \"models\" table", id="models a list"),
]


@pytest.mark.parametrize("change, phrase", MANIFEST_EDITS)
def test_a_hand_edited_scene_manifest_is_a_weights_error(weights, change, phrase):
    _edit_manifest(weights, change)
    with pytest.raises(WeightsError, match="retrain|Retrain") as info:
        load_autoencoder(weights)
    assert phrase in str(info.value)


def test_a_scene_manifest_that_is_not_a_table_is_a_weights_error(weights):
    (weights / "manifest.json").write_text("[1, 2, 3]")
    with pytest.raises(WeightsError, match="not a manifest of shipped files"):
        load_probes(weights)


# ------------------------------------------- shipped superposition sweeps ---


@pytest.fixture
def sweep_data(tmp_path) -> Path:
    for f in sweeps.DATA.iterdir():
        shutil.copy(f, tmp_path / f.name)
    return tmp_path


def test_a_missing_sweep_file_says_how_to_get_it_back(sweep_data):
    (sweep_data / "dstar.safetensors").unlink()
    with pytest.raises(sweeps.DataError, match=r"missing.*Restore.*python -m polylens.superposition.sweeps"):
        sweeps.load("dstar", sweep_data)


def test_a_missing_or_broken_sweep_manifest_is_a_data_error(sweep_data):
    (sweep_data / "manifest.json").write_text("{not json")
    with pytest.raises(sweeps.DataError, match="not valid JSON"):
        sweeps.load("dstar", sweep_data)
    (sweep_data / "manifest.json").unlink()
    with pytest.raises(sweeps.DataError, match="no manifest.json"):
        sweeps.load("dstar", sweep_data)


@pytest.mark.parametrize(
    "change",
    [lambda e: e.pop("file"), lambda e: e.update(sha256=None), lambda e: e.update(file="../dstar.safetensors")],
    ids=["no file", "sha256 null", "file outside the folder"],
)
def test_a_hand_edited_sweep_manifest_is_a_data_error(sweep_data, change):
    _edit_manifest(sweep_data, lambda m: change(m["dstar"]))
    with pytest.raises(sweeps.DataError, match="edited by hand"):
        sweeps.load("dstar", sweep_data)


def test_a_sweep_file_that_is_not_a_toy_model_is_a_data_error_even_with_a_matching_sha256(sweep_data):
    path = sweep_data / "dstar.safetensors"
    path.write_bytes(b"not a safetensors file")
    _edit_manifest(sweep_data, lambda m: m["dstar"].update(sha256=sweeps.sha256(path)))
    with pytest.raises(sweeps.DataError, match="does not hold a toy model"):
        sweeps.load("dstar", sweep_data)
    assert issubclass(sweeps.DataError, ValueError)  # code catching the old ValueError still works


def test_regenerating_the_sweeps_never_writes_into_the_package(tmp_path, monkeypatch):
    """Like the scene weights: a folder the user names, the shipped one only with --overwrite-shipped."""
    from polylens.superposition import sweeps

    before = {p.name: p.read_bytes() for p in sweeps.DATA.iterdir()}
    with pytest.raises(SystemExit):
        sweeps.main(["--out", str(sweeps.DATA / "elsewhere")])
    with pytest.raises(SystemExit):
        sweeps.main(["--out", str(tmp_path), "--overwrite-shipped"])
    calls = []
    monkeypatch.setattr(sweeps, "phase_diagram_n2", lambda progress: calls.append("phase") or sweeps.load("phase_n2"))
    monkeypatch.chdir(tmp_path)
    assert sweeps.main(["--only", "phase_n2"]) == 0
    assert calls == ["phase"] and (tmp_path / "superposition-data" / "phase_n2.safetensors").is_file()
    assert {p.name: p.read_bytes() for p in sweeps.DATA.iterdir()} == before


def test_every_shipped_file_goes_through_one_checked_path(weights, sweep_data, monkeypatch):
    """The scene weights and the superposition sweeps are found and checked by polylens.shipped alone."""
    from polylens import shipped

    calls = []
    real = shipped.verified

    def spy(folder, entries, name, **kwargs):
        calls.append(name)
        return real(folder, entries, name, **kwargs)

    monkeypatch.setattr(shipped, "verified", spy)
    monkeypatch.setattr("polylens.scenes.weights.verified", spy)
    monkeypatch.setattr("polylens.superposition.sweeps.verified", spy)
    load_probes(weights)
    sweeps.load("phase_n2", sweep_data)
    assert calls == ["probe_object", "probe_weather", "phase_n2"]
    # The same hand edit gets the same diagnosis, in each loader's own error type.
    for folder, error, load in ((weights, WeightsError, lambda: load_probes(weights)),
                                (sweep_data, sweeps.DataError, lambda: sweeps.load("phase_n2", sweep_data))):
        text = (folder / "manifest.json").read_text()
        (folder / "manifest.json").write_text(text.replace('"sha256"', '"sha_256"'))
        with pytest.raises(error, match="lacks sha256"):
            load()
