"""The sunny-duck evaluation: splits, ground truth, and honest strength choice."""

import numpy as np
import pytest
import torch

import polylens.scenes as pl_scenes
from polylens import compose
from polylens.scenes import Probes, SceneAutoencoder, SceneProbe, render


@pytest.fixture(scope="module")
def nets():
    ae = SceneAutoencoder(channels=2, width=4, seed=0).eval()
    return ae, Probes(SceneProbe(5, width=4, seed=1).eval(), SceneProbe(5, width=4, seed=2).eval())


def test_each_scene_comes_with_its_sunny_ground_truth():
    data = pl_scenes.split("test", 1)
    assert len(data) == 5 * 4  # every object under every non-sunny weather
    i = 7
    obj, seed = compose.OBJECTS[data.objects[i]], int(data.seeds[i])
    truth = torch.from_numpy(render(obj, "sunny", seed)).permute(2, 0, 1)
    assert torch.equal(data.truth[i], truth)
    assert compose.WEATHERS[data.weathers[i]] != "sunny"


def test_splits_never_share_a_scene():
    seeds = {split: set(pl_scenes.split(split, 3).seeds.tolist()) for split in ("train", "val", "test")}
    assert not seeds["train"] & seeds["val"] and not seeds["val"] & seeds["test"] and not seeds["train"] & seeds["test"]


def test_training_contrasts_differ_in_weather_only():
    """No sunny ducks exist in training, so no ducks on the other side either: the same scenes, other weathers."""
    sunny, other = pl_scenes.training_scenes(2)
    assert len(sunny) == 4 * 2  # four objects, no duck
    assert len(other) == 4 * 4 * 2  # the same four objects under each of the four other weathers
    rest = pl_scenes.split("train", 2, objects=pl_scenes.TRAINING_OBJECTS)
    assert torch.equal(rest.images, other) and "duck" not in pl_scenes.TRAINING_OBJECTS
    # Each "other" scene's sunny twin is in the sunny set: pairs, same seed.
    assert all(any(torch.equal(t, s) for s in sunny) for t in rest.truth)


def test_a_scene_has_one_seed_whatever_else_is_asked_for():
    ducks = pl_scenes.split("test", 3, objects=("duck",))
    every = pl_scenes.split("test", 3)
    assert set(ducks.seeds.tolist()) == set(every.seeds[every.objects == 0].tolist())
    boats = pl_scenes.split("test", 3, objects=("boat",), weathers=("night",))
    assert set(boats.seeds.tolist()) <= set(every.seeds.tolist())
    with pytest.raises(ValueError, match="sunny is the target"):
        pl_scenes.split("test", 1, weathers=("sunny",))


def test_strength_zero_is_no_steering_and_references_are_scored(nets):
    ae, probes = nets
    sunny, other = pl_scenes.training_scenes(2)
    test = pl_scenes.split("test", 1)
    plain = compose.score(ae, probes, test)
    for name, layers in compose.default_plans():
        method = compose.prepare(ae, name, layers, sunny, other)
        with torch.no_grad(), method.context(ae, 0.0):
            steered = ae(test.images)
        assert np.allclose(compose.score(ae, probes, test, steered)["rel_error"], plain["rel_error"], atol=1e-5), name
    oracle = compose.score(ae, probes, test, ae(test.truth))
    assert np.allclose(oracle["rel_error"], 1.0, atol=1e-5)  # the oracle is the reference error itself


def test_score_never_steers_its_own_yardstick(nets):
    ae, probes = nets
    test = pl_scenes.split("test", 1)
    sunny, other = pl_scenes.training_scenes(2)
    method = compose.prepare(ae, "add", [SceneAutoencoder.BOTTLENECK], sunny, other)
    own = compose.reference_error(ae, test)
    with torch.no_grad(), method.context(ae, 2.0):
        steered = ae(test.images)
        with pytest.raises(RuntimeError, match="reference_error"):
            compose.score(ae, probes, test, steered)
        inside = compose.score(ae, probes, test, steered, own=own)
    outside = compose.score(ae, probes, test, steered, own=own)
    assert np.array_equal(inside["rel_error"], outside["rel_error"])


def test_non_finite_steering_is_never_a_success(nets):
    """NaN logits argmax to class 0 = sunny and duck: the probes would call a NaN picture a sunny duck."""
    ae, probes = nets
    test = pl_scenes.split("test", 1)
    for bad in (float("nan"), float("inf")):
        scores = compose.score(ae, probes, test, torch.full_like(test.images, bad))
        assert not scores["success"].any() and not scores["probe_success"].any()
        assert np.isinf(scores["rel_error"]).all()


def test_score_refuses_what_it_cannot_score(nets):
    ae, probes = nets
    test = pl_scenes.split("test", 1)
    with pytest.raises(ValueError, match="one picture per scene"):
        compose.score(ae, probes, test, test.images[:3])
    with pytest.raises(TypeError, match="tensor"):
        compose.score(ae, probes, test, test.images.numpy())
    with pytest.raises(TypeError, match="polylens.scenes.Split"):
        compose.score(ae, probes, test.images)
    with pytest.raises(TypeError, match="load_probes"):
        compose.score(ae, (ae, ae), test)


def test_evaluate_chooses_one_strength_per_plan_on_validation(nets, monkeypatch):
    ae, probes = nets
    seen_splits = []
    original = pl_scenes.split

    def spy(split, n, *args, **kwargs):
        seen_splits.append(split)
        return original(split, n, *args, **kwargs)

    monkeypatch.setattr(compose, "split", spy)
    table = compose.evaluate(ae, probes, plans=[("add", [SceneAutoencoder.BOTTLENECK]), ("mask", [SceneAutoencoder.BOTTLENECK])],
                             strengths=(0.5, 1.0), n_train=2, n_val=1, n_test=1)
    assert {"val", "test"} <= set(seen_splits)
    assert [r["method"] for r in table.chosen()] and len(table.chosen()) == 2
    assert {r["method"] for r in table.rows} >= {"no steering", "oracle", *compose.CHANCE, "add", "mask"}
    for r in table.rows:  # every rate with its 95% interval
        rate, low, high = r["success"]
        assert low <= rate <= high and r["n"] == 20 and len(r["verdicts"]) == 20
    assert "success" in str(table) and "duck" in str(table)
    assert list(table.rows[0]["by_weather"]) == list(pl_scenes.BASE_WEATHERS)  # success split by starting weather
    strengths, success = table.curves()["add"]
    assert list(strengths) == [0.5, 1.0] and success.shape == (2,)
    assert table.by_weather().splitlines()[0].split()[1:] == list(pl_scenes.BASE_WEATHERS)
    full = table.full().splitlines()
    # header, rule, two references, four chance lines (the colour map among them), rule, two methods x two strengths
    assert len(full) == 2 + 2 + 4 + 1 + 2 * 2
    assert sum(line.split()[1].endswith("*") for line in full[9:]) == 2  # one chosen strength per method
    assert "*" not in str(table)


def test_bad_method_or_split_is_explained(nets):
    ae, _ = nets
    with pytest.raises(ValueError, match="choose from"):
        compose.prepare(ae, "flip", [SceneAutoencoder.BOTTLENECK], torch.zeros(1, 3, 64, 64), torch.zeros(1, 3, 64, 64))
    with pytest.raises(ValueError, match="split"):
        pl_scenes.split("holdout", 1)
    with pytest.raises(ValueError, match="at least one module"):
        compose.prepare(ae, "add", [], torch.zeros(1, 3, 64, 64), torch.zeros(1, 3, 64, 64))


@pytest.mark.parametrize("kwargs, match", [
    ({"strengths": ()}, "non-empty"),
    ({"strengths": (1.0, float("nan"))}, "finite"),
    ({"plans": []}, "nothing to evaluate"),
    ({"n_test": 0}, "n_test"),
    ({"methods": {"x": 3}}, "compose.Method"),
])
def test_evaluate_explains_bad_arguments(nets, kwargs, match):
    ae, probes = nets
    with pytest.raises((ValueError, TypeError), match=match):
        compose.evaluate(ae, probes, **kwargs)


def test_prepared_methods_go_through_the_same_protocol(nets):
    ae, probes = nets
    sunny, other = pl_scenes.training_scenes(2)
    mine = compose.prepare(ae, "add", [SceneAutoencoder.BOTTLENECK], sunny, other)
    table = compose.evaluate(ae, probes, plans=[], methods={"my add": mine}, strengths=(0.0, 1.0),
                             n_train=2, n_val=1, n_test=1)
    assert [r["method"] for r in table.chosen()] == ["my add"]


def test_with_the_shipped_networks_the_judge_brackets_every_method():
    """No steering never composes, the oracle nearly always does (sunny ducks too), chance stays low,
    (A NaN picture, which the probes once called a sunny duck, is tested above.)"""
    from polylens.scenes import load_autoencoder, load_probes

    table = compose.evaluate(load_autoencoder(), load_probes(), strengths=(0.5, 1.0, 2.0),
                             plans=[("add", [SceneAutoencoder.BOTTLENECK]), ("pathway_mask", list(SceneAutoencoder.PATHWAY))],
                             n_train=8, n_val=2, n_test=3)
    none, oracle = table.reference("no steering"), table.reference("oracle")
    assert none["success"][0] == 0.0 and none["p_sunny"] < 0.05  # nothing is sunny yet
    assert oracle["success"][0] >= 0.9 and oracle["duck"][0] >= 0.9  # the decoder can draw sunny ducks
    assert table.chance() <= 0.2
    assert table.reference("constant sunny picture")["success"][0] == 0.0
    for r in table.rows:
        if r["kind"] == "method":
            assert r["success"][0] <= oracle["success"][0]


def test_with_the_shipped_networks_paired_transport_recolours_but_draws_no_duck_shadow():
    """The transport gets sky and ground right about as often as the colour map with no network;
    what it does not draw is a sunny duck's own shadow, so under the shadow-aware judge it composes no duck."""
    from polylens.scenes import load_autoencoder, load_probes

    table = compose.evaluate(load_autoencoder(), load_probes(), plans=[("transport", [SceneAutoencoder.BOTTLENECK])],
                             strengths=(0.5, 1.0, 1.5), n_train=8, n_val=2, n_test=4)
    row, colour_map = table.row("transport"), table.reference(compose.COLOUR_MAP)
    assert row["background"][0] >= 0.3 and colour_map["background"][0] >= 0.5  # both recolour (from 8 training scenes each)
    assert colour_map["success"][0] == 0.0 and colour_map["shadow"][0] == 0.0  # no shadow, never composes
    assert row["duck_shadow_contrast"] < 0.25 and row["duck"][0] <= 0.1
    oracle = table.reference("oracle")
    assert oracle["success"][0] >= 0.9 and oracle["duck_shadow_contrast"] > 2 * row["duck_shadow_contrast"]


def test_geometry_measures_where_a_move_lands(nets):
    ae, _ = nets
    sunny, other = pl_scenes.training_scenes(2)
    add = compose.prepare(ae, "add", [SceneAutoencoder.BOTTLENECK], sunny, other)
    data = pl_scenes.split("test", 1, objects=("duck",))
    g = compose.geometry(ae, data, {"still": (add, 0.0), "add": (add, 2.0)}, add.parts["direction"], n_crossings=1)
    assert g["oracle"]["decoder code off"] == 0.0  # the oracle's code is the reference
    assert g["still"]["units moved"] == 0.0 and g["still"]["boundaries crossed"] == 0.0
    assert g["add"]["units moved"] > 0.5 and g["add"]["boundaries crossed"] >= 1
    mask = compose.prepare(ae, "pathway_mask", list(SceneAutoencoder.PATHWAY), sunny, other)
    with pytest.raises(ValueError, match="bottleneck"):
        compose.geometry(ae, data, {"mask": (mask, 1.0)}, add.parts["direction"])


def test_a_gate_moved_by_gated_is_the_one_prepare_builds(nets):
    ae, probes = nets
    sunny, other = pl_scenes.training_scenes(2)
    method = compose.prepare(ae, "add_if_below", [SceneAutoencoder.BOTTLENECK], sunny, other)
    x = pl_scenes.split("test", 1).images
    with torch.no_grad():
        with method.context(ae, 2.0):
            built = ae(x)
        with compose.gated(method, method.parts["threshold"]).context(ae, 2.0):
            same = ae(x)
        with compose.gated(method, -1e9).context(ae, 2.0):  # every picture is above: nothing is steered
            closed = ae(x)
        plain = ae(x)
    assert torch.equal(built, same) and torch.equal(closed, plain)
    with pytest.raises(TypeError, match="add_if_below"):
        compose.gated(compose.prepare(ae, "add", [SceneAutoencoder.BOTTLENECK], sunny, other), 0.0)
