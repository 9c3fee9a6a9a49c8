"""Checks of parameters and inputs, each raising an error that names what was wrong."""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.utils.validation import validate_data


def check_choice(name, value, options):
    """Raise ``ValueError`` unless ``value`` is one of ``options``."""
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {tuple(options)}, got {value!r}.")


def check_int(name, value, minimum=1):
    """Raise unless ``value`` is an integer ``>= minimum``; return it as ``int``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} of type {type(value).__name__}.")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}.")
    return int(value)


def check_float(name, value, low=0.0, high=np.inf, low_inclusive=False):
    """Raise unless ``value`` is a real number in the given interval; return it as ``float``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r} of type {type(value).__name__}.")
    too_low = value < low if low_inclusive else value <= low
    if too_low or value > high or not np.isfinite(value):
        bracket = "[" if low_inclusive else "("
        raise ValueError(f"{name} must be in {bracket}{low}, {high}], got {value}.")
    return float(value)


def check_finite_features(features):
    """Raise ``ValueError`` when features hold NaN or infinity; return them otherwise.

    Finite inputs give non-finite features only when they lie so far outside
    the training range that the denoiser's activations overflow.

    Parameters
    ----------
    features : ndarray of shape (n_samples, n_features)

    Returns
    -------
    features : ndarray
        The same array.
    """
    bad = ~np.isfinite(features).all(axis=1)
    if bad.any():
        raise ValueError(
            f"The features of {int(bad.sum())} of {len(features)} samples (e.g. row {int(np.argmax(bad))} of X) "
            "are NaN or infinite: those inputs lie so far outside the range of the training data that the "
            "denoiser's activations overflow. Check their scale."
        )
    return features


def check_timesteps(timesteps, num_train_timesteps, name="timesteps"):
    """Validate schedule indices; return them as a tuple of ``int``.

    Parameters
    ----------
    timesteps : int or sequence of int
        Indices into the training schedule, ``0 <= t < num_train_timesteps``.
    num_train_timesteps : int
    name : str, default="timesteps"
        Parameter name used in error messages.

    Returns
    -------
    timesteps : tuple of int
    """
    values = [timesteps] if isinstance(timesteps, numbers.Number) else timesteps
    try:
        values = list(values)
    except TypeError:
        raise TypeError(f"{name} must be an integer or a sequence of integers, got {timesteps!r}.") from None
    if not values:
        raise ValueError(f"{name} must not be empty.")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(
                f"{name} must be integer schedule indices (larger = noisier), got {value!r}; "
                "use DiffusionFeaturizer.timesteps_for_sigmas to convert noise levels."
            )
        if not 0 <= value < num_train_timesteps:
            raise ValueError(
                f"{name} must lie in [0, {num_train_timesteps - 1}] (the training schedule), got {value}."
            )
    if len(set(values)) != len(values):
        raise ValueError(f"{name} must not repeat a value, got {list(values)}.")
    return tuple(int(value) for value in values)


def capturable_layers(network):
    """Block-level submodule names worth listing in error messages (at most one dot)."""
    return [name for name, _ in network.named_modules() if name and name.count(".") <= 1]


def check_layers(layers, network, default, special=("x0",)):
    """Validate layer names against the network's submodules; return a tuple.

    Parameters
    ----------
    layers : str, sequence of str or None
        None selects ``default``.
    network : torch.nn.Module
    default : tuple of str
    special : tuple of str, default=("x0",)
        Sources that are not submodules.

    Returns
    -------
    layers : tuple of str
    """
    if layers is None:
        layers = default
    if isinstance(layers, str):
        layers = (layers,)
    layers = tuple(layers)
    if not layers or not all(isinstance(name, str) for name in layers):
        raise TypeError(f"layers must be a non-empty sequence of module names, got {layers!r}.")
    modules = dict(network.named_modules())
    unknown = [name for name in layers if name not in modules and name not in special]
    if unknown:
        valid = list(special) + capturable_layers(network)
        raise ValueError(f"layers {unknown} are not modules of the denoiser; valid names include {valid}.")
    if len(set(layers)) != len(layers):
        raise ValueError(f"layers must not repeat a name, got {list(layers)}.")
    return layers


def read_samples(estimator, X, image_shape, reset):
    """Validate ``X`` and return it as a 2-D float array plus the shape of one sample.

    Accepts 2-D ``(n, features)`` input (tabular, or flattened images when
    ``image_shape`` is given), 3-D ``(n, H, W)`` and 4-D ``(n, C, H, W)`` images.

    Parameters
    ----------
    estimator : BaseEstimator
        Receives ``n_features_in_`` (and ``feature_names_in_``) when ``reset``.
    X : array-like or pandas DataFrame
    image_shape : tuple of int or None
        ``(C, H, W)`` for flattened images, or None.
    reset : bool
        True in ``fit``; False later, when the shape must match the fitted one.

    Returns
    -------
    X_2d : ndarray of shape (n_samples, n_features)
        A validated array; never the caller's array modified in place.
    sample_shape : tuple of int
        ``(C, H, W)`` for images, ``(n_features,)`` for tables.
    """
    array = X if hasattr(X, "iloc") or hasattr(X, "tocsr") else np.asarray(X)
    nd_shape = None
    if getattr(array, "ndim", 2) in (3, 4):
        nd_shape = array.shape[1:] if array.ndim == 4 else (1, *array.shape[1:])
        array = array.reshape(array.shape[0], int(np.prod(nd_shape)))  # explicit: also for 0 samples
    elif getattr(array, "ndim", 2) > 4:
        raise ValueError(
            f"X must be 2-D (n_samples, n_features), 3-D (n, H, W) or 4-D (n, C, H, W); "
            f"got an array with {array.ndim} dimension(s)."
        )
    X_2d = validate_data(
        estimator, array, reset=reset, dtype=[np.float64, np.float32], ensure_min_samples=2 if reset else 1
    )
    if image_shape is not None:
        image_shape = check_image_shape(image_shape)
        if nd_shape is not None and tuple(nd_shape) != image_shape:
            raise ValueError(f"X has images of shape {tuple(nd_shape)}, but image_shape={image_shape}.")
        if int(np.prod(image_shape)) != X_2d.shape[1]:
            raise ValueError(
                f"image_shape={image_shape} has {int(np.prod(image_shape))} values per image, "
                f"but X has {X_2d.shape[1]} features."
            )
        return X_2d, image_shape
    if nd_shape is not None:
        return X_2d, tuple(int(v) for v in nd_shape)
    return X_2d, (X_2d.shape[1],)


def check_image_shape(image_shape):
    """Validate ``image_shape``: three positive integers ``(C, H, W)``."""
    try:
        shape = tuple(image_shape)
    except TypeError:
        shape = ()
    if len(shape) != 3 or any(isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1 for v in shape):
        raise ValueError(f"image_shape must be three positive integers (C, H, W), got {image_shape!r}.")
    return tuple(int(v) for v in shape)
