"""The answer-key judge: it accepts this scene on a sunny day and rejects every way of faking it."""

import numpy as np
import pytest
import torch

import polylens.scenes as pl_scenes
from polylens import compose
from polylens.judge import AnswerKey, wilson
from polylens.scenes import draw_batch, load_autoencoder, render, scene_params_batch, sun_zone, to_tensor


@pytest.fixture(scope="module")
def ae():
    return load_autoencoder()


@pytest.fixture(scope="module")
def test():
    return pl_scenes.split("test", 4)  # 80 scenes: 5 objects x 4 weathers x 4 seeds


def rate(data, pictures):
    return float(data.key.judge(pictures)["success"].mean())


def test_the_truth_and_the_oracle_compose(ae, test):
    assert rate(test, test.truth) == 1.0
    with torch.no_grad():
        assert rate(test, ae(test.truth)) >= 0.95  # the autoencoder's own drawing of the sunny scene


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
    assert len(lineup) == len(test.key.kinds)  # the truth, and every decoy but the truth's own twin
    for kind, picture in lineup.items():
        one = torch.from_numpy(picture).permute(2, 0, 1)[None].expand(len(test), -1, -1, -1).clone()
        verdict = test.key.judge(one)
        assert verdict["success"][i] == (kind == "truth"), kind  # the truth composes, no decoy does
    with pytest.raises(ValueError, match="below"):
        test.key.lineup(len(test))


def test_what_a_failure_looks_like_is_named(test):
    """A right background with the object gone is named by what the object looks like, never "truth"."""
    params = scene_params_batch(test.objects, test.seeds)
    empty = test.key.judge(to_tensor(draw_batch(params, "sunny", with_object=False)))
    assert not (empty["nearest"] == "truth").any()
    assert ((empty["nearest"] == "object:none") | (~empty["scene_ok"])).all()
    assert (test.key.judge(test.truth)["nearest"] == "truth").all()
