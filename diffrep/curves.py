"""Representation-dynamics curves: probe score as a function of the noise level.

The paper's first finding: features of a trained denoiser give a probe
accuracy that first rises, then falls with the timestep, with the peak at a
small but nonzero noise level (on our digits with grid features the curve is
flat at small timesteps instead; see the user guide). :func:`representation_curve`
measures that curve with one denoiser training per cross-validation fold, for class labels
(accuracy) and for real-valued targets (R^2).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from sklearn.base import is_classifier, is_regressor
from sklearn.metrics import get_scorer_names
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_array, check_consistent_length, column_or_1d

from ._engine.sklearn_compat import HasMethods, StrOptions, validate_params
from ._engine.sklearn_compat import safe_indexing as _safe_indexing
from ._engine.pipelines import chain, is_frozen, split_at_featurizer
from ._engine.probes import extract_blocks, fit_featurizer
from ._engine.reuse import shared_work
from ._engine.selection import best_of_path, make_folds, score_split, score_timesteps
from ._engine.tables import score_table
from ._engine.validation import check_timesteps
from .probes import default_probe, default_regression_probe

if TYPE_CHECKING:
    from collections.abc import Callable
    from numpy.typing import ArrayLike
    from sklearn.base import BaseEstimator
    from ._engine.type_aliases import CVLike, RandomStateLike, TimestepsLike

TASKS = ("auto", "classification", "regression")


def _resolve_task(task, y, probe):
    """``"classification"`` or ``"regression"``: the given task, else the probe's kind, else ``y``'s type.

    A numeric ``y`` with a value that occurs only once is ambiguous (a
    regression target with integer values, or labels with a single-sample
    class) and refused: stratifying on it as classes would be silently wrong.
    """
    if task != "auto":
        return task
    if probe is not None and (is_classifier(probe) or is_regressor(probe)):
        return "classification" if is_classifier(probe) else "regression"
    kind = type_of_target(y, input_name="y")
    if kind == "continuous":
        return "regression"
    if kind not in ("binary", "multiclass"):
        raise ValueError(f"representation_curve takes class labels or real-valued targets; y is {kind!r}.")
    values, counts = np.unique(y, return_counts=True)
    if kind == "multiclass" and y.dtype.kind in "iuf" and counts.min() < 2:
        raise ValueError(
            f"y holds {len(values)} distinct numbers, some only once: it may be a regression target with "
            "integer values or class labels. Pass task='regression' or task='classification'."
        )
    return "classification"


def _prepared(before, X_train, X_test, y_train):
    """The two parts of ``X`` through clones of the steps before the featurizer, fitted on the training part."""
    steps = chain(before)
    if steps is None:
        return X_train, X_test
    return steps.fit_transform(X_train, y_train), steps.transform(X_test)


def _fold_scores(featurizer, before, probe, scoring, X, y, timesteps, folds):
    """The probe's score at every timestep and fold, shape (n_timesteps, n_folds), and a fitted featurizer.

    Features are per sample: a frozen featurizer fed ``X`` directly extracts
    it once for every fold; otherwise each fold fits its own featurizer (and
    the steps before it) on its training part.
    """
    if is_frozen(featurizer) and not before:
        fitted = fit_featurizer(featurizer, X, timesteps)
        scores, _ = score_timesteps(probe, scoring, extract_blocks(fitted, X, timesteps), y, folds)
        return scores, fitted
    path_scores = []
    for train, test in folds:
        X_train, X_test = _prepared(before, _safe_indexing(X, train), _safe_indexing(X, test), y[train])
        fitted = fit_featurizer(featurizer, X_train, timesteps)
        train_blocks, test_blocks = (extract_blocks(fitted, part, timesteps) for part in (X_train, X_test))
        path_scores.append(score_split(probe, scoring, train_blocks, test_blocks, y[train], y[test]))
    return best_of_path(np.stack(path_scores, axis=1)), fitted


def _curve_parts(featurizer, estimator):
    """``(featurizer, steps before it, probe or None)`` of the ``featurizer`` argument."""
    featurizer, before, after = split_at_featurizer(featurizer)
    if after and estimator is not None:
        raise ValueError(
            "featurizer is a Pipeline with steps after its DiffusionFeaturizer, and estimator is given too: "
            "pass the probe one way only."
        )
    return featurizer, before, chain(after) if after else estimator


@validate_params(
    {
        "featurizer": [HasMethods(["fit"])],
        "X": ["array-like"],
        "y": ["array-like"],
        "timesteps": ["array-like"],
        "estimator": [HasMethods(["fit"]), None],
        "cv": ["cv_object"],
        "random_state": ["random_state"],
        "groups": ["array-like", None],
        "scoring": [StrOptions(set(get_scorer_names())), callable, None],
        "task": [StrOptions(set(TASKS))],
    },
    prefer_skip_nested_validation=False,
)
def representation_curve(
    featurizer: BaseEstimator,
    X: ArrayLike,
    y: ArrayLike,
    timesteps: TimestepsLike,
    estimator: BaseEstimator | None = None,
    cv: CVLike = 5,
    random_state: RandomStateLike = None,
    *,
    groups: ArrayLike | None = None,
    scoring: str | Callable[..., float] | None = None,
    task: str = "auto",
):
    """Cross-validated probe score at each timestep of one denoiser.

    For each fold the featurizer is fitted once on the training part (labels
    unused), features at every timestep come from one extraction, and a probe
    per timestep is fitted on the training part and scored on the held-out
    part. A featurizer wrapped in ``sklearn.frozen.FrozenEstimator`` is used
    as is in every fold (no training at all; it then may have seen the
    held-out images, never their labels).

    Class labels are scored by accuracy with a logistic probe on stratified
    folds; real-valued targets by R^2 with a ridge probe on plain K-folds.
    The default logistic probe (:class:`~diffrep.probes.LogisticProbeCV`) is
    scored along its path of ``C``, one warm-started path per fold and
    timestep, and a timestep scores as its ``C`` with the best mean over the
    folds: the ensembles' selection score, chosen on the held-out folds
    themselves, hence optimistic by the choice among the values of ``Cs``.
    The ridge probe chooses its penalty inside each training part.

    The folds and the scores are those of the noise-level ensembles'
    selection: on a frozen featurizer, the ``timestep_scores_`` of a
    :class:`~diffrep.NoiseEnsembleClassifier` with the same ``cv``,
    ``random_state``, ``groups``, ``scoring`` and probe equal this table's.

    Timesteps index the denoiser's training schedule: **larger is noisier**.

    Parameters
    ----------
    featurizer : DiffusionFeaturizer, FrozenEstimator or Pipeline
        Settings of the denoiser to train per fold, or a frozen fitted one. A
        Pipeline holding a DiffusionFeaturizer anywhere (after a
        ``ColumnTransformer``, say) works too: the steps before it are fitted
        on each training part (with its targets) and transform both parts; the
        steps after it, if any, are the probe.
    X : array-like of shape (n_samples, n_features), (n, H, W), (n, C, H, W) or (n, H, W, C)
    y : array-like of shape (n_samples,)
        Class labels or real-valued targets.
    timesteps : sequence of int
        Timesteps to probe.
    estimator : estimator or None, default=None
        The probe, cloned per timestep and fold. None means
        :func:`diffrep.probes.default_probe` (a :class:`~diffrep.probes.LogisticProbeCV`)
        for classification and :func:`diffrep.probes.default_regression_probe`
        (standardize, ``RidgeCV``) for regression, or the steps after a
        Pipeline's featurizer.
    cv : int, cross-validation generator, iterable or None, default=5
        The folds of the ensembles' selection. An int: a K-fold, stratified
        for classification, shuffled when ``random_state`` is given (data
        order otherwise), lowered to the size of the smallest class (for
        regression, to one fold per two samples); None means 5. Anything
        else as ``sklearn.model_selection.check_cv`` takes it
        (``GroupKFold`` with ``groups``, ``TimeSeriesSplit``, a non-empty
        iterable of ``(train, test)`` index arrays).
    random_state : int, RandomState instance or None, default=None
        Shuffles the folds of an int ``cv``; None keeps the data order.
    groups : array-like of shape (n_samples,) or None, default=None
        Group labels passed to the splitter.
    scoring : str, callable or None, default=None
        A scorer name or ``scorer(estimator, X, y)``; None is the probe's
        ``score`` (accuracy or R^2).
    task : {"auto", "classification", "regression"}, default="auto"
        ``"auto"`` follows the probe when it is a classifier or a regressor,
        else ``sklearn.utils.multiclass.type_of_target(y)``: continuous values
        are regression, labels classification. Numbers of which one occurs only
        once (integer-valued regression targets look like that) are refused
        with ``"auto"``: say which task is meant.

    Returns
    -------
    table : pandas.DataFrame
        One row per timestep, ascending: ``timestep``, ``sigma`` (noise level
        ``sqrt((1 - abar_t) / abar_t)``), ``task`` (the task used), ``mean``
        and ``std`` of the score over folds, then ``score_0`` ..
        ``score_{n_folds-1}``. ``table.attrs["scoring"]`` names the score.

    See Also
    --------
    diffrep.NoiseEnsembleClassifier : Uses the best timesteps of such a curve.
    diffrep.NoiseEnsembleRegressor : The same for real-valued targets.
    diffrep.plotting.plot_representation_curve : Plot the table.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from diffrep import DiffusionFeaturizer
    >>> from diffrep.curves import representation_curve
    >>> X, y = load_digits(return_X_y=True)
    >>> featurizer = DiffusionFeaturizer(image_shape=(1, 8, 8), max_steps=5, random_state=0)
    >>> table = representation_curve(featurizer, X[:300], y[:300], (10, 100), cv=2, random_state=0)
    >>> table.columns.tolist()
    ['timestep', 'sigma', 'task', 'mean', 'std', 'score_0', 'score_1']
    """
    featurizer, before, probe = _curve_parts(featurizer, estimator)
    timesteps = tuple(sorted(check_timesteps(timesteps)))
    y = column_or_1d(y)
    check_consistent_length(X, y)
    task = _resolve_task(task, y, probe)
    if task == "classification":
        check_classification_targets(y)
    else:
        y = check_array(y, ensure_2d=False, dtype=np.float64, input_name="y")
    if probe is None:
        probe = default_probe() if task == "classification" else default_regression_probe()
    folds = make_folds(cv, y, groups, classifier=task == "classification", random_state=random_state)
    with shared_work():
        scores, fitted = _fold_scores(featurizer, before, probe, scoring, X, y, timesteps, folds)
    sigmas = fitted.schedule_.sigmas(timesteps)
    rows = [{"timestep": t, "sigma": float(sigma), "task": task} for t, sigma in zip(timesteps, sigmas)]
    table = score_table(rows, scores)
    default_name = "accuracy" if task == "classification" else "r2"
    table.attrs["scoring"] = default_name if scoring is None else getattr(scoring, "__name__", str(scoring))
    return table
