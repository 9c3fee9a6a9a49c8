"""Checks that need the data or the resolved denoiser, each raising an error that names what was wrong.

Parameter types and ranges are declared as sklearn constraints on the
estimators and functions; what is left here depends on ``X``, on the network
or on its schedule.
"""

from __future__ import annotations

import numbers
from numbers import Integral

import numpy as np
from sklearn.utils.validation import validate_data

from .sklearn_compat import Interval


class Count(Interval):
    """Constraint: an integer ``>= low`` (and ``<= high`` when given); unlike sklearn's ``Interval(Integral, ...)``, never a bool."""

    def __init__(self, low, high=None):
        super().__init__(Integral, low, high, closed="left" if high is None else "both")

    def is_satisfied_by(self, val):
        return not isinstance(val, (bool, np.bool_)) and super().is_satisfied_by(val)


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


def check_timesteps(timesteps, num_train_timesteps=None, name="timesteps"):
    """Validate schedule indices; return them as a tuple of ``int``.

    Parameters
    ----------
    timesteps : int or sequence of int
        Indices into the training schedule, ``0 <= t < num_train_timesteps``.
    num_train_timesteps : int or None, default=None
        Length of the schedule; None (before the denoiser is resolved) checks
        everything but the upper bound.
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
        if value < 0 or (num_train_timesteps is not None and value >= num_train_timesteps):
            upper = "the length of the training schedule" if num_train_timesteps is None else num_train_timesteps - 1
            raise ValueError(f"{name} must lie in [0, {upper}] (the training schedule), got {value}.")
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
    if "" in layers:
        raise ValueError(
            "layers must name modules of the denoiser; '' (the whole network, one feature per timestep) is not "
            f"a feature source, got {list(layers)}. Use 'x0' for the denoiser's estimate of the clean input."
        )
    modules = dict(network.named_modules())
    unknown = [name for name in layers if name not in modules and name not in special]
    if unknown:
        valid = list(special) + capturable_layers(network)
        raise ValueError(f"layers {unknown} are not modules of the denoiser; valid names include {valid}.")
    if len(set(layers)) != len(layers):
        raise ValueError(f"layers must not repeat a name, got {list(layers)}.")
    return layers


DATA_FORMATS = ("auto", "channels_first", "channels_last")


def channel_axis(sample_shape, data_format, image_shape=None):
    """``"channels_first"`` or ``"channels_last"``: how to read 4-D samples of ``sample_shape``.

    With ``data_format="auto"`` a given ``image_shape`` ``(C, H, W)`` decides
    when it matches either order; otherwise the channel axis is the second or
    the last one, whichever is smaller than both others (the channels-last
    reading needs ``C`` in {1, 3, 4}, as image libraries give). Anything else is
    ambiguous and refused. This is diffrep's one rule for the channel axis.

    Parameters
    ----------
    sample_shape : tuple of int
        The three axes of one 4-D sample, ``array.shape[1:]``.
    data_format : {"auto", "channels_first", "channels_last"}
    image_shape : tuple of int, optional
        A validated ``(C, H, W)``.

    Returns
    -------
    data_format : {"channels_first", "channels_last"}

    Raises
    ------
    ValueError
        If ``data_format="auto"`` and the shape is ambiguous.
    """
    if data_format != "auto":
        return data_format
    a, b, c = sample_shape
    if image_shape is not None:
        if tuple(sample_shape) == image_shape:
            return "channels_first"
        if tuple(sample_shape) == (*image_shape[1:], image_shape[0]):
            return "channels_last"
    if a < min(b, c):
        return "channels_first"
    if c in (1, 3, 4) and c < min(a, b):
        return "channels_last"
    raise ValueError(
        f"X has samples of shape {tuple(sample_shape)}: cannot tell which axis holds the channels. "
        "Pass data_format='channels_first' for (n, C, H, W) arrays or data_format='channels_last' "
        "for (n, H, W, C) arrays."
    )


def _to_channels_first(array, data_format, image_shape):
    """4-D ``array`` as ``(n, C, H, W)``; a channels-last array is transposed (a view)."""
    if channel_axis(array.shape[1:], data_format, image_shape) == "channels_last":
        return np.moveaxis(array, -1, 1)
    return array


def _as_array(X):
    """``X`` itself when a DataFrame or sparse matrix, else ``np.asarray(X)``."""
    return X if hasattr(X, "iloc") or hasattr(X, "tocsr") else np.asarray(X)


def resolve_data_format(X, image_shape, data_format):
    """The layout in which to read ``X``: ``"channels_first"``, ``"channels_last"`` or None for tables.

    Parameters
    ----------
    X : array-like
    image_shape : tuple of int or None
        A validated ``(C, H, W)``, or None.
    data_format : {"auto", "channels_first", "channels_last"}

    Returns
    -------
    data_format : {"channels_first", "channels_last"} or None
    """
    array = _as_array(X)
    ndim = getattr(array, "ndim", 2)
    if ndim == 4:
        return channel_axis(array.shape[1:], data_format, image_shape)
    if ndim == 3 or image_shape is not None:
        return "channels_first" if data_format == "auto" else data_format
    if data_format == "channels_last":
        raise ValueError(
            "data_format='channels_last' describes images, but X is a table: pass 4-D images, or "
            "image_shape=(C, H, W) for images flattened in (H, W, C) order."
        )
    return None


def check_numeric(X):
    """Raise a ``ValueError`` that suggests an encoder when ``X`` holds text.

    Parameters
    ----------
    X : array-like or pandas DataFrame
    """
    dtypes = getattr(X, "dtypes", None)
    if dtypes is not None and hasattr(dtypes, "items"):
        bad = [str(name) for name, dtype in dtypes.items() if dtype.kind not in "biuf" and not _is_numbers(X[name])]
    else:
        bad = [] if getattr(X, "dtype", np.dtype(float)).kind not in "OUS" or _is_numbers(X) else ["?"]
    if bad:
        where = f"column(s) {bad}" if bad != ["?"] else "values"
        raise ValueError(
            f"X has non-numeric {where} (text or categories), which a denoiser cannot take. Encode them "
            "first, e.g. make_column_transformer((OneHotEncoder(), categorical_columns), "
            "remainder='passthrough') or an OrdinalEncoder in a ColumnTransformer before the featurizer."
        )


def _is_numbers(values):
    """Whether ``values`` convert to float; a ``TypeError`` (a dict, a list) is left to propagate."""
    try:
        np.asarray(values, dtype=np.float64)
    except ValueError:
        return False
    return True


def read_samples(estimator, X, image_shape, reset, data_format="auto"):
    """Validate ``X`` and return it as a 2-D float array plus the shape of one sample.

    Accepts 2-D ``(n, features)`` input (tabular, or flattened images when
    ``image_shape`` is given), 3-D ``(n, H, W)`` and 4-D ``(n, C, H, W)`` or
    ``(n, H, W, C)`` images. Images are returned channels-first, flattened.

    Parameters
    ----------
    estimator : BaseEstimator
        Receives ``n_features_in_`` (and ``feature_names_in_``) when ``reset``.
    X : array-like or pandas DataFrame
    image_shape : tuple of int or None
        ``(C, H, W)`` for flattened images (validated by :func:`check_image_shape`), or None.
    reset : bool
        True in ``fit``; False later, when the shape must match the fitted one.
    data_format : {"auto", "channels_first", "channels_last"}, default="auto"
        Layout of 4-D ``X`` (and of the columns of 2-D ``X`` with ``image_shape``).
        ``"auto"`` reads 4-D ``X`` as channels-first when its second axis is
        smaller than the two others, as channels-last when its last axis is 1, 3
        or 4 and smaller than the two others, and refuses any other shape; 2-D
        columns are then in ``(C, H, W)`` order.

    Returns
    -------
    X_2d : ndarray of shape (n_samples, n_features)
        A validated array, channels-first for images; never the caller's array
        modified in place.
    sample_shape : tuple of int
        ``(C, H, W)`` for images, ``(n_features,)`` for tables.
    """
    check_numeric(X)
    array = _as_array(X)
    if image_shape is not None:
        image_shape = tuple(int(v) for v in image_shape)
    nd_shape = None
    if getattr(array, "ndim", 2) == 4:
        array = _to_channels_first(array, data_format, image_shape)
    if getattr(array, "ndim", 2) in (3, 4):
        nd_shape = array.shape[1:] if array.ndim == 4 else (1, *array.shape[1:])
        array = array.reshape(array.shape[0], int(np.prod(nd_shape)))  # explicit: also for 0 samples
    elif getattr(array, "ndim", 2) > 4:
        raise ValueError(
            f"X must be 2-D (n_samples, n_features), 3-D (n, H, W) or 4-D (n, C, H, W) / (n, H, W, C); "
            f"got an array with {array.ndim} dimension(s)."
        )
    X_2d = validate_data(
        estimator, array, reset=reset, dtype=[np.float64, np.float32], ensure_min_samples=2 if reset else 1
    )
    if image_shape is not None:
        if nd_shape is not None and tuple(nd_shape) != image_shape:
            raise ValueError(f"X has images of shape {tuple(nd_shape)}, but image_shape={image_shape}.")
        if int(np.prod(image_shape)) != X_2d.shape[1]:
            raise ValueError(
                f"image_shape={image_shape} has {int(np.prod(image_shape))} values per image, "
                f"but X has {X_2d.shape[1]} features."
            )
        if nd_shape is None and data_format == "channels_last":  # columns in (H, W, C) order
            channels, height, width = image_shape
            X_2d = X_2d.reshape(-1, height, width, channels).transpose(0, 3, 1, 2).reshape(len(X_2d), -1)
        return X_2d, image_shape
    if nd_shape is not None:
        return X_2d, tuple(int(v) for v in nd_shape)
    return X_2d, (X_2d.shape[1],)


def check_image_shape(image_shape, data_format="auto"):
    """Validate ``image_shape``: three positive integers ``(C, H, W)``, channels first.

    A shape that reads as ``(H, W, C)`` (last entry 1, 3 or 4 and smaller than
    both others, first entry larger than 4) is refused unless
    ``data_format="channels_first"`` says it really is ``(C, H, W)``.

    Parameters
    ----------
    image_shape : tuple of int
    data_format : {"auto", "channels_first", "channels_last"}, default="auto"

    Returns
    -------
    image_shape : tuple of int
    """
    try:
        shape = tuple(image_shape)
    except TypeError:
        shape = ()
    if len(shape) != 3 or any(isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1 for v in shape):
        raise ValueError(f"image_shape must be three positive integers (C, H, W), got {image_shape!r}.")
    channels, height, width = (int(v) for v in shape)
    if data_format != "channels_first" and width in (1, 3, 4) and width < min(channels, height) and channels > 4:
        raise ValueError(
            f"image_shape must be (C, H, W), channels first; {tuple(shape)} reads as (H, W, C): pass "
            f"image_shape={(width, channels, height)} (with data_format='channels_last' if the columns of X "
            "are in (H, W, C) order), or data_format='channels_first' if it really is (C, H, W)."
        )
    return channels, height, width


def check_pooling_grid(pooling_grid):
    """Validate ``pooling_grid``: a positive integer or a pair of them; return ``(rows, columns)``.

    Parameters
    ----------
    pooling_grid : int or tuple of (int, int)
        Cells per side of the pooling grid; an int means a square grid.

    Returns
    -------
    grid : tuple of (int, int)
    """
    cells = (pooling_grid, pooling_grid) if isinstance(pooling_grid, numbers.Integral) else pooling_grid
    try:
        cells = tuple(cells)
    except TypeError:
        cells = ()
    if len(cells) != 2 or any(isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral) or v < 1
                              for v in cells):
        raise ValueError(
            f"pooling_grid must be a positive integer or a pair (rows, columns) of them, got {pooling_grid!r}."
        )
    return int(cells[0]), int(cells[1])
