"""The MoLRG data model: sampling, bases, validation and K-subspaces clustering."""

import numpy as np
import pytest

from diffrep.theory.metrics import principal_angle_cosines
from diffrep.theory.model import (
    k_subspaces,
    make_molrg,
    molrg_posterior_mean,
    molrg_posterior_weights,
    molrg_representation,
    stack_bases,
)


def test_shapes_dtypes_and_labels():
    X, y, bases = make_molrg(300, 50, 3, 5, 0.2, random_state=0, return_bases=True)
    assert X.shape == (300, 50) and X.dtype == np.float64
    assert y.shape == (300,) and np.issubdtype(y.dtype, np.integer)
    assert set(np.unique(y)) == {0, 1, 2}
    assert bases.shape == (3, 50, 5)


def test_without_bases_returns_two_arrays():
    result = make_molrg(10, 8, 2, 2, 0.1, random_state=0)
    assert len(result) == 2


def test_bases_are_orthonormal_and_mutually_orthogonal():
    _, _, bases = make_molrg(10, 40, 4, 6, 0.3, random_state=1, return_bases=True)
    basis = np.concatenate(list(bases), axis=1)
    np.testing.assert_allclose(basis.T @ basis, np.eye(24), atol=1e-12)


def test_unequal_ranks_give_a_list_of_bases():
    X, _, bases = make_molrg(50, 20, 3, [2, 3, 4], 0.2, random_state=0, return_bases=True)
    assert isinstance(bases, list)
    assert [b.shape for b in bases] == [(20, 2), (20, 3), (20, 4)]
    basis, ranks = stack_bases(bases)
    assert ranks == (2, 3, 4)
    np.testing.assert_allclose(basis.T @ basis, np.eye(9), atol=1e-12)


def test_zero_mean_samples_live_in_the_span_of_the_bases():
    X, _, bases = make_molrg(200, 30, 3, 4, 0.5, random_state=0, return_bases=True)
    basis, _ = stack_bases(bases)
    residual = X - (X @ basis) @ basis.T
    assert np.abs(residual).max() < 1e-12


def test_class_energy_is_one_per_own_dimension_and_delta_squared_elsewhere():
    delta, rank = 0.3, 4
    X, y, bases = make_molrg(30000, 30, 3, rank, delta, random_state=0, return_bases=True)
    energy = np.stack([np.sum((X @ b) ** 2, axis=1) for b in bases], axis=1)
    for k in range(3):
        expected = np.where(np.arange(3) == k, rank, delta**2 * rank)
        np.testing.assert_allclose(energy[y == k].mean(axis=0), expected, rtol=0.05)


def test_means_shift_each_class():
    means = np.arange(3 * 10, dtype=float).reshape(3, 10) / 10
    X, y = make_molrg(30000, 10, 3, 2, 0.2, means=means, random_state=0)
    for k in range(3):
        np.testing.assert_allclose(X[y == k].mean(axis=0), means[k], atol=0.05)


def test_same_random_state_reproduces_and_different_differs():
    first = make_molrg(50, 20, 2, 3, 0.2, random_state=7, return_bases=True)
    second = make_molrg(50, 20, 2, 3, 0.2, random_state=np.random.RandomState(7), return_bases=True)
    other = make_molrg(50, 20, 2, 3, 0.2, random_state=8, return_bases=True)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(first[0], other[0])


@pytest.mark.parametrize(
    "n_samples, weights, expected",
    [
        (1000, [0.5, 0.3, 0.2], [500, 300, 200]),
        (10, None, [4, 3, 3]),
        (7, [0.0, 0.5, 0.5], [0, 4, 3]),
    ],
)
def test_class_proportions_follow_weights(n_samples, weights, expected):
    _, y = make_molrg(n_samples, 12, 3, 2, 0.2, weights=weights, random_state=0)
    counts = np.bincount(y, minlength=3)
    assert counts.sum() == n_samples
    np.testing.assert_allclose(counts, expected, atol=1)


def test_labels_are_shuffled():
    _, y = make_molrg(300, 12, 3, 2, 0.2, random_state=0)
    assert not np.all(np.diff(y) >= 0)


@pytest.mark.parametrize(
    "kwargs, parameter",
    [
        (dict(n_samples=0), "n_samples"),
        (dict(n_samples=2.5), "n_samples"),
        (dict(n_features=14), "n_features"),
        (dict(n_classes=0), "n_classes"),
        (dict(rank=0), "rank"),
        (dict(rank=[2, 3]), "rank"),
        (dict(rank=[2, 2, 20]), "n_features"),
        (dict(delta=-0.1), "delta"),
        (dict(delta=np.inf), "delta"),
        (dict(weights=[0.5, 0.5]), "weights"),
        (dict(weights=[1.2, -0.1, -0.1]), "weights"),
        (dict(weights=[0.2, 0.2, 0.2]), "weights"),
        (dict(means=np.zeros((3, 5))), "means"),
        (dict(means=np.full((3, 16), np.nan)), "means"),
    ],
)
def test_invalid_parameters_are_named_in_the_error(kwargs, parameter):
    params = dict(n_samples=10, n_features=16, n_classes=3, rank=5, delta=0.2)
    params.update(kwargs)
    with pytest.raises(ValueError, match=parameter):
        make_molrg(**params)


@pytest.fixture
def model():
    X, y, bases = make_molrg(200, 20, 3, 3, 0.2, random_state=0, return_bases=True)
    return X, y, bases


@pytest.mark.parametrize(
    "function", [molrg_posterior_mean, molrg_posterior_weights, molrg_representation]
)
@pytest.mark.parametrize("sigma", [0.0, -1.0, np.nan, [0.1, 0.2]])
def test_closed_form_rejects_bad_sigma(model, function, sigma):
    X, _, bases = model
    with pytest.raises(ValueError, match="sigma"):
        function(X, sigma, bases, 0.2)


def test_closed_form_rejects_mismatched_features_and_bad_bases(model):
    X, _, bases = model
    with pytest.raises(ValueError, match="features"):
        molrg_posterior_mean(X[:, :10], 0.1, bases, 0.2)
    with pytest.raises(ValueError, match="orthonormal"):
        molrg_posterior_mean(X, 0.1, 2 * bases, 0.2)
    with pytest.raises(ValueError, match="n_features"):
        molrg_posterior_mean(X, 0.1, [bases[0], bases[1][:10]], 0.2)
    with pytest.raises(ValueError, match="weights"):
        molrg_posterior_mean(X, 0.1, bases, 0.2, weights=[1.0])
    with pytest.raises(ValueError, match="delta"):
        molrg_posterior_mean(X, 0.1, bases, -0.2)


@pytest.mark.parametrize("sigma", [1e-3, 1e-2, 1.0, 1e2, 1e3])
def test_posterior_weights_are_stable_at_extreme_noise(model, sigma):
    X, _, bases = model
    noisy = 50.0 * X + sigma * np.random.default_rng(0).standard_normal(X.shape)
    posterior = molrg_posterior_weights(noisy, sigma, bases, 0.2, weights=[0.7, 0.2, 0.1])
    assert np.all(np.isfinite(posterior))
    np.testing.assert_allclose(posterior.sum(axis=1), 1.0)


def test_zero_class_weight_gets_zero_posterior(model):
    X, _, bases = model
    posterior = molrg_posterior_weights(X, 0.5, bases, 0.2, weights=[0.5, 0.5, 0.0])
    assert np.all(posterior[:, 2] == 0)


def test_k_subspaces_recovers_the_true_subspaces():
    X, _, bases = make_molrg(3000, 50, 3, 5, 0.2, random_state=0, return_bases=True)
    found = k_subspaces(X, 3, 5, n_restarts=5, random_state=0)
    assert found.shape == (3, 50, 5)
    assert principal_angle_cosines(found, bases).min() > 0.999


def test_k_subspaces_validates_ranks():
    X, _ = make_molrg(30, 10, 2, 2, 0.2, random_state=0)
    with pytest.raises(ValueError, match="ranks"):
        k_subspaces(X, 2, 6)
    with pytest.raises(ValueError, match="n_restarts"):
        k_subspaces(X, 2, 2, n_restarts=0)
