"""Memory that fits a ~2 GB notebook: chunked work gives the unchunked answer, too-big answers are refused first.

Chunking is forced with a tiny ``polylens.spline.CHUNK_BYTES`` (one chunk
per 64 rows or points) and compared exactly with the default, one-chunk
result. Refusals use a small ``polylens.spline.MAX_RESULT_BYTES`` where the
real budget would need a big input, and check that the refusal comes before
the answer is allocated: tracemalloc sees every numpy allocation, and the
peak during the call stays far below the answer's size.
"""

import re
import tracemalloc

import numpy as np
import pytest
import torch

import polylens as pl
from polylens import spline
from polylens.models import MLP, SmallCNN
from polylens.regions import crossings, density, slice_regions
from polylens.steer import preactivations
from polylens.widgets.spline_codes import MAX_DRAWN_SAMPLES, PathExplorer

PLANE = (torch.zeros(2), torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]))


def refused_peak(fn, match: str) -> int:
    """Call ``fn``, which must raise ValueError matching ``match``; the traced peak (bytes) during it."""
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=match):
            fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture
def tiny_chunks(monkeypatch):
    """Every chunked loop takes its smallest step (64 rows or points)."""
    monkeypatch.setattr(spline, "CHUNK_BYTES", 1)


# --------------------------------------------------------- spline codes ---


def test_codes_in_chunks_equal_one_pass(monkeypatch):
    model = MLP([2, 32, 32, 1], seed=0)
    x = torch.randn(1000, 2, generator=torch.Generator().manual_seed(0))
    cnn = SmallCNN(seed=0)
    images = torch.randn(300, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    whole = [pl.spline_code(model, x).bits, pl.soft_code(model, x).probs, preactivations(model, x)[0],
             pl.spline_code(cnn, images).bits]
    monkeypatch.setattr(spline, "CHUNK_BYTES", 1)
    parts = [pl.spline_code(model, x).bits, pl.soft_code(model, x).probs, preactivations(model, x)[0],
             pl.spline_code(cnn, images).bits]
    assert np.array_equal(whole[0], parts[0]) and np.array_equal(whole[1], parts[1])
    assert torch.equal(whole[2], parts[2]) and np.array_equal(whole[3], parts[3])


def test_chunks_leave_edge_cases_alone(tiny_chunks):
    model = MLP([2, 8, 1], seed=0)
    assert pl.spline_code(model, torch.zeros(0, 2)).bits.shape == (0, 8)
    assert pl.spline_code(model, torch.zeros(65, 2)).bits.shape == (65, 8)  # one full chunk and one row
    with pytest.raises(ValueError, match="no batch dimension"):
        pl.spline_code(model, torch.zeros(2))


def test_a_code_too_big_is_refused_before_it_is_allocated(monkeypatch):
    monkeypatch.setattr(spline, "MAX_RESULT_BYTES", 100_000)
    model = MLP([2, 64, 64, 1], seed=0)
    x = np.random.default_rng(0).normal(size=(20_000, 2))  # bits: 20,000 x 128 = 2.56 MB
    peak = refused_peak(lambda: pl.spline_code(model, x), r"2\.56 MB.*MAX_RESULT_BYTES.*x\[i:i \+ 781\]")
    assert peak < 2_560_000 / 4
    refused_peak(lambda: pl.soft_code(model, x), r"soft code.*20\.5 MB")
    refused_peak(lambda: preactivations(model, x), r"pre-activations.*10\.2 MB")
    assert pl.spline_code(model, x[:781]).bits.shape == (781, 128)  # the size the message suggests fits


# -------------------------------------------------------------- hamming ---


def test_pairwise_hamming_too_big_is_refused_before_allocating():
    bits = np.random.default_rng(0).random((30_000, 192)) > 0.5
    peak = refused_peak(lambda: pl.hamming(bits, pairwise=True), r"30,000 x 30,000.*7\.2 GB.*MAX_RESULT_BYTES")
    assert peak < 1_000_000  # the 7.2 GB matrix, or even the packed words, were never made
    refused_peak(lambda: pl.hamming(bits), "pairwise")  # b=None means pairwise too
    assert pl.hamming(bits[:10], bits[:10]).shape == (10,)  # row by row is no matrix


def test_the_block_size_in_the_message_fits(monkeypatch):
    monkeypatch.setattr(spline, "MAX_RESULT_BYTES", 80_000)
    bits = np.random.default_rng(1).random((300, 100)) > 0.5
    with pytest.raises(ValueError) as err:
        pl.hamming(bits, pairwise=True)
    block = int(re.search(r"a\[i:i \+ (\d+)\]", str(err.value)).group(1))
    assert 8 * block * 300 <= 80_000
    blocks = [pl.hamming(bits[i : i + block], bits, pairwise=True) for i in range(0, 300, block)]
    monkeypatch.setattr(spline, "MAX_RESULT_BYTES", 10**9)
    assert np.array_equal(np.concatenate(blocks), pl.hamming(bits, pairwise=True))


# ------------------------------------------------------------ crossings ---


def columns(cr):
    return [cr.t, cr.layer, cr.neuron, cr.turns_on]


def test_crossings_in_chunks_equal_one_pass(monkeypatch):
    model = MLP([2, 32, 32, 32, 1], seed=0)
    x0, x1 = torch.tensor([-4.0, -3.0]), torch.tensor([4.0, 3.5])
    cnn = SmallCNN(seed=1)
    a, b = torch.randn(1, 8, 8, generator=torch.Generator().manual_seed(2)), torch.randn(1, 8, 8)
    whole, whole_cnn = crossings(model, x0, x1), crossings(cnn, a, 20 * b)
    monkeypatch.setattr(spline, "CHUNK_BYTES", 1)
    parts, parts_cnn = crossings(model, x0, x1), crossings(cnn, a, 20 * b)
    assert len(whole) > 64 and len(whole_cnn) > 64  # more breakpoints than one chunk
    assert all(np.array_equal(p, w) for p, w in zip(columns(parts), columns(whole)))
    assert all(np.array_equal(p, w) for p, w in zip(columns(parts_cnn), columns(whole_cnn)))


def test_too_many_crossings_are_refused(monkeypatch):
    monkeypatch.setattr(spline, "MAX_RESULT_BYTES", 5_000)
    model = MLP([2, 32, 32, 32, 1], seed=0)
    with pytest.raises(ValueError, match="list of crossings.*shorter segment"):
        crossings(model, torch.tensor([-4.0, -3.0]), torch.tensor([4.0, 3.5]))


def test_density_in_chunks_equals_one_pass(monkeypatch):
    model = MLP([2, 16, 16, 1], seed=0)
    radii = np.linspace(0, 3, 7)
    whole = density(model, torch.zeros(2), radii, n_rays=40, seed=1)
    monkeypatch.setattr(spline, "CHUNK_BYTES", 1)
    parts = density(model, torch.zeros(2), radii, n_rays=40, seed=1)
    assert whole.counts.sum() > 64
    assert np.array_equal(whole.counts, parts.counts) and np.array_equal(whole.density, parts.density)


def test_too_many_rays_are_refused_before_they_are_drawn(monkeypatch):
    def no_directions(*args, **kwargs):
        raise AssertionError("the directions were drawn before the size was checked")

    model = MLP([2, 8, 1], seed=0)
    monkeypatch.setattr(torch, "randn", no_directions)
    with pytest.raises(ValueError, match=r"100,000,000 rays.*GB.*fewer rays \(n_rays=\d+"):
        density(model, torch.zeros(2), np.linspace(0, 1, 5), n_rays=10**8)
    monkeypatch.setattr(spline, "MAX_RESULT_BYTES", 10_000)
    with pytest.raises(ValueError, match="rays"):
        density(model, torch.zeros(2), np.linspace(0, 1, 5), directions=np.ones((1000, 2)))


# -------------------------------------------------------------- regions ---


def test_slice_in_chunks_equals_one_pass(monkeypatch):
    model = MLP([2, 32, 32, 1], seed=0)
    whole = slice_regions(model, *PLANE, extent=(-2, 2, -2, 2))
    monkeypatch.setattr(spline, "CHUNK_BYTES", 1)
    parts = slice_regions(model, *PLANE, extent=(-2, 2, -2, 2))
    assert len(whole) > 64
    for name in ("verts", "counts", "A", "c", "created_at"):
        assert np.array_equal(getattr(whole, name), getattr(parts, name)), name
    assert np.array_equal(whole.codes.bits, parts.codes.bits) and whole.codes.layers == parts.codes.layers


def test_a_slice_with_too_many_regions_is_refused(monkeypatch):
    model = MLP([2, 32, 32, 1], seed=0)
    n = len(slice_regions(model, *PLANE, extent=(-2, 2, -2, 2)))
    # Room for about a third of the regions: the enumeration stops when it gets there.
    monkeypatch.setattr(spline, "MAX_RESULT_BYTES", n // 3 * (64 + 200 + 24))
    peak = refused_peak(lambda: slice_regions(model, *PLANE, extent=(-2, 2, -2, 2)),
                        r"regions of this slice.*in ReLU layer \d of 2.*smaller extent")
    assert peak < 4 * spline.MAX_RESULT_BYTES + 2_000_000


# ------------------------------------------------------------- widgets ---


def test_path_explorer_samples_in_chunks_equal_one_pass():
    e = PathExplorer(MLP([2, 8, 8, 2], seed=5), (-1.5, 0.7), (1.5, -0.4), sample_counts=(4, 1000))
    one = e._changes(1000, chunk=1000)
    assert len(one) > 3
    for chunk in (64, 128, 960):
        assert np.array_equal(e._changes(1000, chunk=chunk), one)
    assert np.array_equal(e.samples[1000], one)


def test_path_explorer_draws_at_most_a_few_thousand_samples():
    e = PathExplorer(MLP([2, 8, 2], seed=0), (-1.0, 0.0), (1.0, 0.5), sample_counts=(4, 16))
    assert len(e._drawn_samples(10**7)) <= MAX_DRAWN_SAMPLES
    assert np.array_equal(e._drawn_samples(16), np.arange(16) / 15)
