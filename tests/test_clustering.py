"""k-medoids on precomputed distances: planted clusters, determinism, bad input."""

import numpy as np
import pytest

from polylens.clustering import euclidean, kmedoids, purity
from polylens.spline import hamming


def _planted_codes(seed=0):
    """Three prototype codes of 64 bits, 20 noisy copies each (2 bits flipped)."""
    rng = np.random.default_rng(seed)
    protos = rng.random((3, 64)) < 0.5
    labels = np.repeat(np.arange(3), 20)
    bits = protos[labels].copy()
    for row in bits:
        row[rng.choice(64, size=2, replace=False)] ^= True
    return bits, labels


def _same_partition(a, b):
    return len(set(zip(a.tolist(), b.tolist()))) == len(np.unique(a)) == len(np.unique(b))


def test_recovers_planted_code_clusters_exactly_with_hamming():
    bits, labels = _planted_codes()
    result = kmedoids(hamming(bits), 3, seed=0)
    assert _same_partition(result.labels, labels)
    assert purity(result.labels, labels) == 1.0
    assert sorted(labels[result.medoids].tolist()) == [0, 1, 2]  # one medoid per planted cluster


def test_recovers_planted_blobs_with_euclidean():
    rng = np.random.default_rng(1)
    centres = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0], [5.0, 5.0]])
    labels = np.repeat(np.arange(4), 25)
    x = centres[labels] + 0.3 * rng.standard_normal((100, 2))
    assert _same_partition(kmedoids(euclidean(x), 4, seed=3).labels, labels)


def test_same_seed_same_answer():
    bits, _ = _planted_codes(2)
    a, b = kmedoids(hamming(bits), 5, seed=7), kmedoids(hamming(bits), 5, seed=7)
    assert np.array_equal(a.labels, b.labels) and np.array_equal(a.medoids, b.medoids)


def test_more_clusters_than_distinct_points_still_works():
    d = np.zeros((4, 4))
    result = kmedoids(d, 3)
    assert len(np.unique(result.medoids)) == 3 and result.cost == 0


def test_euclidean_is_symmetric_with_zero_diagonal():
    x = np.random.default_rng(0).standard_normal((10, 3))
    d = euclidean(x)
    assert np.array_equal(d, d.T) and np.all(np.diag(d) == 0)
    assert np.isclose(d[0, 1], np.linalg.norm(x[0] - x[1]))


@pytest.mark.parametrize(
    "d, k, match",
    [
        (np.zeros((3, 4)), 2, "square"),
        (np.array([[0, 1], [2, 0]]), 1, "symmetric"),
        (-np.ones((2, 2)), 1, ">= 0"),
        (np.zeros((3, 3)), 4, "between 1"),
        (np.zeros((3, 3)), 0, "between 1"),
    ],
)
def test_bad_input_is_refused_with_a_message(d, k, match):
    with pytest.raises(ValueError, match=match):
        kmedoids(d, k)


def test_purity_counts_majority_class_per_cluster():
    assert purity([0, 0, 1, 1], [5, 5, 5, 7]) == 0.75
