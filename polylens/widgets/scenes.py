"""Explorer for notebook 03: one scene, its reconstruction, and what the probes see.

Pick an object, a weather and a seed. The seed fixes the scene (position,
size, colours, horizon), so changing only the weather shows the same scene
under other weather: the ground truth that steering is scored against.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from polylens.scenes import OBJECTS, WEATHERS, Probes, render, to_tensor
from polylens.widgets.figure import FigureArea

HELD_OUT = {("duck", "sunny")}


def when(weather: str) -> str:
    """The weather as a phrase: "on a sunny day", "on an overcast day", "at night"."""
    if weather == "night":
        return "at night"
    return f"on {'an' if weather[0] in 'aeiou' else 'a'} {weather} day"


@dataclass
class SceneView:
    """What one (object, weather, seed) shows."""

    image: np.ndarray  # (64, 64, 3) the render
    reconstruction: np.ndarray  # (64, 64, 3) the autoencoder's output, clipped to [0, 1]
    error: float  # mean squared error of the reconstruction
    object_guess: str
    object_p: float
    weather_guess: str
    weather_p: float
    readout: str
    message: str = ""


class SceneExplorer:
    """Render a scene, reconstruct it with the autoencoder, ask the probes.

    Args:
        autoencoder: the scene autoencoder (image in, image out).
        probes: the object and weather probes.
        max_seed: the seed slider's range.
    """

    def __init__(self, autoencoder: nn.Module, probes: Probes, max_seed: int = 50) -> None:
        self.ae, self.probes, self.max_seed = autoencoder.eval(), probes, max_seed
        self._cache: dict[tuple[str, str, int], SceneView] = {}
        self.area: FigureArea | None = None

    def view(self, obj: str = "duck", weather: str = "overcast", seed: int = 0) -> SceneView:
        """Render, reconstruct and classify one scene (cached: slider moves redraw only)."""
        messages = []
        # isinstance first: `array in OBJECTS` compares elementwise and cannot be a bool.
        known_obj, known_weather = isinstance(obj, str) and obj in OBJECTS, isinstance(weather, str) and weather in WEATHERS
        if not (known_obj and known_weather):
            messages.append(f"choose an object from {OBJECTS} and a weather from {WEATHERS}")
            obj, weather = (obj if known_obj else OBJECTS[0]), (weather if known_weather else WEATHERS[0])
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= self.max_seed:
            messages.append(f"seed must be an int from 0 to {self.max_seed}; showing seed 0")
            seed = 0
        message = "; ".join(messages)
        key = (obj, weather, int(seed))
        if key not in self._cache:
            self._cache[key] = self._compute(*key)
        view = self._cache[key]
        return view if not message else SceneView(**{**view.__dict__, "message": message})

    @torch.no_grad()
    def _compute(self, obj: str, weather: str, seed: int) -> SceneView:
        image = render(obj, weather, seed)
        x = to_tensor(image)
        rec = self.ae(x).clamp(0, 1)
        p_obj = torch.softmax(self.probes.object(rec), 1)[0]
        p_wea = torch.softmax(self.probes.weather(rec), 1)[0]
        o, w = int(p_obj.argmax()), int(p_wea.argmax())
        error = float(((rec - x) ** 2).mean())
        held = " <b>The autoencoder never saw this combination in training.</b>" if (obj, weather) in HELD_OUT else ""
        readout = (
            f"{obj.capitalize()} {when(weather)}, seed {seed}. Reconstruction error {error:.4f}.{held}<br>"
            f"Probes on the reconstruction: object <b>{OBJECTS[o]}</b> ({float(p_obj[o]):.0%}), "
            f"weather <b>{WEATHERS[w]}</b> ({float(p_wea[w]):.0%})."
        )
        recon = rec[0].permute(1, 2, 0).numpy()
        return SceneView(image, recon, error, OBJECTS[o], float(p_obj[o]), WEATHERS[w], float(p_wea[w]), readout)

    def update(self, obj: str = "duck", weather: str = "overcast", seed: int = 0) -> SceneView:
        """Compute the view and redraw (if the widget is built)."""
        view = self.view(obj, weather, seed)
        if self.area is not None:
            self._images[0].set_data(view.image)
            self._images[1].set_data(view.reconstruction)
            self._images[2].set_data(np.abs(view.image - view.reconstruction).mean(2))
            self.area.refresh()
            self._readout.value = view.readout + (f"<br><i>{view.message}</i>" if view.message else "")
        return view

    def widget(self, obj: str = "duck", weather: str = "overcast", seed: int = 0):
        """Dropdowns for object and weather, a seed slider, the three images and a readout."""
        import ipywidgets as widgets

        with plt.ioff():
            fig, axes = plt.subplots(1, 3, figsize=(8.4, 3.0))
        blank = np.zeros((64, 64, 3))
        self._images = [axes[0].imshow(blank), axes[1].imshow(blank),
                        axes[2].imshow(blank[..., 0], cmap="magma", vmin=0, vmax=0.5)]
        for ax, title in zip(axes, ("the scene (ground truth)", "autoencoder's reconstruction",
                                    "|difference|, mean over RGB")):
            ax.set_title(title, fontsize=10)
            ax.set_xticks([])
            ax.set_yticks([])
        # The difference is the only panel whose colour is a number: say which.
        bar = fig.colorbar(self._images[2], ax=axes[2], fraction=0.046, pad=0.04, extend="max")
        bar.set_label("0 = same, 0.5 = half the range", fontsize=8)
        bar.ax.tick_params(labelsize=8)
        fig.tight_layout()
        self.area = FigureArea(fig)
        self._readout = widgets.HTML()
        controls = {
            "obj": widgets.Dropdown(options=OBJECTS, value=obj, description="object"),
            "weather": widgets.Dropdown(options=WEATHERS, value=weather, description="weather"),
            "seed": widgets.IntSlider(value=seed, min=0, max=self.max_seed, description="seed"),
        }
        out = widgets.interactive_output(self.update, controls)
        return widgets.VBox([widgets.HBox(list(controls.values())), self.area.widget, self._readout, out])
