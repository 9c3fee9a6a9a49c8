"""Label noise: corrupting training labels and measuring robustness to it.

The paper (Li et al., its Table 1) trains probes on labels of which a fraction
was replaced at random and measures accuracy on clean test labels; it reports
that the noise-level ensemble gains most over the best single noise level when
the noise rate is high. On our digits with a tuned probe that gain does not
show (``examples/label_noise_digits.py``, table in the docs' examples page).
"""

from __future__ import annotations

from numbers import Real
from typing import TYPE_CHECKING

import numpy as np
from sklearn.base import clone
from sklearn.metrics import check_scoring, get_scorer_names
from sklearn.model_selection import StratifiedKFold, check_cv, train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import column_or_1d

from ._engine.sklearn_compat import Interval, InvalidParameterError, RealNotInt, StrOptions, validate_params
from ._engine.sklearn_compat import safe_indexing as _safe_indexing
from ._engine.reuse import shared_work
from ._engine.tables import score_table
from ._engine.validation import Count

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from numpy.typing import ArrayLike
    from sklearn.base import BaseEstimator
    from ._engine.type_aliases import CVLike, RandomStateLike

KINDS = ("symmetric", "asymmetric", "uniform")


def _random_cycle(n_classes, rng):
    """Class codes mapped along one random cycle through all classes: a derangement."""
    order = rng.permutation(n_classes)
    cycle = np.empty(n_classes, dtype=np.intp)
    cycle[order] = np.roll(order, -1)
    return cycle


def _mapping_codes(mapping, classes):
    """Validate a class -> class mapping; return it as an array of class codes."""
    if not isinstance(mapping, dict):
        raise TypeError(f"mapping must be a dict from each class to another class, got {type(mapping).__name__}.")
    missing = [c for c in classes.tolist() if c not in mapping]
    if missing:
        raise ValueError(f"mapping must give a target for every class of y; missing {missing}.")
    targets = [mapping[c] for c in classes.tolist()]
    unknown = [t for t in targets if t not in classes.tolist()]
    if unknown:
        raise ValueError(f"mapping targets must be classes of y {classes.tolist()}; got {unknown}.")
    fixed = [c for c, t in zip(classes.tolist(), targets) if c == t]
    if fixed:
        raise ValueError(f"mapping must send every class to a different class; {fixed} map to themselves.")
    return np.searchsorted(classes, np.asarray(targets, dtype=classes.dtype))


@validate_params(
    {
        "y": ["array-like"],
        "rate": [Interval(Real, 0, 1, closed="both")],
        "kind": [StrOptions(set(KINDS))],
        "mapping": [dict, None],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def corrupt_labels(
    y: ArrayLike,
    rate: float,
    kind: str = "symmetric",
    mapping: ArrayLike | None = None,
    random_state: RandomStateLike = None,
):
    """Change (for ``kind="uniform"``, redraw) exactly ``round(rate * n_samples)`` labels, chosen at random.

    Two conventions exist; name the one you report. With the default
    ``kind="symmetric"`` a corrupted label **never keeps its true value**: it
    becomes one of the *other* classes, uniformly at random (so at
    ``rate=0.8`` with 10 classes, 80% of the labels are wrong). With
    ``kind="uniform"`` a chosen label is redrawn uniformly over **all** ``K``
    classes, its true class included (kept with probability ``1/K``): the
    other common convention, under which ``rate`` is the fraction of labels
    *redrawn* and about ``rate * (K - 1) / K`` of them end up wrong (72% at
    ``rate=0.8`` with 10 classes). With ``kind="asymmetric"`` (pair flip)
    class ``c`` becomes ``mapping[c]``.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Class labels (strings or integers); never modified.
    rate : float in [0, 1]
        Fraction of labels to change (to redraw, for ``kind="uniform"``),
        rounded to a whole number of samples with Python's ``round`` (halves
        to even).
    kind : {"symmetric", "asymmetric", "uniform"}, default="symmetric"
        How a chosen label changes: to a uniformly random different class, along
        ``mapping``, or to a uniformly random class of all ``K`` (possibly its own).
    mapping : dict or None, default=None
        For ``kind="asymmetric"`` only: the class each class is flipped to; it
        must cover every class of ``y`` and send none to itself. None draws a
        random cyclic permutation of the classes (each class flips to the next
        one on a random cycle).
    random_state : int, RandomState instance or None, default=None
        Chooses the corrupted samples, their new classes and a random mapping.

    Returns
    -------
    y_noisy : ndarray of shape (n_samples,)
        A new array of the same dtype as ``np.asarray(y)``. Exactly
        ``round(rate * n_samples)`` labels differ from ``y``, except with
        ``kind="uniform"``, where about ``1/K`` of the redrawn ones keep
        their class.

    Examples
    --------
    >>> from diffrep.label_noise import corrupt_labels
    >>> y = [0, 1, 2, 0, 1, 2, 0, 1, 2, 0]
    >>> noisy = corrupt_labels(y, 0.3, random_state=0)
    >>> int((noisy != y).sum())
    3
    """
    y = column_or_1d(y)
    check_classification_targets(y)
    classes, codes = np.unique(y, return_inverse=True)
    if kind != "asymmetric" and mapping is not None:
        raise ValueError("mapping is only used with kind='asymmetric'; pass mapping=None.")
    target = _mapping_codes(mapping, classes) if mapping is not None else None
    n_corrupt = round(rate * len(y))
    if n_corrupt == 0:
        return y.copy()
    if len(classes) < 2 and kind != "uniform":
        raise ValueError("y has a single class: its labels cannot be changed to a different class.")
    rng = check_random_state(random_state)
    chosen = rng.choice(len(y), size=n_corrupt, replace=False)
    if kind == "uniform":
        new_codes = rng.randint(len(classes), size=n_corrupt)
    elif kind == "symmetric":
        new_codes = (codes[chosen] + rng.randint(1, len(classes), size=n_corrupt)) % len(classes)
    else:
        if target is None:
            target = _random_cycle(len(classes), rng)
        new_codes = target[codes[chosen]]
    y_noisy = y.copy()
    y_noisy[chosen] = classes[new_codes]
    return y_noisy


def _check_estimators(estimators):
    """``InvalidParameterError`` unless ``estimators`` (a dict by its constraint) names estimators that score."""
    if not estimators:
        raise InvalidParameterError("The 'estimators' parameter of label_noise_study must be a non-empty dict.")
    for name, estimator in estimators.items():
        if not (hasattr(estimator, "fit") and hasattr(estimator, "score")):
            raise InvalidParameterError(
                f"estimators[{name!r}] must have fit and score methods, got {type(estimator).__name__}."
            )


def _check_rates(rates):
    """The rates as a list of floats in [0, 1]; ``InvalidParameterError`` naming ``rates`` otherwise."""
    values = np.atleast_1d(np.asarray(rates, dtype=object))
    if values.ndim != 1 or not all(
        isinstance(v, Real) and not isinstance(v, (bool, np.bool_)) and 0 <= v <= 1 for v in values
    ):
        raise InvalidParameterError(
            f"The 'rates' parameter of label_noise_study must be in [0, 1] (a float or a sequence of them); "
            f"got {rates!r}."
        )
    return [float(v) for v in values]


def _splits(y, test_size, cv, groups, random_state):
    """The (train, test) index pairs of a study: one stratified split, or the folds of ``cv``."""
    if cv is None:
        if groups is not None:
            raise ValueError("groups is used by the splitter of cv; with cv=None there is none. Pass cv too.")
        return [train_test_split(np.arange(len(y)), test_size=test_size, stratify=y, random_state=random_state)]
    if isinstance(cv, (int, np.integer)):
        splitter = StratifiedKFold(n_splits=int(cv), shuffle=True, random_state=random_state)
    else:
        splitter = check_cv(cv, y, classifier=True)
    return list(splitter.split(np.zeros((len(y), 1)), y, groups))


@validate_params(
    {
        "estimators": [dict],
        "X": ["array-like"],
        "y": ["array-like"],
        "rates": ["array-like", Interval(Real, 0, 1, closed="both")],
        "test_size": [Interval(RealNotInt, 0, 1, closed="neither"), Count(1)],
        "n_repeats": [Count(1)],
        "kind": [StrOptions(set(KINDS))],
        "random_state": ["random_state"],
        "cv": ["cv_object"],
        "groups": ["array-like", None],
        "scoring": [StrOptions(set(get_scorer_names())), callable, None],
    },
    prefer_skip_nested_validation=False,
)
def label_noise_study(
    estimators: dict[str, BaseEstimator],
    X: ArrayLike,
    y: ArrayLike,
    rates: Sequence[float] = (0.0, 0.2, 0.4, 0.6, 0.8),
    test_size: float = 0.25,
    n_repeats: int = 3,
    kind: str = "symmetric",
    random_state: RandomStateLike = None,
    *,
    cv: CVLike = None,
    groups: ArrayLike | None = None,
    scoring: str | Callable[..., float] | None = None,
):
    """Test score of estimators trained on corrupted labels, per noise rate.

    By default one stratified split, exactly ``train_test_split(X, y,
    test_size=test_size, stratify=y, random_state=random_state)``; with ``cv``,
    every fold of it in turn. For every split, rate and repeat the training
    labels are corrupted once (:func:`corrupt_labels`; every estimator sees the
    same noisy labels), a clone of each estimator is fitted on them and scored
    on the clean test labels.

    Nothing is computed twice: the study runs in one scope of shared work,
    in which a denoiser training is keyed as in the ``memory=`` cache (the
    initial weights, the schedule, the scaled data, the training settings and
    seed), so every DiffusionFeaturizer with equal training settings and an
    int ``random_state`` (its own, or an ensemble's) reaching the same data
    trains once per split, wherever it sits (an ensemble, a Pipeline step
    after a ``ColumnTransformer``, ...), and the features of an input at a
    timestep are extracted once: R rates x N repeats x T timesteps cost T
    extractions of each sample. A featurizer fed inputs that depend on the
    noisy labels (after a supervised selection step) trains once per distinct
    input. Frozen featurizers are used as they are.

    Parameters
    ----------
    estimators : dict of str -> estimator
        Named estimators with ``fit`` and ``score``; each is cloned per fit.
    X : array-like of shape (n_samples, ...)
    y : array-like of shape (n_samples,)
    rates : sequence of float in [0, 1], default=(0.0, 0.2, 0.4, 0.6, 0.8)
        Fractions of training labels to corrupt.
    test_size : float or int, default=0.25
        As in ``train_test_split``; used when ``cv`` is None.
    n_repeats : int, default=3
        Independent corruptions per rate (and split).
    kind : {"symmetric", "asymmetric", "uniform"}, default="symmetric"
        Label noise convention, see :func:`corrupt_labels`: ``"symmetric"``
        changes each chosen label to a *different* class (``rate`` is the
        fraction of wrong labels), ``"uniform"`` redraws it over all ``K``
        classes (about ``rate * (K - 1) / K`` wrong), ``"asymmetric"`` flips
        it along a random class cycle. The table names it in
        ``table.attrs["label_noise"]``.
    random_state : int, RandomState instance or None, default=None
        Seeds the split (or the folds of an int ``cv``) and the corruptions.
    cv : int, cross-validation generator, iterable or None, default=None
        None: the single split above. An int: a shuffled stratified K-fold.
        Anything else as ``sklearn.model_selection.check_cv`` takes it
        (``GroupKFold`` with ``groups``, an iterable of ``(train, test)``).
    groups : array-like of shape (n_samples,) or None, default=None
        Group labels passed to the splitter of ``cv``.
    scoring : str, callable or None, default=None
        A scorer name or ``scorer(estimator, X, y)``; None is each
        estimator's ``score`` (accuracy for classifiers).

    Returns
    -------
    table : pandas.DataFrame
        One row per estimator and rate: ``estimator``, ``rate``, ``mean`` and
        ``std`` of the test score over splits and repeats, then ``score_0`` ..
        ``score_{n_splits * n_repeats - 1}`` (split-major).
        ``table.attrs["label_noise"]`` is ``kind``, the convention of ``rate``.

    See Also
    --------
    corrupt_labels : The corruption applied to the training labels.
    diffrep.plotting.plot_label_noise_study : Plot the table.
    """
    _check_estimators(estimators)
    rates = _check_rates(rates)
    y = column_or_1d(y)
    splits = _splits(y, test_size, cv, groups, random_state)
    rng = check_random_state(random_state)
    scorers = {name: check_scoring(estimator, scoring=scoring) for name, estimator in estimators.items()}
    scores = {(name, rate): [] for name in estimators for rate in rates}
    with shared_work():  # equal featurizer fits train once, and each input is extracted once per timestep
        for train, test in splits:
            X_train, X_test = _safe_indexing(X, train), _safe_indexing(X, test)
            for rate in rates:
                for _ in range(n_repeats):
                    seed = rng.randint(np.iinfo(np.int32).max)
                    noisy = corrupt_labels(y[train], rate, kind=kind, random_state=seed)
                    for name, estimator in estimators.items():
                        fitted_estimator = clone(estimator).fit(X_train, noisy)
                        scores[name, rate].append(scorers[name](fitted_estimator, X_test, y[test]))
    rows = [{"estimator": name, "rate": rate} for name, rate in scores]
    table = score_table(rows, list(scores.values()))
    table.attrs["label_noise"] = kind
    return table
