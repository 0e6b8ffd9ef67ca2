"""The sunny-duck evaluation: splits, ground truth, and honest strength choice."""

import numpy as np
import pytest
import torch

from polylens import compose
from polylens.scenes import Probes, SceneAutoencoder, SceneProbe, render


@pytest.fixture(scope="module")
def nets():
    ae = SceneAutoencoder(channels=2, width=4, seed=0).eval()
    return ae, Probes(SceneProbe(5, width=4, seed=1).eval(), SceneProbe(5, width=4, seed=2).eval())


def test_each_scene_comes_with_its_sunny_ground_truth():
    data = compose.scenes("test", 1)
    assert len(data) == 5 * 4  # every object under every non-sunny weather
    i = 7
    obj, seed = compose.OBJECTS[data.objects[i]], int(data.seeds[i])
    truth = torch.from_numpy(render(obj, "sunny", seed)).permute(2, 0, 1)
    assert torch.equal(data.truth[i], truth)
    assert compose.WEATHERS[data.weathers[i]] != "sunny"


def test_splits_never_share_a_scene():
    seeds = {split: set(compose.scenes(split, 3).seeds.tolist()) for split in ("train", "val", "test")}
    assert not seeds["train"] & seeds["val"] and not seeds["val"] & seeds["test"] and not seeds["train"] & seeds["test"]


def test_training_directions_never_see_a_sunny_duck():
    sunny, other = compose.training_scenes(2)
    assert len(sunny) == 4 * 2  # four objects, no duck
    assert len(other) == 5 * 4 * 2


def test_strength_zero_is_no_steering_and_references_are_scored(nets):
    ae, probes = nets
    sunny, other = compose.training_scenes(2)
    test = compose.scenes("test", 1)
    plain = compose.score(ae, probes, test)
    for name, layers in compose.default_plans():
        method = compose.prepare(ae, name, layers, sunny, other)
        with torch.no_grad(), method.context(ae, 0.0):
            steered = ae(test.images)
        assert np.allclose(compose.score(ae, probes, test, steered)["rel_error"], plain["rel_error"], atol=1e-5), name
    oracle = compose.score(ae, probes, test, ae(test.truth))
    assert np.allclose(oracle["rel_error"], 1.0, atol=1e-5)  # the oracle is the reference error itself


def test_evaluate_chooses_one_strength_per_plan_on_validation(nets, monkeypatch):
    ae, probes = nets
    seen_splits = []
    original = compose.scenes

    def spy(split, n, *args, **kwargs):
        seen_splits.append(split)
        return original(split, n, *args, **kwargs)

    monkeypatch.setattr(compose, "scenes", spy)
    table = compose.evaluate(ae, probes, plans=[("add", [SceneAutoencoder.BOTTLENECK]), ("mask", [SceneAutoencoder.BOTTLENECK])],
                             strengths=(0.5, 1.0), n_train=2, n_val=1, n_test=1)
    assert {"val", "test"} <= set(seen_splits)
    assert [r["method"] for r in table.chosen()] and len(table.chosen()) == 2
    assert {r["method"] for r in table.rows} >= {"no steering", "oracle", "add", "mask"}
    assert "success" in str(table) and "duck" in str(table)
    assert list(table.rows[0]["by_weather"]) == list(compose.BASE_WEATHERS)  # success split by starting weather
    strengths, success = table.curves()["add"]
    assert list(strengths) == [0.5, 1.0] and success.shape == (2,)
    assert table.by_weather().splitlines()[0].split()[1:] == list(compose.BASE_WEATHERS)
    full = table.full().splitlines()
    assert len(full) == 2 + 2 + 2 * 2  # header, rule, the two references, two methods x two strengths
    assert sum(line.split()[2].endswith("*") for line in full[4:]) == 2  # one chosen strength per method
    assert "*" not in str(table)


def test_bad_method_or_split_is_explained(nets):
    ae, _ = nets
    with pytest.raises(ValueError, match="choose from"):
        compose.prepare(ae, "flip", [SceneAutoencoder.BOTTLENECK], torch.zeros(1, 3, 64, 64), torch.zeros(1, 3, 64, 64))
    with pytest.raises(ValueError, match="split"):
        compose.scenes("holdout", 1)


def test_with_the_shipped_networks_steering_beats_no_steering_and_the_oracle_beats_both():
    from polylens.scenes import load_autoencoder, load_probes

    table = compose.evaluate(load_autoencoder(), load_probes(), strengths=(0.5, 1.0, 2.0),
                             plans=[("add", [SceneAutoencoder.BOTTLENECK]), ("pathway_mask", list(SceneAutoencoder.PATHWAY))],
                             n_train=8, n_val=2, n_test=3)
    rows = {r["method"]: r for r in table.rows if r["method"] in ("no steering", "oracle")}
    assert rows["no steering"]["success"] == 0.0 and rows["no steering"]["p_sunny"] < 0.05  # nothing is sunny yet
    assert rows["oracle"]["success"] >= 0.9 and rows["oracle"]["p_sunny"] > 0.95  # encoding the true sunny scene works
    assert rows["oracle"]["duck_success"] >= 0.8  # even for sunny ducks, which the autoencoder never saw
    best = table.best()
    assert 0.0 < best["success"] <= rows["oracle"]["success"]
    assert best["p_sunny"] > rows["no steering"]["p_sunny"] + 0.3
