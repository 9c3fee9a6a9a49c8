"""Bounds on the model configs of pretrained directories, checked before any network is built.

A config file decides how large a network diffusers builds and how large the
tensors it runs on are: a ``num_layers`` of a million builds for minutes and
gigabytes before the weights fail to match, a ``sample_size`` of 4096 makes
every forward pass take minutes, a tokenizer's ``model_max_length`` of 10**9
aborts the process while padding the prompt. Every value that sets a size is
checked here against :data:`CONFIG_BOUNDS` (ranges far above the largest
public checkpoint of each class: Stable Diffusion XL, DiT-XL/2, CLIP ViT-bigG)
and refused with an error that names the file, the key and the value.
"""

from __future__ import annotations

import numbers

# key: (smallest, largest) accepted value; list values are checked element by element.
CONFIG_BOUNDS = {
    # sizes of what the network takes (pixels or latents per side, channels)
    "sample_size": (1, 1024),
    "in_channels": (1, 64),
    "out_channels": (1, 128),
    "latent_channels": (1, 64),
    "n_features": (1, 10**7),  # diffrep's MLP denoiser
    # widths
    "block_out_channels": (1, 8192),
    "width": (1, 65536),
    "time_dim": (1, 65536),
    "hidden_size": (1, 16384),
    "intermediate_size": (1, 65536),
    "cross_attention_dim": (1, 16384),
    "projection_dim": (1, 16384),
    "attention_head_dim": (1, 1024),
    "num_attention_heads": (1, 256),
    "norm_num_groups": (1, 1024),
    "patch_size": (1, 64),
    # depths
    "layers_per_block": (1, 16),
    "transformer_layers_per_block": (1, 32),
    "num_layers": (1, 256),
    "num_hidden_layers": (1, 256),
    "n_blocks": (1, 256),
    # tables
    "num_embeds_ada_norm": (1, 10**6),
    "vocab_size": (1, 10**6),
    "max_position_embeddings": (1, 16384),
}
# Resolution levels of a UNet or VAE (entries of block_out_channels and of the block type lists).
MAX_LEVELS = 8
_LEVEL_KEYS = ("block_out_channels", "down_block_types", "up_block_types")
# Longest tokenized prompt, when the text encoder does not say (CLIP's is 77).
MAX_TOKENS = 16384


def _is_integer(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_value(path, key, value, low, high):
    values = value if isinstance(value, (list, tuple)) else [value]
    if isinstance(value, (list, tuple)) and not 1 <= len(value) <= MAX_LEVELS:
        raise ValueError(f"denoiser: {path}: {key} must hold 1 to {MAX_LEVELS} values, got {len(value)}.")
    for item in values:
        if not _is_integer(item) or not low <= item <= high:
            raise ValueError(
                f"denoiser: {path}: {key} must be an integer in [{low}, {high}] (or a list of such), got {item!r}; "
                "diffrep refuses sizes that would build or run a network of unbounded cost."
            )


def check_model_config(config, path):
    """Raise ``ValueError`` when a model config sets a size outside :data:`CONFIG_BOUNDS`.

    Parameters
    ----------
    config : dict
        A diffusers or transformers model config (``config.json``).
    path : pathlib.Path
        The file it was read from, named in errors.

    Raises
    ------
    ValueError
        If ``_class_name`` is not a string, a size is not an integer within
        its bounds, a level list is longer than :data:`MAX_LEVELS`, or
        ``sample_size`` is a non-square ``[height, width]``.
    """
    name = config.get("_class_name")
    if name is not None and not isinstance(name, str):
        raise ValueError(f"denoiser: {path}: _class_name must be a class name (a string), got {name!r}.")
    for key, (low, high) in CONFIG_BOUNDS.items():
        if config.get(key) is not None:
            _check_value(path, key, config[key], low, high)
    for key in _LEVEL_KEYS:
        if isinstance(config.get(key), (list, tuple)) and len(config[key]) > MAX_LEVELS:
            raise ValueError(f"denoiser: {path}: {key} must hold at most {MAX_LEVELS} levels, got {len(config[key])}.")
    if config.get("sample_size") is not None:
        sample_side(config["sample_size"], path)


def sample_side(sample_size, path):
    """The side of a square sample: ``sample_size`` as ``n`` or ``[n, n]``.

    Parameters
    ----------
    sample_size : int or sequence of two int
        A model config's ``sample_size`` (already within its bounds).
    path : pathlib.Path or str
        The config file or directory, named in errors.

    Returns
    -------
    side : int

    Raises
    ------
    ValueError
        If ``sample_size`` is not one integer nor a pair of equal integers.
    """
    if _is_integer(sample_size):
        return int(sample_size)
    if isinstance(sample_size, (list, tuple)) and len(sample_size) == 2 and all(map(_is_integer, sample_size)):
        if sample_size[0] == sample_size[1]:
            return int(sample_size[0])
        raise ValueError(
            f"denoiser: {path}: sample_size {list(sample_size)} is not square; pretrained pipelines take square "
            "images. A featurizer saved with save_pretrained loads with DiffusionFeaturizer.from_pretrained, "
            "which needs its diffrep_config.json."
        )
    raise ValueError(f"denoiser: {path}: sample_size must be an integer or [n, n], got {sample_size!r}.")


def check_token_length(tokenizer_config, path, max_positions):
    """Raise ``ValueError`` unless a tokenizer's ``model_max_length`` fits its text encoder.

    Parameters
    ----------
    tokenizer_config : dict
        The tokenizer's ``tokenizer_config.json``.
    path : pathlib.Path
        That file, named in errors.
    max_positions : int or None
        The text encoder's ``max_position_embeddings`` (already bounded), or
        None to use :data:`MAX_TOKENS`.

    Raises
    ------
    ValueError
        If ``model_max_length`` is missing, or not an integer in
        ``[1, max_positions]``: prompts are padded to that length.
    """
    high = MAX_TOKENS if max_positions is None else max_positions
    length = tokenizer_config.get("model_max_length")
    if not _is_integer(length) or not 1 <= length <= high:
        raise ValueError(
            f"denoiser: {path}: model_max_length must be an integer in [1, {high}] (the text encoder's "
            f"max_position_embeddings), got {length!r}; prompts are padded to that length."
        )
