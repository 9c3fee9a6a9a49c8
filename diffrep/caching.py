"""Never training the same denoiser twice: a cache of trained denoisers and a registry of loaded ones.

Two mechanisms keep grid searches over timesteps, layers and pooling cheap:

* :func:`fitted_denoiser` caches trained denoisers with ``joblib.Memory``
  (on disk, so processes and machines sharing the directory share the cache).
  The key is a fingerprint of what training depends on and nothing else: the
  initial network (class, config and weights, so modules are compared by
  state, never by identity), the noise schedule, the scaled training data
  (hashed once per fit) and the training settings.
* :func:`load_pretrained` loads a pretrained denoiser (a directory or a hub id)
  once per process and hands out copies of it, so candidates and folds never
  reload it from disk and never share one module (fine-tuning trains its own copy).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import os
from pathlib import Path

import joblib
import numpy as np
import torch
from sklearn.utils.validation import check_memory as _sklearn_check_memory

from .denoisers.loading import is_hub_id, load_denoiser

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
def check_memory(memory):
    """Validate the ``memory`` parameter.

    Parameters
    ----------
    memory : None, str, os.PathLike or joblib.Memory-like
        A cache directory, or an object with joblib.Memory's ``cache`` method.

    Returns
    -------
    memory : joblib.Memory-like or None
        None when nothing is cached.

    Raises
    ------
    ValueError
        If ``memory`` is none of the accepted types.
    """
    if memory is None:
        return None
    if isinstance(memory, os.PathLike):
        memory = os.fspath(memory)
    return _sklearn_check_memory(memory)


def _train_on_cpu(key, train):
    """Run ``train`` and return its network on the CPU; cached under ``key`` only."""
    network, loss_curve = train()
    return network.to("cpu"), list(loss_curve)


def fitted_denoiser(memory, network, schedule, data, settings, train):
    """The trained denoiser, from the cache when the same training already ran.

    Parameters
    ----------
    memory : None, str, os.PathLike or joblib.Memory-like
        The featurizer's ``memory`` parameter; None trains without caching.
    network : torch.nn.Module
        The network before training (fingerprinted, not modified here).
    schedule : NoiseSchedule
        The schedule it is trained on.
    data : ndarray of shape (n_samples, *sample_shape)
        The scaled training data; its bytes are hashed once.
    settings : dict
        Every other value that changes the trained weights (steps, batch size,
        learning rate, EMA decay, training seed). Values that do not (device,
        verbosity) must stay out of it, so that they share cache entries.
    train : callable
        ``train() -> (trained_network, loss_curve)``; called only on a cache miss.

    Returns
    -------
    network : torch.nn.Module
        The trained network: on the training device when nothing is cached,
        otherwise on the CPU and owned by the caller (a fresh copy on every call).
    loss_curve : list of float
        The training loss per step.
    """
    memory = check_memory(memory)
    if memory is None:
        return train()
    key = dict(
        settings,
        network=fingerprint_module(network),
        schedule=fingerprint_schedule(schedule),
        data=fingerprint_array(data),
    )
    return memory.cache(_train_on_cpu, ignore=["train"])(key, train)


# -------------------------------------------------------- loaded registry
def _stamp(source):
    """What identifies a source's current content: its hub id, or resolved path and file times."""
    source = os.fspath(source)
    if is_hub_id(source):
        return ("hub", source, ())
    root = Path(source).resolve()
    files = sorted(path for path in root.rglob("*") if path.is_file()) if root.is_dir() else []
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
    and sizes of its files, so a model saved again at the same place is
    reloaded; a hub id by itself. The last few sources stay loaded. Every call
    returns its own deep copy: the loaded original is never handed out, moved
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
