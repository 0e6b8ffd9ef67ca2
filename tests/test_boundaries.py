"""Exact bent hyperplanes and decision boundaries on a 2D slice."""

import numpy as np
import torch

import polylens as pl
from polylens import boundaries

PLANE = dict(origin=torch.zeros(2), u=torch.tensor([1.0, 0.0]), v=torch.tensor([0.0, 1.0]))


def setup(seed=0):
    model = pl.models.MLP([2, 6, 5, 2], seed=seed).double()
    with torch.no_grad():  # make the logits tie at the origin, so the boundary crosses the square
        gap = model(torch.zeros(1, 2, dtype=torch.float64))[0]
        model.out.bias[1] -= gap[1] - gap[0]
    regions = pl.regions.slice_regions(model, extent=(-1, 1, -1, 1), **PLANE)
    values = boundaries.preactivations_at_vertices(model, regions, **PLANE)
    return model, regions, values


def points_of(segments, k=5):
    t = np.linspace(0, 1, k)[None, :, None]
    return (segments[:, :1] * (1 - t) + segments[:, 1:] * t).reshape(-1, 2)


def test_decision_boundary_is_where_the_logits_are_equal():
    model, regions, _ = setup()
    segs = boundaries.decision_boundary(regions)
    assert len(segs) > 0
    with torch.no_grad():
        logits = model(torch.tensor(points_of(segs)))
    assert torch.allclose(logits[:, 0], logits[:, 1], atol=1e-9)


def test_each_neuron_boundary_is_its_zero_set_and_first_layer_ones_are_straight():
    model, regions, values = setup()
    for layer in ("relu0", "relu1"):
        per_neuron = boundaries.neuron_boundaries(values[layer], regions)
        assert len(per_neuron) == values[layer].shape[-1]
        for j, segs in enumerate(per_neuron):
            if not len(segs):
                continue
            with pl.capture(model, layer, which="input") as cache, torch.no_grad():
                model(torch.tensor(points_of(segs)))
            assert np.abs(cache.inputs[layer][:, j].numpy()).max() < 1e-9
    w, b = model.linear0.weight.detach().numpy(), model.linear0.bias.detach().numpy()
    for j, segs in enumerate(boundaries.neuron_boundaries(values["relu0"], regions)):
        if len(segs):  # every piece lies on the one line w_j . x + b_j = 0
            assert np.abs(points_of(segs) @ w[j] + b[j]).max() < 1e-9


def test_every_first_layer_line_crossing_the_square_is_found():
    model, regions, values = setup(seed=3)
    w, b = model.linear0.weight.detach().numpy(), model.linear0.bias.detach().numpy()
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]])
    crosses = [(np.sign(corners @ w[j] + b[j]) != np.sign(b[j] + corners[0] @ w[j])).any() for j in range(len(b))]
    found = [len(s) > 0 for s in boundaries.neuron_boundaries(values["relu0"], regions)]
    assert found == crosses
