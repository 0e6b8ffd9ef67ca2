"""The no-network colour map: an exact fit where the truth is a colour map, and clear refusals."""

import numpy as np
import pytest
import torch

import polylens.scenes as pl_scenes
from polylens.scenes.colour_map import fit_colour_map


def test_a_per_pixel_affine_recolouring_is_fitted_exactly():
    g = torch.Generator().manual_seed(0)
    before = torch.rand(40, 3, 8, 8, generator=g, dtype=torch.float64)
    starts = np.array(["overcast", "night"] * 20)
    # Under "night" every colour is halved and made bluer; under "overcast" the channels swap.
    after = torch.where(torch.as_tensor(starts == "night")[:, None, None, None],
                        0.5 * before + torch.tensor([0.0, 0.0, 0.2], dtype=torch.float64)[:, None, None],
                        before.flip(1))
    cmap = fit_colour_map(before, after.clamp(0, 1), starts)
    assert cmap.starts == ("night", "overcast")
    assert torch.allclose(cmap(before).double(), after.clamp(0, 1), atol=1e-3)
    assert "2 starting weathers" in repr(cmap)


def test_it_turns_scenes_sunny_without_their_shadow():
    sunny, other = pl_scenes.training_scenes(2)
    cmap = fit_colour_map(*pl_scenes.training_pairs(sunny, other))
    test = pl_scenes.split("test", 1)
    out = cmap(test.images)
    assert out.shape == test.images.shape and out.dtype == torch.float32
    assert 0 <= float(out.min()) and float(out.max()) <= 1
    # The start is read from the picture: the weather it was photographed in.
    assert (np.array(cmap.starts)[cmap.start(test.images)] == np.array(pl_scenes.WEATHERS)[test.weathers]).all()


def test_bad_input_is_refused_with_what_to_pass():
    x = torch.rand(4, 3, 8, 8)
    names = np.array(["night"] * 4)
    with pytest.raises(ValueError, match="shape of before"):
        fit_colour_map(x, x[:2], names)
    with pytest.raises(ValueError, match="weather names"):
        fit_colour_map(x, x, names[:3])
    with pytest.raises(ValueError, match="NaN"):
        fit_colour_map(x * float("nan"), x, names)
    with pytest.raises(ValueError, match="training pairs"):
        fit_colour_map(x[:0], x[:0], names[:0])
    cmap = fit_colour_map(x, x, names)
    with pytest.raises(ValueError, match=r"\(n, 3, 8, 8\)"):
        cmap(torch.rand(2, 3, 4, 4))


def test_with_shadow_must_be_a_flag():
    params = pl_scenes.scene_params_batch([0], [1])
    with pytest.raises(TypeError, match="with_shadow"):
        pl_scenes.draw_batch(params, "sunny", with_shadow="no")
    # Without the shadow only the shadow's pixels change, and only under the sun.
    plain, shadowless = pl_scenes.draw_batch(params, "sunny"), pl_scenes.draw_batch(params, "sunny", with_shadow=False)
    assert (shadowless >= plain - 1e-6).all() and (shadowless > plain + 0.05).any()
    assert np.array_equal(pl_scenes.draw_batch(params, "night"), pl_scenes.draw_batch(params, "night", with_shadow=False))
