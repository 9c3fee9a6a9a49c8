"""The warning classes of diffrep, on the ground floor so that every layer may raise them.

They are public as :mod:`diffrep.exceptions`. Every warning diffrep raises is
a :class:`DiffrepWarning`, so ``warnings.filterwarnings("ignore",
category=CostWarning)`` silences the training-time notice and nothing else.
"""

from __future__ import annotations


class DiffrepWarning(UserWarning):
    """Base class of every warning diffrep raises.

    A subclass of ``UserWarning``, so filters written for that still apply.
    """


class CostWarning(DiffrepWarning):
    """A training will take long: the notice, given once, with its estimate and how to shorten it."""


class CacheWarning(DiffrepWarning):
    """The ``memory=`` cache was not used: an entry unreadable or unwritable, or a seed that cannot repeat."""


class CheckpointWarning(DiffrepWarning):
    """A training checkpoint could not be written, or an existing one is ignored."""


class DeviceWarning(DiffrepWarning):
    """The device fell short: a fitted device missing here, or memory that forced smaller batches."""


class SaveWarning(DiffrepWarning):
    """A saved featurizer read without its checksums: a save written by an older diffrep."""


class InputWarning(DiffrepWarning):
    """Input that is read, but perhaps not as meant: an image file read at less than its depth, or data
    whose value range differs clearly from what the featurizer was fitted on."""
