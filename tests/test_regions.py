"""Exact regions of 2D slices, boundary crossings along segments, and densities."""

from __future__ import annotations

import copy
import itertools
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from torch import nn

from polylens.models import MLP, ResidualMLP, SmallCNN
from polylens.regions import Regions, crossings, density, input_plane, slice_regions
from polylens.regions import slices
from polylens.regions.polygons import areas, cut_pieces, split_sides
from polylens.regions.slices import unique_vertices
from polylens.regions.support import Stacked
from polylens.spline import spline_code

torch.set_num_threads(1)
E2 = (np.zeros(2), np.array([1.0, 0.0]), np.array([0.0, 1.0]))


def _plane_points(origin, u, v, st: np.ndarray) -> torch.Tensor:
    o, u, v = (torch.as_tensor(np.asarray(a), dtype=torch.float64) for a in (origin, u, v))
    st = torch.from_numpy(st)
    shape = (-1,) + (1,) * o.ndim
    return o + st[:, :1].reshape(shape) * u + st[:, 1:].reshape(shape) * v


def _interior_points(regs: Regions, seed: int = 0) -> np.ndarray:
    return regs.interior_points(seed)


def _check_exact(model, origin, u, v, extent=(-1, 1, -1, 1)) -> Regions:
    """The properties every slice must have; returns the regions for more checks."""
    regs = slice_regions(model, origin, u, v, extent)
    s0, s1, t0, t1 = extent
    assert regs.areas.sum() == pytest.approx((s1 - s0) * (t1 - t0), rel=1e-9)
    assert (regs.areas > 0).all()
    model64 = copy.deepcopy(model).double().eval()
    # The code at each centroid is the region's code, and codes are unique.
    at_centroid = spline_code(model64, _plane_points(origin, u, v, regs.centroids))
    np.testing.assert_array_equal(at_centroid.bits, regs.codes.bits)
    assert len(np.unique(regs.codes.packed(), axis=0)) == len(regs)
    # The affine map reproduces the model inside each region.
    st = _interior_points(regs)
    with torch.no_grad():
        out = model64(_plane_points(origin, u, v, st)).flatten(1).numpy()
    np.testing.assert_allclose(regs.outputs(st, np.arange(len(regs))), out, atol=1e-6, rtol=0)
    A, c = regs.affine
    assert A.shape == (len(regs), out.shape[1], 2) and c.shape == (len(regs), out.shape[1])
    return regs


# ------------------------------------------------------------------- MLPs ---


def test_mlp_slice_is_exact():
    regs = _check_exact(MLP([2, 16, 16, 16, 1], seed=0), *E2)
    assert len(regs) > 100
    assert regs.created_at.min() >= 0 and regs.created_at.max() == 2
    np.testing.assert_array_equal(regs.n_on, regs.codes.bits.sum(1))
    assert len(regs.polygons) == len(regs) and all(p.shape[1] == 2 for p in regs.polygons)


def test_rectangular_extent_and_oblique_plane():
    rng = np.random.default_rng(1)
    origin, u, v = rng.normal(size=(3, 3))
    _check_exact(MLP([3, 12, 12, 2], seed=3), origin, u, v, extent=(-2.0, 0.5, 0.0, 3.0))


def test_one_layer_count_matches_the_arrangement_formula():
    # For lines in general position cutting a convex set, regions = 1 + lines + crossings inside.
    model = MLP([2, 12, 1], seed=5)
    w, b = model.linear0.weight.detach().double().numpy(), model.linear0.bias.detach().double().numpy()
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]])
    vals = corners @ w.T + b
    lines = int(((vals.min(0) < 0) & (vals.max(0) > 0)).sum())
    inside = 0
    for i, j in itertools.combinations(range(len(b)), 2):
        p = np.linalg.solve(w[[i, j]], -b[[i, j]])
        inside += bool(np.all(np.abs(p) < 1))
    assert lines >= 8 and inside >= 5  # the test is not vacuous
    assert len(slice_regions(model, *E2)) == 1 + lines + inside


def test_count_matches_a_fine_grid_on_a_tiny_net():
    model = MLP([2, 4, 4, 1], seed=0)
    regs = _check_exact(model, *E2)
    n = 601
    g = np.linspace(-1, 1, n)
    h = g[1] - g[0]
    grid = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    grid_codes = {r.tobytes() for r in spline_code(model.double(), torch.from_numpy(grid)).packed()}
    exact = [r.tobytes() for r in regs.codes.packed()]
    assert grid_codes <= set(exact)  # the grid never sees a region the enumeration missed
    # Every region that contains a disk of radius h / sqrt(2) must hold a grid point.
    verts, counts, c = regs.verts, regs.counts, regs.centroids
    nxt = np.take_along_axis(verts, ((np.arange(verts.shape[1]) + 1) % counts[:, None])[..., None], 1)
    edge = nxt - verts
    dist = (edge[..., 0] * (c[:, None, 1] - verts[..., 1]) - edge[..., 1] * (c[:, None, 0] - verts[..., 0])) / np.linalg.norm(edge, axis=-1).clip(1e-300)
    dist[np.arange(verts.shape[1])[None, :] >= counts[:, None]] = np.inf
    big = np.abs(dist).min(1) > h / np.sqrt(2) * 1.01
    assert big.sum() >= 0.8 * len(regs)
    assert {exact[i] for i in np.flatnonzero(big)} <= grid_codes
    assert len(grid_codes) <= len(regs)


def test_leaky_relu_mlp():
    _check_exact(MLP([2, 12, 12, 1], activation="leaky_relu", seed=2), *E2)


def _dropout_leaky_identity_stack() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 9), nn.Dropout(0.5), nn.LeakyReLU(0.2), nn.Identity(), nn.Linear(9, 7), nn.ReLU(),
                         nn.Linear(7, 2))


@pytest.mark.parametrize("make", [lambda: MLP([2, 12, 12, 1], seed=3), _dropout_leaky_identity_stack],
                         ids=["mlp", "dropout-leaky-identity"])
def test_plain_stacks_match_the_hooked_model_bit_for_bit(make):
    # A Sequential of Linear and ReLU-like modules runs as a list of float64 weights; a forward
    # hook (that changes nothing) sends the same network through the hooked float64 copy instead.
    model = make()
    assert Stacked.of(model) is not None
    fast = slice_regions(model, *E2, extent=(-2, 1, -1, 2))
    handle = model.register_forward_hook(lambda _m, _args, out: None)
    try:
        assert Stacked.of(model) is None
        hooked = slice_regions(model, *E2, extent=(-2, 1, -1, 2))
    finally:
        handle.remove()
    assert len(fast) > 20
    for got, want in [(fast.verts, hooked.verts), (fast.counts, hooked.counts), (fast.codes.bits, hooked.codes.bits),
                      (fast.A, hooked.A), (fast.c, hooked.c), (fast.created_at, hooked.created_at)]:
        np.testing.assert_array_equal(got, want)
    assert fast.codes.layer_names == hooked.codes.layer_names


def test_residual_mlp():
    regs = _check_exact(ResidualMLP(d_in=2, width=8, hidden=12, depth=2, seed=0), *E2)
    assert regs.codes.layer_names == ["blocks.0.act", "blocks.1.act"]


def test_shared_relu_module_called_twice():
    relu = nn.ReLU()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 6), relu, nn.Linear(6, 6), relu, nn.Linear(6, 1))
    regs = _check_exact(model, *E2)
    assert regs.codes.layer_names == ["1", "1#1"]


def test_conv_net_on_a_plane_of_images():
    model = SmallCNN(size=8, channels=2, seed=0)
    gen = torch.Generator().manual_seed(0)
    origin, u, v = torch.randn(3, 1, 8, 8, generator=gen)
    regs = _check_exact(model, origin, u, v, extent=(-0.5, 0.5, -0.5, 0.5))
    assert regs.codes.n_neurons == 2 * 64 + 2 * 16 and len(regs) > 10


def test_linear_model_is_one_region():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 3))
    regs = slice_regions(model, *E2, extent=(0, 2, 0, 1))
    assert len(regs) == 1 and regs.codes.n_neurons == 0 and regs.areas[0] == pytest.approx(2.0)
    A, c = regs.affine
    np.testing.assert_allclose(A[0], model[0].weight.detach().numpy(), atol=1e-6)
    np.testing.assert_allclose(c[0], model[0].bias.detach().numpy(), atol=1e-6)


def test_user_model_is_not_changed():
    model = MLP([2, 8, 1], seed=0)
    model.train()
    before = copy.deepcopy(model.state_dict())
    slice_regions(model, *E2)
    assert model.training and model.linear0.weight.dtype == torch.float32
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


# ------------------------------------------------------ polygon geometry ---


def _cut_one(poly: np.ndarray, f: np.ndarray) -> tuple[list, list]:
    """Both sides of one convex polygon (k, 2) cut where f (k,) is 0, vertex by vertex."""
    sides: tuple[list, list] = ([], [])
    for i in range(len(poly)):
        nxt = (i + 1) % len(poly)
        if f[i] >= 0:
            sides[0].append(poly[i])
        if f[i] <= 0:
            sides[1].append(poly[i])
        if (f[i] > 0 and f[nxt] < 0) or (f[i] < 0 and f[nxt] > 0):
            lam = f[i] / (f[i] - f[nxt])
            point = poly[i] + lam * (poly[nxt] - poly[i])
            sides[0].append(point)
            sides[1].append(point)
    return sides


def test_cut_pieces_matches_cutting_one_polygon_at_a_time():
    rng = np.random.default_rng(0)
    m, w = 40, 9
    counts = rng.integers(3, w + 1, size=m)
    angles = np.sort(rng.uniform(0, 2 * np.pi, size=(m, w)), axis=1)
    verts = np.stack([np.cos(angles), np.sin(angles)], axis=2)  # convex: points on a circle, in order
    valid = np.arange(w)[None, :] < counts[:, None]
    verts[~valid] = 7.0  # padding the cut must ignore
    mean = (verts * valid[..., None]).sum(axis=1) / counts[:, None]
    f = np.einsum("mwi,mi->mw", verts - mean[:, None], rng.normal(size=(m, 2)))  # a line through each polygon
    f[:5, 0] = 0.0  # vertices on the line belong to both sides
    f[~valid] = 0.0
    pieces, piece_counts = cut_pieces(verts, counts, f)
    assert pieces.shape[0] == 2 * m
    for i in range(m):
        for side, want in enumerate(_cut_one(verts[i, : counts[i]], f[i, : counts[i]])):
            row = side * m + i
            assert piece_counts[row] == len(want)
            np.testing.assert_array_equal(pieces[row, : len(want)], np.reshape(want, (-1, 2)))
            assert (pieces[row, len(want) :] == 0).all()
    # split_sides gives the same pieces for any padding, and their shoelace areas.
    f[~valid] = 3.0
    same, same_counts, signed = split_sides(verts, counts, f)
    np.testing.assert_array_equal(same, pieces)
    np.testing.assert_array_equal(same_counts, piece_counts)
    np.testing.assert_array_equal(signed, areas(pieces, piece_counts))


def test_small_layers_take_the_same_cuts_as_packed_sign_bits(monkeypatch):
    model = MLP([2, 16, 16, 16, 1], seed=2)
    small = slice_regions(model, *E2, extent=(-2, 2, -2, 2))
    monkeypatch.setattr(slices, "_SMALL", 0)  # every layer through the packed sign bits
    packed = slice_regions(model, *E2, extent=(-2, 2, -2, 2))
    for name in ("verts", "counts", "A", "c", "created_at"):
        np.testing.assert_array_equal(getattr(small, name), getattr(packed, name))
    np.testing.assert_array_equal(small.codes.bits, packed.codes.bits)


def test_unique_vertices_are_those_of_np_unique():
    rng = np.random.default_rng(3)
    grid = rng.integers(0, 5, size=(30, 6, 2)) / 4.0 - 0.5  # many repeated points
    grid[::3, 2] += 1e-15  # copies that differ by rounding
    grid[1, 0] = -0.0
    counts = rng.integers(3, 7, size=30)
    buf = SimpleNamespace(n=30, counts=counts, verts=grid)
    points, index = unique_vertices(buf, (-0.5, 0.5, -0.5, 0.5))
    w = int(counts.max())
    verts = np.where((np.arange(w)[None, :] < counts[:, None])[..., None], grid[:, :w], grid[:, :1])
    key = np.round((verts[..., 0] + 0.5) * 2.0**44) + 1j * np.round((verts[..., 1] + 0.5) * 2.0**44)
    _, first, inverse = np.unique(key.ravel(), return_index=True, return_inverse=True)
    np.testing.assert_array_equal(points, verts.reshape(-1, 2)[first])
    np.testing.assert_array_equal(index, inverse.reshape(30, w))


# --------------------------------------------------------------- refusals ---


def test_smooth_and_unknown_layers_are_refused_with_advice():
    with pytest.raises(ValueError, match="soft_code"):
        slice_regions(MLP([2, 4, 1], activation="gelu"), *E2)
    with pytest.raises(ValueError, match="MaxPool"):
        slice_regions(nn.Sequential(nn.Conv2d(1, 1, 3), nn.ReLU(), nn.MaxPool2d(2)), torch.zeros(1, 4, 4), torch.ones(1, 4, 4), torch.eye(4)[None])
    with pytest.raises(ValueError, match="LayerNorm"):
        slice_regions(nn.Sequential(nn.Linear(2, 4), nn.LayerNorm(4)), *E2)
    with pytest.raises(ValueError, match="soft_code"):
        crossings(MLP([2, 4, 1], activation="silu"), np.zeros(2), np.ones(2))
    with pytest.raises(TypeError, match="nn.Module"):
        slice_regions("model", *E2)


def test_hidden_functional_nonlinearity_is_detected():
    class Hidden(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 8)
            self.relu = nn.ReLU()
            self.out = nn.Linear(8, 1)

        def forward(self, x):
            return self.out(torch.tanh(self.relu(self.fc(x))))

    with pytest.raises(ValueError, match="not affine"):
        slice_regions(Hidden(), *E2)


def test_bad_planes_and_extents_are_refused():
    model = MLP([2, 4, 1])
    with pytest.raises(ValueError, match="independent"):
        slice_regions(model, np.zeros(2), [1.0, 1.0], [2.0, 2.0])
    with pytest.raises(ValueError, match="extent"):
        slice_regions(model, *E2, extent=(1, -1, -1, 1))
    with pytest.raises(ValueError, match="NaN"):
        slice_regions(model, [np.nan, 0.0], [1.0, 0.0], [0.0, 1.0])
    with pytest.raises(ValueError, match="shape"):
        slice_regions(model, np.zeros(3), [1.0, 0.0], [0.0, 1.0])


# ---------------------------------------------------------------- drawing ---


@pytest.mark.parametrize("color", ["code", "output", "n_on", "layer"])
def test_plot_draws_one_polygon_per_region(color):
    regs = slice_regions(MLP([2, 8, 8, 1], seed=0), *E2)
    ax = Figure().subplots()  # no pyplot: leave the session's backend alone
    regs.plot(ax, color=color)
    assert len(ax.collections[0].get_paths()) == len(regs)
    with pytest.raises(ValueError, match="color"):
        regs.plot(ax, color="rainbow")


# -------------------------------------------------------------- crossings ---


def _sampled_flips(model, x0, x1, n):
    ts = np.linspace(0, 1, n)
    ts_ = ts.reshape((-1,) + (1,) * x0.ndim)
    pts = torch.from_numpy(x0[None] + ts_ * (x1 - x0)[None])
    bits = spline_code(copy.deepcopy(model).double(), pts).bits
    return ts, bits


def test_crossings_match_a_very_fine_sampling():
    model = MLP([2, 32, 32, 32, 1], seed=1)
    x0, x1 = np.array([-1.0, -0.4]), np.array([1.0, 0.9])
    cr = crossings(model, x0, x1)
    ts, bits = _sampled_flips(model, x0, x1, 200_001)
    flips = bits[1:] != bits[:-1]
    assert len(cr) == flips.sum() > 20
    assert np.all(np.diff(cr.t) >= 0) and cr.t.min() > 0 and cr.t.max() < 1
    # Each crossing lies in a sampling interval where exactly that unit flips, the right way.
    interval = np.searchsorted(ts, cr.t) - 1
    assert flips[interval, cr.code_index].all()
    np.testing.assert_array_equal(bits[interval + 1, cr.code_index], cr.turns_on)
    assert set(cr.names) <= {"relu0", "relu1", "relu2"}


def test_crossings_on_a_conv_net():
    model = SmallCNN(size=8, channels=2, seed=1)
    gen = torch.Generator().manual_seed(1)
    x0, x1 = torch.randn(2, 1, 8, 8, generator=gen).double().numpy()
    cr = crossings(model, x0, x1)
    ts, bits = _sampled_flips(model, x0, x1, 20_001)
    assert len(cr) == (bits[1:] != bits[:-1]).sum() > 5


# ---------------------------------------------------------------- density ---


def test_density_is_zero_beyond_the_origin_without_biases():
    d = density(MLP([2, 32, 32, 1], bias=False, seed=0), np.zeros(2), np.linspace(0, 4, 9), n_rays=16)
    assert d.counts.shape == (16, 8)
    assert (d.density == 0).all()


def test_density_is_high_near_the_data_and_low_far_out():
    model = MLP([2, 32, 32, 1], seed=0)
    d = density(model, np.zeros(2), [0.0, 1.0, 2.0, 50.0, 100.0], n_rays=16, seed=1)
    assert d.density[0] > 5 * d.density[-1]
    again = density(model, np.zeros(2), [0.0, 1.0, 2.0, 50.0, 100.0], n_rays=16, seed=1)
    np.testing.assert_array_equal(d.counts, again.counts)
    # Each ray's counts are its exact crossings, binned by distance.
    direction = np.array([0.6, -0.8])
    one = density(model, np.zeros(2), [0.5, 1.0, 3.0], directions=direction[None])
    cr = crossings(model, 0.5 * direction, 3.0 * direction)
    r = 0.5 + 2.5 * cr.t
    np.testing.assert_array_equal(one.counts[0], [((r > 0.5) & (r <= 1)).sum(), ((r > 1) & (r <= 3)).sum()])
    with pytest.raises(ValueError, match="increasing"):
        density(model, np.zeros(2), [1.0, 0.5])


def test_input_plane_is_the_whole_input_space_and_fresh_each_time():
    origin, u, v = input_plane()
    assert origin.tolist() == [0.0, 0.0] and u.tolist() == [1.0, 0.0] and v.tolist() == [0.0, 1.0]
    u.add_(1.0)
    assert input_plane()[1].tolist() == [1.0, 0.0], "a caller's change stays its own"
