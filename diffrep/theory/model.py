"""The noisy mixture of low-rank Gaussians (MoLRG) and its optimal denoiser.

**Data model.** Class ``k`` (probability ``pi_k``) lives near a subspace with
orthonormal basis ``U_k`` of shape ``(n_features, d_k)``; the subspaces are
mutually orthogonal and ``S`` is the span of all of them. A clean sample of class ``k``
is::

    x0 = mu_k + U_k a + delta * sum_{l != k} U_l e_l,    a, e_l ~ N(0, I)

so ``x0 | k ~ N(mu_k, P_k + delta^2 (P_S - P_k))`` with ``P_k = U_k U_k^T``.
The paper's model has ``mu_k = 0`` and equal ranks ``d_k = d``; unequal ranks
and class means are the relaxations it discusses.

**Noise convention.** Everything here uses the *variance-exploding* form
``x_t = x0 + sigma * eps`` with a scalar ``sigma > 0``. A DDPM (variance-preserving) input
``sqrt(abar_t) x0 + sqrt(1 - abar_t) eps`` maps to it by dividing by
``sqrt(abar_t)``, which gives ``sigma_t = sqrt((1 - abar_t) / abar_t)``; see
:mod:`diffrep.schedules` and :mod:`diffrep.theory.denoisers`.

**Optimal denoiser.** With ``zeta = 1 / (1 + sigma^2)`` and
``xi = delta^2 / (delta^2 + sigma^2)``, the class-conditional posterior mean is
``E[x0 | x, k] = mu_k + (zeta P_k + xi (P_S - P_k)) (x - mu_k)`` and the
posterior class probabilities ``w_k(x)`` are a softmax of the exact Gaussian
class log-likelihoods (plus ``log pi_k``). For zero means the posterior mean is
``U h`` with the representation ``h = D(x) U^T x``,
``D = diag(beta_1 I_{d_1}, ..., beta_K I_{d_K})`` and
``beta_k = xi + (zeta - xi) w_k``.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import TYPE_CHECKING

import numpy as np
from scipy.special import softmax
from sklearn.utils import check_array, check_random_state

from .._engine.sklearn_compat import Interval, validate_params

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import ArrayLike
    from .._engine.type_aliases import RandomStateLike

_ORTHONORMAL_ATOL = 1e-5

__all__ = [
    "k_subspaces",
    "make_molrg",
    "molrg_posterior_mean",
    "molrg_posterior_weights",
    "molrg_representation",
    "stack_bases",
]


# --------------------------------------------------------------------------- #
# Validation helpers
# --------------------------------------------------------------------------- #
def _check_positive_int(value, name, minimum=1):
    """Return ``value`` as an int, or raise if it is not an integer >= ``minimum``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def _check_real(value, name, minimum, strict=False):
    """Return ``value`` as a float, or raise unless it is finite and >= (or >) ``minimum``."""
    invalid = (
        isinstance(value, (bool, np.bool_))
        or not isinstance(value, Real)
        or not np.isfinite(value)
        or value < minimum
        or (strict and value == minimum)
    )
    if invalid:
        bound = ">" if strict else ">="
        raise ValueError(f"{name} must be a finite number {bound} {minimum}, got {value!r}.")
    return float(value)


def _check_ranks(rank, n_classes):
    """Per-class ranks as a tuple of ints from an int or a sequence of ints."""
    if np.ndim(rank) == 0:
        return (_check_positive_int(rank, "rank"),) * n_classes
    ranks = tuple(rank)
    if len(ranks) != n_classes:
        raise ValueError(
            f"rank must be an int or a sequence of n_classes={n_classes} ints, "
            f"got a sequence of length {len(ranks)}."
        )
    return tuple(_check_positive_int(r, "each entry of rank") for r in ranks)


def _check_weights(weights, n_classes):
    """Class probabilities as a float64 array; uniform when ``weights`` is None."""
    if weights is None:
        return np.full(n_classes, 1.0 / n_classes)
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (n_classes,):
        raise ValueError(
            f"weights must have length n_classes={n_classes}, got shape {weights.shape}."
        )
    if not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise ValueError(f"weights must be finite and nonnegative, got {weights.tolist()}.")
    if not np.isclose(weights.sum(), 1.0, rtol=0, atol=1e-8):
        raise ValueError(f"weights must sum to 1, got sum {weights.sum()!r}.")
    return weights


def _check_means(means, n_classes, n_features):
    """Class means as a float64 array of shape (n_classes, n_features); zeros when None."""
    if means is None:
        return np.zeros((n_classes, n_features))
    means = np.asarray(means, dtype=np.float64)
    if means.shape != (n_classes, n_features):
        raise ValueError(
            f"means must have shape (n_classes, n_features)=({n_classes}, {n_features}), "
            f"got {means.shape}."
        )
    if not np.all(np.isfinite(means)):
        raise ValueError("means must be finite.")
    return means


def stack_bases(bases: np.ndarray | Sequence[ArrayLike]):
    """Concatenate per-class subspace bases into one orthonormal matrix.

    Parameters
    ----------
    bases : array-like of shape (n_classes, n_features, rank) or sequence of arrays
        One orthonormal basis per class; a sequence allows per-class ranks, each
        entry of shape ``(n_features, rank_k)``. The columns of all bases
        together must be orthonormal (mutually orthogonal subspaces).

    Returns
    -------
    basis : ndarray of shape (n_features, sum(ranks))
        ``[U_1, ..., U_K]``, float64.
    ranks : tuple of int
        The rank of each class subspace, in order.

    Raises
    ------
    ValueError
        If the bases are not 2-D blocks with the same number of rows, or their
        columns are not orthonormal.
    """
    blocks = [np.asarray(b, dtype=np.float64) for b in bases]
    if not blocks or any(b.ndim != 2 or b.shape[1] == 0 for b in blocks):
        raise ValueError(
            "bases must be a non-empty sequence of 2-D arrays of shape (n_features, rank_k)."
        )
    if len({b.shape[0] for b in blocks}) != 1:
        raise ValueError(
            f"all bases must have the same number of rows (n_features), got "
            f"{[b.shape[0] for b in blocks]}."
        )
    basis = np.concatenate(blocks, axis=1)
    if not np.all(np.isfinite(basis)):
        raise ValueError("bases must be finite.")
    gram = basis.T @ basis
    if not np.allclose(gram, np.eye(gram.shape[0]), rtol=0, atol=_ORTHONORMAL_ATOL):
        raise ValueError(
            "the columns of bases must be orthonormal (orthonormal, mutually orthogonal "
            f"subspaces); max |U^T U - I| = {np.abs(gram - np.eye(gram.shape[0])).max():.3g}."
        )
    return basis, tuple(b.shape[1] for b in blocks)


def _split_bases(basis, ranks):
    """Split a concatenated basis into per-class blocks (array if ranks are equal)."""
    blocks = np.split(basis, np.cumsum(ranks)[:-1], axis=1)
    return np.stack(blocks) if len(set(ranks)) == 1 else blocks


def _block_starts(ranks):
    """Column index where each class block starts in the concatenated basis."""
    return np.concatenate(([0], np.cumsum(ranks)[:-1])).astype(np.intp)


def _block_index(ranks):
    """Class index of every column of the concatenated basis."""
    return np.repeat(np.arange(len(ranks)), ranks)


# --------------------------------------------------------------------------- #
# Sampling
# --------------------------------------------------------------------------- #
def _class_counts(n_samples, weights):
    """Per-class sample counts closest to ``n_samples * weights`` (largest remainder)."""
    expected = n_samples * weights
    counts = np.floor(expected).astype(np.int64)
    remainder = n_samples - counts.sum()
    counts[np.argsort(counts - expected, kind="stable")[:remainder]] += 1
    return counts


def _random_orthonormal(n_features, n_columns, rng):
    """Orthonormal columns from the QR factorization of a Gaussian matrix."""
    q, r = np.linalg.qr(rng.standard_normal((n_features, n_columns)))
    return q * np.sign(np.diag(r))


@validate_params(
    {
        "n_samples": [Interval(Integral, 1, None, closed="left")],
        "n_features": [Interval(Integral, 1, None, closed="left")],
        "n_classes": [Interval(Integral, 1, None, closed="left")],
        "rank": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "delta": [Interval(Real, 0, None, closed="left")],
        "weights": ["array-like", None],
        "means": ["array-like", None],
        "random_state": ["random_state"],
        "return_bases": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def make_molrg(
    n_samples: int,
    n_features: int,
    n_classes: int,
    rank: int,
    delta: float,
    weights: ArrayLike | None = None,
    means: ArrayLike | None = None,
    random_state: RandomStateLike = None,
    return_bases: bool = False,
):
    """Generate a noisy mixture of low-rank Gaussians (MoLRG).

    Class ``k`` draws ``x0 = mu_k + U_k a + delta * sum_{l != k} U_l e_l`` with
    ``a, e_l ~ N(0, I)``. The bases ``U_k`` are disjoint column blocks of one
    random orthogonal matrix (QR of a Gaussian matrix), so the class subspaces
    are mutually orthogonal.

    Parameters
    ----------
    n_samples : int
        Number of samples, >= 1. They are split across classes as closely as
        possible to ``weights`` (exact counts, then shuffled).
    n_features : int
        Ambient dimension ``n``.
    n_classes : int
        Number of classes ``K``.
    rank : int or sequence of int
        Subspace dimension ``d`` of every class, or one rank per class.
        ``sum of ranks <= n_features`` is required.
    delta : float
        Data noise, >= 0: the scale of the class-irrelevant detail living in the
        other classes' subspaces.
    weights : array-like of shape (n_classes,), default=None
        Class probabilities (nonnegative, summing to 1); uniform when None.
    means : array-like of shape (n_classes, n_features), default=None
        Per-class mean added to the samples; zero (the paper's model) when None.
    random_state : int, RandomState instance or None, default=None
        Seeds the bases, labels and samples.
    return_bases : bool, default=False
        Also return the true class bases.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        Clean samples, float64.
    y : ndarray of shape (n_samples,)
        Integer class labels in ``range(n_classes)``.
    bases : ndarray of shape (n_classes, n_features, rank) or list of ndarray
        Only when ``return_bases=True``. Orthonormal class bases; a list of
        ``(n_features, rank_k)`` arrays when the ranks differ.

    See Also
    --------
    molrg_posterior_mean : The optimal denoiser of this data model.
    sklearn.datasets.make_blobs : Isotropic Gaussian blobs.

    Examples
    --------
    >>> from diffrep.theory.model import make_molrg
    >>> X, y, bases = make_molrg(100, 50, 3, 5, 0.2, random_state=0, return_bases=True)
    >>> X.shape, y.shape, bases.shape
    ((100, 50), (100,), (3, 50, 5))
    """
    ranks = _check_ranks(rank, n_classes)
    if sum(ranks) > n_features:
        raise ValueError(
            f"the ranks must fit in n_features: sum of ranks ({sum(ranks)}) = n_classes * rank "
            f"must be <= n_features ({n_features})."
        )
    weights = _check_weights(weights, n_classes)
    means = _check_means(means, n_classes, n_features)
    rng = check_random_state(random_state)

    basis = _random_orthonormal(n_features, sum(ranks), rng)
    y = rng.permutation(np.repeat(np.arange(n_classes), _class_counts(n_samples, weights)))
    scales = np.where(_block_index(ranks)[None, :] == y[:, None], 1.0, delta)
    X = (rng.standard_normal((n_samples, sum(ranks))) * scales) @ basis.T + means[y]
    if return_bases:
        return X, y, _split_bases(basis, ranks)
    return X, y


# --------------------------------------------------------------------------- #
# Optimal denoiser (numpy closed form)
# --------------------------------------------------------------------------- #
def _noise_coefficients(sigma, delta, xp=np):
    """Scalars of the closed form at noise level ``sigma`` (numpy values, or torch tensors with ``xp=torch``).

    Returns ``zeta``, ``xi``, the energy coefficient
    ``1/(delta^2+sigma^2) - 1/(1+sigma^2)`` (``2 (phi - psi)`` in the paper)
    and ``log((1+sigma^2)/(delta^2+sigma^2))`` (the per-dimension log-determinant
    difference between a class's own subspace and the others).
    """
    s2, d2 = sigma**2, delta**2
    zeta = 1.0 / (1.0 + s2)
    xi = d2 / (d2 + s2)
    energy_coef = (1.0 - d2) / ((1.0 + s2) * (d2 + s2))
    log_ratio = xp.log1p(s2) - xp.log(d2 + s2)
    return zeta, xi, energy_coef, log_ratio


def _prepare(x_t, sigma, bases, delta, weights, means):
    """Validate the inputs shared by the closed-form functions."""
    basis, ranks = stack_bases(bases)
    x_t = check_array(x_t, dtype=np.float64)
    if x_t.shape[1] != basis.shape[0]:
        raise ValueError(
            f"x_t has {x_t.shape[1]} features but bases have n_features={basis.shape[0]}."
        )
    n_classes = len(ranks)
    return (
        x_t,
        _check_real(sigma, "sigma", 0, strict=True),
        basis,
        ranks,
        _check_real(delta, "delta", 0),
        _check_weights(weights, n_classes),
        _check_means(means, n_classes, basis.shape[0]),
    )


def _class_scores(x_t, coords, sigma, basis, ranks, delta, weights, means):
    """Log posterior class scores, each up to a constant shared by all classes.

    ``g_k = log pi_k - 0.5 log det C_k - 0.5 (x - mu_k)^T C_k^{-1} (x - mu_k)``
    with ``C_k = P_k + delta^2 (P_S - P_k) + sigma^2 I``, after removing the terms
    ``||U^T x||^2 / (delta^2 + sigma^2)`` and ``||(I - P_S) x||^2 / sigma^2`` that do
    not depend on ``k`` (this keeps small ``sigma`` free of cancellation).
    """
    s2, d2 = sigma**2, delta**2
    _, _, energy_coef, log_ratio = _noise_coefficients(sigma, delta)
    starts = _block_starts(ranks)
    own = _block_index(ranks)[None, :] == np.arange(len(ranks))[:, None]

    mean_coords = means @ basis
    mean_perp = means - mean_coords @ basis.T
    own_mean_coords = np.where(own, mean_coords, 0.0)
    own_residual_energy = (
        np.add.reduceat(coords**2, starts, axis=1)
        - 2.0 * coords @ own_mean_coords.T
        + np.sum(own_mean_coords**2, axis=1)
    )
    in_span = (np.sum(mean_coords**2, axis=1) - 2.0 * coords @ mean_coords.T) / (d2 + s2)
    off_span = (np.sum(mean_perp**2, axis=1) - 2.0 * x_t @ mean_perp.T) / s2
    quadratic = in_span - energy_coef * own_residual_energy + off_span
    return np.log(weights) - 0.5 * log_ratio * np.asarray(ranks) - 0.5 * quadratic


def _posterior_weights(x_t, coords, sigma, basis, ranks, delta, weights, means):
    """Softmax of the class scores, shape (n_samples, n_classes)."""
    with np.errstate(divide="ignore"):
        scores = _class_scores(x_t, coords, sigma, basis, ranks, delta, weights, means)
    return softmax(scores, axis=1)


def _shrinkage(posterior, sigma, delta, ranks):
    """Per-coordinate shrinkage ``beta_k = xi + (zeta - xi) w_k``, shape (n, sum(ranks))."""
    zeta, xi, _, _ = _noise_coefficients(sigma, delta)
    return xi + (zeta - xi) * posterior[:, _block_index(ranks)]


def molrg_posterior_weights(
    x_t: ArrayLike,
    sigma: float | ArrayLike,
    bases: ArrayLike,
    delta: float,
    weights: ArrayLike | None = None,
    means: ArrayLike | None = None,
):
    """Posterior class probabilities ``P(k | x_t)`` under the MoLRG model.

    Exact for any ranks, class weights and class means: a numerically stable
    softmax of the Gaussian class log-likelihoods plus ``log pi_k``. For equal
    ranks and zero means the scores are the paper's
    ``g_k = phi ||U_k^T x||^2 + psi sum_{l != k} ||U_l^T x||^2`` up to a shared constant.

    Parameters
    ----------
    x_t : array-like of shape (n_samples, n_features)
        Noisy samples in the variance-exploding convention ``x_t = x0 + sigma * eps``.
    sigma : float
        Noise level, > 0.
    bases : array-like of shape (n_classes, n_features, rank) or sequence of arrays
        Orthonormal, mutually orthogonal class bases (see :func:`stack_bases`).
    delta : float
        Data noise of the model, >= 0.
    weights : array-like of shape (n_classes,), default=None
        Class probabilities; uniform when None.
    means : array-like of shape (n_classes, n_features), default=None
        Class means; zero when None.

    Returns
    -------
    posterior : ndarray of shape (n_samples, n_classes)
        Rows sum to 1.
    """
    x_t, sigma, basis, ranks, delta, weights, means = _prepare(
        x_t, sigma, bases, delta, weights, means
    )
    return _posterior_weights(x_t, x_t @ basis, sigma, basis, ranks, delta, weights, means)


def molrg_representation(
    x_t: ArrayLike,
    sigma: float | ArrayLike,
    bases: ArrayLike,
    delta: float,
    weights: ArrayLike | None = None,
):
    """The optimal denoiser's representation ``h = D(x_t) U^T x_t``.

    Zero-mean model only (the paper's). The posterior mean is ``U h`` with
    ``U = [U_1, ..., U_K]``; coordinates are ordered class block by class block.

    Parameters
    ----------
    x_t : array-like of shape (n_samples, n_features)
        Noisy samples in the variance-exploding convention ``x_t = x0 + sigma * eps``.
    sigma : float
        Noise level, > 0.
    bases : array-like of shape (n_classes, n_features, rank) or sequence of arrays
        Orthonormal, mutually orthogonal class bases (see :func:`stack_bases`).
    delta : float
        Data noise of the model, >= 0.
    weights : array-like of shape (n_classes,), default=None
        Class probabilities; uniform when None.

    Returns
    -------
    h : ndarray of shape (n_samples, sum(ranks))
        The shrunk subspace coordinates, class block by class block.
    """
    x_t, sigma, basis, ranks, delta, weights, means = _prepare(
        x_t, sigma, bases, delta, weights, None
    )
    coords = x_t @ basis
    posterior = _posterior_weights(x_t, coords, sigma, basis, ranks, delta, weights, means)
    return _shrinkage(posterior, sigma, delta, ranks) * coords


def molrg_posterior_mean(
    x_t: ArrayLike,
    sigma: float | ArrayLike,
    bases: ArrayLike,
    delta: float,
    weights: ArrayLike | None = None,
    means: ArrayLike | None = None,
):
    """The optimal denoiser ``E[x0 | x_t]`` of the MoLRG model (closed form).

    ``sum_k w_k(x) (mu_k + (zeta P_k + xi (P_S - P_k)) (x - mu_k))`` with
    ``zeta = 1/(1+sigma^2)``, ``xi = delta^2/(delta^2+sigma^2)`` and ``w_k`` from
    :func:`molrg_posterior_weights`. For zero means it equals
    ``U @ molrg_representation(...)``.

    Parameters
    ----------
    x_t : array-like of shape (n_samples, n_features)
        Noisy samples in the variance-exploding convention ``x_t = x0 + sigma * eps``.
    sigma : float
        Noise level, > 0.
    bases : array-like of shape (n_classes, n_features, rank) or sequence of arrays
        Orthonormal, mutually orthogonal class bases (see :func:`stack_bases`).
    delta : float
        Data noise of the model, >= 0.
    weights : array-like of shape (n_classes,), default=None
        Class probabilities; uniform when None.
    means : array-like of shape (n_classes, n_features), default=None
        Class means; zero when None.

    Returns
    -------
    x0_hat : ndarray of shape (n_samples, n_features)
        The posterior mean of the clean samples.

    Examples
    --------
    >>> from diffrep.theory.model import make_molrg, molrg_posterior_mean
    >>> X, y, bases = make_molrg(10, 50, 3, 5, 0.2, random_state=0, return_bases=True)
    >>> molrg_posterior_mean(X + 0.1, 0.1, bases, 0.2).shape
    (10, 50)
    """
    x_t, sigma, basis, ranks, delta, weights, means = _prepare(
        x_t, sigma, bases, delta, weights, means
    )
    coords = x_t @ basis
    posterior = _posterior_weights(x_t, coords, sigma, basis, ranks, delta, weights, means)
    shrink = _shrinkage(posterior, sigma, delta, ranks)
    mean_coords = means @ basis
    zeta, xi, _, _ = _noise_coefficients(sigma, delta)
    own = _block_index(ranks)[None, :] == np.arange(len(ranks))[:, None]
    shrunk_mean_coords = np.where(own, zeta, xi) * mean_coords
    return posterior @ means + (shrink * coords - posterior @ shrunk_mean_coords) @ basis.T



# --------------------------------------------------------------------------- #
# K-subspaces clustering
# --------------------------------------------------------------------------- #
def _nearest_orthonormal(matrix):
    """The orthonormal matrix closest to ``matrix`` in Frobenius norm (polar factor)."""
    left, _, right = np.linalg.svd(matrix, full_matrices=False)
    return left @ right


def _top_right_singular_vectors(matrix, n_vectors):
    """Leading right singular vectors of ``matrix`` as columns, shape (n_columns, <= n_vectors).

    Uses the eigendecomposition of the small Gram matrix when there are at
    least as many rows as columns (much faster than an SVD of a tall matrix).
    """
    if matrix.shape[0] >= matrix.shape[1]:
        vectors = np.linalg.eigh(matrix.T @ matrix)[1]
        return vectors[:, ::-1][:, :n_vectors]
    return np.linalg.svd(matrix, full_matrices=False)[2][:n_vectors].T


def _k_subspaces_run(X, ranks, max_iter, rng):
    """One K-subspaces run from a random orthonormal start; returns the basis."""
    basis = _random_orthonormal(X.shape[1], sum(ranks), rng)
    starts = _block_starts(ranks)
    labels = None
    for _ in range(max_iter):
        new_labels = np.add.reduceat((X @ basis) ** 2, starts, axis=1).argmax(axis=1)
        if labels is not None and np.array_equal(new_labels, labels):
            break
        labels = new_labels
        blocks = np.split(basis, starts[1:], axis=1)
        for k, rank in enumerate(ranks):
            members = X[labels == k]
            if len(members) >= rank:
                blocks[k] = _top_right_singular_vectors(members, rank)
        basis = np.concatenate(blocks, axis=1)
    return _nearest_orthonormal(basis)


def _captured_energy(X, basis, ranks):
    """Total energy of each sample in its best-fitting block."""
    return np.add.reduceat((X @ basis) ** 2, _block_starts(ranks), axis=1).max(axis=1).sum()


@validate_params(
    {
        "X": ["array-like"],
        "n_clusters": [Interval(Integral, 1, None, closed="left")],
        "rank": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "n_restarts": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def k_subspaces(
    X: ArrayLike,
    n_clusters: int,
    rank: int,
    n_restarts: int = 5,
    max_iter: int = 100,
    random_state: RandomStateLike = None,
):
    """Unsupervised K-subspaces clustering into mutually orthogonal subspaces.

    Each run starts from random orthonormal blocks, then alternates: assign every
    sample to the block holding most of its energy ``||U_k^T x||^2``; refit each
    block by the top right singular vectors of its samples. The final blocks are
    made mutually orthogonal (nearest orthonormal matrix) and the run capturing
    the most energy is kept.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Samples, e.g. clean MoLRG data.
    n_clusters : int
        Number of subspaces ``K``.
    rank : int or sequence of int
        Dimension of every subspace, or one per subspace.
    n_restarts : int, default=5
        Number of random starts.
    max_iter : int, default=100
        Maximum assign/refit rounds per start.
    random_state : int, RandomState instance or None, default=None
        Seeds the random starts.

    Returns
    -------
    bases : ndarray of shape (n_clusters, n_features, rank) or list of ndarray
        Orthonormal, mutually orthogonal bases (a list when ranks differ), in an
        arbitrary cluster order.
    """
    X = check_array(X, dtype=np.float64)
    ranks = _check_ranks(rank, n_clusters)
    if sum(ranks) > X.shape[1]:
        raise ValueError(
            f"the sum of ranks ({sum(ranks)}) must be <= n_features ({X.shape[1]})."
        )
    rng = check_random_state(random_state)
    runs = [_k_subspaces_run(X, ranks, max_iter, rng) for _ in range(n_restarts)]
    best = max(runs, key=lambda basis: _captured_energy(X, basis, ranks))
    return _split_bases(best, ranks)
