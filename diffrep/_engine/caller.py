"""Where diffrep's warnings point: at the first caller outside diffrep, the line a user wrote."""

from __future__ import annotations

import sys

_PACKAGE = __name__.split(".")[0]
# scikit-learn's wrappers around diffrep's methods (_fit_context, validate_params, set_output): skipped too.
_WRAPPERS = frozenset({"sklearn.base", "sklearn.utils._param_validation", "sklearn.utils._set_output"})


def _inside(frame):
    """Whether ``frame`` runs diffrep's code or a scikit-learn wrapper around it."""
    module = frame.f_globals.get("__name__", "")
    return module.partition(".")[0] == _PACKAGE or module in _WRAPPERS


def user_stacklevel():
    """The ``stacklevel`` for ``warnings.warn`` that names the first frame outside diffrep.

    Counted from the function that calls ``warnings.warn`` (level 1): a
    warning raised deep in the engine is shown at the user's ``fit`` or
    ``transform`` line (or at the scikit-learn routine, such as
    ``cross_val_score``, that called it), however many of diffrep's own
    functions and scikit-learn's method wrappers lie between.

    Returns
    -------
    stacklevel : int
    """
    frame, level = sys._getframe(1), 1
    while frame is not None and _inside(frame):
        frame, level = frame.f_back, level + 1
    return level
