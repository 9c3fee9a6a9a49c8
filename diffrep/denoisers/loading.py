"""Loading denoisers saved in diffusers format: a local directory or a hub id.

A *model directory* holds ``config.json`` and weights; a *pipeline directory*
holds a ``unet/`` model directory and a ``scheduler/`` config. Hub ids take the
same path after being downloaded to the local cache. Weights are read with
diffusers' loaders (safetensors, or ``torch.load(weights_only=True)``): no code
from the directory is ever executed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..schedules import NoiseSchedule

_MODEL_CLASSES = ("UNet2DModel", "MLPDenoiser")


def _model_class(name):
    if name == "UNet2DModel":
        from diffusers import UNet2DModel

        return UNet2DModel
    if name == "MLPDenoiser":
        from .mlp import MLPDenoiser

        return MLPDenoiser
    raise ValueError(
        f"denoiser: model class {name!r} is not supported; diffrep loads {_MODEL_CLASSES} "
        "(unconditional models with a (x, t) forward)."
    )


def _read_json(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"denoiser: cannot read {path}: {exc}") from None


def _locate(directory):
    """``(model_dir, scheduler_dir or None)`` inside a model or pipeline directory."""
    directory = Path(directory)
    if (directory / "unet" / "config.json").is_file():
        scheduler = directory / "scheduler"
        return directory / "unet", scheduler if (scheduler / "scheduler_config.json").is_file() else None
    if (directory / "config.json").is_file():
        scheduler = directory / "scheduler_config.json"
        return directory, directory if scheduler.is_file() else None
    raise ValueError(
        f"denoiser={str(directory)!r} is not a diffusers model directory (config.json + weights) "
        "nor a pipeline directory (unet/ and scheduler/)."
    )


def is_hub_id(source):
    """Whether a string looks like a Hugging Face hub id (``"owner/name"``) rather than a path.

    Parameters
    ----------
    source : str

    Returns
    -------
    bool
    """
    return (
        not os.path.exists(source)
        and source.count("/") == 1
        and not source.startswith((".", "/", "~"))
        and all(part for part in source.split("/"))
    )


def load_denoiser(source):
    """Load a denoiser and, when present, its scheduler.

    Parameters
    ----------
    source : str or os.PathLike
        A local model or pipeline directory, or a hub id (``"owner/name"``),
        which is downloaded to the local cache first and then loaded the same way.

    Returns
    -------
    network : torch.nn.Module
        The model, in eval mode, on the CPU.
    schedule : NoiseSchedule or None
        The saved scheduler's schedule, or None when the directory has none.
    """
    source = os.fspath(source)
    if is_hub_id(source):
        from huggingface_hub import snapshot_download

        source = snapshot_download(source)
    if not os.path.isdir(source):
        raise ValueError(f"denoiser={source!r}: no such directory (nor a hub id 'owner/name').")
    model_dir, scheduler_dir = _locate(source)
    config = _read_json(model_dir / "config.json")
    model_class = _model_class(config.get("_class_name"))
    try:
        network = model_class.from_pretrained(model_dir)
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise ValueError(f"denoiser: cannot load the weights in {model_dir}: {exc}") from None
    schedule = None
    if scheduler_dir is not None:
        from diffusers import DDPMScheduler

        schedule = NoiseSchedule.from_scheduler(DDPMScheduler.from_pretrained(scheduler_dir))
    return network.eval(), schedule


def save_denoiser(directory, network, schedule):
    """Write a pipeline-style directory (``unet/`` + ``scheduler/``) that :func:`load_denoiser` reads.

    Parameters
    ----------
    directory : str or os.PathLike
    network : diffusers.ModelMixin
        The denoiser; it must support ``save_pretrained``.
    schedule : NoiseSchedule
    """
    if not hasattr(network, "save_pretrained"):
        raise TypeError(
            f"save_pretrained needs a diffusers model (UNet2DModel or MLPDenoiser); "
            f"the denoiser is a {type(network).__name__}."
        )
    directory = Path(directory)
    network.save_pretrained(directory / "unet", safe_serialization=True)
    schedule.to_diffusers().save_pretrained(directory / "scheduler")
