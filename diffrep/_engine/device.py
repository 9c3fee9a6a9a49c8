"""Choosing the torch device a fitted estimator runs on."""

from __future__ import annotations

import warnings

import torch

from .caller import user_stacklevel
from .notices import DeviceWarning


def resolve_device(device):
    """Turn the ``device`` parameter into a concrete ``torch.device``.

    ``"auto"`` picks CUDA, then Apple MPS, then the CPU.

    Parameters
    ----------
    device : str or torch.device
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, ...

    Returns
    -------
    device : torch.device
    """
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {device!r}."
        ) from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available here.")
    if resolved.type == "mps" and not _mps_available():
        raise ValueError(
            f"device={device!r} was requested but Apple MPS is not available here; use 'auto' or 'cpu'."
        )
    return resolved


def _mps_available():
    mps = getattr(torch.backends, "mps", None)
    return mps is not None and mps.is_available()


def available_or_cpu(device):
    """Return ``device`` if usable on this machine, else the CPU with a warning.

    Used when unpickling: a model fitted on a GPU still loads on a CPU-only machine.

    Parameters
    ----------
    device : torch.device

    Returns
    -------
    device : torch.device
    """
    usable = {
        "cpu": True,
        "cuda": torch.cuda.is_available(),
        "mps": _mps_available(),
    }.get(device.type, False)
    if usable:
        return device
    warnings.warn(
        f"The featurizer was fitted on {device}, which is not available here; using the CPU.",
        DeviceWarning,
        stacklevel=user_stacklevel(),
    )
    return torch.device("cpu")
