"""Property tests: random small networks, planes and extents for the region functions."""

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import polylens as pl
from polylens.regions import crossings, density, slice_regions

widths = st.lists(st.integers(1, 6), min_size=1, max_size=3)
finite = st.floats(-3, 3, allow_nan=False, allow_infinity=False)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hidden=widths, d_in=st.integers(2, 4), seed=st.integers(0, 10_000), data=st.data())
def test_any_small_mlp_on_any_plane_is_partitioned_exactly(hidden, d_in, seed, data):
    model = pl.models.MLP([d_in, *hidden, 2], seed=seed)
    g = torch.Generator().manual_seed(seed)
    origin, u, v = (torch.randn(d_in, generator=g) for _ in range(3))
    if torch.linalg.matrix_rank(torch.stack([u, v])) < 2:
        return
    s0, t0 = data.draw(finite), data.draw(finite)
    w, h = data.draw(st.floats(0.1, 4)), data.draw(st.floats(0.1, 4))
    regions = slice_regions(model, origin, u, v, extent=(s0, s0 + w, t0, t0 + h))
    assert regions.areas.sum() == pytest.approx(w * h, rel=1e-9)
    st_in = regions.interior_points(seed=1)
    x = origin + torch.from_numpy(st_in[:, :1]).float() * u + torch.from_numpy(st_in[:, 1:]).float() * v
    codes = pl.spline_code(model.double(), x.double()).bits
    assert np.array_equal(codes, regions.codes.bits)
    grad, offset = regions.affine
    with torch.no_grad():
        out = model.double()(x.double()).numpy()
    assert np.allclose(np.einsum("noi,ni->no", grad, st_in) + offset, out, atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(hidden=widths, seed=st.integers(0, 10_000))
def test_crossings_are_sorted_inside_the_segment_and_match_code_flips(hidden, seed):
    model = pl.models.MLP([3, *hidden, 1], seed=seed).double()
    g = torch.Generator().manual_seed(seed)
    x0, x1 = torch.randn(3, generator=g, dtype=torch.float64), torch.randn(3, generator=g, dtype=torch.float64)
    c = crossings(model, x0, x1)
    assert np.all(np.diff(c.t) >= 0) and np.all((c.t >= 0) & (c.t <= 1))
    ts = torch.linspace(0, 1, 4001, dtype=torch.float64)[:, None]
    bits = pl.spline_code(model, x0 + ts * (x1 - x0)).bits
    assert int((bits[1:] != bits[:-1]).sum()) <= len(c.t)  # sampling can only miss flips


@settings(max_examples=20, deadline=None)
@given(bad=st.sampled_from([float("nan"), float("inf"), -float("inf")]), where=st.sampled_from(["origin", "u", "v"]))
def test_non_finite_planes_are_refused_with_a_clear_error(bad, where):
    model = pl.models.MLP([2, 4, 1], seed=0)
    plane = {"origin": torch.zeros(2), "u": torch.tensor([1.0, 0.0]), "v": torch.tensor([0.0, 1.0])}
    plane[where] = plane[where].clone()
    plane[where][0] = bad
    with pytest.raises(ValueError, match=f"{where} contains NaN or inf; pass finite values"):
        slice_regions(model, **plane)


# ------------------------------------------- random shapes, values, dtypes ---
# Planes and segments of any shape, dtype and value: the regions are exact, or
# the error is a clean ValueError/TypeError (never an IndexError, a torch
# RuntimeError, or areas that are NaN).

_ODD_DTYPES = [np.float32, np.float16, np.int64, np.int8, np.bool_, np.complex64]
_POINT_SHAPES = [(1, 2), (3, 2), (3,), (), (2, 1), (0,)]
_NET = pl.models.MLP([2, 3, 3, 1], seed=0)


@st.composite
def _rough_arrays(draw, rng: np.random.Generator, shape=None):
    """A numpy array or torch tensor: mostly a moderate float64 point of the model's input shape,
    otherwise another shape, dtype (int, bool, float16, complex, text) or NaN, inf, huge and tiny values.

    The choices come from ``rng`` (seeded by hypothesis) because hypothesis leans towards the ends
    of every range it is given and repeats its draws (text every other time, u == v); the odd
    values themselves come from hypothesis.
    """
    if shape is None:
        shape = (2,) if rng.random() < 0.75 else _POINT_SHAPES[rng.integers(len(_POINT_SHAPES))]
    roll = rng.random()
    if roll < 0.05:
        return np.full(shape, "1")
    dtype = np.dtype(np.float64 if roll < 0.7 else _ODD_DTYPES[rng.integers(len(_ODD_DTYPES))])
    if dtype.kind == "f" and rng.random() < 0.75:
        arr = rng.uniform(-3, 3, shape).astype(dtype)
    else:
        arr = draw(hnp.arrays(dtype, shape))
    return torch.from_numpy(arr.copy()) if rng.random() < 0.5 else arr


@st.composite
def _slices(draw):
    """(origin, u, v, extent): usually one shape for the three points and an extent that fits, sometimes not."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    origin = draw(_rough_arrays(rng))
    same = origin.shape if rng.random() < 0.85 else None
    u, v = draw(_rough_arrays(rng, same)), draw(_rough_arrays(rng, same))
    roll = rng.random()
    if roll < 0.7:
        s0, t0 = rng.uniform(-3, 3, 2)
        extent = (s0, s0 + rng.uniform(1e-3, 5), t0, t0 + rng.uniform(1e-3, 5))
    elif roll < 0.9:
        extent = draw(hnp.arrays(np.float64, 4))  # NaN, inf, 1e308, any order
    else:
        extent = list(rng.uniform(-5, 5, rng.integers(0, 7)))
    return origin, u, v, extent


@st.composite
def _segments(draw):
    """(x0, x1): usually of one shape, sometimes not."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x0 = draw(_rough_arrays(rng))
    return x0, draw(_rough_arrays(rng, x0.shape if rng.random() < 0.85 else None))


def _real(*arrays) -> list[np.ndarray] | None:
    """float64 copies if every array holds real numbers, else None."""
    out = []
    for a in arrays:
        a = a.numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
        if a.dtype.kind not in "biuf":
            return None
        out.append(a.astype(np.float64))
    return out


def _clearly_fine_plane(origin, u, v, extent) -> bool:
    """Moderate, finite, independent directions and a sensible extent: must never be refused."""
    arrays = _real(origin, u, v, extent)
    if arrays is None:
        return False
    origin, u, v, extent = arrays
    if not (origin.shape == u.shape == v.shape and origin.ndim >= 1 and origin.shape[-1] == 2 and origin.size):
        return False
    if extent.shape != (4,) or not all(np.all(np.isfinite(a)) and np.all(np.abs(a) <= 1e3) for a in arrays):
        return False
    uu, vv, uv = (u * u).sum(), (v * v).sum(), (u * v).sum()
    s0, s1, t0, t1 = extent
    return uu * vv - uv * uv > 1e-6 * uu * vv > 0 and s1 - s0 > 1e-3 and t1 - t0 > 1e-3


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plane=_slices())
# Found by hand before hypothesis could: areas that were NaN, directions called dependent for being large.
@example(plane=(np.zeros(2), np.array([1.0, 0.0]), np.array([0.0, 1.0]), (-1e308, 1e308, -1.0, 1.0)))
@example(plane=(np.zeros(2), 1e300 * np.array([1.0, 0.0]), 1e300 * np.array([0.0, 1.0]), (-1.0, 1.0, -1.0, 1.0)))
@example(plane=(np.zeros(2), np.array([1.0, 0.0]), np.array([0.0, 1.0]), (0.0, 1e-300, 0.0, 1e-300)))
@example(plane=(np.full(2, 1e308), np.array([1.0, 0.0]), np.array([0.0, 1.0]), (-1.0, 1.0, -1.0, 1.0)))
@example(plane=(np.zeros(0), np.zeros(0), np.zeros(0), (-1.0, 1.0, -1.0, 1.0)))
def test_slice_regions_on_any_plane_is_exact_or_a_clean_error(plane):
    origin, u, v, extent = plane
    try:
        regions = slice_regions(_NET, origin, u, v, extent=extent)
        event("sliced")
    except (ValueError, TypeError):
        event("refused")
        assert not _clearly_fine_plane(origin, u, v, extent), "a fine plane was refused"
        return
    fine = _clearly_fine_plane(origin, u, v, extent)
    origin, u, v, ext = _real(origin, u, v, extent)
    s0, s1, t0, t1 = ext
    assert np.all(np.isfinite(regions.areas)) and np.all(regions.areas >= 0)
    assert regions.areas.sum() == pytest.approx((s1 - s0) * (t1 - t0), rel=1e-9)
    if not fine:
        # Huge or nearly parallel directions: regions thinner than the documented tolerance
        # (1e-12 of the slice) are merged into a neighbour, so codes are checked on fine planes only.
        return
    st_in = regions.interior_points(seed=0)
    x = origin + st_in[:, :1, None] * u.reshape(1, -1, 2) + st_in[:, 1:, None] * v.reshape(1, -1, 2)
    codes = pl.spline_code(_NET.double(), torch.from_numpy(x.reshape(len(st_in), *origin.shape))).bits
    assert np.array_equal(codes, regions.codes.bits)


@settings(max_examples=120, deadline=None)
@given(segment=_segments())
@example(segment=(np.array([-1e308, 0.0]), np.array([1e308, 0.0])))  # x1 - x0 overflows: no crossings were found
@example(segment=(np.array([-1e308, -1e308]), np.zeros(2)))
def test_crossings_on_any_segment_are_sorted_flips_or_a_clean_error(segment):
    x0, x1 = segment
    try:
        c = crossings(_NET, x0, x1)
        event("crossed")
    except (ValueError, TypeError):
        event("refused")
        ends = _real(x0, x1)
        fine = ends is not None and ends[0].shape == ends[1].shape and ends[0].ndim >= 1 and ends[0].shape[-1] == 2 \
            and all(np.all(np.abs(e) <= 1e3) for e in ends)
        assert not fine, "a fine segment was refused"
        return
    a, b = _real(x0, x1)
    assert np.all(np.isfinite(c.t)) and np.all(np.diff(c.t) >= 0) and np.all((c.t >= 0) & (c.t <= 1))
    ts = np.linspace(0, 1, 257).reshape((-1,) + (1,) * a.ndim)
    bits = pl.spline_code(_NET.double(), torch.from_numpy(a + ts * (b - a))).bits
    assert int((bits[1:] != bits[:-1]).sum()) <= len(c.t)  # samples can only miss flips


@st.composite
def _rays(draw):
    """(center, radii): mostly a point and increasing distances, sometimes anything."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    center = draw(_rough_arrays(rng))
    if rng.random() < 0.7:
        radii = np.sort(rng.uniform(0, 4, rng.integers(2, 6)))
    else:
        radii = draw(_rough_arrays(rng, (int(rng.integers(0, 5)),)))
    return center, radii


@settings(max_examples=60, deadline=None)
@given(rays=_rays())
@example(rays=(np.zeros(2), np.array([0.0, 1e308])))
def test_density_on_any_rays_is_counts_or_a_clean_error(rays):
    center, radii = rays
    try:
        d = density(_NET, center, radii, directions=np.eye(2))
        event("counted")
    except (ValueError, TypeError):
        event("refused")
        arrays = _real(center, radii)
        fine = arrays is not None and arrays[0].shape == (2,) and arrays[1].ndim == 1 and len(arrays[1]) >= 2 \
            and np.all(np.isfinite(arrays[1])) and np.all(np.isfinite(arrays[0])) and arrays[1][0] >= 0 \
            and np.all(np.diff(arrays[1]) > 0) and np.all(np.abs(arrays[0]) <= 1e3) and arrays[1][-1] <= 1e3
        assert not fine, "fine rays were refused"
        return
    point, edges = _real(center, radii)
    assert d.counts.shape == (2, len(edges) - 1) and np.all(np.isfinite(d.density)) and np.all(d.density >= 0)
    # Each ray counts the exact crossings of its segment, except a flip right at its start.
    for ray, direction in zip(d.counts, np.eye(2)):
        c = crossings(_NET, point + edges[0] * direction, point + edges[-1] * direction)
        assert ray.sum() == (c.t > 0).sum()
