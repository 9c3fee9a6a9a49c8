"""Which files define a diffusers pipeline, locally and on the hub.

Kept apart from the loaders so that :mod:`diffrep.denoisers.loading` (which
checks and downloads files) and :mod:`diffrep.denoisers.pipelines` (which
builds the networks) both use it without importing each other.
"""

from __future__ import annotations

# The folders of the components diffrep loads, and the files it reads in them.
_COMPONENTS = ("unet", "transformer", "vae", "text_encoder", "tokenizer", "scheduler")
_SMALL_FILES = (
    "config.json",
    "scheduler_config.json",
    "vocab.json",
    "merges.txt",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
)
_HUB_WEIGHTS = ("diffusion_pytorch_model.safetensors", "model.safetensors", "diffusion_pytorch_model.bin",
                "pytorch_model.bin")


def pipeline_files(directory):
    """The files that define a pipeline directory: ``model_index.json`` and its components' files.

    Parameters
    ----------
    directory : pathlib.Path

    Returns
    -------
    files : list of pathlib.Path
        Sorted; component folders are listed, not walked.
    """
    folders = [directory / name for name in _COMPONENTS if (directory / name).is_dir()]
    files = [path for folder in folders for path in folder.iterdir() if path.is_file()]
    return sorted([directory / "model_index.json", *files])


def pipeline_hub_files(names):
    """The files of a hub pipeline repository that :func:`diffrep.denoisers.pipelines.load_pipeline` needs.

    Parameters
    ----------
    names : list of str
        The repository's file names.

    Returns
    -------
    files : list of str
        ``model_index.json``, the components' configs and tokenizer files, and
        one weights file per component (safetensors first).
    """
    wanted = {"model_index.json"}
    for component in _COMPONENTS:
        wanted.update(f"{component}/{name}" for name in _SMALL_FILES)
        weights = [f"{component}/{name}" for name in _HUB_WEIGHTS if f"{component}/{name}" in names]
        wanted.update(weights[:1])
    return sorted(wanted.intersection(names))
