"""Turning the featurizer's ``denoiser`` parameter into a network and its schedule."""

from __future__ import annotations

import copy
import math
import os

import torch

from .registry import load_pretrained

BUILT_IN = ("auto", "unet", "mlp")


def _construct(kind, sample_shape, model_width):
    """A built-in network with uninitialized weights, built without drawing random numbers."""
    with torch.device("meta"):  # layers on the meta device allocate nothing and draw nothing
        if kind == "unet":
            from .unet import build_unet

            network = build_unet(sample_shape, width=model_width)
        else:
            from .mlp import MLPDenoiser

            network = MLPDenoiser(n_features=sample_shape[0], width=model_width or 256)
    return network.to_empty(device="cpu")


@torch.no_grad()
def _initialize(module, generator):
    """Draw the direct parameters of one layer as torch's default initialization does, from ``generator``."""
    if isinstance(module, (torch.nn.Linear, torch.nn.modules.conv._ConvNd)):
        torch.nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=generator)
        if module.bias is not None:
            bound = 1.0 / math.sqrt(module.weight[0].numel())
            torch.nn.init.uniform_(module.bias, -bound, bound, generator=generator)
    elif isinstance(module, (torch.nn.GroupNorm, torch.nn.LayerNorm)):
        torch.nn.init.ones_(module.weight)
        torch.nn.init.zeros_(module.bias)
    elif next(module.parameters(recurse=False), None) is not None:
        raise TypeError(f"no initialization is defined for the {type(module).__name__} layers of a built-in denoiser")


def initialize_weights(network, seed):
    """Draw every weight of ``network`` afresh from ``seed``, in place; return it.

    The weights come from a generator of this call's own, layer by layer in
    module order, with torch's default initialization (Kaiming-uniform weights,
    fan-in-uniform biases, unit norms): the global random state is neither read
    nor changed, so fits in parallel threads get the weights of a lone fit.

    Parameters
    ----------
    network : torch.nn.Module
        Made of linear, convolution and normalization layers.
    seed : int

    Returns
    -------
    network : torch.nn.Module
    """
    generator = torch.Generator().manual_seed(int(seed))
    for module in network.modules():
        _initialize(module, generator)
    return network


def _build(kind, sample_shape, model_width, seed):
    """A freshly initialized built-in network, its weights drawn from ``seed``."""
    return initialize_weights(_construct(kind, sample_shape, model_width), seed)


def _check_takes(network, sample_shape, denoiser):
    """Raise ``ValueError`` when a loaded model cannot take samples of ``sample_shape``."""
    config = network.config
    if "in_channels" in config:
        takes = f"images with {config['in_channels']} channel(s)"
        fits = len(sample_shape) == 3 and sample_shape[0] == config["in_channels"]
    else:
        takes = f"vectors of {config['n_features']} features"
        fits = tuple(sample_shape) == (config["n_features"],)
    if not fits:
        raise ValueError(
            f"denoiser={os.fspath(denoiser)!r} takes {takes}, but the samples of X have shape "
            f"{tuple(sample_shape)}; give images as 3-D/4-D X or with image_shape=(C, H, W)."
        )


def load_source(denoiser):
    """Load ``denoiser`` when it names a model (a path or hub id); None for a built-in name or a module.

    Parameters
    ----------
    denoiser : str, os.PathLike or torch.nn.Module
        The featurizer's ``denoiser`` parameter.

    Returns
    -------
    loaded : tuple of (torch.nn.Module, NoiseSchedule or None) or None
        A copy of the loaded network and its schedule (see
        :func:`~diffrep.caching.load_pretrained`).
    """
    if isinstance(denoiser, os.PathLike) or (isinstance(denoiser, str) and denoiser not in BUILT_IN):
        return load_pretrained(denoiser)
    return None


def obtain_denoiser(denoiser, sample_shape, model_width, seed, loaded=None):
    """Build, load or copy the denoiser the featurizer will use.

    Parameters
    ----------
    denoiser : {"auto", "unet", "mlp"}, str, os.PathLike or torch.nn.Module
        A built-in backbone (``"auto"``: UNet for images, MLP for tables), a
        model/pipeline directory or hub id (read once per process, then copied),
        or a module (deep-copied).
    sample_shape : tuple of int
        ``(C, H, W)`` for images, ``(n_features,)`` for tables.
    model_width : int or None
        Width of a built-in backbone; None for its default.
    seed : int
        Seed of a built-in backbone's initial weights.
    loaded : tuple or None, default=None
        What :func:`load_source` returned for ``denoiser``, if it was called.

    Returns
    -------
    network : torch.nn.Module
        A network the caller owns.
    schedule : NoiseSchedule or None
        The schedule loaded with the network, if any (a module's own
        ``noise_schedule`` is read by :func:`~diffrep.denoisers.description.describe_denoiser`).
    built_in : bool
        True for a freshly initialized built-in backbone (trained by default).
    """
    if isinstance(denoiser, torch.nn.Module):
        return copy.deepcopy(denoiser), None, False
    if isinstance(denoiser, str) and denoiser in BUILT_IN:
        kind = denoiser
        if kind == "auto":
            kind = "unet" if len(sample_shape) == 3 else "mlp"
        if kind == "unet" and len(sample_shape) != 3:
            raise ValueError(
                "denoiser='unet' needs images: pass image_shape=(C, H, W) or a 3-D/4-D X."
            )
        if kind == "unet" and sample_shape[1] * sample_shape[2] < 2:
            raise ValueError(
                f"denoiser='unet' needs images of at least 2 pixels (its normalization layers average over "
                f"them), got images of shape {tuple(sample_shape)}; pass them as 2-D X for the MLP."
            )
        if kind == "mlp" and len(sample_shape) != 1:
            raise ValueError(
                "denoiser='mlp' works on vectors: pass a 2-D X without image_shape."
            )
        return _build(kind, sample_shape, model_width, seed), None, True
    if isinstance(denoiser, (str, os.PathLike)):
        network, schedule = loaded or load_pretrained(denoiser)
        _check_takes(network, sample_shape, denoiser)
        return network, schedule, False
    raise TypeError(
        f"denoiser must be one of {BUILT_IN}, a path or hub id of a diffusers model, or a "
        f"torch.nn.Module; got {type(denoiser).__name__}."
    )
