"""Measures of representation quality from the paper's theory.

* :func:`representation_snr` -- the class-subspace signal-to-noise ratio of
  features (paper Definition 1), with true bases or estimated from the features.
* :func:`theoretical_snr` -- the paper's Theorem-1 approximation of that SNR for
  the MoLRG model's optimal denoiser.
* :class:`SubspaceClassifier` -- the energy probe ``argmax_k ||V_k^T h||^2``; a
  linear probe is near chance on zero-mean, sign-symmetric classes.
* :func:`principal_angle_cosines` -- how well learned subspaces match true ones.
* :func:`posterior_mean_error` -- the denoising error ``E ||x_hat - x0||^2``.

Noise levels ``sigma`` are in the variance-exploding convention
``x_t = x0 + sigma * eps`` (see :mod:`diffrep.schedules`).
"""

from __future__ import annotations

from numbers import Integral
from typing import TYPE_CHECKING

import numpy as np
from scipy.linalg import subspace_angles
from scipy.optimize import linear_sum_assignment
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import normalize
from sklearn.utils import check_array
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .._engine.sklearn_compat import Interval
from .._engine.sklearn_compat import fit_context as _fit_context
from .model import _check_positive_int, _check_real, _top_right_singular_vectors

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = [
    "SubspaceClassifier",
    "posterior_mean_error",
    "principal_angle_cosines",
    "representation_snr",
    "theoretical_snr",
]


def _orthonormal_blocks(bases, name):
    """Orthonormal bases (QR) of each block of ``bases`` as a list of 2-D arrays."""
    blocks = [np.asarray(b, dtype=np.float64) for b in bases]
    if not blocks or any(b.ndim != 2 or b.shape[1] == 0 for b in blocks):
        raise ValueError(
            f"{name} must be a non-empty sequence of 2-D arrays of shape (n_features, rank_k)."
        )
    if len({b.shape[0] for b in blocks}) != 1:
        raise ValueError(f"all {name} must have the same number of rows (n_features).")
    if not all(np.all(np.isfinite(b)) for b in blocks):
        raise ValueError(f"{name} must be finite.")
    return [np.linalg.qr(b)[0] for b in blocks]


# --------------------------------------------------------------------------- #
# SNR
# --------------------------------------------------------------------------- #
def _subspace_snr(features, labels, blocks):
    """Mean over classes of ``E||P_k f||^2 / E||f - P_k f||^2`` on class ``k``'s features."""
    ratios = []
    for k, basis in enumerate(blocks):
        members = features[labels == k]
        projected = members @ basis
        signal = np.mean(np.sum(projected**2, axis=1))
        noise = np.mean(np.sum((members - projected @ basis.T) ** 2, axis=1))
        with np.errstate(divide="ignore"):
            ratios.append(np.float64(signal) / noise)
    return float(np.mean(ratios))


def representation_snr(features: ArrayLike, y: ArrayLike, bases: ArrayLike | None = None, n_components: int = 5):
    """Class-subspace signal-to-noise ratio of features (paper Definition 1).

    ``SNR = mean_k E[||P_k f||^2 | k] / E[||f - P_k f||^2 | k]`` where ``P_k``
    projects onto class ``k``'s subspace. Higher means the features concentrate
    in their own class's subspace.

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
        Features ``f`` (e.g. posterior-mean estimates, or the representation ``h``).
    y : array-like of shape (n_samples,)
        Class labels; every class must occur.
    bases : array-like of shape (n_classes, n_features, rank) or sequence, default=None
        True class bases in the same space as ``features``, the ``i``-th for the
        ``i``-th class of ``np.unique(y)``. Each block is orthonormalized, so any
        spanning set works. When None, the real-feature recipe is used:
        L2-normalize each row, subtract the global mean, and take as ``U_k`` the
        top ``n_components`` right singular vectors of class ``k``'s rows.
    n_components : int, default=5
        Subspace dimension estimated per class when ``bases`` is None; ignored
        otherwise.

    Returns
    -------
    snr : float
        The SNR averaged over classes.

    Examples
    --------
    >>> from diffrep.theory.model import make_molrg
    >>> from diffrep.theory.metrics import representation_snr
    >>> X, y, bases = make_molrg(600, 50, 3, 5, 0.2, random_state=0, return_bases=True)
    >>> snr = representation_snr(X, y, bases)  # clean data: 1 / ((K-1) delta^2) = 12.5
    >>> 11 < snr < 14
    True
    """
    features = check_array(features, dtype=np.float64)
    y = np.asarray(y)
    if y.shape != (features.shape[0],):
        raise ValueError(
            f"y must have shape (n_samples,)=({features.shape[0]},), got {y.shape}."
        )
    classes, labels = np.unique(y, return_inverse=True)
    if bases is None:
        n_components = _check_positive_int(n_components, "n_components")
        features = normalize(features)
        features = features - features.mean(axis=0)
        blocks = [
            _top_right_singular_vectors(features[labels == k], n_components)
            for k in range(len(classes))
        ]
    else:
        blocks = _orthonormal_blocks(bases, "bases")
        if len(blocks) != len(classes):
            raise ValueError(
                f"bases has {len(blocks)} class subspaces but y has {len(classes)} classes."
            )
        if blocks[0].shape[0] != features.shape[1]:
            raise ValueError(
                f"bases live in dimension {blocks[0].shape[0]} but features have "
                f"{features.shape[1]} columns; give bases in the features' space."
            )
    return _subspace_snr(features, labels, blocks)


def theoretical_snr(sigma: float | ArrayLike, rank: int, n_classes: int, delta: float):
    """The paper's Theorem-1 approximation of the optimal denoiser's SNR.

    With ``Delta = d (1 - delta^2)^2 / (2 (1 + sigma^2)(delta^2 + sigma^2))``,
    ``w+ = 1 / (1 + (K-1) e^-Delta)``, ``w- = e^-Delta / (1 + (K-1) e^-Delta)``,
    ``h(w) = (1 - delta^2) w + delta^2`` and ``C = (1 + sigma^2) / (delta^2 + sigma^2)``::

        SNR ~= C / (K-1) * [(1 + (sigma^2/delta^2) h(w+)) / (1 + (sigma^2/delta^2) h(w-))]^2

    It matches the exact SNR at small and large ``sigma`` but overshoots in
    between; report it next to the exact value rather than in its place.

    Parameters
    ----------
    sigma : float or array-like
        Noise levels, > 0, variance-exploding convention.
    rank : int
        Subspace dimension ``d`` of each class.
    n_classes : int
        Number of classes ``K``, >= 2.
    delta : float
        Data noise, > 0.

    Returns
    -------
    snr : ndarray
        Same shape as ``sigma``.

    Examples
    --------
    >>> from diffrep.theory.metrics import theoretical_snr
    >>> theoretical_snr([0.01, 4.0], rank=5, n_classes=3, delta=0.2).round(2)
    array([12.53,  0.54])
    """
    sigma = np.asarray(sigma, dtype=np.float64)
    if not np.all(np.isfinite(sigma)) or np.any(sigma <= 0):
        raise ValueError("sigma must be finite and > 0.")
    rank = _check_positive_int(rank, "rank")
    n_classes = _check_positive_int(n_classes, "n_classes", minimum=2)
    s2, d2 = sigma**2, _check_real(delta, "delta", 0, strict=True) ** 2
    gap = rank * (1.0 - d2) ** 2 / (2.0 * (1.0 + s2) * (d2 + s2))
    decay = np.exp(-gap)
    w_plus = 1.0 / (1.0 + (n_classes - 1) * decay)
    w_minus = decay * w_plus
    rate = s2 / d2
    ratio = (1.0 + rate * ((1.0 - d2) * w_plus + d2)) / (1.0 + rate * ((1.0 - d2) * w_minus + d2))
    return (1.0 + s2) / (d2 + s2) / (n_classes - 1) * ratio**2


# --------------------------------------------------------------------------- #
# Subspaces
# --------------------------------------------------------------------------- #
def principal_angle_cosines(bases_a: ArrayLike, bases_b: ArrayLike):
    """Compute the cosines of the principal angles between matched pairs of subspaces.

    Subspaces of ``bases_a`` are matched one-to-one to those of ``bases_b`` so
    that the total ``sum cos^2`` is largest (Hungarian algorithm), which makes the
    result independent of how a learned model ordered its class blocks.

    Parameters
    ----------
    bases_a : array-like of shape (n_subspaces, n_features, rank) or sequence of arrays
        E.g. learned bases. Each block is orthonormalized first.
    bases_b : array-like of shape (n_subspaces, n_features, rank) or sequence of arrays
        E.g. the true bases; as many subspaces as ``bases_a``.

    Returns
    -------
    cosines : ndarray of shape (n_subspaces, max_rank)
        Row ``i``: the cosines, in decreasing order, between ``bases_a[i]`` and its
        match in ``bases_b``; 1 means aligned. Pairs with fewer angles than
        ``max_rank`` are padded with NaN.

    Examples
    --------
    >>> from diffrep.theory.model import make_molrg
    >>> from diffrep.theory.metrics import principal_angle_cosines
    >>> _, _, bases = make_molrg(10, 20, 3, 2, 0.1, random_state=0, return_bases=True)
    >>> principal_angle_cosines(bases[::-1], bases).round(6)
    array([[1., 1.],
           [1., 1.],
           [1., 1.]])
    """
    blocks_a = _orthonormal_blocks(bases_a, "bases_a")
    blocks_b = _orthonormal_blocks(bases_b, "bases_b")
    if len(blocks_a) != len(blocks_b) or blocks_a[0].shape[0] != blocks_b[0].shape[0]:
        raise ValueError(
            "bases_a and bases_b must hold the same number of subspaces of the same "
            f"dimension n_features, got {len(blocks_a)} x {blocks_a[0].shape[0]} and "
            f"{len(blocks_b)} x {blocks_b[0].shape[0]}."
        )
    overlap = np.array([[np.sum((a.T @ b) ** 2) for b in blocks_b] for a in blocks_a])
    _, match = linear_sum_assignment(overlap, maximize=True)
    pairs = [np.clip(np.cos(np.sort(subspace_angles(a, blocks_b[j]))), 0.0, 1.0) for a, j in zip(blocks_a, match)]
    cosines = np.full((len(pairs), max(len(c) for c in pairs)), np.nan)
    for row, values in zip(cosines, pairs):
        row[: len(values)] = values
    return cosines


def posterior_mean_error(x_hat: ArrayLike, x0: ArrayLike):
    """Mean squared error of a denoiser, ``E ||x_hat - x0||^2``.

    Parameters
    ----------
    x_hat : array-like of shape (n_samples, ...)
        Estimates of the clean samples (e.g. posterior means).
    x0 : array-like of shape (n_samples, ...)
        The clean samples; same shape as ``x_hat``.

    Returns
    -------
    error : float
        Squared Euclidean error per sample, averaged over samples.
    """
    x_hat = np.asarray(x_hat, dtype=np.float64)
    x0 = np.asarray(x0, dtype=np.float64)
    if x_hat.shape != x0.shape or x_hat.ndim < 1 or x_hat.shape[0] == 0:
        raise ValueError(
            f"x_hat and x0 must have the same non-empty shape, got {x_hat.shape} and {x0.shape}."
        )
    return float(np.mean(np.sum((x_hat - x0).reshape(len(x0), -1) ** 2, axis=1)))


# --------------------------------------------------------------------------- #
# Subspace (energy) classifier
# --------------------------------------------------------------------------- #
class SubspaceClassifier(ClassifierMixin, BaseEstimator):
    """Classify by the energy of a sample in each class's subspace.

    ``fit`` estimates, per class, the span ``V_k`` of the top ``n_components``
    right singular vectors of that class's (uncentered) training features;
    ``predict`` returns ``argmax_k ||V_k^T h||^2``. This is the right probe for
    zero-mean, sign-symmetric classes (the MoLRG model), where a linear probe is
    near chance.

    Parameters
    ----------
    n_components : int, default=5
        Dimension of each class subspace (capped by the number of features;
        a class with fewer samples gets the span of its samples).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels seen in ``fit``.
    components_ : ndarray
        Of shape ``(n_classes, n_components_, n_features_in_)``.
        Orthonormal rows spanning each class subspace (zero rows pad classes
        with fewer samples than ``n_components_``).
    n_components_ : int
        ``min(n_components, n_features_in_)``.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of str
        Names of features seen in ``fit``, when ``X`` has string column names.

    See Also
    --------
    representation_snr : How strongly features concentrate in class subspaces.

    Examples
    --------
    >>> from diffrep.theory.model import make_molrg
    >>> from diffrep.theory.metrics import SubspaceClassifier
    >>> X, y = make_molrg(600, 50, 3, 5, 0.2, random_state=0)
    >>> SubspaceClassifier().fit(X[:400], y[:400]).score(X[400:], y[400:])
    1.0
    """

    _parameter_constraints: dict = {"n_components": [Interval(Integral, 1, None, closed="left")]}

    def __init__(self, n_components: int = 5):
        self.n_components = n_components

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Estimate one subspace per class.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training features.
        y : array-like of shape (n_samples,)
            Class labels.

        Returns
        -------
        self : SubspaceClassifier
            The fitted classifier.
        """
        X, y = validate_data(self, X, y)
        check_classification_targets(y)
        self.classes_, labels = np.unique(y, return_inverse=True)
        self.n_components_ = min(self.n_components, self.n_features_in_)
        self.components_ = np.zeros((len(self.classes_), self.n_components_, self.n_features_in_))
        for k in range(len(self.classes_)):
            vectors = _top_right_singular_vectors(X[labels == k], self.n_components_)
            self.components_[k, : vectors.shape[1]] = vectors.T
        return self

    def _energies(self, X):
        """Energy ``||V_k^T x||^2`` of every sample in every class subspace."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        return np.sum(np.einsum("kcf,nf->nkc", self.components_, X) ** 2, axis=2)

    def decision_function(self, X):
        """Per-class subspace energy ``||V_k^T x||^2``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features.

        Returns
        -------
        scores : ndarray of shape (n_samples, n_classes) or (n_samples,)
            The energies; for two classes, scikit-learn's binary convention
            ``energy of classes_[1] - energy of classes_[0]`` (positive favours
            ``classes_[1]``).
        """
        energies = self._energies(X)
        if len(self.classes_) == 2:
            return energies[:, 1] - energies[:, 0]
        return energies

    def predict(self, X):
        """Predict the class whose subspace holds the most energy.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predicted class labels.
        """
        winners = self._energies(X).argmax(axis=1)
        return self.classes_[winners]
