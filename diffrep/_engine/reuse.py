"""Work shared within one study: trained denoisers and extracted features, for the duration of a ``with`` block.

The studies (:func:`~diffrep.representation_curve`,
:func:`~diffrep.label_noise_study`, the demo) run inside :func:`shared_work`.
Within it:

* a training whose :class:`~.training_config.TrainingConfig` fingerprint was
  already trained returns that very network (the in-process tier of the
  ``memory=`` cache, in front of its disk tier), so fits of equal settings on
  equal data train once, whatever estimator or Pipeline they sit in;
* a fitted featurizer's features of an input at a timestep are extracted once:
  later requests return a copy of the stored block, and a request for several
  timesteps extracts only the missing ones.

Features are deterministic per (sample, timestep), so reuse changes no result.
Everything is forgotten when the outermost ``with`` block ends; outside one,
nothing is kept. The scope is a context variable, so threads started inside do
not share it.
"""

from __future__ import annotations

import contextlib
import contextvars

import numpy as np

from .training_config import fingerprint_array

_SCOPE = contextvars.ContextVar("diffrep_shared_work", default=None)


class _Store:
    def __init__(self):
        self.trained = {}
        self.features = {}
        self.owners = []  # objects whose id() is part of a key stay alive while the scope lasts


@contextlib.contextmanager
def shared_work():
    """Share trainings and extractions until the block ends (nested blocks join the outer one)."""
    if _SCOPE.get() is not None:
        yield
        return
    token = _SCOPE.set(_Store())
    try:
        yield
    finally:
        _SCOPE.reset(token)


def is_sharing():
    """Whether a :func:`shared_work` block is open."""
    return _SCOPE.get() is not None


def trained_once(fingerprint, train):
    """``train()``, or the result of the training of the same fingerprint already run in this scope."""
    store = _SCOPE.get()
    if store is None or fingerprint is None:
        return train()
    if fingerprint not in store.trained:
        store.trained[fingerprint] = train()
    network, loss_curve = store.trained[fingerprint]
    return network, list(loss_curve)


def extracted_once(owner, key, X, timesteps, extract):
    """Features of ``X`` at ``timesteps`` (timestep-major blocks), extracting only the blocks not yet stored.

    Parameters
    ----------
    owner : object
        Kept alive for the scope, as ``key`` may hold its ``id``.
    key : hashable
        Identifies what the features depend on besides ``X`` and the timestep.
    X : ndarray
        The input, fingerprinted by content.
    timesteps : tuple of int
    extract : callable
        ``extract(timesteps) -> ndarray of shape (n_samples, n_timesteps * width)``.
    """
    store = _SCOPE.get()
    if store is None:
        return extract(timesteps)
    data = fingerprint_array(X)
    missing = tuple(t for t in timesteps if (key, data, t) not in store.features)
    if missing:
        store.owners.append(owner)
        blocks = np.split(extract(missing), len(missing), axis=1)
        store.features.update({(key, data, t): block for t, block in zip(missing, blocks)})
    return np.concatenate([store.features[key, data, t] for t in timesteps], axis=1)
