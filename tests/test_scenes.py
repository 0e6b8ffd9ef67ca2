"""The scene world: shapes, determinism, weather as a clean counterfactual, datasets, bad input."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from polylens.scenes import (
    OBJECTS,
    WEATHERS,
    SceneDataset,
    draw,
    draw_batch,
    object_mask,
    render,
    render_batch,
    scene_params,
    scene_params_batch,
)


# ------------------------------------------------------------ shape, range, determinism


@pytest.mark.parametrize("size", [16, 32, 64, 96])
def test_render_shape_dtype_range(size):
    img = render("boat", "rainy", seed=5, size=size)
    assert img.shape == (size, size, 3)
    assert img.dtype == np.float32
    assert img.min() >= 0.0 and img.max() <= 1.0


def test_render_is_deterministic():
    for obj, weather in [("duck", "night"), ("car", "rainy"), ("tree", "snowy")]:
        np.testing.assert_array_equal(render(obj, weather, 11), render(obj, weather, 11))


def test_different_seeds_give_different_scenes():
    assert not np.allclose(render("house", "sunny", 1), render("house", "sunny", 2))
    assert not np.allclose(object_mask("house", 1), object_mask("house", 2))


def test_render_batch_matches_render_whatever_the_batch():
    objs = ["duck", "boat", "house", "tree", "car", "duck"]
    weathers = ["sunny", "night", "rainy", "snowy", "overcast", "rainy"]
    seeds = [0, 1, 2, 3, 4, 99]
    batch = render_batch(objs, weathers, seeds)
    assert batch.shape == (6, 64, 64, 3)
    for i, (o, w, s) in enumerate(zip(objs, weathers, seeds)):
        np.testing.assert_array_equal(batch[i], render(o, w, s))
    # The same scene drawn in a different batch (reversed order) is unchanged.
    np.testing.assert_array_equal(render_batch(objs[::-1], weathers[::-1], seeds[::-1])[::-1], batch)


def test_render_batch_broadcasts_single_values():
    batch = render_batch("tree", list(WEATHERS), 3)
    assert batch.shape == (len(WEATHERS), 64, 64, 3)
    np.testing.assert_array_equal(batch[3], render("tree", WEATHERS[3], 3))


def test_draw_from_params_equals_render():
    params = scene_params("car", 8)
    np.testing.assert_array_equal(draw(params, "night"), render("car", "night", 8))


# ------------------------------------------------------------ weather is a counterfactual


@pytest.mark.parametrize("obj", OBJECTS)
def test_same_seed_same_object_pixels_in_every_weather(obj):
    params = scene_params_batch(obj, [7] * len(WEATHERS))
    _, masks = draw_batch(params, list(WEATHERS), with_mask=True)
    for mask in masks[1:]:
        np.testing.assert_array_equal(mask, masks[0])
    np.testing.assert_array_equal(object_mask(obj, 7), masks[0])
    assert masks[0].sum() > 100  # the object is there, and big enough to see


@pytest.mark.parametrize(
    "obj, other",
    [(o, "overcast") for o in OBJECTS] + [(o, "night") for o in ("duck", "boat", "tree")],
)  # (houses and cars light their lamps at night: tested below)
def test_object_pixels_differ_only_by_lighting(obj, other):
    # Inside the object (no rain or snow overlay, no shadow on it) every pixel
    # of the other weather is one affine colour map of the sunny pixel.
    seed = 21
    sunny, dull = render(obj, "sunny", seed), render(obj, other, seed)
    inside = object_mask(obj, seed) == 1.0
    a = sunny[inside].astype(np.float64)
    b = dull[inside].astype(np.float64)
    unclipped = (a > 0.001).all(1) & (a < 0.999).all(1)
    a, b = a[unclipped], b[unclipped]
    design = np.hstack([a, np.ones((len(a), 1))])
    coef, *_ = np.linalg.lstsq(design, b, rcond=None)
    assert np.abs(design @ coef - b).max() < 1e-4


def test_house_windows_glow_at_night():
    night, overcast = render("house", "night", 2), render("house", "overcast", 2)
    warm = (night[..., 0] > 0.8) & (night[..., 2] < 0.6)
    assert warm.sum() >= 6  # a lit window
    assert not ((overcast[..., 0] > 0.8) & (overcast[..., 2] < 0.6)).any()


def test_params_do_not_depend_on_weather_and_position_not_on_object():
    p = scene_params_batch(list(OBJECTS), 4)
    assert np.ptp(p["horizon"]) == 0 and np.ptp(p["base"]) == 0 and np.ptp(p["flip"]) == 0


@settings(max_examples=25, deadline=None)
@given(obj=st.sampled_from(OBJECTS), seed=st.integers(0, 2**40))
def test_object_stays_in_frame(obj, seed):
    mask = object_mask(obj, seed)
    border = np.concatenate([mask[0], mask[-1], mask[:, 0], mask[:, -1]])
    assert border.max() < 0.05
    assert mask.sum() > 150


def test_every_object_weather_pair_is_distinct():
    seeds = np.arange(24)
    means = {}
    for obj, weather in itertools.product(OBJECTS, WEATHERS):
        means[obj, weather] = render_batch(obj, weather, seeds).mean(axis=0)
    keys = list(means)
    for i, j in itertools.combinations(range(len(keys)), 2):
        # Objects move from scene to scene, so the averages blur; somewhere in
        # the frame two combinations must still differ clearly on average.
        gap = np.abs(means[keys[i]] - means[keys[j]]).max()
        assert gap > 0.05, f"{keys[i]} and {keys[j]} look alike on average (largest gap {gap:.4f})"


def test_sunny_is_bright_blue_and_night_is_dark():
    sunny = render_batch(list(OBJECTS), "sunny", 0)
    night = render_batch(list(OBJECTS), "night", 0)
    sky_sunny = sunny[:, :4].reshape(-1, 3).mean(0)
    assert sky_sunny[2] > 0.6 and sky_sunny[2] > sky_sunny[0] + 0.3
    assert night.mean() < 0.2 < sunny.mean()


# ------------------------------------------------------------ dataset


def test_dataset_holds_out_sunny_ducks_by_default():
    ds = SceneDataset(300, seed=0)
    assert len(ds) == 300
    pairs = set(zip(ds.objects.tolist(), ds.weathers.tolist()))
    assert (OBJECTS.index("duck"), WEATHERS.index("sunny")) not in pairs
    assert len(pairs) == len(OBJECTS) * len(WEATHERS) - 1
    counts = np.bincount(ds.objects * len(WEATHERS) + ds.weathers)
    assert counts[counts > 0].max() - counts[counts > 0].min() <= 1  # balanced


def test_dataset_exclude_and_subsets():
    everything = SceneDataset(100, exclude=[])
    assert len(set(zip(everything.objects.tolist(), everything.weathers.tolist()))) == 25
    small = SceneDataset(40, objects=["duck", "car"], weathers=["night"], exclude=[("car", "night")])
    assert set(small.objects.tolist()) == {OBJECTS.index("duck")}
    assert set(small.weathers.tolist()) == {WEATHERS.index("night")}


def test_dataset_arrays_and_ground_truth():
    ds = SceneDataset(50, seed=3, size=32)
    assert ds.images.shape == (50, 32, 32, 3) and ds.images.dtype == np.float32
    t = ds.tensor()
    assert t.shape == (50, 3, 32, 32) and t.dtype == torch.float32
    image, obj, weather = ds[7]
    assert image.shape == (3, 32, 32)
    torch.testing.assert_close(image, t[7])
    np.testing.assert_array_equal(ds.images[7], render(OBJECTS[obj], WEATHERS[weather], int(ds.seeds[7]), 32))
    idx = ds.indices(weather="night")
    truth = ds.counterpart("sunny", idx)
    for k in idx[:3]:
        k_in = list(idx).index(k)
        np.testing.assert_array_equal(truth[k_in], render(OBJECTS[ds.objects[k]], "sunny", int(ds.seeds[k]), 32))
    assert set(ds.params) >= {"cx", "horizon", "scale", "flip", "colour"}
    assert ds.params["cx"].shape == (50,)


def test_dataset_seeds_are_disjoint_and_deterministic():
    a, b = SceneDataset(64, seed=0), SceneDataset(64, seed=1)
    assert not set(a.seeds.tolist()) & set(b.seeds.tolist())
    np.testing.assert_array_equal(a.images, SceneDataset(64, seed=0).images)


# ------------------------------------------------------------ bad input


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="choose one of.*duck.*boat"):
        render("goose", "sunny")
    with pytest.raises(ValueError, match="choose one of.*sunny.*night"):
        render("duck", "foggy")
    with pytest.raises(ValueError, match="sunny"):
        render_batch(["duck"], ["windy"], [0])
    with pytest.raises(ValueError, match="duck"):
        SceneDataset(10, objects=["goose"])
    with pytest.raises(ValueError, match="pairs"):
        SceneDataset(10, exclude=["duck"])


@pytest.mark.parametrize("size", [0, 8, -64, 100_000])
def test_bad_size_is_refused(size):
    with pytest.raises(ValueError, match="size"):
        render("duck", "sunny", size=size)


@pytest.mark.parametrize("size", [64.0, "64", None])
def test_size_must_be_int(size):
    with pytest.raises(TypeError, match="size"):
        render("duck", "sunny", size=size)


def test_bad_seeds_and_lengths():
    with pytest.raises(ValueError, match="non-negative"):
        render("duck", "sunny", seed=-1)
    with pytest.raises(TypeError, match="seed"):
        render("duck", "sunny", seed=1.5)
    with pytest.raises(ValueError, match="same length"):
        render_batch(["duck", "car"], ["sunny", "night", "rainy"], 0)
    with pytest.raises(ValueError, match="nothing is left"):
        SceneDataset(10, objects=["duck"], weathers=["sunny"])
    with pytest.raises(ValueError, match="n must"):
        SceneDataset(0)
