"""Never training the same denoiser twice: a cache of trained denoisers and a registry of loaded ones.

Two mechanisms keep grid searches over timesteps, layers and pooling cheap:

* :func:`fitted_denoiser` caches trained denoisers on disk (so processes and
  machines sharing the directory share the cache). The key is a fingerprint of
  what training depends on and nothing else: the initial network (class,
  config and weights, so modules are compared by state, never by identity),
  the noise schedule, the scaled training data (hashed once per fit) and the
  training settings. An entry is one file holding the trained weights as
  safetensors and the key and loss curve as JSON, behind a SHA-256 checksum:
  reading it runs no code, and a damaged or foreign entry is never served (it
  is retrained, with a one-line warning). The network is rebuilt as a copy of
  the initial network with the stored weights loaded into it.
* :func:`load_pretrained` loads a pretrained denoiser (a directory or a hub id)
  once per process and hands out copies of it, so candidates and folds never
  reload it from disk and never share one module (fine-tuning trains its own copy).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
import warnings
from pathlib import Path

import joblib
import numpy as np
import torch

from .files import atomic_write, sealed, unsealed
from ..denoisers.loading import check_local_source, is_hub_id, load_denoiser, model_files

# Pretrained denoisers kept loaded per process (least recently used dropped first).
_REGISTRY_SIZE = 4


# ------------------------------------------------------------- fingerprints
def _digest():
    return hashlib.blake2b(digest_size=20)


def fingerprint_array(array):
    """Content hash of an array: dtype, shape and bytes, read once.

    Parameters
    ----------
    array : ndarray

    Returns
    -------
    fingerprint : str
        Hexadecimal digest; equal arrays (whatever their memory layout) give
        equal fingerprints.
    """
    array = np.ascontiguousarray(array)
    digest = _digest()
    digest.update(f"{array.dtype.str}{array.shape}".encode())
    digest.update(array.reshape(-1).view(np.uint8))
    return digest.hexdigest()


def fingerprint_module(module):
    """Content hash of a torch module: its class, its config and its state.

    Two modules with the same class, config and ``state_dict`` values share a
    fingerprint whatever their identity, device or process.

    Parameters
    ----------
    module : torch.nn.Module

    Returns
    -------
    fingerprint : str
    """
    digest = _digest()
    digest.update(f"{type(module).__module__}.{type(module).__qualname__}".encode())
    config = getattr(module, "config", None)
    if isinstance(config, dict):  # diffusers' private entries (versions, paths, unordered sets) excluded
        digest.update(joblib.hash({k: v for k, v in config.items() if not k.startswith("_")}).encode())
    for name, tensor in module.state_dict().items():
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def fingerprint_schedule(schedule):
    """Content hash of a noise schedule: its prediction type and its ``abar_t``.

    Parameters
    ----------
    schedule : NoiseSchedule

    Returns
    -------
    fingerprint : str
    """
    return f"{schedule.prediction_type}:{fingerprint_array(schedule.alphas_cumprod.numpy())}"


# ----------------------------------------------------------- trained cache
# Entries live in <memory>/diffrep-trained/<key digest>.safetensors.
_CACHE_FOLDER = "diffrep-trained"
_ENTRY_FORMAT = "diffrep-trained-denoiser-1"
_ENTRY_MAGIC = _ENTRY_FORMAT.encode() + b"\n"


def check_memory(memory):
    """Validate the ``memory`` parameter; return the cache directory it names.

    Parameters
    ----------
    memory : None, str, os.PathLike or joblib.Memory
        A cache directory, or a ``joblib.Memory`` whose ``location`` is used
        (``joblib.Memory(None)`` caches nothing).

    Returns
    -------
    location : pathlib.Path or None
        None when nothing is cached.

    Raises
    ------
    ValueError
        If ``memory`` is none of the accepted types.
    """
    location = getattr(memory, "location", memory) if isinstance(memory, joblib.Memory) else memory
    if location is None:
        return None
    if not isinstance(location, (str, os.PathLike)):
        raise ValueError(
            f"memory must be None, a directory path or a joblib.Memory, got {memory!r} "
            f"of type {type(memory).__name__}."
        )
    return Path(location)


def _entry_path(location, key):
    text = json.dumps(key, sort_keys=True)
    return location / _CACHE_FOLDER / f"{hashlib.blake2b(text.encode(), digest_size=20).hexdigest()}.safetensors"


def _write_entry(path, key, network, loss_curve):
    """Store a finished training; a write that fails (full disk, no permission) only warns."""
    from safetensors.torch import save

    tensors = {name: value.detach().to("cpu").contiguous().clone() for name, value in network.state_dict().items()}
    header = json.dumps({"format": _ENTRY_FORMAT, "key": key, "loss_curve": loss_curve}, sort_keys=True)
    try:
        atomic_write(path, sealed(_ENTRY_MAGIC, save(tensors, metadata={"diffrep": header})))
    except OSError as exc:
        warnings.warn(
            f"Cannot write to the memory cache at {path.parent} ({exc.strerror or exc}); "
            "the trained denoiser is used but not cached.",
            UserWarning,
            stacklevel=3,
        )


def _read_entry(path, key, network):
    """The cached ``(network, loss_curve)`` of ``key``, or None; a bad entry warns in one line."""
    from safetensors.torch import load

    if not path.is_file():
        return None
    try:
        payload = unsealed(_ENTRY_MAGIC, path.read_bytes())
        header = _entry_header(payload)
        if header.get("format") != _ENTRY_FORMAT or header.get("key") != key:
            raise ValueError("it was written for another training")
        loss_curve = header.get("loss_curve")
        if not isinstance(loss_curve, list) or not all(isinstance(v, float) and np.isfinite(v) for v in loss_curve):
            raise ValueError("its loss curve is not a list of finite numbers")
        tensors = load(payload)
        if not all(torch.isfinite(value).all() for value in tensors.values() if value.is_floating_point()):
            raise ValueError("it holds NaN or infinite weights")
        trained = copy.deepcopy(network).to("cpu")
        trained.load_state_dict(tensors, strict=True)
    except Exception as exc:  # whatever is wrong with an entry, it is retrained, never served
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        warnings.warn(f"Ignoring the memory cache entry {path} ({reason}); training again.", UserWarning, stacklevel=3)
        return None
    return trained.eval(), loss_curve


def _entry_header(payload):
    """The JSON header stored in a safetensors payload's metadata."""
    length = int.from_bytes(payload[:8], "little")
    metadata = json.loads(payload[8 : 8 + length]).get("__metadata__") or {}
    return json.loads(metadata.get("diffrep", "{}"))


def fitted_denoiser(memory, network, schedule, data, settings, train):
    """The trained denoiser, from the cache when the same training already ran.

    Only a finished training is stored: ``train`` raising (a Ctrl-C, a
    diverging loss) stores nothing. A cache entry that cannot be read, is
    damaged (its checksum differs), belongs to another key, holds non-finite
    weights or does not fit the network is ignored with a one-line warning,
    retrained and overwritten.

    Parameters
    ----------
    memory : None, str, os.PathLike or joblib.Memory
        The featurizer's ``memory`` parameter; None trains without caching.
    network : torch.nn.Module
        The network before training (fingerprinted and, on a hit, copied to
        receive the stored weights; never modified here).
    schedule : NoiseSchedule
        The schedule it is trained on.
    data : ndarray of shape (n_samples, *sample_shape)
        The scaled training data; its bytes are hashed once.
    settings : dict
        Every other value that changes the trained weights (steps, batch size,
        learning rate, EMA decay, training seed), JSON-serializable. Values
        that do not (device, verbosity) must stay out of it, so that they
        share cache entries.
    train : callable
        ``train() -> (trained_network, loss_curve)``; called only on a miss.

    Returns
    -------
    network : torch.nn.Module
        The trained network: on the training device after a miss, on the CPU
        after a hit; owned by the caller either way (a fresh copy on every hit).
    loss_curve : list of float
        The training loss per step.
    """
    location = check_memory(memory)
    if location is None:
        return train()
    key = dict(
        settings,
        network=fingerprint_module(network),
        schedule=fingerprint_schedule(schedule),
        data=fingerprint_array(data),
    )
    path = _entry_path(location, key)
    cached = _read_entry(path, key, network)
    if cached is not None:
        return cached
    trained, loss_curve = train()
    loss_curve = [float(value) for value in loss_curve]
    _write_entry(path, key, trained, loss_curve)
    return trained, loss_curve


# -------------------------------------------------------- loaded registry
def _stamp(source):
    """What identifies a source's current content: its hub id, or resolved path and file times."""
    source = os.fspath(source)
    if is_hub_id(source):
        return ("hub", source, ())
    check_local_source(source)
    root = Path(source).resolve()
    files = model_files(root)
    return (
        "path",
        str(root),
        tuple((str(path.relative_to(root)), path.stat().st_mtime_ns, path.stat().st_size) for path in files),
    )


@functools.lru_cache(maxsize=_REGISTRY_SIZE)
def _load_once(stamp):
    return load_denoiser(stamp[1])


def load_pretrained(source):
    """:func:`~diffrep.denoisers.loading.load_denoiser`, reading each source once per process.

    A directory is identified by its resolved path and the modification times
    and sizes of its model and scheduler files (a directory that is not a
    model or pipeline directory is rejected before anything in it is listed),
    so a model saved again at the same place is reloaded; a hub id by itself.
    The last few sources stay loaded. Every call returns its own deep copy: the loaded original is never handed out, moved
    to a device or trained, so fine-tuning one copy leaves the others intact.

    Parameters
    ----------
    source : str or os.PathLike
        A local model or pipeline directory, or a hub id.

    Returns
    -------
    network : torch.nn.Module
        A copy the caller owns, in eval mode, on the CPU.
    schedule : NoiseSchedule or None
        A copy of the saved scheduler's schedule, or None.
    """
    network, schedule = _load_once(_stamp(source))
    return copy.deepcopy(network), copy.deepcopy(schedule)
