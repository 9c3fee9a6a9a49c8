"""Tuned baselines to measure diffusion features against.

A gain is only a gain against a fair baseline: raw inputs deserve the same
probe and more tuning than the diffusion features get. These are the baselines
the demo, the examples and the docs report next to every diffusion result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sklearn.decomposition import PCA
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .probes import DEFAULT_CS, LogisticProbeCV

if TYPE_CHECKING:
    from ._engine.type_aliases import CVLike


def tuned_probe(n_components: int | float | None = None, cv: CVLike = 3):
    """The default probe for raw inputs, with the same tuning of ``C``; optionally after a PCA.

    :class:`~diffrep.probes.LogisticProbeCV` is what the ensembles and the
    studies fit on diffusion features: the same standardization, the same
    candidates ``C`` in ``DEFAULT_CS`` and the same folds, so a comparison
    with it gives the raw inputs the same probe budget.

    Parameters
    ----------
    n_components : int, float or None, default=None
        Principal components kept after standardizing (as in
        ``sklearn.decomposition.PCA``); None keeps every feature.
    cv : int, default=3
        Folds of the choice of ``C``.

    Returns
    -------
    probe : LogisticProbeCV or sklearn.pipeline.Pipeline
        The probe, or ``make_pipeline(StandardScaler(), PCA(n_components), probe)``.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from diffrep.baselines import tuned_probe
    >>> X, y = load_digits(return_X_y=True)
    >>> tuned_probe(n_components=16).fit(X[:300], y[:300])[-1].C_ > 0
    True
    """
    probe = LogisticProbeCV(Cs=DEFAULT_CS, cv=cv)
    if n_components is None:
        return probe
    return make_pipeline(StandardScaler(), PCA(n_components=n_components, random_state=0), probe)
