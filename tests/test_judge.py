"""The answer-key judge: it accepts this scene on a sunny day and rejects every way of faking it.

Each fake is built here from the renderer and must fail; the truth, a slightly blurred truth and the
autoencoder's own drawing of the truth (the oracle) must pass.
"""

import numpy as np
import pytest
import torch

import polylens.scenes as pl_scenes
from polylens import compose, judge
from polylens.judge import AnswerKey, describe, elsewhere_params, in_words, wilson
from polylens.scenes import draw_batch, load_autoencoder, render, scene_params_batch, sun_zone, to_tensor
from polylens.scenes.colour_map import fit_colour_map


@pytest.fixture(scope="module")
def ae():
    return load_autoencoder()


@pytest.fixture(scope="module")
def test():
    return pl_scenes.split("test", 4)  # 80 scenes: 5 objects x 4 weathers x 4 seeds


@pytest.fixture(scope="module")
def params(test):
    return scene_params_batch(test.objects, test.seeds)


def rate(data, pictures):
    return float(data.key.judge(pictures)["success"].mean())


def test_the_truth_the_blurred_truth_and_the_oracle_compose(ae, test):
    assert rate(test, test.truth) == 1.0
    assert rate(test, compose.blur(test.truth)) == 1.0  # the decoder draws softly: softness is no failure
    with torch.no_grad():
        oracle = ae(test.truth)
    assert rate(test, oracle) >= 0.9  # the autoencoder's own drawing of the sunny scene
    assert np.allclose(test.key.oracle, oracle.clamp(0, 1).permute(0, 2, 3, 1).numpy(), atol=1e-5)
    verdict = test.key.judge(test.truth)
    assert np.allclose(verdict["shadow_contrast"], 1.0, atol=1e-6)  # the truth shows all of its shadow


def test_the_unsteered_picture_is_never_sunny(ae, test):
    verdict = test.key.judge(test.images)
    assert not verdict["success"].any()
    assert all(n.startswith("weather:") for n in verdict["nearest"])  # it looks like its own weather
    with torch.no_grad():
        assert rate(test, ae(test.images)) == 0.0


def test_constant_pictures_never_compose(ae, test):
    sunny, _ = pl_scenes.training_scenes(4)
    with torch.no_grad():
        mean_sunny = ae(sunny).mean(0, keepdim=True).expand(len(test), -1, -1, -1)
    assert rate(test, mean_sunny) == 0.0
    for obj in ("boat", "tree", "car", "duck"):  # any one sunny scene, shown for every input
        one = to_tensor(render(obj, "sunny", 5)).expand(len(test), -1, -1, -1)
        assert rate(test, one) <= 0.05, obj


def test_non_finite_pictures_never_compose(test):
    for bad in (float("nan"), float("inf")):
        assert rate(test, torch.full_like(test.truth, bad)) == 0.0
        spoiled = test.truth.clone()
        spoiled[:, 0, 0, 0] = bad  # the true answer with one bad pixel
        verdict = test.key.judge(spoiled)
        assert not verdict["success"].any() and not verdict["finite"].any()


def test_sunny_scenes_of_the_same_object_elsewhere_do_not_compose(test):
    others = to_tensor(draw_batch(scene_params_batch(test.objects, test.seeds + 12345), "sunny"))
    assert rate(test, others) <= 0.15


def test_a_painted_over_or_swapped_object_does_not_compose(test):
    params = scene_params_batch(test.objects, test.seeds)
    empty = test.key.judge(to_tensor(draw_batch(params, "sunny", with_object=False)))
    assert not empty["success"].any()
    swapped = scene_params_batch((test.objects + 1) % 5, test.seeds)  # same seed, the next object
    assert rate(test, to_tensor(draw_batch(swapped, "sunny"))) == 0.0


def test_where_a_hidden_sun_is_does_not_decide(test):
    """Move the sun anywhere on its side of the sky: still this scene on a sunny day."""
    params = scene_params_batch(test.objects, test.seeds)
    zone = sun_zone(params)
    for corner in (0.0, 1.0):
        moved = {k: v.copy() for k, v in params.items()}
        left = np.where(params["cx"] < 0.5, 0.66, 0.12)
        moved["sun"] = np.stack([left + 0.22 * corner, np.full(len(left), 0.09 + 0.12 * corner)], 1)
        pictures = draw_batch(moved, "sunny")
        outside = ~zone[..., None].repeat(3, -1)
        truth = test.truth.permute(0, 2, 3, 1).numpy()
        assert np.abs(pictures - truth)[outside].max() < 0.02  # the sun and its glow stay inside the zone
        assert rate(test, to_tensor(pictures)) == 1.0


def test_chance_lines_stay_low(ae, test):
    sunny, other = pl_scenes.training_scenes(4)
    for name, pictures in compose.chance_pictures(ae, test, sunny, other).items():
        assert rate(test, pictures) <= 0.15, name


def test_the_judge_refuses_what_it_cannot_judge(test):
    with pytest.raises(ValueError, match="shape"):
        test.key.judge(test.truth[:3])
    with pytest.raises(TypeError, match="floats"):
        test.key.judge((test.truth * 255).to(torch.uint8))
    with pytest.raises(TypeError, match="tensor"):
        test.key.judge([1, 2, 3])
    with pytest.raises(ValueError, match="at least one scene"):
        AnswerKey([], [])


def test_wilson_interval():
    assert wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson(96, 96)[1] == 1.0 and wilson(96, 96)[0] > 0.96
    low, high = wilson(48, 96)
    assert high - low <= 0.2  # the duck row of the default test split: +-10 points at most
    assert all(np.isnan(wilson(0, 0)))
    with pytest.raises(ValueError):
        wilson(3, 2)


def test_the_lineup_is_what_the_judge_compares_against(test):
    i = 5
    lineup = test.key.lineup(i)
    assert np.array_equal(lineup["truth"], test.truth[i].permute(1, 2, 0).numpy())
    # The truth, its oracle, the shadowless truth, and every decoy but the truth's own twin.
    assert len(lineup) == len(test.key.kinds) + 2
    assert test.key.judge(test.truth)["success"][i]
    for kind, picture in lineup.items():
        one = torch.from_numpy(picture).permute(2, 0, 1)[None].expand(len(test), -1, -1, -1).clone()
        verdict = test.key.judge(one)
        if kind not in ("truth", "oracle"):
            assert not verdict["success"][i], kind  # no decoy composes
    with pytest.raises(ValueError, match="below"):
        test.key.lineup(len(test))


def test_what_a_failure_looks_like_is_named(test):
    """A right background with the object gone is named by what the object looks like, never "truth"."""
    params = scene_params_batch(test.objects, test.seeds)
    empty = test.key.judge(to_tensor(draw_batch(params, "sunny", with_object=False)))
    assert not (empty["nearest"] == "truth").any()
    assert ((empty["nearest"] == "object:none") | (~empty["background_ok"])).all()
    assert (test.key.judge(test.truth)["nearest"] == "truth").all()


# ------------------------------------------------------------- the shadow-aware fakes ---


def test_the_truth_without_its_shadow_does_not_compose(test, params):
    shadowless = to_tensor(draw_batch(params, "sunny", with_shadow=False))
    verdict = test.key.judge(shadowless)
    assert not verdict["success"].any()
    assert verdict["background_ok"].all() and verdict["object_ok"].all()  # only the shadow is wrong
    assert (verdict["nearest"] == "shadow:none").all()
    assert np.abs(verdict["shadow_contrast"]).max() < 0.05


def test_a_mirrored_object_does_not_compose(test, params):
    mirrored = to_tensor(draw_batch({**params, "flip": -params["flip"]}, "sunny"))
    verdict = test.key.judge(mirrored)
    assert verdict["success"].mean() <= 0.05
    assert not verdict["object_ok"].any()


def test_another_object_of_the_same_kind_on_this_background_does_not_compose(test, params):
    other = elsewhere_params(params)
    assert np.array_equal(other["horizon"], params["horizon"]) and np.array_equal(other["ground"], params["ground"])
    assert ((other["cx"] < 0.5) == (params["cx"] < 0.5)).all()  # the sun stays on the far side
    assert rate(test, to_tensor(draw_batch(other, "sunny"))) <= 0.05


def test_a_colour_map_with_no_network_recolours_but_does_not_compose(test):
    sunny, other = pl_scenes.training_scenes(4)
    cmap = fit_colour_map(*pl_scenes.training_pairs(sunny, other))
    verdict = test.key.judge(cmap(test.images))
    assert verdict["success"].mean() <= 0.05
    assert verdict["background_ok"].mean() >= 0.5  # it gets sky and ground right more often than not ...
    assert verdict["shadow_ok"].mean() <= 0.05  # ... and never draws the shadow
    assert compose.COLOUR_MAP in compose.CHANCE


def test_verdicts_are_per_picture(ae, test):
    with torch.no_grad():
        pictures = ae(test.truth)
    order = np.random.default_rng(0).permutation(len(test))
    again = AnswerKey(test.objects[order], test.seeds[order],
                      oracle=torch.from_numpy(test.key.oracle[order]).permute(0, 3, 1, 2))
    first, second = test.key.judge(pictures), again.judge(pictures[torch.as_tensor(order)])
    for name in ("success", "background_ok", "object_ok", "shadow_ok", "nearest"):
        assert np.array_equal(first[name][order], second[name]), name
    assert np.allclose(first["shadow_contrast"][order], second["shadow_contrast"], atol=1e-9)


def test_parts_are_said_in_words(test, params):
    shadowless = test.key.judge(to_tensor(draw_batch(params, "sunny", with_shadow=False)))
    assert in_words(shadowless, 0, "duck").startswith("sky and ground right, duck right, no shadow")
    assert in_words(test.key.judge(test.truth), 0, "duck").startswith("sky and ground right, duck right, shadow right")
    assert in_words(test.key.judge(torch.full_like(test.truth, float("nan"))), 0, "duck").startswith("NaN")
    assert describe("shadow:none", "duck", short=True) == "no shadow"
    assert describe("object:mirrored", "duck") == "this duck facing the other way"
    assert "3x worse" in describe("worse:object", "duck")


def test_a_key_too_big_for_binder_is_refused_before_drawing():
    with pytest.raises(ValueError, match="MAX_RESULT_BYTES"):
        AnswerKey(np.zeros(4000, int), np.arange(4000))


def test_seeds_and_objects_must_pair_up():
    with pytest.raises(ValueError, match="one seed per scene"):
        AnswerKey([0, 1], [0])
    with pytest.raises(ValueError, match="same length"):
        AnswerKey([0, 1, 2], [0, 1])
    with pytest.raises(ValueError, match="oracle"):
        AnswerKey([0], [0], size=32)


def test_wilson_refuses_a_meaningless_z():
    for z in (-1, 0, float("nan")):
        with pytest.raises(ValueError):
            wilson(1, 10, z=z)
    assert wilson(1, 10, z=np.float32(1.96)) == pytest.approx(wilson(1, 10))


def test_the_judge_sits_on_the_renderer():
    """One direction: the judge imports the renderer, never the splits or compose that use it."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(judge))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not any(m.startswith(("polylens.scenes.splits", "polylens.compose")) for m in imported), imported


def test_every_known_picture_gets_its_known_verdict(ae, test):
    sunny, other = pl_scenes.training_scenes(4)
    known = compose.known_pictures(ae, test, sunny, other)
    assert set(compose.CHANCE) < set(known)
    for name, pictures in known.items():
        success = rate(test, pictures)
        if name in compose.MUST_COMPOSE:
            assert success >= 0.9, name
        else:
            assert success <= 0.05, name


def test_splits_of_the_same_scenes_share_one_key():
    import gc

    first, again = pl_scenes.split("test", 1), pl_scenes.split("test", 1)
    assert first.key is again.key  # drawn once
    assert pl_scenes.split("test", 1, objects=("duck",)).key is not first.key  # other scenes, another key
    import weakref

    key = weakref.ref(first.key)
    del first, again
    gc.collect()
    assert key() is None  # dropped with the last split that held it
