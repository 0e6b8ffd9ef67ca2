"""The scene world's networks: a ReLU autoencoder and two probes that judge its outputs.

Every nonlinearity is an ``nn.ReLU`` module and everything else is affine
(convolutions, transposed convolutions, linear layers, reshapes), so the whole
autoencoder is one piecewise-affine map: spline codes and exact polytopes
apply to it, layer by layer. Modules are addressed by name::

    ae = SceneAutoencoder()
    ae.encoder        # nn.Sequential: "encoder.0" ... "encoder.8" (the bottleneck ReLU)
    ae.decoder        # nn.Sequential: "decoder.0" ... "decoder.7"
    ae.BOTTLENECK     # "encoder.8"
    z = ae.encode(x)  # (batch, latent) non-negative codes
    y = ae.decode(z)  # (batch, 3, 64, 64) images (not clamped: keep it affine)

The probes are separate small CNN classifiers (object, weather), trained on
every combination (sunny ducks included) so they can score what the
autoencoder makes of an image it never saw.
"""

from __future__ import annotations

import torch
from torch import nn

from polylens._checks import is_whole, whole_number
from polylens.hooks import capture
from polylens.models import seeded

__all__ = ["SceneAutoencoder", "SceneProbe", "check_images"]


def check_images(x: torch.Tensor, size: int, dtype: torch.dtype | None = None) -> None:
    """Refuse anything but a (batch, 3, size, size) float tensor, with a hint for numpy images.

    ``dtype``: the network's weight dtype; images of another float dtype
    (float64 from numpy, float16) are refused with the conversion to use,
    rather than torch's "Input type (double) and bias type (float)".
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"expected a torch tensor of images (batch, 3, {size}, {size}); got {type(x).__name__}. "
            "For numpy images (batch, H, W, 3) use polylens.scenes.to_tensor(images)"
        )
    if x.ndim != 4 or x.shape[1] != 3 or x.shape[2] != size or x.shape[3] != size:
        hint = " (channels last? use .permute(0, 3, 1, 2))" if x.ndim == 4 and x.shape[-1] == 3 else ""
        raise ValueError(f"expected images shaped (batch, 3, {size}, {size}); got {tuple(x.shape)}{hint}")
    if not x.is_floating_point():
        raise TypeError(f"expected float images in [0, 1]; got dtype {x.dtype}")
    if dtype is not None and x.dtype != dtype:
        convert = "x.float()" if dtype == torch.float32 else f"x.to({dtype})"
        raise TypeError(
            f"expected {str(dtype).replace('torch.', '')} images, the dtype of the network's weights; "
            f"got {str(x.dtype).replace('torch.', '')}. Convert them with {convert}"
        )


def _weight_dtype(model: nn.Module) -> torch.dtype:
    return next(model.parameters()).dtype


class SceneAutoencoder(nn.Module):
    """Conv encoder -> spatial ReLU bottleneck -> conv decoder, for (batch, 3, 64, 64).

    Three stride-2 convolutions take the side from 64 to 8; a 3x3 convolution
    then makes ``channels`` maps of 8 x 8, flattened into the bottleneck code
    of ``channels * 64`` non-negative numbers (``encoder.8``, a ReLU). The
    decoder mirrors it. Each bottleneck unit sees one patch of the picture:
    the code keeps *where* things are, which is what lets the network
    reconstruct combinations it never saw (a sunny duck) from parts it did
    (a duck; the sun and sky over a boat). ``width`` is the channel count of
    the first layer (later layers use 2 * width).
    """

    BOTTLENECK = "encoder.8"
    # A three-layer pathway for multi-layer spline codes: bottleneck, then two decoder ReLUs.
    PATHWAY = ("encoder.8", "decoder.2", "decoder.4")

    def __init__(self, channels: int = 8, width: int = 16, size: int = 64, *, seed: int = 0) -> None:
        super().__init__()
        if size != 64:
            raise ValueError(f"SceneAutoencoder is built for 64x64 scenes; got size={size}")
        if not (is_whole(channels) and is_whole(width)) or channels < 1 or width < 1:
            raise ValueError(f"channels and width must be positive ints; got channels={channels!r}, width={width!r}")
        channels, width = int(channels), int(width)  # numpy and 0-d torch ints welcome; the config stays JSON
        w2 = 2 * width
        with seeded(seed):
            self.encoder = nn.Sequential(
                nn.Conv2d(3, width, 4, stride=2, padding=1),  # 32x32
                nn.ReLU(),
                nn.Conv2d(width, w2, 4, stride=2, padding=1),  # 16x16
                nn.ReLU(),
                nn.Conv2d(w2, w2, 4, stride=2, padding=1),  # 8x8
                nn.ReLU(),
                nn.Conv2d(w2, channels, 3, padding=1),  # 8x8, `channels` maps
                nn.Flatten(),
                nn.ReLU(),  # the bottleneck: a flat code of non-negative features
            )
            self.decoder = nn.Sequential(
                nn.Unflatten(1, (channels, 8, 8)),
                nn.Conv2d(channels, w2, 3, padding=1),  # 8x8
                nn.ReLU(),
                nn.ConvTranspose2d(w2, w2, 4, stride=2, padding=1),  # 16x16
                nn.ReLU(),
                nn.ConvTranspose2d(w2, width, 4, stride=2, padding=1),  # 32x32
                nn.ReLU(),
                nn.ConvTranspose2d(width, 3, 4, stride=2, padding=1),  # 64x64, no squashing: stays affine
            )
        self.config = {"channels": channels, "width": width, "size": size}
        self.latent = channels * 64

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, 3, 64, 64) images -> (batch, latent) bottleneck codes (after the ReLU)."""
        check_images(x, self.config["size"], _weight_dtype(self))
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(batch, latent) codes -> (batch, 3, 64, 64) images; clamp to [0, 1] only for display."""
        if not isinstance(z, torch.Tensor) or z.ndim != 2 or z.shape[1] != self.latent:
            shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise ValueError(f"expected codes shaped (batch, {self.latent}); got {shape}")
        if not z.is_floating_point():
            raise TypeError(f"expected float codes (e.g. from encode); got dtype {z.dtype}")
        if z.dtype != _weight_dtype(self):
            raise TypeError(f"expected {_weight_dtype(self)} codes, the dtype of the network's weights; got {z.dtype}. "
                            f"Convert them with z.to({_weight_dtype(self)})")
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def unit_shape(self, name: str) -> tuple[int, int, int]:
        """(channels, height, width) of module ``name``'s output, one example.

        The flat bottleneck (and the decoder's Unflatten) read as the
        ``channels`` x 8 x 8 maps they are, so every layer has a spatial layout.
        """
        modules = dict(self.named_modules())
        if name not in modules or name in ("", "encoder", "decoder"):
            layers = [n for n in modules if n.count(".") == 1]
            raise ValueError(f"no layer {name!r} in the autoencoder; choose one of {layers}")
        with torch.no_grad(), capture(self, name) as cache:
            self(torch.zeros(1, 3, 64, 64))
        shape = tuple(cache[name].shape[1:])
        return shape if len(shape) == 3 else (self.config["channels"], 8, 8)


class SceneProbe(nn.Module):
    """A small ReLU CNN classifier: (batch, 3, 64, 64) images -> (batch, n_classes) logits."""

    def __init__(self, n_classes: int, width: int = 16, size: int = 64, *, seed: int = 0) -> None:
        super().__init__()
        if size != 64:
            raise ValueError(f"SceneProbe is built for 64x64 scenes; got size={size}")
        if not (is_whole(n_classes) and is_whole(width)) or n_classes < 2 or width < 1:
            raise ValueError(f"n_classes must be an int >= 2 and width a positive int; got {n_classes!r}, {width!r}")
        n_classes, width = int(n_classes), int(width)
        with seeded(seed):
            self.features = nn.Sequential(
                nn.Conv2d(3, width, 4, stride=2, padding=1),  # 32x32
                nn.ReLU(),
                nn.Conv2d(width, 2 * width, 4, stride=2, padding=1),  # 16x16
                nn.ReLU(),
                nn.Conv2d(2 * width, 2 * width, 4, stride=2, padding=1),  # 8x8
                nn.ReLU(),
                nn.Flatten(),
            )
            self.head = nn.Sequential(nn.Linear(2 * width * 64, 64), nn.ReLU(), nn.Linear(64, n_classes))
        self.config = {"n_classes": n_classes, "width": width, "size": size}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x, self.config["size"], _weight_dtype(self))
        return self.head(self.features(x))

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """(batch, 3, 64, 64) images -> (batch,) class indices, in eval mode and without gradients.

        An empty batch (0, 3, 64, 64) gives an empty (0,) result.
        """
        check_images(x, self.config["size"], _weight_dtype(self))
        batch_size = whole_number(batch_size, "batch_size", low=1)
        if len(x) == 0:  # torch.cat of no chunks would fail
            return torch.empty(0, dtype=torch.long, device=x.device)
        return torch.cat([self(x[i : i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])
