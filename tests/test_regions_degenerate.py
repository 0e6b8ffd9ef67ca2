"""Exact regions in degenerate configurations: coincident, concurrent and nearly parallel boundaries.

Every case checks the same exactness properties as tests/test_regions.py:
areas sum to the slice, each region's code is the model's code at its
centroid, the affine map matches the model at interior points, and no
ValueError is raised.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

import polylens
from polylens.models import MLP
from polylens.regions import Regions, slice_regions
from polylens.spline import spline_code
from polylens.training import train_classifier

torch.set_num_threads(1)
E2 = (np.zeros(2), np.array([1.0, 0.0]), np.array([0.0, 1.0]))


def _points(st: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(st, dtype=np.float64))


def _interior(regs: Regions, seed: int = 0) -> np.ndarray:
    return regs.interior_points(seed)


def _exact(model: nn.Module, extent=(-1.0, 1.0, -1.0, 1.0), codes: bool = True) -> Regions:
    regs = slice_regions(model, *E2, extent=extent)
    s0, s1, t0, t1 = extent
    assert regs.areas.sum() == pytest.approx((s1 - s0) * (t1 - t0), rel=1e-9)
    assert (regs.areas > 0).all()
    model64 = copy.deepcopy(model).double().eval()
    if codes:
        np.testing.assert_array_equal(spline_code(model64, _points(regs.centroids)).bits, regs.codes.bits)
    st = _interior(regs)
    with torch.no_grad():
        out = model64(_points(st)).flatten(1).numpy()
    scale = 1.0 + np.abs(out).max()
    np.testing.assert_allclose(regs.outputs(st, np.arange(len(regs))), out, atol=1e-7 * scale, rtol=0)
    return regs


def _net(w1, b1, w2, b2, *more) -> nn.Sequential:
    """Sequential Linear-ReLU-...-Linear with the given float64 weights."""
    params = [(w1, b1), (w2, b2)] + [(more[i], more[i + 1]) for i in range(0, len(more), 2)]
    layers = []
    for i, (w, b) in enumerate(params):
        w = torch.as_tensor(np.asarray(w, dtype=np.float64))
        lin = nn.Linear(w.shape[1], w.shape[0]).double()
        with torch.no_grad():
            lin.weight.copy_(w)
            lin.bias.copy_(torch.as_tensor(np.asarray(b, dtype=np.float64)))
        layers += [lin, nn.ReLU()] if i < len(params) - 1 else [lin]
    return nn.Sequential(*layers)


# ----------------------------------------------- nearly coincident units ---


@pytest.mark.parametrize("gap", [1e-6, 1e-8, 1e-9, 1e-10, 1e-11, 3e-12])
@pytest.mark.parametrize("slope", [0.3, 1.0, 1e-3])
def test_sliver_between_nearly_identical_units(gap, slope):
    """Two units a hair apart make a long thin sliver on which the output still varies.

    This is the reproducer of 'the output is not affine on a region': the
    least-squares affine fit through the normal equations lost all precision
    on the sliver (its determinant cancelled to <= 0, the gradient became 0).
    """
    model = _net([[slope, 1.0], [slope, 1.0], [1.0, 0.0]], [0.1, 0.1 + gap, 10.0], [[1.0, -1.0, 1.0]], [0.0])
    regs = _exact(model, codes=gap >= 1e-9)
    if gap >= 1e-9:  # the sliver is a region of its own, with the right gradient
        assert len(regs) == 3
        sliver = np.argmin(regs.areas)
        np.testing.assert_allclose(regs.A[sliver, 0], [1.0 - slope, -1.0], atol=1e-4)


@pytest.mark.parametrize("angle", [1e-4, 1e-7, 1e-10])
def test_nearly_parallel_units_crossing_inside(angle):
    """Two lines through (0.2, 0) at a tiny angle: two thin wedges meeting at a point."""
    c, s = np.cos(angle), np.sin(angle)
    w1 = [[0.0, 1.0], [-s, c], [1.0, 0.5]]
    b1 = [0.0, 0.2 * s, 3.0]
    model = _net(w1, b1, [[5.0, -7.0, 1.0], [-2.0, 3.0, 0.5]], [0.1, 0.0])
    _exact(model, codes=angle >= 1e-7)


def test_deeper_layer_on_a_sliver():
    """A second layer's boundaries must be cut correctly inside a first-layer sliver."""
    w1 = [[0.3, 1.0], [0.3, 1.0], [1.0, 0.0], [0.0, 1.0]]
    b1 = [0.1, 0.1 + 1e-9, 0.0, 0.5]
    w2 = [[1.0, -1.0, 2.0, 0.0], [-1.0, 1.0, 1.0, 1.0], [0.0, 3.0, -1.0, 1.0]]
    model = _net(w1, b1, w2, [0.0, -0.2, 0.1], [[1.0, -2.0, 0.5]], [0.0])
    _exact(model)


@pytest.mark.parametrize("copies", [2, 5])
def test_exactly_duplicated_units(copies):
    base = MLP([2, 6, 6, 1], seed=3)
    model = copy.deepcopy(base)
    lin0, lin1 = model[0], model[2]
    with torch.no_grad():
        w, b = lin0.weight.clone(), lin0.bias.clone()
        new0 = nn.Linear(2, 6 + copies - 1)
        new0.weight.copy_(torch.cat([w, w[:1].repeat(copies - 1, 1)]))
        new0.bias.copy_(torch.cat([b, b[:1].repeat(copies - 1)]))
        new1 = nn.Linear(6 + copies - 1, 6)
        w1 = torch.cat([lin1.weight, lin1.weight[:, :1].repeat(1, copies - 1)], 1)
        w1[:, 0] /= copies
        w1[:, 6:] /= copies
        new1.weight.copy_(w1)
        new1.bias.copy_(lin1.bias)
    model[0], model[2] = new0, new1
    regs = _exact(model)
    ref = slice_regions(base, *E2)
    assert len(regs) == len(ref)  # copies add no region


# ------------------------------------------- lines through vertices, points ---


def test_lines_through_extent_corners():
    """Diagonals through the corners of the extent, and lines along its edges."""
    w1 = [[1.0, 1.0], [1.0, -1.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]
    b1 = [0.0, 0.0, -1.0, 1.0, 1.0]
    model = _net(w1, b1, [[1.0, -2.0, 3.0, 0.5, -1.0]], [0.0])
    regs = _exact(model)
    assert len(regs) == 4


def test_three_and_more_lines_through_one_point():
    """Many lines through the origin (which is a vertex), then more through (0.5, 0.5)."""
    angles = np.linspace(0, np.pi, 7, endpoint=False)
    w = np.stack([np.cos(angles), np.sin(angles)], 1)
    w2 = np.stack([np.cos(angles + 0.1), np.sin(angles + 0.1)], 1)
    b2 = -(w2 @ np.array([0.5, 0.5]))
    w1, b1 = np.concatenate([w, w2]), np.concatenate([np.zeros(7), b2])
    rng = np.random.default_rng(0)
    model = _net(w1, b1, rng.normal(size=(5, 14)), rng.normal(size=5), rng.normal(size=(2, 5)), np.zeros(2))
    _exact(model)


def test_grid_of_lines_through_shared_vertices():
    """x = k/4, y = k/4 and x + y = k/4: every diagonal passes through grid vertices."""
    ks = np.arange(-3, 4) / 4
    w1 = np.concatenate([np.tile([[1.0, 0.0]], (7, 1)), np.tile([[0.0, 1.0]], (7, 1)), np.tile([[1.0, 1.0]], (7, 1))])
    b1 = -np.concatenate([ks, ks, ks])
    rng = np.random.default_rng(1)
    model = _net(w1, b1, rng.normal(size=(8, 21)), rng.normal(size=8) * 0.1, rng.normal(size=(1, 8)), [0.0])
    regs = _exact(model)
    assert len(regs) >= 8 * 8 * 2


def test_second_layer_lines_through_first_layer_vertices():
    """Layer-2 units whose bent lines pass exactly through layer-1 crossings."""
    w1 = [[1.0, 0.0], [0.0, 1.0], [1.0, -1.0]]
    b1 = [0.0, 0.0, 0.0]
    w2 = [[1.0, 1.0, 0.0], [1.0, -1.0, 1.0], [0.0, 1.0, 1.0], [2.0, 1.0, -1.0]]
    b2 = [-0.5, 0.0, -0.25, 0.0]
    model = _net(w1, b1, w2, b2, [[1.0, -1.0, 2.0, 0.5]], [0.0])
    _exact(model)


# --------------------------------------------------- dead, alive, zero units ---


def test_zero_weight_rows():
    """Units dead everywhere, alive everywhere and identically 0 (w = 0, b = 0) cut nothing."""
    w1 = [[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [1.0, 2.0]]
    b1 = [-1.0, 1.0, 0.0, 0.3]
    model = _net(w1, b1, [[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]], [0.0, 0.0], [[1.0, -1.0]], [0.0])
    regs = _exact(model)
    assert len(regs) == 2
    assert regs.codes.bits[:, 1].all() and not regs.codes.bits[:, [0, 2]].any()


def test_pre_activation_identically_zero_on_slice():
    """A 3-input net sliced in a plane on which one unit's pre-activation is exactly 0."""
    lin = nn.Linear(3, 3).double()
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.5, 0.0], [-0.5, 1.0, 0.0]], dtype=torch.float64))
        lin.bias.zero_()
    model = nn.Sequential(lin, nn.ReLU(), nn.Linear(3, 1).double())
    origin, u, v = np.zeros(3), np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    regs = slice_regions(model, origin, u, v)
    assert regs.areas.sum() == pytest.approx(4.0, rel=1e-12)
    assert len(regs) == 4 and not regs.codes.bits[:, 0].any()


@pytest.mark.parametrize("scale", [1e-6, 1e6])
def test_huge_and_tiny_weight_scales(scale):
    model = MLP([2, 16, 16, 1], seed=4)
    with torch.no_grad():  # every pre-activation times scale: the same regions (ReLU is homogeneous)
        model[0].weight.mul_(scale)
        for lin in (model[0], model[2], model[4]):
            lin.bias.mul_(scale)
    regs = _exact(model)
    ref = slice_regions(MLP([2, 16, 16, 1], seed=4), *E2)
    assert len(regs) == len(ref)
    np.testing.assert_array_equal(regs.codes.bits[np.lexsort(regs.codes.bits.T)], ref.codes.bits[np.lexsort(ref.codes.bits.T)])


def test_float32_model_and_offset_extent():
    model = MLP([2, 24, 24, 24, 2], seed=5).float()
    _exact(model, extent=(100.0, 101.5, -3.0, -1.0))
    _exact(model, extent=(-2.0, 2.0, -2.0, 2.0))


# -------------------------------------------------------------- trained ---


def test_trained_nets_over_training():
    """The loop of the polytope widget (smaller): trained nets at several steps."""
    x, y = polylens.datasets.two_moons(200, seed=0)
    for width, depth in ((8, 2), (16, 3)):
        model = MLP([2] + [width] * depth + [2], seed=1)
        traj = train_classifier(model, x, y, steps=200, lr=1e-2, snapshots=(0, 50, 200), seed=1)
        for step in traj.steps:
            _exact(traj.model_at(model, step), extent=(-1.5, 1.5, -1.5, 1.5))


def test_trained_net_with_a_nearly_duplicated_unit():
    """A trained net plus a copy of one unit moved by 1e-9: the same function, one more sliver."""
    x, y = polylens.datasets.two_moons(200, seed=0)
    model = MLP([2, 8, 8, 2], seed=2)
    train_classifier(model, x, y, steps=100, lr=1e-2, snapshots=(100,), seed=2)
    lin0, lin1 = model[0], model[2]
    with torch.no_grad():
        new0, new1 = nn.Linear(2, 9), nn.Linear(9, 8)
        new0.weight.copy_(torch.cat([lin0.weight, lin0.weight[:1]]))
        new0.bias.copy_(torch.cat([lin0.bias, lin0.bias[:1]]))
        new1.weight.copy_(torch.cat([lin1.weight, lin1.weight[:, :1]], 1))
        new1.bias.copy_(lin1.bias)
    model[0], model[2] = new0.double(), new1.double()
    with torch.no_grad():
        model[0].bias[8] += 1e-9
        model[2].weight[:, 8] *= -0.5
    _exact(model.double(), extent=(-1.5, 1.5, -1.5, 1.5))


def test_error_message_mentions_numerical_failure():
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(2, 8), nn.Linear(8, 1)

        def forward(self, x):
            return self.b(torch.relu(self.a(x)))

    with pytest.raises(ValueError, match="numerical failure") as info:
        slice_regions(Functional(), *E2)
    assert "F.relu" in str(info.value) and "report" in str(info.value)
