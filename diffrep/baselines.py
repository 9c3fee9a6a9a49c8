"""Tuned baselines to measure diffusion features against.

A gain is only a gain against a fair baseline: raw inputs deserve the same
probe and more tuning than the diffusion features get. These are the baselines
the demo, the examples and the docs report next to every diffusion result.
"""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

C_GRID = tuple(np.logspace(-3, 2, 6))


def tuned_probe(n_components=None, cv=3):
    """Standardize (optionally PCA), then logistic regression with ``C`` tuned by cross-validation.

    Parameters
    ----------
    n_components : int, float or None, default=None
        Principal components kept after standardizing (as in
        ``sklearn.decomposition.PCA``); None keeps every feature.
    cv : int, default=3
        Folds of the grid search over ``C`` in ``C_GRID`` (1e-3 .. 1e2).

    Returns
    -------
    probe : sklearn.model_selection.GridSearchCV
        Refits the best ``C`` on all the data it is fitted on.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from diffrep.baselines import tuned_probe
    >>> X, y = load_digits(return_X_y=True)
    >>> tuned_probe(n_components=16).fit(X[:300], y[:300]).best_params_["logisticregression__C"] > 0
    True
    """
    steps = [("standardscaler", StandardScaler())]
    if n_components is not None:
        steps.append(("pca", PCA(n_components=n_components, random_state=0)))
    steps.append(("logisticregression", LogisticRegression(max_iter=1000)))
    return GridSearchCV(Pipeline(steps), {"logisticregression__C": list(C_GRID)}, cv=cv)
