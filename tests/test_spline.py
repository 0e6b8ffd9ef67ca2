"""Spline codes, soft codes, packing, Hamming distances and agreement masks."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from hypothesis import event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from torch import nn

from polylens.models import MLP, SmallCNN
from polylens.spline import (
    CodeMask,
    Layer,
    SoftCode,
    SplineCode,
    code_mask,
    hamming,
    on_fraction,
    soft_code,
    spline_code,
)

torch.set_num_threads(1)


def _x(n: int, d: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


def _naive_hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a[:, None, :] != b[None, :, :]).sum(-1)


# ------------------------------------------------------------ spline_code ---


def test_code_matches_pre_activation_signs_layer_by_layer():
    model = MLP([2, 5, 3, 1], seed=1)
    x = _x(20)
    code = spline_code(model, x)
    h1 = model.linear0(x)
    h2 = model.linear1(torch.relu(h1))
    assert code.bits.dtype == bool and code.bits.shape == (20, 8)
    assert code.layers == (Layer("relu0", 0, 5), Layer("relu1", 5, 8))
    np.testing.assert_array_equal(code.layer("relu0"), (h1 > 0).numpy())
    np.testing.assert_array_equal(code.layer("relu1"), (h2 > 0).numpy())


class _Reversed(nn.Module):
    """Registers act_b before act_a but calls act_a first."""

    def __init__(self):
        super().__init__()
        self.act_b = nn.ReLU()
        self.fc1 = nn.Linear(2, 3)
        self.act_a = nn.LeakyReLU(0.1)
        self.fc2 = nn.Linear(3, 4)

    def forward(self, x):
        return self.act_b(self.fc2(self.act_a(self.fc1(x))))


def test_layers_follow_execution_order_and_include_leaky_relu():
    code = spline_code(_Reversed(), _x(4))
    assert code.layer_names == ["act_a", "act_b"]
    assert [l.size for l in code.layers] == [3, 4]


def test_shared_relu_called_twice_gets_two_entries():
    relu = nn.ReLU()
    model = nn.Sequential(nn.Linear(2, 3), relu, nn.Linear(3, 4), relu)
    code = spline_code(model, _x(6))
    assert code.layer_names == ["1", "1#1"]
    assert code.bits.shape == (6, 7)


def test_conv_code_has_one_bit_per_channel_and_position():
    model = SmallCNN(size=8, channels=4, seed=0)
    x = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    code = spline_code(model, x)
    assert [l.size for l in code.layers] == [4 * 8 * 8, 4 * 4 * 4]
    pre = model.features[0](x)
    np.testing.assert_array_equal(code.layer("features.1"), (pre > 0).flatten(1).numpy())


def test_names_filter_and_model_left_unchanged():
    model = MLP([2, 4, 4, 4, 1], seed=0)
    before = copy.deepcopy(model.state_dict())
    code = spline_code(model, _x(3), names_filter=["relu2", "relu0", "linear1"])
    assert code.layer_names == ["relu0", "relu2"]
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not any(m._forward_pre_hooks or m._forward_hooks for m in model.modules())


def test_numpy_float64_input_is_cast_to_the_model_dtype():
    model = MLP([2, 4, 1], seed=0)
    x = _x(5)
    np.testing.assert_array_equal(spline_code(model, x.double().numpy()).bits, spline_code(model, x).bits)


def test_bad_inputs_are_refused_with_advice():
    with pytest.raises(TypeError, match="nn.Module"):
        spline_code(lambda x: x, _x(2))
    with pytest.raises(ValueError, match="soft_code"):
        spline_code(MLP([2, 4, 1], activation="gelu"), _x(2))
    with pytest.raises(ValueError, match="ReLU"):
        spline_code(nn.Sequential(nn.Linear(2, 2)), _x(2))
    x = _x(3)
    x[1, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        spline_code(MLP([2, 4, 1]), x)


# ------------------------------------------------------ SplineCode methods ---


def test_packed_roundtrip_indexing_and_concat():
    code = spline_code(MLP([2, 7, 6, 1], seed=2), _x(10))
    packed = code.packed()
    assert packed.dtype == np.uint8 and packed.shape == (10, 2)  # ceil(13 / 8)
    np.testing.assert_array_equal(SplineCode.unpack(packed, code.layers).bits, code.bits)
    assert len(code[3]) == 1 and code[3].bits.shape == (1, 13)
    np.testing.assert_array_equal(code[-1].bits, code.bits[-1:])
    both = SplineCode.concat([code[:4], code[4:]])
    np.testing.assert_array_equal(both.bits, code.bits)
    other = spline_code(MLP([2, 13, 1]), _x(2))
    with pytest.raises(ValueError, match="layouts"):
        SplineCode.concat([code, other])
    with pytest.raises(KeyError, match="relu0"):
        code.layer("nope")


# ----------------------------------------------------------------- hamming ---


def test_hamming_elementwise_and_pairwise_match_a_naive_count():
    rng = np.random.default_rng(0)
    a = rng.random((37, 130)) > 0.5
    b = rng.random((23, 130)) > 0.3
    np.testing.assert_array_equal(hamming(a, b, pairwise=True), _naive_hamming(a, b))
    np.testing.assert_array_equal(hamming(a), _naive_hamming(a, a))
    np.testing.assert_array_equal(hamming(a[:23], b), (a[:23] != b).sum(1))


def test_hamming_accepts_codes_and_refuses_mismatched_layouts():
    code = spline_code(MLP([2, 6, 6, 1]), _x(8))
    np.testing.assert_array_equal(hamming(code[:4], code[4:]), (code.bits[:4] != code.bits[4:]).sum(1))
    other = spline_code(MLP([2, 12, 1]), _x(8))
    with pytest.raises(ValueError, match="layouts"):
        hamming(code, other)
    with pytest.raises(ValueError, match="neurons"):
        hamming(code.bits, other.bits[:, :5])
    with pytest.raises(ValueError, match="pairwise=True"):
        hamming(code[:3], code[:5])
    with pytest.raises(TypeError, match="bool"):
        hamming(np.zeros((2, 3)), np.zeros((2, 3)))


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 12),
    m=st.integers(1, 12),
    k=st.integers(1, 200),
    seed=st.integers(0, 2**31 - 1),
)
def test_hamming_properties(n, m, k, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.random((n, k)) > 0.5, rng.random((m, k)) > 0.5
    d = hamming(a, b, pairwise=True)
    np.testing.assert_array_equal(d, _naive_hamming(a, b))
    np.testing.assert_array_equal(hamming(b, a, pairwise=True), d.T)
    assert (np.diag(hamming(a)) == 0).all()


@settings(max_examples=20, deadline=None)
@given(widths=st.lists(st.integers(1, 9), min_size=1, max_size=3), batch=st.integers(1, 6), seed=st.integers(0, 1000))
def test_spline_code_shapes(widths, batch, seed):
    code = spline_code(MLP([3, *widths, 2], seed=seed), _x(batch, 3, seed))
    assert code.bits.shape == (batch, sum(widths))
    assert [l.size for l in code.layers] == widths
    assert code.packed().shape == (batch, -(-sum(widths) // 8))


# -------------------------------------------------------- agreement / mask ---


def test_agreement_and_mask_semantics():
    bits = np.zeros((10, 5), dtype=bool)
    bits[:, 0] = True  # always on
    bits[:9, 1] = True  # on in 90%
    bits[:8, 2] = True  # on in 80%: no agreement at 0.9
    bits[:1, 3] = True  # off in 90%
    bits[:5, 4] = True  # split
    code = SplineCode(bits, [Layer("a", 0, 2), Layer("b", 2, 5)])
    np.testing.assert_allclose(on_fraction(code), [1.0, 0.9, 0.8, 0.1, 0.5])
    m = code_mask(code, agreement=0.9)
    assert isinstance(m, CodeMask)
    np.testing.assert_array_equal(m.neurons, [0, 1, 3])
    np.testing.assert_array_equal(m.state, [True, True, False])
    idx, state = m.layer("b")
    np.testing.assert_array_equal(idx, [1])
    np.testing.assert_array_equal(state, [False])
    assert m.matches(code).min() >= 2 / 3
    assert len(code_mask(code, agreement=0.75)) == 4
    with pytest.raises(ValueError, match="agreement"):
        code_mask(code, agreement=0.4)


# --------------------------------------------------------------- soft_code ---


def test_soft_code_formulas_and_threshold():
    x = _x(16, seed=3)
    for act, prob in [
        ("gelu", lambda u: 0.5 * (1 + torch.erf(u / 2**0.5))),
        ("silu", torch.sigmoid),
        ("sigmoid", torch.sigmoid),
        ("softplus", torch.sigmoid),
    ]:
        model = MLP([2, 6, 1], activation=act, seed=0)
        sc = soft_code(model, x)
        assert isinstance(sc, SoftCode) and sc.probs.shape == (16, 6)
        u = model.linear0(x).double()
        np.testing.assert_allclose(sc.probs, prob(u).detach().numpy(), atol=1e-6)
        np.testing.assert_array_equal(sc.threshold(0.5).bits, (u > 0).numpy())


def test_soft_code_of_relu_net_is_the_hard_code():
    model = MLP([2, 6, 5, 1], seed=4)
    x = _x(30)
    hard = spline_code(model, x)
    soft = soft_code(model, x)
    assert set(np.unique(soft.probs)) <= {0.0, 1.0}
    np.testing.assert_array_equal(soft.threshold().bits, hard.bits)
    assert soft.layers == hard.layers


def test_wrongly_shaped_input_is_explained():
    model = MLP([2, 4, 1], seed=0)
    with pytest.raises(ValueError, match=r"shape \(3, 3\).*\(batch, features\)"):
        spline_code(model, torch.randn(3, 3))


# ------------------------------------------- random shapes, values, dtypes ---
# Whatever array a learner passes, the answer is right or the error is a clean
# ValueError/TypeError: never an IndexError or a torch RuntimeError, never NaN
# read as "on".

_DTYPES = [np.bool_, np.int8, np.uint8, np.int64, np.float16, np.float32, np.float64, np.complex64]


@st.composite
def _rough_arrays(draw, shapes, dtypes=_DTYPES):
    """A numpy array or torch tensor of a random shape and dtype: NaN, inf, huge and tiny values
    included, and now and then a string or object array."""
    shape, kind = draw(shapes), draw(st.sampled_from(["numbers"] * 8 + ["text", "objects"]))
    if kind == "text":
        return np.full(shape, "on")
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    tame = dtype.kind == "f" and draw(st.booleans())  # half the floats finite and moderate: valid input too
    elements = st.floats(-10, 10, width=8 * dtype.itemsize) if tame else None
    arr = draw(hnp.arrays(dtype, shape, elements=elements))
    if kind == "objects":
        return arr.astype(object)
    return torch.from_numpy(arr.copy()) if draw(st.booleans()) else arr


def _as_numpy(x) -> np.ndarray:
    return x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


_SHAPES = st.one_of(
    hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
    st.tuples(st.integers(0, 5), st.just(3)),  # (batch, features) of the model below
    st.tuples(st.integers(1, 3), st.integers(1, 2), st.just(3)),
)
_NET = MLP([3, 4, 2], seed=0)


def _usable_batch(x) -> bool:
    """Real numbers, a batch dimension, 3 features last, finite in the model's float32."""
    a = _as_numpy(x)
    if a.dtype.kind not in "biuf" or a.ndim < 2 or a.shape[-1] != 3:
        return False
    with np.errstate(over="ignore"):
        return bool(np.isfinite(a.astype(np.float32)).all())


@settings(max_examples=150, deadline=None)
@given(x=_rough_arrays(_SHAPES))
def test_spline_code_on_any_array_is_right_or_a_clean_error(x):
    event("usable" if _usable_batch(x) else "refused")
    try:
        code = spline_code(_NET, x)
    except (ValueError, TypeError):
        assert not _usable_batch(x), "a usable batch was refused"
        return
    assert _usable_batch(x), "an unusable batch was accepted"
    with torch.no_grad():
        pre = _NET.linear0(torch.from_numpy(_as_numpy(x).astype(np.float32)))
    np.testing.assert_array_equal(code.bits, (pre > 0).flatten(1).numpy())


_CODE_SHAPES = st.one_of(
    hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5),
    st.tuples(st.integers(0, 6), st.just(7)),  # both arrays 7 neurons wide: comparable codes
    st.tuples(st.integers(0, 6), st.just(7)),
)
_CODE_DTYPES = _DTYPES + [np.bool_] * 6  # mostly codes, now and then something else


def _bool_matrix(x) -> bool:
    a = _as_numpy(x)
    return a.dtype == bool and a.ndim == 2


@settings(max_examples=150, deadline=None)
@given(a=_rough_arrays(_CODE_SHAPES, _CODE_DTYPES), b=st.none() | _rough_arrays(_CODE_SHAPES, _CODE_DTYPES), pairwise=st.booleans())
def test_hamming_on_any_arrays_is_right_or_a_clean_error(a, b, pairwise):
    usable = _bool_matrix(a) and (b is None or (
        _bool_matrix(b) and _as_numpy(a).shape[1] == _as_numpy(b).shape[1]
        and (pairwise or len(_as_numpy(a)) == len(_as_numpy(b)))))
    event("usable" if usable else "refused")
    try:
        d = hamming(a, b, pairwise=pairwise)
    except (ValueError, TypeError):
        assert not usable, "usable codes were refused"
        return
    assert usable, "unusable codes were accepted"
    bits_a = _as_numpy(a)
    bits_b = bits_a if b is None else _as_numpy(b)
    if b is None or pairwise:
        np.testing.assert_array_equal(d, _naive_hamming(bits_a, bits_b))
    else:
        np.testing.assert_array_equal(d, (bits_a != bits_b).sum(1))


@settings(max_examples=100, deadline=None)
@given(codes=_rough_arrays(_CODE_SHAPES, _CODE_DTYPES), share=st.floats(0.5, 1.0, exclude_min=True) | st.just(float("nan")))
def test_agreement_and_mask_on_any_array_are_right_or_a_clean_error(codes, share):
    usable = _bool_matrix(codes) and len(_as_numpy(codes)) > 0
    event("usable" if usable else "refused")
    try:
        on = on_fraction(codes)
        m = code_mask(codes, share)
    except (ValueError, TypeError):
        assert not usable or share != share, "usable codes were refused"
        return
    assert usable and share == share, "unusable codes or a NaN agreement were accepted"
    bits = _as_numpy(codes)
    np.testing.assert_allclose(on, bits.mean(0))
    agreed = np.maximum(on, 1 - on)  # the share of rows in each neuron's majority state
    np.testing.assert_array_equal(m.neurons, np.flatnonzero(agreed >= share - 1e-12))
    np.testing.assert_array_equal(m.state, on[m.neurons] >= 0.5)


def test_old_names_point_to_the_new_ones():
    """One name per idea: the function that was `agreement` (also an argument's name) is `on_fraction`, and so on."""
    import polylens as pl
    from polylens import steer

    for owner, old, new in [(pl, "agreement", "on_fraction"), (pl.spline, "agreement", "on_fraction"),
                            (pl.spline, "mask", "code_mask"), (steer, "code_mask", "steering_mask")]:
        with pytest.raises(AttributeError, match=new):
            getattr(owner, old)
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        pl.spline.nonsense
    with pytest.raises(AttributeError, match="no attribute 'mask'"):
        pl.mask  # never a name of polylens itself: no pointer to a name that does not exist
    regions = pl.regions.slice_regions(pl.models.MLP([2, 3, 1], seed=0), torch.zeros(2), torch.tensor([1.0, 0.0]),
                                       torch.tensor([0.0, 1.0]))
    for old, new in (("grad", "Regions.A"), ("offset", "Regions.c")):
        with pytest.raises(AttributeError, match=new):
            getattr(regions, old)
    layout = [Layer("a", 0, 4)]
    direction = steer.code_direction(SplineCode(np.eye(4, dtype=bool), layout), SplineCode(~np.eye(4, dtype=bool), layout))
    with pytest.raises(AttributeError, match="steering_mask"):
        direction.to_mask
