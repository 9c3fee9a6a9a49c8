"""The warnings diffrep raises, to filter them by class.

Examples
--------
>>> import warnings
>>> from diffrep.exceptions import CostWarning
>>> warnings.filterwarnings("ignore", category=CostWarning)
"""

from ._engine.notices import (
    CacheWarning,
    CheckpointWarning,
    CostWarning,
    DeviceWarning,
    DiffrepWarning,
    InputWarning,
    SaveWarning,
)

__all__ = ["CacheWarning", "CheckpointWarning", "CostWarning", "DeviceWarning", "DiffrepWarning", "InputWarning", "SaveWarning"]
