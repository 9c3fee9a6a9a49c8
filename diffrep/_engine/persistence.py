"""diffrep's own files in a saved featurizer directory, and the sealing of that directory.

``diffrep_config.json`` holds the featurizer's parameters and the fitted values
that are not weights (sample shape, layout, timesteps, layers, scaling kind,
training record, and the noise seed from which every sample's extraction noise
is derived); ``diffrep_state.safetensors`` holds its arrays (the data scaling);
``diffrep_manifest.json`` lists every file of the directory with its checksum.

A save is written into a temporary sibling directory and renamed into place
whole (:func:`staged_save`), so an interrupted save leaves the previous
directory as it was, and a save never writes through a symbolic link. A load
checks the manifest before reading anything, then every saved value.
"""

from __future__ import annotations

import contextlib
import json
import math
import numbers
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from .caller import user_stacklevel
from .files import atomic_write, staged_directory
from .manifest import MANIFEST_NAME, check_manifest, write_manifest
from .notices import SaveWarning
from .scaling import SCALINGS

CONFIG_NAME = "diffrep_config.json"
STATE_NAME = "diffrep_state.safetensors"
# 2: sealed by a manifest. 1: saves of diffrep 0.2, read unverified, with a warning.
FORMAT_VERSION = 2
UNSEALED_FORMAT_VERSION = 1
# Parameters that are not saved: where the model lives and runs, and caches of this machine.
LOCAL_PARAMS = ("denoiser", "device", "memory", "checkpoint_dir")
_NOISE_SEED_END = np.iinfo(np.int32).max


def _plain(value):
    """``value`` as JSON: numpy scalars and arrays as Python numbers and lists."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"save_pretrained cannot store a value of type {type(value).__name__} in {CONFIG_NAME}.")


def _saved_params(featurizer):
    params = {name: value for name, value in featurizer.get_params().items() if name not in LOCAL_PARAMS}
    if not isinstance(params.get("random_state"), (int, np.integer)):
        params["random_state"] = None  # a RandomState instance has no JSON form
    return params


# ------------------------------------------------------------------ writing
def check_save_destination(directory):
    """Raise ``ValueError`` unless a save may replace ``directory`` whole.

    Parameters
    ----------
    directory : pathlib.Path
        Missing, an empty directory, or a directory a previous save wrote
        (it holds a ``diffrep_config.json`` or ``diffrep_manifest.json``).
        Never a symbolic link, a file, or a directory of other files: a save
        replaces the whole directory, and must not delete what it did not write.
    """
    if directory.is_symlink():
        raise ValueError(
            f"save_pretrained: {directory} is a symbolic link; a save replaces the whole directory and never "
            "writes through links. Save to the directory the link points to, or remove the link."
        )
    if not directory.exists():
        return
    if not directory.is_dir():
        raise ValueError(f"save_pretrained: {directory} is a file; expected a directory to create or replace.")
    saved = (directory / CONFIG_NAME).exists() or (directory / MANIFEST_NAME).exists()
    if not saved and any(directory.iterdir()):
        raise ValueError(
            f"save_pretrained: {directory} holds files that no save of a featurizer wrote, and a save replaces "
            "the whole directory. Save to a new or empty directory."
        )


@contextlib.contextmanager
def staged_save(directory):
    """A temporary directory to write a save into; sealed and moved to ``directory`` when the block succeeds.

    Parameters
    ----------
    directory : str or os.PathLike
        Checked by :func:`check_save_destination`. It is replaced whole, in
        one rename where the system allows: readers see the previous save or
        the new one, never a mix, and an exception (or ``KeyboardInterrupt``)
        in the block leaves the previous save untouched.

    Yields
    ------
    staging : pathlib.Path
        An empty directory beside ``directory``.
    """
    directory = Path(directory)
    check_save_destination(directory)
    with staged_directory(directory) as staging:
        yield staging
        write_manifest(staging)


def write_featurizer_files(directory, featurizer):
    """Write ``diffrep_config.json`` and ``diffrep_state.safetensors`` of a fitted featurizer.

    Parameters
    ----------
    directory : str or os.PathLike
    featurizer : DiffusionFeaturizer
    """
    from safetensors.torch import save

    names = getattr(featurizer, "feature_names_in_", None)
    state = dict(
        n_features_in=int(featurizer.n_features_in_),
        feature_names_in=None if names is None else [str(name) for name in names],
        sample_shape=list(featurizer.sample_shape_),
        data_format=featurizer.data_format_,
        timesteps=list(featurizer.timesteps_),
        layers=list(featurizer.layers_),
        scaling=featurizer.scaler_.kind,
        loss_curve=[float(loss) for loss in featurizer.loss_curve_],
        n_steps=int(featurizer.n_steps_),
        noise_seed=int(featurizer.noise_seed_),
    )
    config = {"format_version": FORMAT_VERSION, "params": _saved_params(featurizer), "fitted": state}
    directory = Path(directory)
    atomic_write(directory / CONFIG_NAME, json.dumps(config, indent=2, default=_plain).encode())
    tensors = {
        "scaler_offset": torch.from_numpy(np.ascontiguousarray(featurizer.scaler_.offset_)),
        "scaler_scale": torch.from_numpy(np.ascontiguousarray(featurizer.scaler_.scale_)),
    }
    atomic_write(directory / STATE_NAME, save(tensors))


# ------------------------------------------------------------------ reading
def _tuples(value):
    """JSON lists back to the tuples the parameters were given as."""
    return tuple(_tuples(item) for item in value) if isinstance(value, list) else value


def _is_count(value, low):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= low


def _is_list_of(value, check, min_length=0, max_length=None):
    return (
        isinstance(value, list)
        and min_length <= len(value) <= (len(value) if max_length is None else max_length)
        and all(check(item) for item in value)
    )


def _is_string(value):
    return isinstance(value, str)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# Each fitted entry: what it must be, and the test.
_FITTED = {
    "n_features_in": ("an integer >= 1", lambda value: _is_count(value, 1)),
    "feature_names_in": ("null or a list of strings", lambda value: value is None or _is_list_of(value, _is_string)),
    "sample_shape": (
        "a list of 1 to 3 integers >= 1",
        lambda value: _is_list_of(value, lambda item: _is_count(item, 1), 1, 3),
    ),
    "data_format": (
        "null, 'channels_first' or 'channels_last'",
        lambda value: value in (None, "channels_first", "channels_last"),
    ),
    "timesteps": ("a non-empty list of integers >= 0", lambda value: _is_list_of(value, lambda item: _is_count(item, 0), 1)),
    "layers": ("a non-empty list of strings", lambda value: _is_list_of(value, _is_string, 1)),
    "scaling": (f"one of {list(SCALINGS[1:])}", lambda value: value in SCALINGS[1:]),
    "loss_curve": ("a list of numbers", lambda value: _is_list_of(value, _is_number)),
    "n_steps": ("an integer >= 0", lambda value: _is_count(value, 0)),
    "noise_seed": (
        f"an integer in [0, {_NOISE_SEED_END})",
        lambda value: _is_count(value, 0) and value < _NOISE_SEED_END,
    ),
}


def _check_fitted(state, path):
    """Raise ``ValueError`` naming the first missing or invalid ``fitted`` entry of the config at ``path``."""
    if not isinstance(state, dict):
        raise ValueError(f"{path}: 'fitted' must be an object of the values fit learned, got {state!r}.")
    missing = sorted(set(_FITTED) - set(state))
    if missing:
        raise ValueError(f"{path}: 'fitted' lacks the entries {missing}; the file is incomplete.")
    for key, (expected, is_valid) in _FITTED.items():
        if not is_valid(state[key]):
            raise ValueError(f"{path}: fitted.{key} must be {expected}, got {state[key]!r}.")
    if math.prod(state["sample_shape"]) != state["n_features_in"]:
        raise ValueError(
            f"{path}: fitted.sample_shape {state['sample_shape']} does not hold fitted.n_features_in="
            f"{state['n_features_in']} values."
        )
    names = state["feature_names_in"]
    if names is not None and len(names) != state["n_features_in"]:
        raise ValueError(f"{path}: fitted.feature_names_in has {len(names)} names for {state['n_features_in']} features.")


def _read_config(path, param_names):
    try:
        config = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} cannot be read: {exc}") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path} must hold a JSON object, got {type(config).__name__}.")
    missing = sorted({"format_version", "params", "fitted"} - set(config))
    if missing:
        raise ValueError(f"{path} lacks the keys {missing}; the file is incomplete.")
    if config["format_version"] not in (FORMAT_VERSION, UNSEALED_FORMAT_VERSION):
        raise ValueError(
            f"{path} has format_version={config['format_version']!r}; this version of diffrep reads "
            f"{UNSEALED_FORMAT_VERSION} and {FORMAT_VERSION}."
        )
    params = config["params"]
    if not isinstance(params, dict):
        raise ValueError(f"{path}: 'params' must be an object of parameter values, got {params!r}.")
    unknown = sorted(set(params) - set(param_names))
    if unknown:
        raise ValueError(f"{path} sets parameters this version of diffrep does not have: {unknown}.")
    missing = sorted(set(param_names) - set(LOCAL_PARAMS) - set(params))
    if missing:
        raise ValueError(f"{path}: 'params' lacks the parameters {missing}; the file is incomplete.")
    _check_fitted(config["fitted"], path)
    return config


def _read_arrays(path, n_features):
    from safetensors.torch import load

    try:
        tensors = load(path.read_bytes())
    except Exception as exc:  # safetensors raises its own error types for damaged headers
        raise ValueError(f"{path} cannot be read: {exc}") from None
    arrays = {}
    for name in ("scaler_offset", "scaler_scale"):
        tensor = tensors.get(name)
        if tensor is None or tuple(tensor.shape) != (n_features,) or not tensor.is_floating_point():
            raise ValueError(f"{path}: {name} must be a float array of shape ({n_features},), got {tensor!r:.80}.")
        arrays[name] = tensor.numpy()
    if not (np.isfinite(arrays["scaler_offset"]).all() and (arrays["scaler_scale"] > 0).all()):
        raise ValueError(f"{path}: the data scaling holds non-finite offsets or non-positive scales.")
    return arrays


def _warn_unsealed(directory, version):
    """Warn that a save of format 1 is read unverified; refuse a later one that lost its manifest."""
    if version != UNSEALED_FORMAT_VERSION:
        raise ValueError(
            f"{directory} has no {MANIFEST_NAME}, which every save of format_version {version} holds: "
            "the save is incomplete or was changed after it was written. Save the featurizer again."
        )
    warnings.warn(
        f"{directory} was saved by an older diffrep without checksums: its files are read unverified. "
        "Save it again (from_pretrained, then save_pretrained) to seal it.",
        SaveWarning,
        stacklevel=user_stacklevel(),
    )


def read_featurizer_files(directory, param_names):
    """Read what :func:`write_featurizer_files` wrote, after checking the directory's manifest.

    Parameters
    ----------
    directory : str or os.PathLike
    param_names : sequence of str
        The featurizer's parameter names; a config naming others, or lacking
        one that is saved, is refused.

    Returns
    -------
    params : dict
        Constructor parameters, lists turned back into tuples (their values
        are for the estimator to validate).
    state : dict
        The fitted entries, each checked for its type and range.
    arrays : dict
        ``scaler_offset`` and ``scaler_scale`` as float64 ndarrays.

    Raises
    ------
    ValueError
        If the directory holds no diffrep config; if a file differs from its
        checksum in the manifest, or the manifest is missing from a sealed
        save; if the config is of another format, lacks an entry or holds an
        invalid fitted value. The message names the file and the entry.

    Warns
    -----
    UserWarning
        For a save of diffrep 0.2 (format 1, no manifest), read unverified.
    """
    directory = Path(directory)
    path = directory / CONFIG_NAME
    if not path.is_file():
        raise ValueError(
            f"{os.fspath(directory)!r} has no {CONFIG_NAME}: it was not written by "
            "DiffusionFeaturizer.save_pretrained. To use a diffusers denoiser alone, fit "
            "DiffusionFeaturizer(denoiser=directory)."
        )
    sealed = (directory / MANIFEST_NAME).exists()
    if sealed:
        check_manifest(directory)  # before anything is parsed
    config = _read_config(path, param_names)
    if not sealed:
        _warn_unsealed(directory, config["format_version"])
    arrays = _read_arrays(directory / STATE_NAME, config["fitted"]["n_features_in"])
    params = {name: _tuples(value) for name, value in config["params"].items()}
    return params, config["fitted"], arrays
