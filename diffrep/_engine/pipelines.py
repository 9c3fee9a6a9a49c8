"""What counts as a featurizer, and finding it: unwrapped from ``FrozenEstimator``, inside a Pipeline at any depth.

The one place that decides it for the ensembles, the studies and the
reports: a featurizer is an estimator with ``extract(X, timesteps)`` (a
``DiffusionFeaturizer``, or one wrapped in ``sklearn.frozen.FrozenEstimator``,
which forwards attributes).
"""

from __future__ import annotations

from typing import NamedTuple

from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import Pipeline


class FeaturizerSlot(NamedTuple):
    """Where a featurizer sits: ``owner.set_params(**{name: ...})`` replaces it.

    ``before`` are the steps that transform ``X`` on its way to the featurizer,
    in order; ``after`` the steps that receive its features.
    """

    owner: object
    name: str
    featurizer: object
    before: list
    after: list


def is_featurizer(step):
    """Whether ``step`` is a featurizer: a DiffusionFeaturizer, frozen or not (it has ``extract``).

    Parameters
    ----------
    step : object

    Returns
    -------
    bool
    """
    return callable(getattr(step, "extract", None))


def is_frozen(featurizer):
    """Whether ``featurizer`` is wrapped in ``FrozenEstimator``: fitted already, never refitted.

    Parameters
    ----------
    featurizer : object

    Returns
    -------
    bool
    """
    return isinstance(featurizer, FrozenEstimator)


def unwrapped(featurizer):
    """The featurizer itself: a ``FrozenEstimator``'s estimator, anything else as is.

    Parameters
    ----------
    featurizer : object

    Returns
    -------
    featurizer : object
    """
    return featurizer.estimator if is_frozen(featurizer) else featurizer


def check_featurizer(featurizer):
    """Raise ``TypeError`` unless ``featurizer`` is a featurizer; return it.

    Parameters
    ----------
    featurizer : object
        A DiffusionFeaturizer, or one wrapped in ``FrozenEstimator``.

    Returns
    -------
    featurizer : object
    """
    if not is_featurizer(featurizer):
        raise TypeError(
            "featurizer must be a DiffusionFeaturizer (or one wrapped in FrozenEstimator, or a Pipeline that "
            f"contains one) with an extract(X, timesteps) method, got {type(featurizer).__name__}."
        )
    return featurizer


def split_at_featurizer(featurizer):
    """``(featurizer, steps before it, steps after it)`` of a featurizer or of a Pipeline that contains one.

    Parameters
    ----------
    featurizer : estimator
        A featurizer, or a Pipeline with one at any position (at any depth).

    Returns
    -------
    featurizer : object
    before : list of estimators
        The steps that transform ``X`` on its way to the featurizer.
    after : list of estimators
        The steps that receive its features.

    Raises
    ------
    TypeError
        If there is no featurizer.
    """
    slot = locate_featurizer(featurizer)
    if slot is None:
        return check_featurizer(featurizer), [], []
    return slot.featurizer, slot.before, slot.after


def _live(steps):
    return [step for _, step in steps if step is not None and not isinstance(step, str)]


def locate_featurizer(estimator, before=(), after=()):
    """The first featurizer that ``X`` reaches in ``estimator``, or None.

    That is a DiffusionFeaturizer (frozen or not) that is a step of a
    Pipeline, at any position and in nested pipelines: the steps before it (a
    ``ColumnTransformer``, say) are returned in ``before``.

    Parameters
    ----------
    estimator : estimator
    before : sequence of estimators, default=()
        Steps that precede ``estimator`` (used when recursing).
    after : sequence of estimators, default=()
        Steps that follow ``estimator`` (used when recursing).

    Returns
    -------
    slot : FeaturizerSlot or None
    """
    if not isinstance(estimator, Pipeline):
        return None
    before = list(before)
    for index, (name, step) in enumerate(estimator.steps):
        if step is None or isinstance(step, str):  # "passthrough"
            continue
        rest = _live(estimator.steps[index + 1 :]) + list(after)
        if is_featurizer(step):
            return FeaturizerSlot(estimator, name, step, before, rest)
        found = locate_featurizer(step, before, rest)
        if found is not None:
            return found
        before.append(step)
    return None


def chain(steps):
    """A Pipeline of clones of ``steps`` (named ``step0``, ``step1`` ...), or None when there are none.

    Parameters
    ----------
    steps : sequence of estimators

    Returns
    -------
    pipeline : sklearn.pipeline.Pipeline or None
    """
    if not steps:
        return None
    return Pipeline([(f"step{i}", clone(step)) for i, step in enumerate(steps)])
