"""Never training the same denoiser twice: the cache of trained denoisers behind ``memory=``.

:func:`fitted_denoiser` caches trained denoisers on disk (so processes and
machines sharing the directory share the cache), keyed by the
:class:`~.training_config.TrainingConfig` fingerprint: what training depends on
and nothing else. An entry is one file holding the trained weights as
safetensors and the fingerprint and loss curve as JSON, behind a SHA-256
checksum: reading it runs no code, and a damaged or foreign entry is never
served (it is retrained, with a one-line warning). The network is rebuilt as a
copy of the initial network with the stored weights loaded into it.
"""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import joblib
import numpy as np
import torch

from .. import __version__
from .caller import user_stacklevel
from .notices import CacheWarning
from .files import atomic_write, sealed, unsealed
from .finiteness import non_finite_tensors


# ----------------------------------------------------------- trained cache
# Entries live in <memory>/diffrep-trained/<key digest>-<diffrep version>.safetensors: a training is keyed by
# what it depends on and by the code that ran it, so another diffrep version never serves (nor overwrites) it.
_CACHE_FOLDER = "diffrep-trained"
_ENTRY_FORMAT = "diffrep-trained-denoiser-2"
_ENTRY_MAGIC = _ENTRY_FORMAT.encode() + b"\n"


def cache_location(memory):
    """The cache directory named by the ``memory`` parameter (validated by its constraints), or None."""
    location = memory.location if isinstance(memory, joblib.Memory) else memory
    return None if location is None else Path(location)


def _entry_path(location, fingerprint):
    return location / _CACHE_FOLDER / f"{fingerprint}-{__version__}.safetensors"


def _write_entry(path, fingerprint, network, loss_curve):
    """Store a finished training; a write that fails (full disk, no permission) only warns."""
    from safetensors.torch import save

    tensors = {name: value.detach().to("cpu").contiguous().clone() for name, value in network.state_dict().items()}
    header = json.dumps(
        {"format": _ENTRY_FORMAT, "fingerprint": fingerprint, "version": __version__, "loss_curve": loss_curve},
        sort_keys=True,
    )
    try:
        atomic_write(path, sealed(_ENTRY_MAGIC, save(tensors, metadata={"diffrep": header})))
    except OSError as exc:
        warnings.warn(
            f"Cannot write to the memory cache at {path.parent} ({exc.strerror or exc}); "
            "the trained denoiser is used but not cached.",
            CacheWarning,
            stacklevel=user_stacklevel(),
        )


def _read_entry(path, fingerprint, network):
    """The cached ``(network, loss_curve)`` of ``fingerprint``, or None; a bad entry warns in one line."""
    from safetensors.torch import load

    if not path.is_file():
        return None
    try:
        payload = unsealed(_ENTRY_MAGIC, path.read_bytes())
        header = _entry_header(payload)
        if header.get("format") != _ENTRY_FORMAT or header.get("fingerprint") != fingerprint:
            raise ValueError("it was written for another training")
        if header.get("version") != __version__:
            raise ValueError(f"it was written by diffrep {header.get('version')}, not {__version__}")
        loss_curve = header.get("loss_curve")
        if not isinstance(loss_curve, list) or not all(isinstance(v, float) and np.isfinite(v) for v in loss_curve):
            raise ValueError("its loss curve is not a list of finite numbers")
        tensors = load(payload)
        if non_finite_tensors(tensors.items()):
            raise ValueError("it holds NaN or infinite weights")
        trained = copy.deepcopy(network).to("cpu")
        trained.load_state_dict(tensors, strict=True)
    except Exception as exc:  # whatever is wrong with an entry, it is retrained, never served
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        warnings.warn(
            f"Ignoring the memory cache entry {path} ({reason}); training again.", CacheWarning,
            stacklevel=user_stacklevel(),
        )
        return None
    return trained.eval(), loss_curve


def _entry_header(payload):
    """The JSON header stored in a safetensors payload's metadata."""
    length = int.from_bytes(payload[:8], "little")
    metadata = json.loads(payload[8 : 8 + length]).get("__metadata__") or {}
    return json.loads(metadata.get("diffrep", "{}"))


def fitted_denoiser(memory, config, network, train):
    """The trained denoiser, from the cache when the same training already ran.

    Only a finished training is stored: ``train`` raising (a Ctrl-C, a
    diverging loss) stores nothing. A cache entry that cannot be read, is
    damaged (its checksum differs), belongs to another training, holds
    non-finite weights or does not fit the network is ignored with a one-line
    warning, retrained and overwritten.

    Parameters
    ----------
    memory : None, str, os.PathLike or joblib.Memory
        The featurizer's ``memory`` parameter; None trains without caching.
    config : TrainingConfig
        The training, fingerprinted whenever ``memory`` caches.
    network : torch.nn.Module
        The network before training (on a hit, copied to receive the stored
        weights; never modified here).
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
    location = cache_location(memory)
    if location is None:
        return train()
    path = _entry_path(location, config.fingerprint)
    cached = _read_entry(path, config.fingerprint, network)
    if cached is not None:
        return cached
    trained, loss_curve = train()
    loss_curve = [float(value) for value in loss_curve]
    _write_entry(path, config.fingerprint, trained, loss_curve)
    return trained, loss_curve
