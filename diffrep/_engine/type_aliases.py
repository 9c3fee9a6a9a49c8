"""Names for the parameter types that recur across diffrep's public signatures."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any, Union

import numpy as np

#: ``random_state``: an int seed, a ``RandomState`` or None (fresh entropy), as in scikit-learn.
RandomStateLike = Union[int, np.random.RandomState, None]
#: Timestep indices into the training schedule: one or several.
TimestepsLike = Union[int, Sequence[int]]
#: ``cv``: a number of folds, a scikit-learn splitter or an iterable of (train, test) index pairs.
CVLike = Union[int, Iterable[Any], Any, None]
#: A file or directory.
PathLike = Union[str, "os.PathLike[str]"]
