"""Probes on denoiser features: the regularization path, fitting and scoring them, and the featurizer that feeds them.

Shared by the ensembles, :func:`~diffrep.representation_curve`, the probes of
:mod:`diffrep.probes` and the demo.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted, has_fit_parameter

from .pipelines import is_frozen, unwrapped
from .validation import check_timesteps


def standardized_logistic(X, y, C, sample_weight=None, max_iter=1000, tol=1e-4):
    """A standard scaler and a logistic regression of inverse strength ``C`` fitted on its output.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    C : float
    sample_weight : ndarray of shape (n_samples,) or None, default=None
        Weights of the standardization and of the logistic loss (a weight of
        2 counts as the sample twice).
    max_iter : int, default=1000
    tol : float, default=1e-4

    Returns
    -------
    scaler : sklearn.preprocessing.StandardScaler
    classifier : sklearn.linear_model.LogisticRegression
    """
    scaler = StandardScaler().fit(X, sample_weight=sample_weight)
    classifier = LogisticRegression(C=C, max_iter=max_iter, tol=tol)
    return scaler, classifier.fit(scaler.transform(X), y, sample_weight=sample_weight)


def one_standard_error_choice(scores):
    """The index of the strongest regularization whose mean score is within one standard error of the best.

    The one-standard-error rule (as glmnet's ``lambda.1se``): candidates
    whose held-out scores differ by less than their fold-to-fold noise are
    not told apart by cross-validation, and of those the most regularized one
    is the safest, above all on noisy labels.

    Parameters
    ----------
    scores : ndarray of shape (n_folds, n_candidates)
        Held-out scores, candidates ordered from the strongest regularization
        (smallest ``C``) to the weakest; larger is better.

    Returns
    -------
    index : int
    """
    means = scores.mean(axis=0)
    best = int(np.argmax(means))
    error = scores[:, best].std() / np.sqrt(len(scores)) if len(scores) > 1 else 0.0
    return int(np.flatnonzero(means >= means[best] - error)[0])


def logistic_path_scores(train, test, Cs, scorer=None, sample_weight=None, max_iter=1000, tol=1e-4):
    """Held-out scores of standardized logistic regressions along a warm-started path of ``C``.

    The scaler is fitted once on the training part (weighted like the
    loss); each ``C`` (ascending:
    the strongest regularization first) starts from the previous solution,
    which makes the whole path cost little more than its last fit.

    Parameters
    ----------
    train, test : tuple of (X, y)
    Cs : sequence of float
        Ascending inverse regularization strengths.
    scorer : callable or None, default=None
        ``scorer(classifier, X_test, y_test)`` on standardized features; None
        is the classifier's accuracy.
    sample_weight : tuple of (ndarray, ndarray) or None, default=None
        Weights of the training and of the test part.
    max_iter : int, default=1000
    tol : float, default=1e-4

    Returns
    -------
    scores : ndarray of shape (len(Cs),)
    """
    (X_train, y_train), (X_test, y_test) = train, test
    weights, test_weights = (None, None) if sample_weight is None else sample_weight
    scaler = StandardScaler().fit(X_train, sample_weight=weights)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    test_kwargs = {} if test_weights is None else {"sample_weight": test_weights}
    score = (lambda model: model.score(X_test, y_test, **test_kwargs)) if scorer is None else (
        lambda model: scorer(model, X_test, y_test, **test_kwargs)
    )
    classifier = LogisticRegression(max_iter=max_iter, tol=tol, warm_start=True)
    scores = []
    for C in Cs:
        classifier.set_params(C=C).fit(X_train, y_train, sample_weight=weights)
        scores.append(float(score(classifier)))
    return np.asarray(scores)


def _final_step(estimator):
    """The estimator that receives a Pipeline's fit parameters last (nested pipelines followed)."""
    while isinstance(estimator, Pipeline):
        estimator = estimator.steps[-1][1]
    return estimator


def _weight_params(estimator, sample_weight):
    """``fit`` keyword arguments that route ``sample_weight`` to a Pipeline's last step."""
    if isinstance(estimator, Pipeline):
        name, last = estimator.steps[-1]
        return {f"{name}__{key}": value for key, value in _weight_params(last, sample_weight).items()}
    return {"sample_weight": sample_weight}


def check_weighted_probe(probe, name="estimator"):
    """Raise ``TypeError`` unless ``probe`` (or a Pipeline's last step) takes ``sample_weight`` in fit.

    Parameters
    ----------
    probe : estimator or Pipeline
    name : str, default="estimator"
        Parameter name used in the error message.
    """
    final = _final_step(probe)
    if not has_fit_parameter(final, "sample_weight"):
        raise TypeError(
            f"sample_weight was given, but {name} ({type(final).__name__}) does not accept sample_weight in fit."
        )


def fit_probe(probe, X, y, sample_weight=None):
    """A fitted clone of ``probe``; ``sample_weight`` goes to it, or to a Pipeline's last step.

    In a Pipeline the weights reach the final estimator only (its scaler, for
    one, is fitted unweighted), passed as ``{last_step}__sample_weight``.

    Parameters
    ----------
    probe : estimator or Pipeline
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
    sample_weight : array-like of shape (n_samples,) or None, default=None

    Returns
    -------
    fitted : estimator
    """
    if sample_weight is None:
        return clone(probe).fit(X, y)
    return clone(probe).fit(X, y, **_weight_params(probe, sample_weight))


def score_probe(probe, scorer, train, test, sample_weight=None):
    """Fit a probe on one part of the data and score it on another.

    Parameters
    ----------
    probe : estimator
    scorer : callable
        ``scorer(estimator, X, y)``, as returned by ``sklearn.metrics.check_scoring``;
        it also receives ``sample_weight`` when weights are given.
    train, test : tuple of (X, y)
        Features and targets to fit on and to score on.
    sample_weight : tuple of (array-like, array-like) or None, default=None
        Weights of the training and of the test part.

    Returns
    -------
    score : float
    """
    if sample_weight is None:
        return float(scorer(fit_probe(probe, *train), *test))
    fitted = fit_probe(probe, *train, sample_weight=sample_weight[0])
    return float(scorer(fitted, *test, sample_weight=sample_weight[1]))


def fit_featurizer(featurizer, X, timesteps):
    """A fitted featurizer for ``X`` that serves ``timesteps``: a frozen one as is, otherwise a fitted clone.

    Parameters
    ----------
    featurizer : DiffusionFeaturizer or sklearn.frozen.FrozenEstimator
        A featurizer wrapped in ``FrozenEstimator`` must already be fitted and
        is never refitted (``timesteps`` are checked against its schedule);
        anything else is cloned with ``timesteps`` as its own and fitted on
        ``X``, so that its fit checks them against the schedule of the
        resolved denoiser before any training.
    X : array-like
        Unlabelled training data.
    timesteps : tuple of int
        The timesteps the caller will extract.

    Returns
    -------
    fitted : DiffusionFeaturizer or FrozenEstimator
        Either way it exposes ``extract(X, timesteps)`` and ``schedule_``.
    """
    if is_frozen(featurizer):
        check_is_fitted(unwrapped(featurizer))
        check_timesteps(timesteps, featurizer.schedule_.num_train_timesteps)
        return featurizer
    return clone(featurizer).set_params(timesteps=tuple(timesteps)).fit(X)


def extract_blocks(featurizer, X, timesteps):
    """Features of ``X`` at several timesteps from one extraction, split per timestep.

    Parameters
    ----------
    featurizer : fitted DiffusionFeaturizer or FrozenEstimator
    X : array-like
    timesteps : sequence of int

    Returns
    -------
    blocks : list of ndarray, one ``(n_samples, width)`` array per timestep
    """
    return np.split(featurizer.extract(X, timesteps), len(timesteps), axis=1)
