"""Loading denoisers saved in diffusers format: a local directory or a hub id.

A *model directory* holds ``config.json`` and weights; a *pipeline directory*
holds a ``unet/`` model directory and a ``scheduler/`` config. Hub ids take the
same path after their model and scheduler files are downloaded to the local
cache; every request to the hub has a timeout of :data:`HUB_TIMEOUT` seconds
per read, and all of a source's requests together a deadline of
:func:`hub_deadline` seconds (:data:`HUB_DEADLINE`, or the environment variable
``DIFFREP_HUB_DEADLINE``), so a server that sends a byte now and then cannot
hold ``fit`` for ever.
Weights are read with diffusers' loaders (safetensors, or
``torch.load(weights_only=True)``): no code from the directory is ever executed.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import threading
import warnings
from pathlib import Path

import torch
from diffusers.utils import is_accelerate_available

from .._engine.manifest import MANIFEST_NAME, check_manifest
from .._engine.persistence import CONFIG_NAME
from .config_checks import check_model_config
from .._engine.finiteness import non_finite_tensors
from ..schedules import NoiseSchedule
from .pipeline_files import pipeline_files, pipeline_hub_files

_MODEL_CLASSES = ("UNet2DModel", "MLPDenoiser")
# Seconds every read from the Hugging Face hub may wait (per attempt).
HUB_TIMEOUT = 10.0
# Seconds all the hub requests that fetch one source may take together, unless DIFFREP_HUB_DEADLINE says.
HUB_DEADLINE = 600.0
HUB_DEADLINE_VARIABLE = "DIFFREP_HUB_DEADLINE"
# The schedulers whose training noise is a discrete beta schedule (alphas_cumprod), as DDPM's.
DDPM_STYLE_SCHEDULERS = (
    "DDPMScheduler",
    "DDIMScheduler",
    "PNDMScheduler",
    "LMSDiscreteScheduler",
    "EulerDiscreteScheduler",
    "EulerAncestralDiscreteScheduler",
    "HeunDiscreteScheduler",
    "DPMSolverMultistepScheduler",
    "DPMSolverSinglestepScheduler",
    "KDPM2DiscreteScheduler",
    "KDPM2AncestralDiscreteScheduler",
    "DEISMultistepScheduler",
    "UniPCMultistepScheduler",
)
# Where a model's files sit in a pipeline or a model repository.
_LAYOUTS = (("unet/", "scheduler/"), ("", ""))
WEIGHTS_NAMES = (
    "diffusion_pytorch_model.safetensors",
    "diffusion_pytorch_model.safetensors.index.json",
    "diffusion_pytorch_model.bin",
    "diffusion_pytorch_model.bin.index.json",
)


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
        config = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"denoiser: cannot read {path}: {exc}") from None
    if not isinstance(config, dict):
        raise ValueError(f"denoiser: {path} must hold a JSON object, not a {type(config).__name__}.")
    return config


def _locate(directory):
    """``(model_dir, scheduler_dir or None)`` inside a model or pipeline directory; nothing else is read."""
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
        True for ``"owner/name"`` that is not an existing local path.
    """
    return (
        not os.path.exists(source)
        and source.count("/") == 1
        and not source.startswith((".", "/", "~"))
        and all(part for part in source.split("/"))
    )


def model_files(directory):
    """The files that define the model in a model or pipeline directory.

    Only the model directory (``unet/`` of a pipeline) and the scheduler
    directory are listed (for a pipeline saved whole, ``model_index.json`` and
    the folders of the components diffrep loads), not recursively, so a large
    or unrelated directory is rejected at once instead of being walked.

    Parameters
    ----------
    directory : str or os.PathLike

    Returns
    -------
    files : list of pathlib.Path
        Sorted.

    Raises
    ------
    ValueError
        If ``directory`` is not a model or pipeline directory.
    """
    if is_pipeline_directory(directory):
        return pipeline_files(Path(directory))
    folders = {folder for folder in _locate(directory) if folder is not None}
    return sorted(path for folder in folders for path in folder.iterdir() if path.is_file())


def _hub_files(names, model, scheduler):
    """The files of a repository's file list that one layout needs (config, weights, scheduler config)."""
    wanted = {f"{model}config.json", f"{scheduler}scheduler_config.json"}
    wanted.update(f"{model}{name}" for name in WEIGHTS_NAMES)
    shards = [name for name in names if name.startswith(f"{model}diffusion_pytorch_model-")]
    return sorted(wanted.intersection(names)) + shards


def _repository_files(names):
    """The files of a hub repository's file list that loading it needs."""
    if "model_index.json" in names:
        return pipeline_hub_files(names)
    for model, scheduler in _LAYOUTS:
        files = _hub_files(names, model, scheduler)
        if f"{model}config.json" in files:
            return files
    raise ValueError("the repository has neither model_index.json, unet/config.json nor config.json")


def hub_deadline():
    """Seconds all the hub requests fetching one source may take together.

    Returns
    -------
    seconds : float
        ``DIFFREP_HUB_DEADLINE`` when set, else :data:`HUB_DEADLINE`.

    Raises
    ------
    ValueError
        If ``DIFFREP_HUB_DEADLINE`` is not a positive finite number.
    """
    text = os.environ.get(HUB_DEADLINE_VARIABLE)
    if text is None:
        return HUB_DEADLINE
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds < float("inf"):
        raise ValueError(f"{HUB_DEADLINE_VARIABLE} must be a positive number of seconds, got {text!r}.")
    return seconds


def _within_deadline(fetch, seconds):
    """``fetch()``, or ``TimeoutError`` once ``seconds`` have passed (the fetch is then left to a daemon thread).

    A read timeout bounds each wait for a byte, not a transfer that sends one
    byte at a time; only a thread the caller stops waiting for bounds that.
    """
    outcome = {}

    def run():
        try:
            outcome["value"] = fetch()
        except BaseException as exc:  # handed to the caller below
            outcome["error"] = exc

    worker = threading.Thread(target=run, name="diffrep-hub-download", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise TimeoutError(
            f"the hub requests took longer than the {seconds:g} s deadline (set {HUB_DEADLINE_VARIABLE} to change it)"
        )
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _fetch(repo_id):
    """Download a hub repository's model and scheduler files; return the local snapshot directory."""
    from huggingface_hub import HfApi, hf_hub_download

    info = HfApi().model_info(repo_id, timeout=HUB_TIMEOUT)
    files = _repository_files([sibling.rfilename for sibling in info.siblings or ()])
    paths = [hf_hub_download(repo_id, name, revision=info.sha, etag_timeout=HUB_TIMEOUT) for name in files]
    return str(Path(paths[0]).parents[files[0].count("/")])


def _download(repo_id):
    """Download a hub repository's model and scheduler files; return the local snapshot directory.

    Every read has a timeout of :data:`HUB_TIMEOUT` seconds, all requests
    together the deadline of :func:`hub_deadline`. When the hub cannot be
    reached in time, a copy already in the local cache is used.
    """
    from huggingface_hub import snapshot_download

    seconds = hub_deadline()
    try:
        return _within_deadline(lambda: _fetch(repo_id), seconds)
    except Exception as online:
        try:
            return snapshot_download(repo_id, local_files_only=True)
        except Exception:
            raise ValueError(
                f"denoiser={repo_id!r} is not a local path (no such file or directory in {os.getcwd()}), "
                f"and as a Hugging Face hub id it could not be downloaded nor found in the local cache "
                f"({type(online).__name__}: {str(online).splitlines()[0] if str(online) else ''}). "
                "Pass an existing directory, or a hub id with network access."
            ) from online


def _weights_file(model_dir, names=WEIGHTS_NAMES):
    """The weights file the loader will read in ``model_dir`` (safetensors first)."""
    for name in names:
        if (model_dir / name).is_file():
            return model_dir / name
    raise ValueError(
        f"denoiser: {model_dir} has a config.json but no weights file; expected {names[0]} "
        f"(or {', '.join(names[1:])})."
    )


def _read_weights_safely(weights):
    """Read a weights file the way diffusers does, with no code execution; raise its reader's error."""
    if weights.name.endswith(".safetensors"):
        from safetensors.torch import load_file

        load_file(weights)
    elif weights.name.endswith(".bin"):
        torch.load(weights, map_location="cpu", weights_only=True)


def _diagnose(model_dir, weights, exc):
    """A ``ValueError`` naming the file at fault when ``from_pretrained`` failed with ``exc``."""
    try:
        with warnings.catch_warnings():  # torch's remarks on the pickle protocol add nothing here
            warnings.simplefilter("ignore")
            _read_weights_safely(weights)
    except pickle.UnpicklingError as unsafe:
        found = re.search(r"WeightsUnpickler error:\s*([^\n]+)", str(unsafe))
        detail = found.group(1).split(". ")[0] if found else "it holds more than tensors and plain containers"
        return ValueError(
            f"denoiser: refusing to load {weights}: unpickling it would need code beyond plain tensors "
            f"({detail}). diffrep reads weights only with safetensors or torch.load(weights_only=True) and "
            "never runs code from a model file; re-save the weights as safetensors where you trust them."
        )
    except Exception as unreadable:
        return ValueError(
            f"denoiser: the weights file {weights} is truncated or corrupt "
            f"({type(unreadable).__name__}: {unreadable})."
        )
    mismatches = [line.strip().rstrip(".") for line in str(exc).splitlines() if "size mismatch" in line]
    if mismatches:
        return _mismatch_error(model_dir, weights, mismatches)
    return ValueError(f"denoiser: cannot load the model in {model_dir} (weights {weights.name}): {exc}")


def _mismatch_error(model_dir, weights, problems):
    shown = "; ".join(problems[:2]) + (f"; and {len(problems) - 2} more" if len(problems) > 2 else "")
    return ValueError(
        f"denoiser: the weights in {weights} do not match the model described by {model_dir / 'config.json'}: "
        f"{shown}."
    )


def _check_loading_info(model_dir, weights, info):
    """Raise when weights were missing, left over or resized: diffusers only warns about the first two."""
    problems = []
    for key, what in (
        ("missing_keys", "missing from the file"),
        ("unexpected_keys", "not in the model"),
        ("mismatched_keys", "of another shape"),
    ):
        names = [name if isinstance(name, str) else name[0] for name in info.get(key) or ()]
        if names:
            problems.append(f"{len(names)} weight(s) {what}, e.g. {names[0]}")
    if problems:
        raise _mismatch_error(model_dir, weights, problems)


def _check_finite(network, weights):
    """Raise when a loaded tensor holds NaN or infinity (bytes overwritten in the tensor data)."""
    bad = non_finite_tensors(network.state_dict().items())
    if bad:
        raise ValueError(
            f"denoiser: the weights file {weights} holds NaN or infinite values ({len(bad)} tensor(s), e.g. "
            f"{bad[0]}); it is corrupt or comes from a diverged training."
        )


def check_local_source(source):
    """Raise ``ValueError`` unless ``source`` is an existing directory.

    Parameters
    ----------
    source : str
        A path that is not taken for a hub id.
    """
    if not os.path.exists(source):
        raise ValueError(f"denoiser={source!r}: no such directory (nothing exists there, relative to {os.getcwd()}).")
    if not os.path.isdir(source):
        raise ValueError(f"denoiser={source!r} is a file; expected a diffusers model or pipeline directory.")


def load_denoiser(source):
    """Load a denoiser and, when present, its scheduler, never running code from the files.

    Weights are read by diffusers from ``diffusion_pytorch_model.safetensors``
    or, failing that, ``diffusion_pytorch_model.bin`` with
    ``torch.load(weights_only=True)``. Every way the files can be broken ends in
    a ``ValueError`` that names the file at fault: a missing weights file, a
    truncated or corrupt one, a pickle that would need code to be unpickled,
    weights that do not match ``config.json`` (missing, unexpected or resized
    tensors: never silently left at random values), NaN or infinite weights, an
    unreadable scheduler config. A directory that
    :meth:`~diffrep.DiffusionFeaturizer.save_pretrained` sealed is first
    checked against the checksums of its ``diffrep_manifest.json``.

    Parameters
    ----------
    source : str or os.PathLike
        A local model directory (a model alone, or ``unet/`` + ``scheduler/``),
        or a hub id (``"owner/name"``), which is downloaded to the local cache
        first and then loaded the same way. Whole pretrained pipelines
        (``model_index.json``) load with
        :func:`diffrep.denoisers.pipelines.load_pipeline`.

    Returns
    -------
    network : torch.nn.Module
        The model, in eval mode, on the CPU.
    schedule : NoiseSchedule or None
        The saved scheduler's schedule, or None when the directory has none.

    Raises
    ------
    ValueError
        If the directory, its config, weights or scheduler config cannot be used.
    """
    directory = Path(local_source(source))
    if (directory / MANIFEST_NAME).is_file():
        check_manifest(directory)
    model_dir, scheduler_dir = _locate(directory)
    config = _read_json(model_dir / "config.json")
    check_model_config(config, model_dir / "config.json")
    network = load_model(model_dir, _model_class(config.get("_class_name")))
    return network, load_schedule(scheduler_dir)


def local_source(source):
    """A local directory for ``source``: a hub id is downloaded to the local cache first.

    Parameters
    ----------
    source : str or os.PathLike
        A local directory or a hub id (``"owner/name"``).

    Returns
    -------
    directory : str
        Checked to exist and to look like a model or pipeline directory.
    """
    source = os.fspath(source)
    if is_hub_id(source):
        source = _download(source)
    check_local_source(source)
    return source


def is_pipeline_directory(directory):
    """Whether ``directory`` is a pretrained diffusers pipeline saved whole (it has a ``model_index.json``).

    A featurizer's own :meth:`~diffrep.DiffusionFeaturizer.save_pretrained`
    directory (a DDPM pipeline with ``diffrep_config.json``) is not: its UNet
    reads data scaled as in its ``fit``, not RGB images.

    Parameters
    ----------
    directory : str or os.PathLike

    Returns
    -------
    bool
    """
    directory = Path(directory)
    return (directory / "model_index.json").is_file() and not (directory / CONFIG_NAME).is_file()


def load_model(model_dir, model_class, weights_names=WEIGHTS_NAMES):
    """Load one model saved with ``save_pretrained``, checking its weights.

    Parameters
    ----------
    model_dir : pathlib.Path
        Directory with ``config.json`` and a weights file.
    model_class : type
        A diffusers or transformers model class (``from_pretrained`` with
        ``use_safetensors`` and ``output_loading_info``).
    weights_names : tuple of str, default=WEIGHTS_NAMES
        Accepted weights file names, in order of preference.

    Returns
    -------
    network : torch.nn.Module
        In eval mode, on the CPU.

    Raises
    ------
    ValueError
        If the weights are missing, unreadable, unsafe to unpickle, do not
        match the config, or hold NaN or infinite values; it names the file.
    """
    weights = _weights_file(model_dir, weights_names)
    try:
        network, info = model_class.from_pretrained(
            model_dir,
            use_safetensors=".safetensors" in weights.name,
            output_loading_info=True,
            low_cpu_mem_usage=is_accelerate_available(),  # no notice that accelerate is missing
        )
    except Exception as exc:
        raise _diagnose(model_dir, weights, exc) from exc
    _check_loading_info(model_dir, weights, info)
    _check_finite(network, weights)
    return network.eval()


def load_schedule(scheduler_dir):
    """The schedule saved in ``scheduler_dir``, or None when there is none.

    Parameters
    ----------
    scheduler_dir : pathlib.Path or None
        A directory with ``scheduler_config.json``.

    Returns
    -------
    schedule : NoiseSchedule or None

    Raises
    ------
    ValueError
        If the config cannot be read, names a scheduler class outside
        :data:`DDPM_STYLE_SCHEDULERS` (flow matching, EDM, ...) or describes no
        valid DDPM-style schedule.
    """
    if scheduler_dir is None:
        return None
    config = scheduler_dir / "scheduler_config.json"
    settings = _read_json(config)
    name = settings.get("_class_name", "DDPMScheduler")
    if not isinstance(name, str) or name not in DDPM_STYLE_SCHEDULERS:
        raise ValueError(
            f"denoiser: {config} describes a {name!r}; diffrep reads only schedulers whose training noise is a "
            f"discrete beta schedule, as DDPM's: {', '.join(DDPM_STYLE_SCHEDULERS)}."
        )
    try:
        return NoiseSchedule.from_scheduler(settings)
    except (OSError, ValueError, TypeError, KeyError, NotImplementedError) as exc:
        raise ValueError(f"denoiser: cannot use the scheduler config {config}: {exc}") from exc


def save_denoiser(directory, network, schedule):
    """Write a directory that :func:`load_denoiser` and diffusers read.

    A ``UNet2DModel`` becomes a diffusers DDPM pipeline (``model_index.json``,
    ``unet/``, ``scheduler/``), which ``diffusers.DDPMPipeline.from_pretrained``
    loads; any other diffusers model (the MLP) a model directory: its
    ``config.json`` and safetensors weights, with ``scheduler_config.json``
    beside them.

    Parameters
    ----------
    directory : str or os.PathLike
    network : diffusers.ModelMixin
        The denoiser; it must support ``save_pretrained``.
    schedule : NoiseSchedule
    """
    from diffusers import DDPMPipeline, UNet2DModel

    if not hasattr(network, "save_pretrained"):
        raise TypeError(
            f"save_pretrained needs a diffusers model (UNet2DModel or MLPDenoiser); "
            f"the denoiser is a {type(network).__name__}."
        )
    scheduler = schedule.to_diffusers()
    if isinstance(network, UNet2DModel):
        DDPMPipeline(unet=network, scheduler=scheduler).save_pretrained(directory, safe_serialization=True)
    else:
        network.save_pretrained(directory, safe_serialization=True)
        scheduler.save_pretrained(directory)
