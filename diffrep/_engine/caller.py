"""Where diffrep's warnings point: at the first caller outside diffrep, the line a user wrote."""

from __future__ import annotations

import sys

# Packages whose frames lie between the user's line and diffrep's warning: diffrep itself, and
# scikit-learn and joblib, which call diffrep from Pipeline, cross_val_score, GridSearchCV and
# their method wrappers (fit_context, validate_params, set_output).
_SKIPPED_PACKAGES = frozenset({__name__.split(".")[0], "sklearn", "joblib"})


def _inside(frame):
    """Whether ``frame`` runs the code of diffrep, scikit-learn or joblib."""
    return frame.f_globals.get("__name__", "").partition(".")[0] in _SKIPPED_PACKAGES


def user_stacklevel():
    """The ``stacklevel`` for ``warnings.warn`` that names the first frame outside diffrep, sklearn and joblib.

    Counted from the function that calls ``warnings.warn`` (level 1): a
    warning raised deep in the engine is shown at the user's ``fit`` or
    ``transform`` line, also when a ``Pipeline``, ``cross_val_score`` or
    ``GridSearchCV`` called diffrep, however many of diffrep's, scikit-learn's
    and joblib's functions lie between.

    Returns
    -------
    stacklevel : int
    """
    frame, level = sys._getframe(1), 1
    while frame is not None and _inside(frame):
        frame, level = frame.f_back, level + 1
    return level
