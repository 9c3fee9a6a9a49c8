"""Finding the featurizer inside a Pipeline (at any depth), with the steps before and after it."""

from __future__ import annotations

from typing import NamedTuple

from sklearn.base import clone
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


def _is_featurizer(step):
    """A DiffusionFeaturizer, frozen or not: it has ``extract`` (FrozenEstimator forwards attributes)."""
    return callable(getattr(step, "extract", None))


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
        if _is_featurizer(step):
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
