"""Loaded pretrained denoisers, read once per process and handed out as copies."""

from __future__ import annotations

import copy
import functools
import os
from pathlib import Path

from .loading import check_local_source, is_hub_id, is_pipeline_directory, load_denoiser, local_source, model_files
from .pipelines import load_pipeline

# Pretrained denoisers kept loaded per process (least recently used dropped first).
_REGISTRY_SIZE = 4


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
    source = local_source(stamp[1])
    if is_pipeline_directory(source):
        return load_pipeline(Path(source))
    return load_denoiser(source)


def load_pretrained(source):
    """:func:`~diffrep.denoisers.loading.load_denoiser`, reading each source once per process.

    A directory is identified by its resolved path and the modification times
    and sizes of its model and scheduler files (a directory that is not a
    model or pipeline directory is rejected before anything in it is listed),
    so a model saved again at the same place is reloaded; a hub id by itself.
    The last few sources stay loaded. Every call returns its own deep copy: the
    loaded original is never handed out, moved to a device or trained, so
    fine-tuning one copy leaves the others intact.

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
