"""Bad input to the library is refused with a TypeError or ValueError that says what to do.

One table per kind of bad input: wrong shape, wrong dtype (integer, complex,
object and string data), non-finite values, unknown layer or module names,
models without ReLU modules, and modules that are not piecewise linear where
exact regions are computed. Each row is (call, expected exception, a phrase
its message must contain). Warnings are errors here, so a complex input
whose imaginary part is silently dropped fails too.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import numpy as np
import pytest
import torch
from torch import nn

import polylens as pl
import polylens.widgets.dictionaries
from polylens import boundaries, clustering, regions, scenes, spline, steer, training
from polylens import superposition as sp
from polylens.hooks import UnknownNameError

pytestmark = pytest.mark.filterwarnings("error")

# ------------------------------------------------------------- fixtures ---
# Small, deterministic objects built once at import: every row below is cheap.

GEN = torch.Generator().manual_seed(0)
MODEL = pl.models.MLP([2, 4, 4, 2], seed=0)
X = torch.randn(6, 2, generator=GEN)
ORIGIN, U, V = torch.zeros(2), torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
REGIONS = regions.slice_regions(MODEL, ORIGIN, U, V)
N_POLY, N_VERT = REGIONS.verts.shape[:2]
CODE = pl.spline_code(MODEL, X)
SOFT = pl.soft_code(MODEL, X)
PREACTS, _ = steer.preactivations(MODEL, X)
STEER_MASK = steer.steering_mask(CODE, 0.6, preacts=PREACTS)
ACTS_POS, ACTS_NEG = torch.randn(5, 4, generator=GEN) + 1.0, torch.randn(5, 4, generator=GEN)
DIRECTION = steer.mean_difference(ACTS_POS, ACTS_NEG, layer="relu0")
SAE = sp.SAE(4, 6)
TOY = sp.ToyModel(4, 2, 2)
Y = torch.tensor([0, 1, 1, 0, 1, 0])
NAN, INF = float("nan"), float("inf")
NAN2 = torch.tensor([NAN, 0.0])
OBJECTS = np.array([[object(), object()]], dtype=object)
COMPLEX = torch.randn(6, 2, dtype=torch.complex64, generator=GEN)
NO_RELU = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
AE = scenes.SceneAutoencoder(channels=1, width=2)  # a 64-number code


CODE_DIRECTION = steer.code_direction(CODE[:3], CODE[3:])
HUGE = torch.full((3, 4), 3e38)  # float32 values near the top of its range
HUGE64 = torch.full((3, 4), 1.5e308, dtype=torch.float64)  # finite, but HUGE64 - (-HUGE64) is not


def enter(manager: AbstractContextManager) -> None:
    """Context managers check their arguments when the block is entered."""
    with manager:
        pass


def cache_lookup(name: str) -> object:
    with pl.capture(MODEL, ["relu0"]) as cache:
        MODEL(X)
    return cache[name]


def case(id: str, call: Callable[[], object], error: type[Exception], phrase: str):
    return pytest.param(call, error, phrase, id=id)


def check(call: Callable[[], object], error: type[Exception], phrase: str) -> None:
    with pytest.raises(error) as info:
        call()
    assert phrase.lower() in str(info.value).lower(), f"message does not say {phrase!r}: {info.value}"


# ----------------------------------------------------------- wrong shape ---

WRONG_SHAPE = [
    case("spline_code wrong width", lambda: pl.spline_code(MODEL, torch.randn(3, 5)), ValueError, "(batch, features)"),
    case("spline_code no batch", lambda: pl.spline_code(MODEL, torch.randn(2)), ValueError, "x[None]"),
    case("spline_code scalar", lambda: pl.spline_code(MODEL, torch.tensor(1.0)), ValueError, "batch dimension"),
    case("soft_code wrong width", lambda: pl.soft_code(MODEL, np.zeros((3, 7))), ValueError, "(batch, features)"),
    case("SplineCode 1-D bits", lambda: pl.SplineCode(np.ones(8, bool), CODE.layers), ValueError, "(batch, neurons)"),
    case("SplineCode layout", lambda: pl.SplineCode(np.ones((2, 3), bool), CODE.layers), ValueError, "layers cover"),
    case("hamming neurons differ", lambda: pl.hamming(CODE.bits, CODE.bits[:, :3]), ValueError, "same model"),
    case("hamming rows differ", lambda: pl.hamming(CODE[:2], CODE[:3]), ValueError, "pairwise=True"),
    case("hamming 1-D", lambda: pl.hamming(np.ones(4, bool)), TypeError, "(rows, neurons)"),
    case("on_fraction no rows", lambda: pl.on_fraction(CODE.bits[:0]), ValueError, "at least one row"),
    case("concat layouts", lambda: pl.SplineCode.concat([CODE, pl.spline_code(MODEL, X, "relu0")]), ValueError,
         "same model"),
    case("slice_regions origin", lambda: regions.slice_regions(MODEL, torch.zeros(3), torch.eye(3)[0], torch.eye(3)[1]),
         ValueError, "input shape"),
    case("slice_regions u vs v", lambda: regions.slice_regions(MODEL, ORIGIN, U, torch.ones(3)), ValueError,
         "one shape"),
    case("slice_regions u parallel v", lambda: regions.slice_regions(MODEL, ORIGIN, U, 2 * U), ValueError,
         "linearly independent"),
    case("slice_regions u zero", lambda: regions.slice_regions(MODEL, ORIGIN, 0 * U, V), ValueError,
         "nonzero directions"),
    case("slice_regions empty points", lambda: regions.slice_regions(MODEL, *[np.zeros(0)] * 3), ValueError,
         "are empty"),
    case("slice_regions extent length", lambda: regions.slice_regions(MODEL, ORIGIN, U, V, extent=(0, 1)), ValueError,
         "(s0, s1, t0, t1)"),
    case("slice_regions extent order", lambda: regions.slice_regions(MODEL, ORIGIN, U, V, extent=(1, 0, 0, 1)),
         ValueError, "s0 < s1"),
    case("crossings ends differ", lambda: regions.crossings(MODEL, torch.zeros(2), torch.zeros(3)), ValueError,
         "one shape"),
    case("crossings vs model", lambda: regions.crossings(MODEL, torch.zeros(3), torch.ones(3)), ValueError,
         "input shape"),
    case("density radii", lambda: regions.density(MODEL, ORIGIN, [1.0]), ValueError, "at least two"),
    case("density directions", lambda: regions.density(MODEL, ORIGIN, [0, 1], directions=torch.ones(4, 3)),
         ValueError, "directions must be"),
    case("preactivations_at_vertices plane", lambda: boundaries.preactivations_at_vertices(
        MODEL, REGIONS, torch.zeros(3), U, V), ValueError, "one shape"),
    case("preactivations_at_vertices model", lambda: boundaries.preactivations_at_vertices(
        MODEL, REGIONS, torch.zeros(3), torch.eye(3)[0], torch.eye(3)[1]), ValueError, "input shape"),
    case("neuron_boundaries values", lambda: boundaries.neuron_boundaries(np.zeros((2, 2, 2)), REGIONS), ValueError,
         "(n_polygons, max_vertices, neurons)"),
    case("level_set values", lambda: boundaries.level_set(np.zeros((N_POLY, 1)), REGIONS), ValueError,
         "(n_polygons, max_vertices)"),
    case("decision_boundary class", lambda: boundaries.decision_boundary(REGIONS, 2, 0), ValueError,
         "output index from 0 to 1"),
    case("mean_difference shapes", lambda: steer.mean_difference(ACTS_POS, torch.randn(5, 3)), ValueError,
         "per-example shape"),
    case("mean_difference 1-D", lambda: steer.mean_difference(torch.randn(4), ACTS_NEG), ValueError,
         "(batch, ...)"),
    case("paired_pca unpaired", lambda: steer.paired_pca(ACTS_POS, ACTS_NEG[:3]), ValueError, "pairs"),
    case("project shape", lambda: DIRECTION.project(torch.randn(2, 5)), ValueError, "per-example shape"),
    case("steering_mask preacts", lambda: steer.steering_mask(CODE, 0.6, preacts=np.zeros((2, 2))), ValueError,
         "must match the codes"),
    case("CodeDirection.steering_mask preacts columns", lambda: CODE_DIRECTION.steering_mask(0.3, preacts=np.ones((2, 3))), ValueError,
         "(rows, 8)"),
    case("CodeDirection.steering_mask preacts 1-D", lambda: CODE_DIRECTION.steering_mask(0.3, preacts=np.ones(8)), ValueError, "(rows, 8)"),
    case("gate one value", lambda: _steer_with(steer.add(MODEL, DIRECTION, 1.0, when=lambda h: torch.tensor(True))),
         ValueError, "one bool per example"),
    case("run_with_cache wrong width", lambda: pl.run_with_cache(MODEL, torch.randn(3, 5)), ValueError,
         "expects (batch, 2)"),
    case("run_with_hooks conv channels", lambda: pl.run_with_hooks(pl.models.SmallCNN(in_channels=1),
                                                                    torch.zeros(2, 3, 8, 8)), ValueError,
         "(batch, 1, H, W)"),
    case("steer add at wrong layer", lambda: _steer_forward("out"), ValueError, "steer the layer"),
    case("MLP one width", lambda: pl.models.MLP([2]), ValueError, "at least 2"),
    case("MLP widths not a list", lambda: pl.models.MLP(16), TypeError, "list of layer sizes"),
    case("SmallCNN size", lambda: pl.models.SmallCNN(size=10), ValueError, "multiple of 4"),
    case("feature_norms 1-D", lambda: sp.feature_norms(torch.ones(3)), ValueError, "(hidden, features)"),
    case("generate_features p length", lambda: sp.generate_features(4, 3, [0.1, 0.2], n_instances=1), ValueError,
         "needs length"),
    case("ToyModel x shape", lambda: TOY(torch.zeros(3, 4)), ValueError, "(batch, instances, features)"),
    case("tegum 3-D", lambda: sp.tegum(torch.ones(2, 2, 2)), ValueError, "2-D"),
    case("train_sae 1-D", lambda: sp.train_sae(torch.ones(4), 2, steps=1, progress=False), ValueError,
         "(n_samples, dim)"),
    case("mmcs dims", lambda: sp.mmcs(torch.ones(3, 4), torch.ones(2, 5)), ValueError, "dim"),
    case("l0 dims", lambda: sp.l0(SAE, torch.ones(3, 5)), ValueError, "trained on dim 4"),
    case("dead_latents dims", lambda: sp.dead_latents(SAE, torch.ones(3, 2)), ValueError, "trained on dim 4"),
    case("to_tensor shape", lambda: scenes.to_tensor(np.zeros((8, 8))), ValueError, "(n, H, W, 3)"),
    case("encode channels last", lambda: AE.encode(torch.zeros(1, 64, 64, 3)), ValueError,
         "permute"),
    case("decode shape", lambda: AE.decode(torch.zeros(1, 5)), ValueError, "codes shaped"),
    case("render_batch lengths", lambda: scenes.render_batch(["duck", "boat"], "sunny", [0, 1, 2]), ValueError,
         "same length"),
    case("counterpart indices", lambda: scenes.SceneDataset(4, size=16).counterpart("sunny", [9]), ValueError,
         "[0, 4)"),
    case("kmedoids not square", lambda: clustering.kmedoids(np.zeros((3, 4)), 2), ValueError, "square"),
    case("euclidean 1-D", lambda: clustering.euclidean(np.zeros(3)), ValueError, "(n, features)"),
    case("purity lengths", lambda: clustering.purity([0, 1], [0, 1, 1]), ValueError, "one length"),
    case("train x 1-D", lambda: training.train_classifier(MODEL, torch.randn(6), Y), TypeError, "(n, d)"),
    case("train y length", lambda: training.train_classifier(MODEL, X, Y[:3]), TypeError, "shape (6,)"),
    case("train model width", lambda: training.train_classifier(pl.models.MLP([3, 2]), X, Y, steps=1), ValueError,
         "input width"),
    case("train labels vs logits", lambda: training.train_classifier(MODEL, X, Y * 5, steps=1), ValueError,
         "largest label"),
]


def _steer_forward(layer: str) -> None:
    with steer.add(MODEL, DIRECTION, 1.0, layer=layer):
        MODEL(X)


def _steer_with(manager: AbstractContextManager) -> None:
    with torch.no_grad(), manager:
        MODEL(X)


@pytest.mark.parametrize("call, error, phrase", WRONG_SHAPE)
def test_wrong_shape(call, error, phrase):
    check(call, error, phrase)


# ----------------------------------------------------------- wrong dtype ---

WRONG_DTYPE = [
    case("spline_code complex", lambda: pl.spline_code(MODEL, COMPLEX), TypeError, "real numbers"),
    case("spline_code object", lambda: pl.spline_code(MODEL, OBJECTS), TypeError, "real numbers"),
    case("spline_code strings", lambda: pl.spline_code(MODEL, [["a", "b"]]), TypeError, "real numbers"),
    case("soft_code complex", lambda: pl.soft_code(MODEL, COMPLEX.numpy()), TypeError, "real numbers"),
    case("SplineCode float bits", lambda: pl.SplineCode(np.full((1, 8), 0.5), CODE.layers), ValueError, "0/1"),
    case("hamming ints", lambda: pl.hamming(CODE.bits.astype(int)), TypeError, "bool array"),
    case("hamming object", lambda: pl.hamming(OBJECTS), TypeError, "bool array"),
    case("on_fraction floats", lambda: pl.on_fraction(np.zeros((2, 3))), TypeError, "bool array"),
    case("code_mask agreement string", lambda: spline.code_mask(CODE, "most"), TypeError, "must be a number"),
    case("threshold string", lambda: SOFT.threshold("half"), TypeError, "must be a number"),
    case("slice_regions complex", lambda: regions.slice_regions(MODEL, ORIGIN.to(torch.complex64), U, V), TypeError,
         "real numbers"),
    case("slice_regions object", lambda: regions.slice_regions(MODEL, OBJECTS[0], U, V), TypeError, "real numbers"),
    case("slice_regions extent strings", lambda: regions.slice_regions(MODEL, ORIGIN, U, V, extent="abcd"), TypeError,
         "real numbers"),
    case("slice_regions min_area string", lambda: regions.slice_regions(MODEL, ORIGIN, U, V, min_area="tiny"),
         TypeError, "must be a number"),
    case("crossings complex", lambda: regions.crossings(MODEL, ORIGIN, U.to(torch.complex128)), TypeError,
         "real numbers"),
    case("density seed", lambda: regions.density(MODEL, ORIGIN, [0, 1], seed=0.5), TypeError, "seed must be an int"),
    case("level_set strings", lambda: boundaries.level_set(np.full((N_POLY, N_VERT), "a"), REGIONS), TypeError,
         "real numbers"),
    case("decision_boundary float class", lambda: boundaries.decision_boundary(REGIONS, 1.0, 0), TypeError,
         "must be an int"),
    case("neuron_boundaries not regions", lambda: boundaries.neuron_boundaries(np.zeros((1, 1, 1)), "regions"),
         TypeError, "slice_regions"),
    case("mean_difference ints", lambda: steer.mean_difference(torch.ones(3, 2, dtype=torch.int64), ACTS_NEG),
         TypeError, "floating point"),
    case("mean_difference complex", lambda: steer.mean_difference(COMPLEX, COMPLEX), TypeError, "floating point"),
    case("mean_difference numpy", lambda: steer.mean_difference(np.ones((3, 4)), ACTS_NEG), TypeError,
         "torch.Tensor"),
    case("add a raw tensor", lambda: enter(steer.add(MODEL, torch.ones(4), 1.0)), TypeError, "mean_difference"),
    case("add_to_projection a raw tensor", lambda: enter(steer.add_to_projection(MODEL, np.ones(4))), TypeError,
         "FeatureDirection"),
    case("dot_below a raw tensor", lambda: steer.dot_below(torch.ones(4), 0.5), TypeError, "FeatureDirection"),
    case("toward_mask not a mask", lambda: enter(steer.toward_mask(MODEL, CODE, 1.0)), TypeError, "steering_mask"),
    case("quantile string", lambda: DIRECTION.quantile("median"), TypeError, "must be a number"),
    case("alpha the string '2'", lambda: enter(steer.add(MODEL, DIRECTION, "2")), TypeError, "must be a number"),
    case("alpha a bool", lambda: enter(steer.add(MODEL, DIRECTION, True)), TypeError, "bool"),
    case("strength a vector", lambda: enter(steer.toward_mask(MODEL, STEER_MASK, torch.ones(2))), TypeError,
         "single number"),
    case("gate returns floats", lambda: _steer_with(steer.add(MODEL, DIRECTION, 1.0,
                                                              when=lambda h: DIRECTION.project(h).sigmoid())),
         TypeError, "bool tensor"),
    case("gate returns ints", lambda: _steer_with(steer.add(MODEL, DIRECTION, 1.0,
                                                            when=lambda h: torch.full((len(h),), 2))),
         TypeError, "bool tensor"),
    case("gate returns a list", lambda: _steer_with(steer.add(MODEL, DIRECTION, 1.0, when=lambda h: [True] * len(h))),
         TypeError, "bool tensor"),
    case("CodeDirection.steering_mask threshold string", lambda: CODE_DIRECTION.steering_mask("half"), TypeError, "must be a number"),
    case("sae_direction float latent", lambda: steer.sae_direction(SAE, ACTS_POS, ACTS_NEG, latent=1.0), TypeError,
         "latent must be an int"),
    case("train_sae l1 a bool", lambda: sp.train_sae(torch.ones(4, 3), 2, l1=True, steps=1, progress=False),
         TypeError, "bool"),
    case("train_sae steps a float", lambda: sp.train_sae(torch.ones(4, 3), 2, steps=2.0, progress=False), TypeError,
         "steps must be an int"),
    case("train_tms lr a string", lambda: sp.train_tms(3, 2, 0.1, n_instances=1, steps=1, lr="1e-2",
                                                        progress=False), TypeError, "must be a number"),
    case("two_moons n a float", lambda: pl.datasets.two_moons(10.0), TypeError, "n must be an int"),
    case("two_moons noise a string", lambda: pl.datasets.two_moons(10, noise="low"), TypeError, "must be a number"),
    case("plane_grid n a bool", lambda: pl.plot.plane_grid(n=True), TypeError, "n must be an int"),
    case("train_sae_grid l1 strings", lambda: sp.train_sae_grid(torch.ones(4, 3), 2, ["a"]), TypeError,
         "must be a number"),
    case("scene probe float64 images", lambda: scenes.SceneProbe(5)(torch.zeros(1, 3, 64, 64, dtype=torch.float64)),
         TypeError, "x.float()"),
    case("scene autoencoder float16 images", lambda: AE(torch.zeros(1, 3, 64, 64, dtype=torch.float16)), TypeError,
         "x.float()"),
    case("scene decode float64 codes", lambda: AE.decode(torch.zeros(1, AE.latent, dtype=torch.float64)), TypeError,
         "z.to(torch.float32)"),
    case("MLP int dtype", lambda: pl.models.MLP([2, 3], dtype=torch.int64), TypeError, "floating torch dtype"),
    case("MLP string dtype", lambda: pl.models.MLP([2, 3], dtype="float64"), TypeError, "floating torch dtype"),
    case("MLP float width", lambda: pl.models.MLP([2, 3.5, 1]), ValueError, "positive ints"),
    case("seeded float", lambda: pl.models.MLP([2, 3], seed=0.5), TypeError, "seed must be an int"),
    case("feature_norms complex", lambda: sp.feature_norms(torch.ones(2, 3, dtype=torch.complex64)), TypeError,
         "real numbers"),
    case("feature_dimensionality object", lambda: sp.feature_dimensionality(OBJECTS), TypeError, "real numbers"),
    case("generate_features complex p", lambda: sp.generate_features(4, 3, 0.5 + 0.1j), TypeError, "real numbers"),
    case("ToyModel numpy x", lambda: TOY.hidden(np.zeros((1, 2, 4))), TypeError, "torch tensor"),
    case("train_sae object", lambda: sp.train_sae(OBJECTS, 2, steps=1, progress=False), TypeError, "real numbers"),
    case("mmcs complex", lambda: sp.mmcs(COMPLEX, COMPLEX), TypeError, "real numbers"),
    case("sparse_activations string", lambda: sp.sparse_activations(4, 3, avg_active="two"), TypeError,
         "must be a number"),
    case("l0 not an SAE", lambda: sp.l0(MODEL, torch.ones(3, 2)), TypeError, "train_sae"),
    case("to_tensor complex", lambda: scenes.to_tensor(np.zeros((8, 8, 3), dtype=complex)), TypeError,
         "real numbers"),
    case("to_tensor strings", lambda: scenes.to_tensor(np.full((8, 8, 3), "a")), TypeError, "real numbers"),
    case("decode int codes", lambda: AE.decode(torch.zeros(1, AE.latent, dtype=torch.int64)),
         TypeError, "float codes"),
    case("probe int images", lambda: scenes.SceneProbe(5).predict(torch.zeros(1, 3, 64, 64, dtype=torch.uint8)),
         TypeError, "float images"),
    case("probe numpy images", lambda: scenes.SceneProbe(5).predict(np.zeros((1, 64, 64, 3))), TypeError,
         "to_tensor"),
    case("render float seed", lambda: scenes.render("duck", "sunny", seed=1.5), TypeError, "seed must be an int"),
    case("render weather index", lambda: scenes.render("duck", 0), TypeError, "weather must be a name"),
    case("counterpart float indices", lambda: scenes.SceneDataset(4, size=16).counterpart("sunny", [0.5]), TypeError,
         "must be ints"),
    case("kmedoids complex", lambda: clustering.kmedoids(np.zeros((2, 2), dtype=complex), 1), TypeError,
         "real numbers"),
    case("kmedoids object", lambda: clustering.kmedoids(np.array([[object()]]), 1), TypeError, "real numbers"),
    case("kmedoids k a float", lambda: clustering.kmedoids(np.zeros((2, 2)), 1.0), TypeError, "k must be an int"),
    case("kmedoids n_init", lambda: clustering.kmedoids(np.zeros((2, 2)), 1, n_init="4"), TypeError,
         "n_init must be an int"),
    case("euclidean complex", lambda: clustering.euclidean(COMPLEX), TypeError, "real numbers"),
    case("purity float labels", lambda: clustering.purity([0.5, np.nan], [0, 1]), TypeError, "ints"),
    case("train int x", lambda: training.train_classifier(MODEL, X.long(), Y), TypeError, "float tensor"),
    case("train float y", lambda: training.train_classifier(MODEL, X, Y.float()), TypeError, "int64"),
    case("train string lr", lambda: training.train_classifier(MODEL, X, Y, lr="fast"), TypeError, "must be a number"),
    case("train not a model", lambda: training.train_classifier("mlp", X, Y, steps=1), TypeError, "torch.nn.Module"),
    case("capture not a model", lambda: enter(pl.capture("mlp")), TypeError, "torch.nn.Module"),
    case("hooks not a model", lambda: enter(pl.hooked(np.zeros(2))), TypeError, "torch.nn.Module"),
    case("names_filter a number", lambda: pl.resolve_names(MODEL, 3), TypeError, "names_filter must be"),
    case("slice_regions not a model", lambda: regions.slice_regions(MODEL.state_dict(), ORIGIN, U, V), TypeError,
         "torch.nn.Module"),
    # Counts and seeds: the wrong kind of thing is a TypeError everywhere, as _checks promises.
    case("dataset float n", lambda: scenes.SceneDataset(4.0, size=16), TypeError, "n must be an int"),
    case("dataset string seed", lambda: scenes.SceneDataset(4, seed="0", size=16), TypeError, "seed must be an int"),
    case("render float size", lambda: scenes.render("duck", "sunny", 0, size=64.0), TypeError, "size"),
    case("scene_params float seed", lambda: scenes.scene_params("duck", 1.5), TypeError, "seed must be an int"),
    case("density float n_rays", lambda: regions.density(MODEL, ORIGIN, [0.0, 1.0], n_rays=2.5), TypeError,
         "n_rays must be an int"),
]


@pytest.mark.parametrize("call, error, phrase", WRONG_DTYPE)
def test_wrong_dtype(call, error, phrase):
    check(call, error, phrase)


def test_integer_inputs_are_read_as_numbers_not_refused():
    # An integer batch is a batch of numbers: the same answer as its float copy.
    grid = torch.tensor([[0, 0], [1, -1], [-2, 1], [3, 2]])
    assert np.array_equal(pl.spline_code(MODEL, grid).bits, pl.spline_code(MODEL, grid.float()).bits)
    a = regions.crossings(MODEL, np.array([-2, -1]), np.array([2, 1]))
    b = regions.crossings(MODEL, torch.tensor([-2.0, -1.0]), torch.tensor([2.0, 1.0]))
    assert np.array_equal(a.t, b.t)


# ---------------------------------------------------------- not finite ---

NOT_FINITE = [
    case("spline_code NaN", lambda: pl.spline_code(MODEL, NAN2[None]), ValueError, "NaN or inf"),
    case("spline_code inf", lambda: pl.spline_code(MODEL, torch.tensor([[INF, 0.0]])), ValueError, "NaN or inf"),
    case("soft_code NaN", lambda: pl.soft_code(MODEL, [[NAN, 1.0]]), ValueError, "NaN or inf"),
    case("SplineCode NaN bits", lambda: pl.SplineCode(np.full((1, 8), NAN), CODE.layers), ValueError, "0/1"),
    case("code_mask agreement NaN", lambda: spline.code_mask(CODE, NAN), ValueError, "finite"),
    case("threshold NaN", lambda: SOFT.threshold(NAN), ValueError, "finite"),
    case("slice_regions origin NaN", lambda: regions.slice_regions(MODEL, NAN2, U, V), ValueError, "NaN or inf"),
    case("slice_regions u inf", lambda: regions.slice_regions(MODEL, ORIGIN, U * INF, V), ValueError, "NaN or inf"),
    case("slice_regions extent inf", lambda: regions.slice_regions(MODEL, ORIGIN, U, V, extent=(-INF, 1, -1, 1)),
         ValueError, "finite"),
    case("slice_regions extent NaN", lambda: regions.slice_regions(MODEL, ORIGIN, U, V, extent=(-1, NAN, -1, 1)),
         ValueError, "finite"),
    case("slice_regions min_area NaN", lambda: regions.slice_regions(MODEL, ORIGIN, U, V, min_area=NAN), ValueError,
         "finite"),
    case("slice_regions min_area negative", lambda: regions.slice_regions(MODEL, ORIGIN, U, V, min_area=-1.0),
         ValueError, ">= 0"),
    case("slice_regions extent overflows", lambda: regions.slice_regions(
        MODEL, ORIGIN, U, V, extent=(-1e308, 1e308, -1, 1)), ValueError, "between 1e-100 and 1e100"),
    case("slice_regions reaches past float64", lambda: regions.slice_regions(
        MODEL, np.array([1.7e308, 0.0]), np.array([1e308, 0.0]), np.array([0.0, 1.0])), ValueError,
        "beyond the range of float64"),
    case("crossings ends too far apart", lambda: regions.crossings(
        MODEL, np.array([-1e308, 0.0]), np.array([1e308, 0.0])), ValueError, "too far apart"),
    case("density rays past float64", lambda: regions.density(
        MODEL, np.array([1.7e308, 0.0]), [0.0, 1e308], directions=np.eye(2)), ValueError, "beyond the range"),
    case("crossings x1 inf", lambda: regions.crossings(MODEL, ORIGIN, torch.tensor([INF, 0.0])), ValueError,
         "NaN or inf"),
    case("density center NaN", lambda: regions.density(MODEL, NAN2, [0, 1]), ValueError, "NaN or inf"),
    case("density radii inf", lambda: regions.density(MODEL, ORIGIN, [0, INF]), ValueError, "finite"),
    case("preactivations_at_vertices NaN", lambda: boundaries.preactivations_at_vertices(MODEL, REGIONS, NAN2, U, V),
         ValueError, "NaN or inf"),
    case("neuron_boundaries NaN", lambda: boundaries.neuron_boundaries(np.full((N_POLY, N_VERT, 4), NAN), REGIONS),
         ValueError, "NaN or inf"),
    case("neuron_boundaries rtol", lambda: boundaries.neuron_boundaries(np.zeros((N_POLY, N_VERT, 4)), REGIONS, NAN),
         ValueError, "finite"),
    case("level_set inf", lambda: boundaries.level_set(np.full((N_POLY, N_VERT), INF), REGIONS), ValueError,
         "NaN or inf"),
    case("mean_difference NaN", lambda: steer.mean_difference(ACTS_POS * NAN, ACTS_NEG), ValueError, "NaN or inf"),
    case("add alpha NaN", lambda: enter(steer.add(MODEL, DIRECTION, NAN)), ValueError, "finite"),
    case("add_to_projection target inf", lambda: enter(steer.add_to_projection(MODEL, DIRECTION, target=INF)),
         ValueError, "finite"),
    case("dot_below threshold inf", lambda: steer.dot_below(DIRECTION, INF), ValueError, "finite"),
    case("toward_mask strength NaN", lambda: enter(steer.toward_mask(MODEL, STEER_MASK, NAN)), ValueError, "finite"),
    case("toward_mask margin inf", lambda: enter(steer.toward_mask(MODEL, STEER_MASK, 1.0, margin=INF)), ValueError,
         "finite"),
    case("steering_mask preacts NaN", lambda: steer.steering_mask(CODE, 0.6, preacts=PREACTS * NAN), ValueError,
         "NaN or inf"),
    case("quantile NaN", lambda: DIRECTION.quantile(NAN), ValueError, "finite"),
    case("CodeDirection.steering_mask threshold NaN", lambda: CODE_DIRECTION.steering_mask(NAN), ValueError, "finite"),
    case("wants threshold NaN", lambda: CODE_DIRECTION.wants(np.float32(NAN)), ValueError, "finite"),
    case("CodeDirection.steering_mask preacts NaN", lambda: CODE_DIRECTION.steering_mask(0.3, preacts=PREACTS * NAN), ValueError,
         "NaN or inf"),
    case("alpha a huge int", lambda: enter(steer.add(MODEL, DIRECTION, 10**400)), ValueError, "too large"),
    case("mean_difference overflows float64", lambda: steer.mean_difference(HUGE64, -HUGE64), ValueError,
         "overflow"),
    case("mean_difference projections overflow float32", lambda: steer.mean_difference(HUGE, -HUGE), ValueError,
         "overflow"),
    case("paired_pca overflows float64", lambda: steer.paired_pca(HUGE64, -HUGE64), ValueError, "overflow"),
    case("add overflows float32", lambda: _steer_with(steer.add(MODEL, DIRECTION, 1e39)), ValueError,
         "overflowed"),
    case("toward_mask margin overflows float32", lambda: _steer_with(steer.toward_mask(MODEL, STEER_MASK, 1.0,
                                                                                        margin=1e39)),
         ValueError, "overflowed"),
    case("feature_norms NaN", lambda: sp.feature_norms(torch.full((2, 3), NAN)), ValueError, "NaN or inf"),
    case("generate_features p NaN", lambda: sp.generate_features(4, 3, NAN), ValueError, "NaN or inf"),
    case("ToyModel importance inf", lambda: sp.ToyModel(3, 2, 1, importance=INF), ValueError, "NaN or inf"),
    case("sparse_activations NaN", lambda: sp.sparse_activations(4, 3, avg_active=NAN), ValueError, "finite"),
    case("train_sae NaN", lambda: sp.train_sae(torch.full((4, 3), NAN), 2, steps=1, progress=False), ValueError,
         "NaN or inf"),
    case("train_sae l1 inf", lambda: sp.train_sae(torch.ones(4, 3), 2, l1=INF, steps=1, progress=False), ValueError,
         "finite"),
    case("mmcs inf", lambda: sp.mmcs(torch.full((2, 3), INF), torch.ones(2, 3)), ValueError, "NaN or inf"),
    case("to_tensor NaN", lambda: scenes.to_tensor(np.full((8, 8, 3), NAN)), ValueError, "NaN or inf"),
    case("kmedoids NaN", lambda: clustering.kmedoids(np.full((2, 2), NAN), 1), ValueError, "finite"),
    case("euclidean inf", lambda: clustering.euclidean(np.full((2, 2), INF)), ValueError, "NaN or inf"),
    case("train x NaN", lambda: training.train_classifier(MODEL, X * NAN, Y), ValueError, "NaN or inf"),
    case("train lr NaN", lambda: training.train_classifier(MODEL, X, Y, lr=NAN), ValueError, "finite"),
    case("train lr huge int", lambda: training.train_classifier(MODEL, X, Y, lr=10**400), ValueError, "too large"),
]


@pytest.mark.parametrize("call, error, phrase", NOT_FINITE)
def test_not_finite(call, error, phrase):
    check(call, error, phrase)


# --------------------------------------------------------- unknown names ---

UNKNOWN_NAMES = [
    case("capture", lambda: enter(pl.capture(MODEL, ["relu9"])), ValueError, "Did you mean"),
    case("run_with_cache", lambda: pl.run_with_cache(MODEL, X, names_filter="rellu0"), ValueError, "'relu0'"),
    case("run_with_hooks", lambda: pl.run_with_hooks(MODEL, X, fwd_hooks=[("linear9", lambda t, h: t)]), ValueError,
         "Known names"),
    case("hooks input_hooks", lambda: enter(pl.hooked(MODEL, input_hooks=[("nope", lambda t, h: t)])), ValueError,
         "no module named 'nope'"),
    case("cache lookup", lambda: cache_lookup("relu1"), ValueError, "'relu0'"),
    case("spline_code names_filter", lambda: pl.spline_code(MODEL, X, names_filter="relu7"), ValueError,
         "Did you mean"),
    case("SplineCode.layer", lambda: CODE.layer("relu2"), ValueError, "no layer named 'relu2'"),
    case("SoftCode.layer", lambda: SOFT.layer("relu"), ValueError, "Known names"),
    case("CodeMask.layer", lambda: STEER_MASK.layer("linear0"), ValueError, "'relu0'"),
    case("steer.add layer", lambda: enter(steer.add(MODEL, DIRECTION, 1.0, layer="relu_0")), ValueError,
         "Did you mean"),
    case("steer.add direction layer", lambda: enter(steer.add(MODEL, steer.mean_difference(
        ACTS_POS, ACTS_NEG, layer="encoder.10"), 1.0)), ValueError, "no module named 'encoder.10'"),
    case("steer.add no layer", lambda: enter(steer.add(MODEL, steer.mean_difference(ACTS_POS, ACTS_NEG), 1.0)),
         ValueError, "layer="),
    case("steer.preactivations", lambda: steer.preactivations(MODEL, X, names_filter=["relu0", "relu5"]), ValueError,
         "'relu5'"),
    case("model activation", lambda: pl.models.MLP([2, 3, 1], activation="tanh"), ValueError, "unknown activation"),
    case("scene object", lambda: scenes.render("dragon", "sunny"), ValueError, "unknown object"),
    case("scene weather", lambda: scenes.render("duck", "foggy"), ValueError, "unknown weather"),
    case("dataset weather", lambda: scenes.SceneDataset(4, size=16).indices(weather="windy"), ValueError,
         "weather must be"),
]


@pytest.mark.parametrize("call, error, phrase", UNKNOWN_NAMES)
def test_unknown_names(call, error, phrase):
    check(call, error, phrase)


def test_an_unknown_name_is_also_a_key_error():
    # Code written when unknown names raised KeyError keeps working.
    with pytest.raises(KeyError):
        CODE.layer("relu2")
    with pytest.raises(UnknownNameError) as info:
        enter(pl.capture(MODEL, ["relu9"]))
    assert isinstance(info.value, ValueError) and not str(info.value).startswith("'")


# ------------------------------------------------- values that mislead ---
# The right kind of thing with a value that used to give a silently wrong answer.

META_MODEL = pl.models.MLP([2, 4, 2]).to("meta")

OUT_OF_RANGE = [
    case("toward_mask negative margin", lambda: enter(steer.toward_mask(MODEL, STEER_MASK, 1.0, margin=-1)),
         ValueError, "opposite state"),
    case("toward_mask zero margin", lambda: enter(steer.toward_mask(MODEL, STEER_MASK, 1.0, margin=0.0)),
         ValueError, "margin must be > 0"),
    case("CodeDirection.steering_mask threshold 0", lambda: CODE_DIRECTION.steering_mask(0.0), ValueError, "(0, 1]"),
    case("CodeDirection.steering_mask threshold above 1", lambda: CODE_DIRECTION.steering_mask(1.5), ValueError, "(0, 1]"),
    case("paired_pca identical pairs", lambda: steer.paired_pca(ACTS_POS, ACTS_POS.clone()), ValueError,
         "every pair is identical"),
    case("train_sae negative l1", lambda: sp.train_sae(torch.ones(4, 3), 2, l1=np.float32(-0.1), steps=1,
                                                       progress=False), ValueError, "l1 must be a finite number >= 0"),
    case("meta-device model, spline_code", lambda: pl.spline_code(META_MODEL, X), ValueError, "meta device"),
    case("meta-device model, capture", lambda: enter(pl.capture(META_MODEL)), ValueError, "to_empty"),
    case("meta-device model, train", lambda: training.train_classifier(META_MODEL, X, Y, steps=1), ValueError,
         "meta device"),
    case("DictionaryExplorer L1 of 0", lambda: pl.widgets.dictionaries.DictionaryExplorer(l1s=(0.0,)), ValueError,
         "l1s must all be > 0"),
    case("DictionaryExplorer no sizes", lambda: pl.widgets.dictionaries.DictionaryExplorer(sizes=()), ValueError,
         "at least one"),
    case("scene probe batch_size 0", lambda: scenes.SceneProbe(5).predict(torch.zeros(1, 3, 64, 64), batch_size=0),
         ValueError, "batch_size must be an int >= 1"),
]


@pytest.mark.parametrize("call, error, phrase", OUT_OF_RANGE)
def test_values_that_would_mislead(call, error, phrase):
    check(call, error, phrase)


# ------------------------------------------ numbers of every common kind ---
# np.float32(0.1), np.int64(3) and 0-d tensors are what numpy and torch arithmetic hands back:
# wherever a Python number is accepted, so are they (and bool is not a number; see WRONG_DTYPE).

F32, I64, T_INT, T_FLOAT = np.float32(0.1), np.int64(3), torch.tensor(3), torch.tensor(0.5)

SCALARS = [
    pytest.param(lambda: sp.train_sae(torch.rand(8, 3), I64, l1=F32, lr=F32, steps=T_INT, batch_size=I64, seed=I64,
                                      progress=False), id="train_sae"),
    pytest.param(lambda: sp.train_sae_grid(torch.rand(8, 3), T_INT, [F32, T_FLOAT], steps=I64, lr=F32, seed=T_INT),
                 id="train_sae_grid"),
    pytest.param(lambda: sp.train_tms(I64, T_INT, F32, n_instances=I64, steps=T_INT, lr=F32, batch_size=I64,
                                      seed=I64, progress=False), id="train_tms"),
    pytest.param(lambda: sp.sparse_activations(I64, T_INT, avg_active=F32, decay=T_FLOAT, seed=I64),
                 id="sparse_activations"),
    pytest.param(lambda: sp.ground_truth_features(I64, T_INT, seed=np.int32(1)), id="ground_truth_features"),
    pytest.param(lambda: sp.objects_conditions(I64, T_INT, cooccurrence=F32, dim=I64, n_samples=T_INT,
                                               magnitude_spread=F32, seed=I64), id="objects_conditions"),
    pytest.param(lambda: sp.animals_in_attribute_space(I64, T_INT, n_samples=I64, avg_active=F32, seed=I64),
                 id="animals_in_attribute_space"),
    pytest.param(lambda: sp.regular_polygon(np.int64(5)), id="regular_polygon"),
    pytest.param(lambda: sp.hidden_to_output(TOY, np.int64(0)), id="hidden_to_output"),
    pytest.param(lambda: sp.SAE(I64, T_INT, seed=I64), id="SAE"),
    pytest.param(lambda: sp.ToyModel(I64, T_INT, I64, seed=I64), id="ToyModel"),
    pytest.param(lambda: pl.datasets.two_moons(I64 * 4, noise=F32, seed=T_INT), id="two_moons"),
    pytest.param(lambda: pl.datasets.spirals(T_INT * 4, turns=F32, noise=F32, classes=I64, seed=I64), id="spirals"),
    pytest.param(lambda: pl.plot.plane_grid((F32 - 1, T_FLOAT, -1, np.float64(1)), n=I64), id="plane_grid"),
    pytest.param(lambda: pl.models.MLP([np.int64(2), T_INT, 2], seed=I64), id="MLP"),
    pytest.param(lambda: pl.models.ResidualMLP(I64, T_INT, I64, depth=np.int8(1), d_out=I64, seed=T_INT),
                 id="ResidualMLP"),
    pytest.param(lambda: pl.models.SmallCNN(in_channels=I64, size=np.int64(8), channels=T_INT, n_classes=I64),
                 id="SmallCNN"),
    pytest.param(lambda: training.train_classifier(pl.models.MLP([2, 4, 2]), X, Y, steps=I64, lr=F32,
                                                   batch_size=T_INT, snapshots=[np.int64(1)], seed=I64),
                 id="train_classifier"),
    pytest.param(lambda: scenes.SceneAutoencoder(channels=np.int64(1), width=T_INT, seed=I64), id="SceneAutoencoder"),
    pytest.param(lambda: scenes.SceneProbe(np.int64(5), width=T_INT).predict(torch.zeros(2, 3, 64, 64),
                                                                             batch_size=I64), id="SceneProbe"),
    pytest.param(lambda: _steer_with(steer.add(MODEL, DIRECTION, alpha=F32, when=steer.dot_below(DIRECTION, T_FLOAT))),
                 id="steer.add"),
    pytest.param(lambda: _steer_with(steer.add_to_projection(MODEL, DIRECTION, quantile=F32)),
                 id="steer.add_to_projection"),
    pytest.param(lambda: _steer_with(steer.toward_mask(MODEL, STEER_MASK, strength=T_FLOAT, margin=F32)),
                 id="steer.toward_mask"),
    pytest.param(lambda: steer.sae_direction(SAE, ACTS_POS, ACTS_NEG, scale=F32, latent=np.int64(1)),
                 id="steer.sae_direction"),
    pytest.param(lambda: CODE_DIRECTION.steering_mask(np.float64(0.3), preacts=PREACTS), id="CodeDirection.steering_mask"),
    pytest.param(lambda: clustering.kmedoids(np.eye(3), torch.tensor(2), max_iter=I64, n_init=np.int32(2), seed=I64),
                 id="kmedoids"),
]


@pytest.mark.parametrize("call", SCALARS)
def test_numpy_and_torch_numbers_are_accepted(call):
    call()


@pytest.mark.parametrize("value", [np.float32(0.1), np.float64(0.1), torch.tensor(0.1), np.array(0.1), 0.1])
def test_every_kind_of_number_gives_the_same_float(value):
    from polylens._checks import finite_number

    assert finite_number(value, "x") == pytest.approx(0.1)


def test_numpy_numbers_give_the_same_answer_as_python_numbers():
    a = sp.train_sae(torch.rand(16, 3, generator=torch.Generator().manual_seed(1)), 4, l1=0.25, steps=3,
                     progress=False)
    b = sp.train_sae(torch.rand(16, 3, generator=torch.Generator().manual_seed(1)), np.int64(4),
                     l1=np.float32(0.25), steps=torch.tensor(3), progress=False)
    assert torch.equal(a.dictionary, b.dictionary)


# -------------------------------------------------------------- no ReLU ---

NO_RELU_CASES = [
    case("spline_code affine", lambda: pl.spline_code(NO_RELU, X), ValueError, "nn.ReLU()"),
    case("spline_code tanh", lambda: pl.spline_code(nn.Sequential(nn.Linear(2, 3), nn.Tanh()), X), ValueError,
         "It has Tanh"),
    case("spline_code GELU", lambda: pl.spline_code(pl.models.MLP([2, 3, 1], activation="gelu"), X), ValueError,
         "soft_code"),
    case("spline_code filter skips ReLUs", lambda: pl.spline_code(MODEL, X, names_filter="linear0"), ValueError,
         "names_filter selected"),
    case("soft_code affine", lambda: pl.soft_code(NO_RELU, X), ValueError, "no ReLU"),
    case("soft_code tanh", lambda: pl.soft_code(nn.Sequential(nn.Linear(2, 3), nn.Tanh()), X), ValueError,
         "It has Tanh"),
    case("steer.preactivations", lambda: steer.preactivations(NO_RELU, X), ValueError, "no ReLU"),
    case("hooks on a bare layer", lambda: pl.run_with_cache(nn.Linear(2, 2), X), ValueError, "no submodules"),
    case("toward_mask without magnitudes", lambda: enter(steer.toward_mask(MODEL, steer.steering_mask(CODE, 0.6), 1.0)),
         ValueError, "preacts="),
]


@pytest.mark.parametrize("call, error, phrase", NO_RELU_CASES)
def test_models_without_relu_modules(call, error, phrase):
    check(call, error, phrase)


def test_an_affine_model_is_one_exact_region():
    # No ReLU is not an error for exact regions: the whole slice is one polygon.
    regs = regions.slice_regions(NO_RELU, ORIGIN, U, V, extent=(-1, 2, -1, 1))
    assert len(regs) == 1 and regs.areas.sum() == pytest.approx(6.0)
    assert len(regions.crossings(NO_RELU, ORIGIN, U)) == 0


# ----------------------------------------- not piecewise linear (regions) ---

NOT_PIECEWISE_LINEAR = [
    nn.Tanh(), nn.GELU(), nn.Sigmoid(), nn.Softmax(dim=1), nn.LayerNorm(4), nn.SiLU(), nn.Softplus(), nn.ELU(),
    nn.Hardtanh(), nn.ReLU6(), nn.Softsign(), nn.Mish(), nn.SELU(), nn.LogSoftmax(dim=1), nn.Hardswish(),
    nn.GroupNorm(2, 4), nn.PReLU(),
]
EXACT = {
    "slice_regions": lambda m: regions.slice_regions(m, ORIGIN, U, V),
    "crossings": lambda m: regions.crossings(m, ORIGIN, U),
    "density": lambda m: regions.density(m, ORIGIN, [0.0, 1.0], n_rays=2),
    "preactivations_at_vertices": lambda m: boundaries.preactivations_at_vertices(m, REGIONS, ORIGIN, U, V),
}


@pytest.mark.parametrize("module", NOT_PIECEWISE_LINEAR, ids=lambda m: type(m).__name__)
@pytest.mark.parametrize("function", EXACT, ids=str)
def test_exact_regions_refuse_modules_that_are_not_relu_pieces(function, module):
    model = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), module, nn.Linear(4, 2))
    with pytest.raises(ValueError) as info:
        EXACT[function](model)
    message = str(info.value)
    assert type(module).__name__ in message and "Instead" in message


def test_attention_is_refused_although_its_parts_are_linear():
    class Attend(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inp = nn.Linear(2, 4)
            self.attention = nn.MultiheadAttention(4, 1)

        def forward(self, x):
            h = self.inp(x)[:, None]
            return self.attention(h, h, h)[0][:, 0]

    with pytest.raises(ValueError, match="attention multiplies"):
        regions.slice_regions(Attend(), ORIGIN, U, V)


def test_a_parameter_free_module_of_your_own_is_allowed():
    # A reshape or a residual add is the learner's own affine module: not refused.
    class Double(nn.Module):
        def forward(self, x):
            return 2 * x

    model = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), Double(), nn.Linear(4, 2))
    regs = regions.slice_regions(model, ORIGIN, U, V)
    assert len(regs) > 1 and regs.areas.sum() == pytest.approx(4.0)
