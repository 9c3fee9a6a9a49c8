"""The one door to scikit-learn's private API: every module of diffrep imports these names from here.

diffrep relies on a few names scikit-learn does not promise to keep (the
parameter constraints and ``validate_params``, ``_fit_context``,
``_check_sample_weight``, ``_check_feature_names_in``, ``_safe_indexing``).
They are looked up here, once, so that a scikit-learn release that moves or
drops one fails at import with an error naming the missing name and the
supported range, instead of breaking every estimator with its own traceback.
This module imports nothing of diffrep's, so every layer may import it.
"""

from __future__ import annotations

import importlib

import sklearn

SUPPORTED_SKLEARN = ">=1.6,<1.10"

# Public name here -> (scikit-learn module, name there). Keep in step with pyproject's scikit-learn range.
PRIVATE_NAMES = {
    "fit_context": ("sklearn.base", "_fit_context"),
    "check_sample_weight": ("sklearn.utils.validation", "_check_sample_weight"),
    "check_feature_names_in": ("sklearn.utils.validation", "_check_feature_names_in"),
    "safe_indexing": ("sklearn.utils", "_safe_indexing"),
    "HasMethods": ("sklearn.utils._param_validation", "HasMethods"),
    "Interval": ("sklearn.utils._param_validation", "Interval"),
    "InvalidParameterError": ("sklearn.utils._param_validation", "InvalidParameterError"),
    "RealNotInt": ("sklearn.utils._param_validation", "RealNotInt"),
    "StrOptions": ("sklearn.utils._param_validation", "StrOptions"),
    "validate_params": ("sklearn.utils._param_validation", "validate_params"),
}


def private_name(module, name):
    """Return scikit-learn's ``module.name``, or raise an ``ImportError`` that names it.

    Parameters
    ----------
    module : str
        The scikit-learn module, such as ``"sklearn.base"``.
    name : str
        The name inside it, such as ``"_fit_context"``.

    Returns
    -------
    value : object
        What scikit-learn defines under that name.

    Raises
    ------
    ImportError
        When the installed scikit-learn has no such module or name.
    """
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as error:
        raise ImportError(
            f"diffrep uses scikit-learn's {module}.{name}, which scikit-learn {sklearn.__version__} does not "
            f"have; diffrep supports scikit-learn{SUPPORTED_SKLEARN}: install a version in that range "
            f"(pip install 'scikit-learn{SUPPORTED_SKLEARN}')."
        ) from error


fit_context = private_name(*PRIVATE_NAMES["fit_context"])
check_sample_weight = private_name(*PRIVATE_NAMES["check_sample_weight"])
check_feature_names_in = private_name(*PRIVATE_NAMES["check_feature_names_in"])
safe_indexing = private_name(*PRIVATE_NAMES["safe_indexing"])
HasMethods = private_name(*PRIVATE_NAMES["HasMethods"])
Interval = private_name(*PRIVATE_NAMES["Interval"])
InvalidParameterError = private_name(*PRIVATE_NAMES["InvalidParameterError"])
RealNotInt = private_name(*PRIVATE_NAMES["RealNotInt"])
StrOptions = private_name(*PRIVATE_NAMES["StrOptions"])
validate_params = private_name(*PRIVATE_NAMES["validate_params"])
