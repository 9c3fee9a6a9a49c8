"""Linear probes for denoiser features, with their regularization tuned by cross-validation.

Denoiser features kept on a spatial grid number in the thousands per timestep;
a logistic probe with a fixed ``C=1`` overfits them when the labels are noisy
(the user guide compares both on 28x28 digits). The default probe
of the ensembles and the studies therefore chooses ``C`` on the labels it is
given, noisy or not: :class:`LogisticProbeCV`.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import TYPE_CHECKING

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import StratifiedKFold, check_cv
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import LabelEncoder, StandardScaler
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ._engine.sklearn_compat import Interval
from ._engine.sklearn_compat import check_sample_weight as _check_sample_weight
from ._engine.sklearn_compat import fit_context as _fit_context
from ._engine.probes import logistic_path_scores, one_standard_error_choice, standardized_logistic

if TYPE_CHECKING:
    from collections.abc import Sequence
    from ._engine.type_aliases import CVLike, RandomStateLike

# Inverse regularization strengths tried, weakest regularization last. On 28x28 digits
# (benchmarks/feature_quality.py --defaults) the ensemble chose 1e-4 at 80% label noise,
# 1e-3 at 40% and 0.1 .. 10 on clean labels: the grid spans all three.
DEFAULT_CS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)


class LogisticProbeCV(ClassifierMixin, BaseEstimator):
    """Standardize, then logistic regression whose ``C`` is chosen by cross-validation.

    ``fit`` scores every ``C`` in ``Cs`` on each fold along one warm-started
    regularization path (the strongest regularization first, each fit starting
    from the previous solution), keeps the smallest ``C`` whose mean score is
    within one standard error (over folds) of the best one (the
    one-standard-error rule: cross-validation cannot tell those apart, and the
    stronger regularization is the safer), and refits it on all the data. With a single
    value in ``Cs``, or a class too small to split, it fits that value (the one
    closest to 1 among several) without cross-validation.

    Parameters
    ----------
    Cs : sequence of float, default=(1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)
        Inverse regularization strengths to choose from (sorted ascending).
    cv : int, cross-validation generator or iterable, default=3
        Folds of the choice: an int is a stratified K-fold, with fewer folds
        when the smallest class has fewer samples; anything else as
        ``sklearn.model_selection.check_cv`` takes it.
    max_iter : int, default=1000
        Iterations of the lbfgs solver per fit.
    tol : float, default=1e-4
        Tolerance of the solver.
    random_state : int, RandomState instance or None, default=None
        Shuffles the folds; None keeps them in data order (stratified).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    n_features_in_ : int
        Number of features.
    C_ : float
        The chosen inverse regularization strength.
    cv_scores_ : ndarray of shape (n_folds, n_Cs)
        Held-out accuracy of each ``C`` on each fold (shape ``(0, n_Cs)``
        without cross-validation).
    scaler_ : sklearn.preprocessing.StandardScaler
        The standardization, fitted on all the data (weighted).
    classifier_ : sklearn.linear_model.LogisticRegression
        The logistic regression with ``C_``, fitted on the standardized data
        and encoded labels ``0 .. n_classes - 1``.
    n_iter_ : ndarray of shape (1,)
        Solver iterations of the final fit.

    See Also
    --------
    sklearn.linear_model.LogisticRegressionCV : The same idea without the
        standardization.
    diffrep.NoiseEnsembleClassifier : Uses this probe at every noise level and
        chooses ``C`` jointly with the timesteps.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from diffrep.probes import LogisticProbeCV
    >>> X, y = load_digits(return_X_y=True)
    >>> probe = LogisticProbeCV(random_state=0).fit(X[:500], y[:500])
    >>> probe.C_ in probe.Cs
    True
    """

    _parameter_constraints: dict = {
        "Cs": ["array-like"],
        "cv": ["cv_object"],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        Cs: Sequence[float] = DEFAULT_CS,
        cv: CVLike = 3,
        max_iter: int = 1000,
        tol: float = 1e-4,
        random_state: RandomStateLike = None,
    ):
        self.Cs = Cs
        self.cv = cv
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    def path(self):
        """The values of ``C`` that :meth:`path_scores` scores, ascending.

        Returns
        -------
        Cs : tuple of float

        Raises
        ------
        ValueError
            Unless ``Cs`` is a non-empty sequence of positive numbers.
        """
        try:
            values = np.sort(np.asarray(self.Cs, dtype=float).ravel())
        except (TypeError, ValueError):
            values = np.empty(0)
        if np.ndim(self.Cs) > 1 or len(values) == 0 or not np.all(np.isfinite(values) & (values > 0)):
            raise ValueError(f"Cs must be a non-empty sequence of positive numbers, got {self.Cs!r}.")
        return tuple(float(value) for value in values)

    def path_scores(self, train, test, scorer=None, sample_weight=None):
        """The score of each ``C`` of ``Cs``: fitted on ``train`` along the path, scored on ``test``.

        What ``fit`` computes on each fold; the ensembles call it on their own
        folds to choose ``C`` and the timesteps together.

        Parameters
        ----------
        train, test : tuple of (X, y)
            Features and labels to fit on and to score on.
        scorer : callable or None, default=None
            ``scorer(estimator, X, y)``, called with the fitted logistic
            regression on standardized features; None is accuracy.
        sample_weight : tuple of (array-like, array-like) or None, default=None
            Weights of the training and of the test part.

        Returns
        -------
        scores : ndarray of shape (n_Cs,)
            In the order of ``sorted(Cs)``.
        """
        return logistic_path_scores(
            train, test, self.path(), scorer=scorer, sample_weight=sample_weight,
            max_iter=self.max_iter, tol=self.tol,
        )

    def _folds(self, codes):
        """Stratified folds of the choice of ``C``, or none when ``Cs`` holds one value or a class is too small."""
        if len(self.path()) == 1:
            return []
        if self.cv is None or isinstance(self.cv, Integral):
            n_splits = min(3 if self.cv is None else self.cv, int(np.bincount(codes).min()))
            if n_splits < 2:
                return []
            shuffle = self.random_state is not None
            splitter = StratifiedKFold(n_splits, shuffle=shuffle, random_state=self.random_state if shuffle else None)
        else:
            splitter = check_cv(self.cv, codes, classifier=True)
        return list(splitter.split(np.zeros((len(codes), 1)), codes))

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Choose ``C`` by cross-validation on ``(X, y)``, then fit it on all of them.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Class labels.
        sample_weight : array-like of shape (n_samples,) or None, default=None
            Weights of the standardization, the logistic loss and the fold
            scores: a weight of 2 counts as the sample twice.

        Returns
        -------
        self : LogisticProbeCV
        """
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32])
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        codes = encoder.transform(y)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X)
        Cs = self.path()
        folds = self._folds(codes)
        self.cv_scores_ = np.array(
            [
                self.path_scores(
                    (X[train], codes[train]), (X[test], codes[test]),
                    sample_weight=None if sample_weight is None else (sample_weight[train], sample_weight[test]),
                )
                for train, test in folds
            ]
        ).reshape(len(folds), len(Cs))
        if folds:
            self.C_ = Cs[one_standard_error_choice(self.cv_scores_)]
        else:
            self.C_ = Cs[int(np.argmin(np.abs(np.log(Cs))))]
        self.scaler_, self.classifier_ = standardized_logistic(
            X, codes, self.C_, sample_weight=sample_weight, max_iter=self.max_iter, tol=self.tol
        )
        self.n_iter_ = self.classifier_.n_iter_
        return self

    def decision_function(self, X):
        """Logits of the fitted logistic regression.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
            For two classes, the logit of ``classes_[1]``.
        """
        X = self._standardized(X)
        return self.classifier_.decision_function(X)

    def predict_proba(self, X):
        """Class probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns follow ``classes_``.
        """
        X = self._standardized(X)
        return self.classifier_.predict_proba(X)

    def predict(self, X):
        """Predicted class labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        X = self._standardized(X)
        return self.classes_[self.classifier_.predict(X)]

    def _standardized(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return self.scaler_.transform(X)


def default_probe():
    """The probe of classification when none is given: :class:`LogisticProbeCV` with its defaults.

    Returns
    -------
    probe : LogisticProbeCV
    """
    return LogisticProbeCV()


def default_regression_probe():
    """The probe of regression when none is given: standardize, then ridge with its penalty chosen by CV.

    Returns
    -------
    probe : sklearn.pipeline.Pipeline
        ``make_pipeline(StandardScaler(), RidgeCV())``: penalties 0.1, 1 and
        10 scored by efficient leave-one-out.
    """
    return make_pipeline(StandardScaler(), RidgeCV())
