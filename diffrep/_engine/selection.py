"""One selection routine: the folds of ``cv`` and a probe's score at each timestep over them.

The ensembles, :func:`~diffrep.representation_curve`, the label-noise study,
the demo and :class:`~diffrep.probes.LogisticProbeCV` build their folds with
:func:`make_folds`; the ensembles and the curves score their per-timestep
probes with :func:`score_timesteps` (or, for features extracted per split,
:func:`score_split` and :func:`best_of_path`), so the same data get the same
folds and the same scores wherever they are asked for.

The rules of :func:`make_folds`:

- ``cv=None`` means 5 folds.
- An int ``k`` is a K-fold, stratified for classification, with at most as
  many folds as the smallest class has samples (for regression: at most one
  fold per two samples, so that every test part holds two samples); fewer
  than 2 folds left is an error naming ``cv``. The folds are shuffled, seeded
  by ``random_state``, when ``random_state`` is given; with
  ``random_state=None`` they keep the data order (as scikit-learn's
  ``cross_val_score`` does), so they are reproducible either way.
- ``"holdout"`` is one ``train_test_split`` of ``test_size``, stratified for classification.
- Anything else (a splitter such as ``GroupKFold``, an iterable of
  ``(train, test)`` index arrays) is used as given, through
  ``sklearn.model_selection.check_cv``.
- No folds at all, a fold with an empty side, or indices outside the data are
  errors naming ``cv``.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.metrics import check_scoring
from sklearn.model_selection import KFold, StratifiedKFold, check_cv, train_test_split

from .probes import score_probe

DEFAULT_N_SPLITS = 5
HOLDOUT = "holdout"


def _is_count(cv):
    """Whether ``cv`` asks for a number of folds (an int, or None for the default)."""
    return cv is None or (isinstance(cv, Integral) and not isinstance(cv, bool))


def most_splits(y, classifier):
    """The most folds an int ``cv`` may have on targets ``y``.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
        Class labels or real-valued targets.
    classifier : bool
        Whether ``y`` holds class labels (stratified folds).

    Returns
    -------
    n_splits : int
        The size of the smallest class for class labels; half the number of
        samples otherwise.
    """
    if classifier:
        return int(np.unique(y, return_counts=True)[1].min())
    return len(y) // 2


def _count_folds(cv, y, classifier, random_state):
    """The folds of an int (or None) ``cv``: a (stratified) K-fold, capped by :func:`most_splits`."""
    wanted = DEFAULT_N_SPLITS if cv is None else int(cv)
    n_splits = min(wanted, most_splits(y, classifier))
    if n_splits < 2:
        if classifier:
            raise ValueError(
                f"cv={cv!r} cannot make 2 stratified folds: the smallest class of y has {most_splits(y, True)} sample."
            )
        raise ValueError(f"cv={cv!r} cannot make 2 folds of at least 2 samples: y has {len(y)} samples.")
    shuffle = random_state is not None
    kind = StratifiedKFold if classifier else KFold
    splitter = kind(n_splits=n_splits, shuffle=shuffle, random_state=random_state if shuffle else None)
    return splitter.split(np.zeros((len(y), 1)), y)


def _holdout(y, groups, classifier, random_state, test_size):
    """The one (train, test) pair of ``train_test_split``, stratified for classification."""
    if groups is not None:
        raise ValueError(f"groups is used by the splitter of cv; cv={HOLDOUT!r} has none. Pass a group splitter.")
    indices = np.arange(len(y))
    return [train_test_split(indices, test_size=test_size, stratify=y if classifier else None,
                             random_state=random_state)]


def _checked(folds, n_samples):
    """The folds as integer index arrays; ``ValueError`` naming ``cv`` for none, an empty side or a stray index."""
    folds = [(np.asarray(train), np.asarray(test)) for train, test in folds]
    if not folds:
        raise ValueError("cv gave no (train, test) folds; pass an int >= 2, a splitter or a non-empty list of folds.")
    for i, (train, test) in enumerate(folds):
        for side, indices in (("training", train), ("test", test)):
            if indices.size == 0:
                raise ValueError(f"cv fold {i} has an empty {side} part; every fold needs samples on both sides.")
            if indices.dtype.kind not in "iu" or indices.min() < 0 or indices.max() >= n_samples:
                raise ValueError(
                    f"cv fold {i} has {side} indices that are not positions 0 .. {n_samples - 1} of the samples."
                )
    return folds


def make_folds(cv, y, groups=None, *, classifier, random_state=None, test_size=0.25):
    """The (train, test) index pairs of ``cv`` on targets ``y``, by the rules of this module.

    Parameters
    ----------
    cv : int, "holdout", cross-validation generator, iterable or None
        See the module docstring.
    y : ndarray of shape (n_samples,)
        Class labels (stratified on) or real-valued targets.
    groups : array-like of shape (n_samples,) or None, default=None
        Group labels passed to the splitter.
    classifier : bool
        Whether ``y`` holds class labels.
    random_state : int, RandomState instance or None, default=None
        Shuffles the folds of an int ``cv`` (None keeps the data order) and
        seeds the holdout split (None: an unseeded one, as ``train_test_split``).
    test_size : float or int, default=0.25
        The test part of ``cv="holdout"``, as in ``train_test_split``.

    Returns
    -------
    folds : list of tuple of (ndarray, ndarray)

    Raises
    ------
    ValueError
        Naming ``cv`` when it gives no folds, a fold with an empty side or
        indices outside the data, or when an int ``cv`` cannot make 2 folds.
    """
    if _is_count(cv):
        folds = _count_folds(cv, y, classifier, random_state)
    elif isinstance(cv, str) and cv == HOLDOUT:
        folds = _holdout(y, groups, classifier, random_state, test_size)
    else:
        folds = check_cv(cv, y, classifier=classifier).split(np.zeros((len(y), 1)), y, groups)
    return _checked(folds, len(y))


def score_split(probe, scoring, train_blocks, test_blocks, y_train, y_test, sample_weight=None):
    """The held-out scores of ``probe`` at every timestep of one split, along its path of ``C`` if it has one.

    A probe with a ``path_scores(train, test, scorer, sample_weight)`` method
    (:class:`~diffrep.probes.LogisticProbeCV`) is scored at every value of its
    path, one warm-started path per timestep; any other probe is fitted as
    given and scored once.

    Parameters
    ----------
    probe : estimator
        Cloned for every timestep.
    scoring : str, callable or None
        A scorer name or ``scorer(estimator, X, y)``; None is the probe's
        ``score`` (for a path probe, accuracy).
    train_blocks, test_blocks : sequence of ndarray
        The features of the training and of the test part, one block per timestep.
    y_train, y_test : ndarray
        Targets of the two parts.
    sample_weight : tuple of (ndarray, ndarray) or None, default=None
        Weights of the training and of the test part.

    Returns
    -------
    scores : ndarray of shape (n_timesteps, n_values)
        One column per value of the path (a single column without a path).
    """
    scorer = check_scoring(probe, scoring=scoring)
    parts = [((train, y_train), (test, y_test)) for train, test in zip(train_blocks, test_blocks)]
    if hasattr(probe, "path_scores"):
        path_scorer = None if scoring is None else scorer
        return np.array([probe.path_scores(train, test, path_scorer, sample_weight) for train, test in parts])
    return np.array([[score_probe(probe, scorer, train, test, sample_weight)] for train, test in parts])


def best_of_path(path_scores):
    """Each timestep's fold scores at the value of its path with the best mean over folds.

    Parameters
    ----------
    path_scores : ndarray of shape (n_timesteps, n_folds, n_values)
        As :func:`score_split` gives them, one split per fold.

    Returns
    -------
    scores : ndarray of shape (n_timesteps, n_folds)
    """
    best = path_scores.mean(axis=1).argmax(axis=1)
    return path_scores[np.arange(len(path_scores)), :, best]


def score_timesteps(probe, scoring, blocks, y, folds, sample_weight=None):
    """The score of ``probe`` at every timestep and fold, on features extracted once for all samples.

    The one scoring rule of the ensembles' selection and of the curves: a
    path probe scores as the value of ``C`` whose mean over the folds is best
    (the same folds for every value and timestep); any other probe as it is
    fitted on each training part.

    Parameters
    ----------
    probe : estimator
    scoring : str, callable or None
        See :func:`score_split`.
    blocks : sequence of ndarray
        The features of all samples, one ``(n_samples, width)`` block per timestep.
    y : ndarray of shape (n_samples,)
    folds : list of tuple of (ndarray, ndarray)
        As :func:`make_folds` returns them.
    sample_weight : ndarray of shape (n_samples,) or None, default=None

    Returns
    -------
    scores : ndarray of shape (n_timesteps, n_folds)
    path_scores : ndarray of shape (n_timesteps, n_folds, n_values)
        The scores of every value of the path (one value without a path).
    """
    path_scores = np.stack(
        [
            score_split(
                probe, scoring, [block[train] for block in blocks], [block[test] for block in blocks],
                y[train], y[test], None if sample_weight is None else (sample_weight[train], sample_weight[test]),
            )
            for train, test in folds
        ],
        axis=1,
    )
    return best_of_path(path_scores), path_scores
