"""Label noise: corrupting training labels and measuring robustness to it.

The paper (section 1.4, Table 1) trains probes on labels of which a fraction
was replaced at random and measures accuracy on clean test labels; the
noise-level ensemble gains most over the best single noise level when the
noise rate is high.
"""

from __future__ import annotations

import warnings

import numpy as np
from joblib import hash as joblib_hash
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import check_scoring, get_scorer_names
from sklearn.model_selection import StratifiedKFold, check_cv, train_test_split
from sklearn.utils import _safe_indexing, check_random_state
from sklearn.utils._param_validation import StrOptions, validate_params
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import column_or_1d

from ._engine.pipelines import chain, locate_featurizer
from ._engine.validation import check_choice, check_float, check_int
from .curves import score_table

KINDS = ("symmetric", "asymmetric")


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


def corrupt_labels(y, rate, kind="symmetric", mapping=None, random_state=None):
    """Change exactly ``round(rate * n_samples)`` labels, chosen at random.

    Convention: a corrupted label **never keeps its true value**. With
    ``kind="symmetric"`` it becomes one of the *other* classes, uniformly at
    random (so at ``rate=0.8`` with 10 classes, 80% of the labels are wrong;
    the variant that may redraw the true class would leave about 72% wrong).
    With ``kind="asymmetric"`` (pair flip) class ``c`` becomes ``mapping[c]``.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Class labels (strings or integers); never modified.
    rate : float in [0, 1]
        Fraction of labels to change, rounded to a whole number of samples
        with Python's ``round`` (halves to even).
    kind : {"symmetric", "asymmetric"}, default="symmetric"
        How a chosen label changes: to a uniformly random different class, or
        along ``mapping``.
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
        A new array of the same dtype as ``np.asarray(y)``.

    Examples
    --------
    >>> from diffrep.label_noise import corrupt_labels
    >>> y = [0, 1, 2, 0, 1, 2, 0, 1, 2, 0]
    >>> noisy = corrupt_labels(y, 0.3, random_state=0)
    >>> int((noisy != y).sum())
    3
    """
    rate = check_float("rate", rate, low=0.0, high=1.0, low_inclusive=True)
    check_choice("kind", kind, KINDS)
    y = column_or_1d(y)
    check_classification_targets(y)
    classes, codes = np.unique(y, return_inverse=True)
    if kind == "symmetric" and mapping is not None:
        raise ValueError("mapping is only used with kind='asymmetric'; pass mapping=None.")
    target = _mapping_codes(mapping, classes) if mapping is not None else None
    n_corrupt = round(rate * len(y))
    if n_corrupt == 0:
        return y.copy()
    if len(classes) < 2:
        raise ValueError("y has a single class: its labels cannot be changed to a different class.")
    rng = check_random_state(random_state)
    chosen = rng.choice(len(y), size=n_corrupt, replace=False)
    if kind == "symmetric":
        new_codes = (codes[chosen] + rng.randint(1, len(classes), size=n_corrupt)) % len(classes)
    else:
        if target is None:
            target = _random_cycle(len(classes), rng)
        new_codes = target[codes[chosen]]
    y_noisy = y.copy()
    y_noisy[chosen] = classes[new_codes]
    return y_noisy


# --------------------------------------------------------------------------- #
# Sharing one trained denoiser across a study
# --------------------------------------------------------------------------- #
def _featurizer_input(before, X, name):
    """``X`` as the featurizer receives it: through the steps before it, fitted without labels.

    Returns None, with a warning, when those steps cannot be fitted without labels.
    """
    steps = chain(before)
    if steps is None:
        return X
    try:
        return steps.fit_transform(X)
    except (TypeError, ValueError) as exc:
        warnings.warn(
            f"label_noise_study: the steps before the featurizer of estimators[{name!r}] cannot be fitted "
            f"without labels ({type(exc).__name__}: {exc}); its featurizer is trained in every fit.",
            UserWarning,
            stacklevel=4,
        )
        return None


def _with_frozen_featurizer(estimator, X, fitted, name):
    """A clone of ``estimator`` whose featurizer is fitted on ``X`` (as it reaches it) and frozen.

    ``fitted`` caches frozen featurizers by a hash of their parameters and
    their input, so estimators whose featurizers have identical settings and
    inputs share one training.
    """
    estimator = clone(estimator)
    slot = locate_featurizer(estimator)
    if slot is None or isinstance(slot.featurizer, FrozenEstimator):
        return estimator
    X_in = _featurizer_input(slot.before, X, name)
    if X_in is None:
        return estimator
    key = joblib_hash((slot.featurizer.get_params(), X_in))
    if key not in fitted:
        fitted[key] = FrozenEstimator(clone(slot.featurizer).fit(X_in))
    slot.owner.set_params(**{slot.name: fitted[key]})
    return estimator


def _check_estimators(estimators):
    if not isinstance(estimators, dict) or not estimators:
        raise TypeError(
            f"estimators must be a non-empty dict of name -> estimator, got {type(estimators).__name__}."
        )
    for name, estimator in estimators.items():
        if not (hasattr(estimator, "fit") and hasattr(estimator, "score")):
            raise TypeError(
                f"estimators[{name!r}] must have fit and score methods, got {type(estimator).__name__}."
            )


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
        "cv": ["cv_object"],
        "groups": ["array-like", None],
        "scoring": [StrOptions(set(get_scorer_names())), callable, None],
    },
    prefer_skip_nested_validation=False,
)
def label_noise_study(
    estimators,
    X,
    y,
    rates=(0.0, 0.2, 0.4, 0.6, 0.8),
    test_size=0.25,
    n_repeats=3,
    kind="symmetric",
    random_state=None,
    *,
    cv=None,
    groups=None,
    scoring=None,
):
    """Test score of estimators trained on corrupted labels, per noise rate.

    By default one stratified split, exactly ``train_test_split(X, y,
    test_size=test_size, stratify=y, random_state=random_state)``; with ``cv``,
    every fold of it in turn. For every split, rate and repeat the training
    labels are corrupted once (:func:`corrupt_labels`; every estimator sees the
    same noisy labels), a clone of each estimator is fitted on them and scored
    on the clean test labels.

    Featurizers are trained once per split, not once per fit: for each
    estimator whose input reaches a DiffusionFeaturizer (a
    NoiseEnsembleClassifier's featurizer, or a Pipeline step at any position),
    that featurizer is fitted on the training part alone (labels are never
    seen) and wrapped in ``FrozenEstimator`` for every rate and repeat;
    featurizers with identical parameters and inputs are trained once and
    shared. Steps before the featurizer (a ``ColumnTransformer`` of encoders,
    say) are fitted on the training part without labels to give its input; a
    pipeline whose earlier steps need labels falls back, with a warning, to
    training its featurizer in every fit. Featurizers already frozen are used
    as they are.

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
    kind : {"symmetric", "asymmetric"}, default="symmetric"
        Label noise kind, see :func:`corrupt_labels`.
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

    See Also
    --------
    corrupt_labels : The corruption applied to the training labels.
    diffrep.plotting.plot_label_noise_study : Plot the table.
    """
    _check_estimators(estimators)
    rates = [check_float("rates", rate, low=0.0, high=1.0, low_inclusive=True) for rate in np.atleast_1d(rates)]
    n_repeats = check_int("n_repeats", n_repeats)
    check_choice("kind", kind, KINDS)
    y = column_or_1d(y)
    splits = _splits(y, test_size, cv, groups, random_state)
    rng = check_random_state(random_state)
    scorers = {name: check_scoring(estimator, scoring=scoring) for name, estimator in estimators.items()}
    scores = {(name, rate): [] for name in estimators for rate in rates}
    for train, test in splits:
        X_train, X_test = _safe_indexing(X, train), _safe_indexing(X, test)
        fitted = {}
        prepared = {name: _with_frozen_featurizer(est, X_train, fitted, name) for name, est in estimators.items()}
        for rate in rates:
            for _ in range(n_repeats):
                noisy = corrupt_labels(y[train], rate, kind=kind, random_state=rng.randint(np.iinfo(np.int32).max))
                for name, estimator in prepared.items():
                    fitted_estimator = clone(estimator).fit(X_train, noisy)
                    scores[name, rate].append(scorers[name](fitted_estimator, X_test, y[test]))
    rows = [{"estimator": name, "rate": rate} for name, rate in scores]
    return score_table(rows, list(scores.values()))
