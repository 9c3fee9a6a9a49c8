"""diffrep's own files in a saved featurizer directory, next to the diffusers ones.

``diffrep_config.json`` holds the featurizer's parameters and the fitted values
that are not weights (sample shape, layout, timesteps, layers, scaling kind,
training record, and the noise seed from which every sample's extraction noise
is derived); ``diffrep_state.safetensors`` holds its arrays (the data scaling).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

CONFIG_NAME = "diffrep_config.json"
STATE_NAME = "diffrep_state.safetensors"
FORMAT_VERSION = 1
# Parameters that are not saved: where the model lives and runs, and caches of this machine.
LOCAL_PARAMS = ("denoiser", "device", "memory", "checkpoint_dir")


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


# ------------------------------------------------------------ write and read
def write_featurizer_files(directory, featurizer):
    """Write ``diffrep_config.json`` and ``diffrep_state.safetensors`` of a fitted featurizer.

    Parameters
    ----------
    directory : str or os.PathLike
    featurizer : DiffusionFeaturizer
    """
    from safetensors.torch import save_file

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
    directory.mkdir(parents=True, exist_ok=True)
    (directory / CONFIG_NAME).write_text(json.dumps(config, indent=2, default=_plain))
    tensors = {
        "scaler_offset": torch.from_numpy(np.ascontiguousarray(featurizer.scaler_.offset_)),
        "scaler_scale": torch.from_numpy(np.ascontiguousarray(featurizer.scaler_.scale_)),
    }
    save_file(tensors, directory / STATE_NAME)


def _tuples(value):
    """JSON lists back to the tuples the parameters were given as."""
    return tuple(_tuples(item) for item in value) if isinstance(value, list) else value


def read_featurizer_files(directory, param_names):
    """Read what :func:`write_featurizer_files` wrote.

    Parameters
    ----------
    directory : str or os.PathLike
    param_names : sequence of str
        The featurizer's parameter names; a config naming others is refused.

    Returns
    -------
    params : dict
        Constructor parameters, lists turned back into tuples.
    state : dict
        The fitted entries.
    arrays : dict
        ``scaler_offset`` and ``scaler_scale`` as float64 ndarrays.

    Raises
    ------
    ValueError
        If the directory holds no diffrep config, or one of another format.
    """
    from safetensors.torch import load_file

    directory = Path(directory)
    path = directory / CONFIG_NAME
    if not path.is_file():
        raise ValueError(
            f"{os.fspath(directory)!r} has no {CONFIG_NAME}: it was not written by "
            "DiffusionFeaturizer.save_pretrained. To use a diffusers denoiser alone, fit "
            "DiffusionFeaturizer(denoiser=directory)."
        )
    config = json.loads(path.read_text())
    if config.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path} has format_version={config.get('format_version')!r}; expected {FORMAT_VERSION}.")
    unknown = sorted(set(config["params"]) - set(param_names))
    if unknown:
        raise ValueError(f"{path} sets parameters this version of diffrep does not have: {unknown}.")
    arrays = load_file(directory / STATE_NAME)
    for name in ("scaler_offset", "scaler_scale"):
        arrays[name] = arrays[name].numpy()
    params = {name: _tuples(value) for name, value in config["params"].items()}
    return params, config["fitted"], arrays
