"""Property tests: random small networks, planes and extents for the region functions."""

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import polylens as pl
from polylens.regions import crossings, slice_regions

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
