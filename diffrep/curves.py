"""Representation-dynamics curves: probe accuracy as a function of the noise level.

The paper's first finding (section 1.1): features of a trained denoiser give a
probe accuracy that first rises, then falls with the timestep; the peak is at
a small but nonzero noise level. :func:`representation_curve` measures that
curve with one denoiser training per cross-validation fold.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold
from sklearn.utils import _safe_indexing
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_consistent_length, column_or_1d

from ._validation import check_int, check_timesteps
from .ensemble import check_featurizer, default_probe, extract_blocks, fit_featurizer, schedule_length


def import_pandas():
    """Import pandas, or explain how to install it.

    Returns
    -------
    pandas : module

    Raises
    ------
    ImportError
        If pandas is not installed.
    """
    try:
        import pandas
    except ImportError:
        raise ImportError(
            "diffrep's result tables are pandas DataFrames: install pandas (pip install pandas)."
        ) from None
    return pandas


def score_table(rows, scores):
    """A tidy table of repeated scores: the given columns, ``mean``, ``std``, ``score_i``.

    Parameters
    ----------
    rows : list of dict
        Identifying columns of each row (e.g. ``{"timestep": 50, "sigma": 0.2}``).
    scores : list of sequence of float
        The scores of each row; every row has the same number.

    Returns
    -------
    table : pandas.DataFrame
    """
    pandas = import_pandas()
    scores = np.asarray(scores, dtype=float)
    table = pandas.DataFrame(rows)
    table["mean"] = scores.mean(axis=1)
    table["std"] = scores.std(axis=1)
    for i in range(scores.shape[1]):
        table[f"score_{i}"] = scores[:, i]
    return table


def representation_curve(featurizer, X, y, timesteps, estimator=None, cv=5, random_state=None):
    """Cross-validated probe accuracy at each timestep of one denoiser.

    For each stratified, shuffled fold the featurizer is fitted once on the
    training part (labels unused), features at every timestep come from one
    extraction, and a probe per timestep is fitted on the training part and
    scored on the held-out part. A featurizer wrapped in
    ``sklearn.frozen.FrozenEstimator`` is used as is in every fold (no
    training at all; it then may have seen the held-out images, never their
    labels).

    Timesteps index the denoiser's training schedule: **larger is noisier**.

    Parameters
    ----------
    featurizer : DiffusionFeaturizer or FrozenEstimator
        Settings of the denoiser to train per fold, or a frozen fitted one.
    X : array-like of shape (n_samples, n_features), (n, H, W) or (n, C, H, W)
    y : array-like of shape (n_samples,)
        Class labels.
    timesteps : sequence of int
        Timesteps to probe.
    estimator : classifier or None, default=None
        The probe, cloned per timestep and fold. None means
        ``make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))``.
    cv : int, default=5
        Number of folds.
    random_state : int, RandomState instance or None, default=None
        Shuffles the folds.

    Returns
    -------
    table : pandas.DataFrame
        One row per timestep, ascending: ``timestep``, ``sigma`` (noise level
        ``sqrt((1 - abar_t) / abar_t)``), ``mean`` and ``std`` of the accuracy
        over folds, then ``score_0`` .. ``score_{cv-1}``.

    See Also
    --------
    diffrep.NoiseEnsembleClassifier : Uses the best timesteps of such a curve.
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
    ['timestep', 'sigma', 'mean', 'std', 'score_0', 'score_1']
    """
    timesteps = tuple(sorted(check_timesteps(timesteps, schedule_length(check_featurizer(featurizer)))))
    cv = check_int("cv", cv, minimum=2)
    probe = default_probe() if estimator is None else estimator
    y = column_or_1d(y)
    check_consistent_length(X, y)
    check_classification_targets(y)
    folds = StratifiedKFold(n_splits=cv, shuffle=True, random_state=random_state).split(np.zeros(len(y)), y)
    scores = np.empty((len(timesteps), cv))
    for fold, (train, test) in enumerate(folds):
        X_train, X_test = _safe_indexing(X, train), _safe_indexing(X, test)
        fitted = fit_featurizer(featurizer, X_train)
        train_blocks = extract_blocks(fitted, X_train, timesteps)
        test_blocks = extract_blocks(fitted, X_test, timesteps)
        for i, (train_block, test_block) in enumerate(zip(train_blocks, test_blocks)):
            scores[i, fold] = clone(probe).fit(train_block, y[train]).score(test_block, y[test])
    sigmas = fitted.schedule_.sigmas(timesteps)
    rows = [{"timestep": t, "sigma": float(sigma)} for t, sigma in zip(timesteps, sigmas)]
    return score_table(rows, scores)
