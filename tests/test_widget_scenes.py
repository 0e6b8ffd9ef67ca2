"""The notebook 03 scene explorer, driven without a browser."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from polylens.scenes import load_autoencoder, load_probes, render
from polylens.widgets.scenes import SceneExplorer


@pytest.fixture(scope="module")
def explorer():
    return SceneExplorer(load_autoencoder(), load_probes(), max_seed=20)


def test_view_shows_the_render_its_reconstruction_and_the_probes(explorer):
    view = explorer.view("boat", "rainy", 3)
    assert np.array_equal(view.image, render("boat", "rainy", 3))
    assert view.reconstruction.shape == (64, 64, 3) and 0 <= view.reconstruction.min() <= view.reconstruction.max() <= 1
    assert view.error == pytest.approx(float(((view.reconstruction - view.image) ** 2).mean()), rel=1e-4)
    assert view.weather_guess == "rainy" and "rainy" in view.readout


def test_changing_only_the_weather_keeps_the_scene(explorer):
    overcast, night = explorer.view("tree", "overcast", 4), explorer.view("tree", "night", 4)
    assert not np.array_equal(overcast.image, night.image)
    assert "never saw" not in overcast.readout
    assert "never saw" in explorer.view("duck", "sunny", 4).readout


def test_bad_choices_show_a_message(explorer):
    assert "seed must be" in explorer.view("duck", "sunny", 999).message
    assert "choose an object" in explorer.view("dragon", "sunny", 1).message


def test_update_redraws_the_images_and_readout(explorer):
    explorer.widget()
    explorer.update("car", "night", 1)
    before, text = explorer._images[0].get_array().copy(), explorer._readout.value
    explorer.update("car", "night", 2)
    assert not np.array_equal(before, explorer._images[0].get_array()) and explorer._readout.value != text
    plt.close(explorer.area.fig)


@pytest.mark.parametrize(("weather", "phrase"), [
    ("sunny", "Duck on a sunny day"), ("overcast", "Duck on an overcast day"), ("night", "Duck at night"),
])
def test_readout_names_the_weather_in_english(explorer, weather, phrase):
    assert explorer.view("duck", weather, 1).readout.startswith(phrase + ", seed 1.")
