"""One resolved description of a denoiser: what the featurizer needs to know about it, read once.

A denoiser may declare optional attributes (the protocol of
:mod:`diffrep.denoisers`). :func:`describe_denoiser` reads them here, and only
here, when the featurizer is fitted, and resolves them against the
featurizer's parameters into a frozen :class:`DenoiserDescription`; training,
scaling and extraction then read the description, never the network's
attributes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..schedules import NoiseSchedule
from .pipelines import PipelineDenoiser


def reads_images(network):
    """Whether ``network`` is a pretrained pipeline that reads RGB images (arrays or files) of any size.

    Parameters
    ----------
    network : object
        A denoiser module, or anything else the ``denoiser`` parameter holds.

    Returns
    -------
    bool
    """
    return isinstance(network, PipelineDenoiser)


@dataclass(frozen=True)
class DenoiserDescription:
    """What a fitted featurizer knows about its denoiser, resolved once in ``fit``.

    Parameters
    ----------
    schedule : NoiseSchedule
        The noise schedule used: the denoiser's own, else one built from the
        featurizer's parameters; its prediction type is the denoiser's
        declared one when it declares one.
    default_layers : tuple of str
        Layers captured when the featurizer's ``layers=None``.
    token_activations : bool
        Whether 3-D activations of its blocks are ``(batch, tokens, dim)``
        sequences of patch tokens, pooled over the tokens.
    input_scaling : {"minmax", "standard", "none"} or None
        The data scaling ``scaling="auto"`` picks: the denoiser's declared one,
        else ``"minmax"`` for images and ``"standard"`` for tables; None for a
        pipeline, which reads RGB values in [0, 1] itself.
    reads_images : bool
        Whether the denoiser is a pretrained pipeline reading RGB images of any
        size (arrays or files) and encoding them itself.
    sample_shape : tuple of int
        Shape of one sample the network denoises: ``(C, H, W)`` or
        ``(n_features,)`` (latents for a latent pipeline).
    image_size : int or None
        Height and width a pipeline resizes its images to; None otherwise.

    Attributes
    ----------
    prediction_type : str
        What the network predicts (``schedule.prediction_type``).
    """

    schedule: NoiseSchedule
    default_layers: tuple
    token_activations: bool
    input_scaling: str | None
    reads_images: bool
    sample_shape: tuple
    image_size: int | None

    @property
    def prediction_type(self):
        """What the network predicts: ``"epsilon"``, ``"sample"`` or ``"v_prediction"``."""
        return self.schedule.prediction_type


def _declared(network, name, default=None):
    """The protocol attribute ``name`` of ``network``, or ``default`` when it declares none (or None)."""
    value = getattr(network, name, None)
    return default if value is None else value


def _schedule(network, schedule, num_train_timesteps, beta_schedule, prediction_type):
    """The schedule to use: the one loaded or declared with the network, else one built from the parameters.

    A network's declared ``prediction_type`` wins over the ``prediction_type`` parameter.
    """
    if schedule is None:
        schedule = _declared(network, "noise_schedule")
    own_prediction = _declared(network, "prediction_type")
    if schedule is None:
        return NoiseSchedule(num_train_timesteps, beta_schedule, prediction_type=own_prediction or prediction_type)
    if own_prediction is not None and own_prediction != schedule.prediction_type:
        return NoiseSchedule.from_scheduler(dict(schedule.scheduler_config, prediction_type=own_prediction))
    return schedule


def _default_layers(network):
    """The declared default layers; else the first decoder block of a UNet; else ``"x0"``."""
    declared = _declared(network, "default_layers", ())
    if len(declared):
        return tuple(declared)
    if len(_declared(network, "up_blocks", ())):
        # The first decoder block: on 8x8 and 28x28 digits it ties mid_block within a few test
        # images and leads up_blocks.1 at 40% label noise (benchmarks/feature_quality.py, user guide).
        return ("up_blocks.0",)
    return ("x0",)


def _input_scaling(network, sample_shape):
    """The declared input scaling; else min-max for images and standardization for tables."""
    if reads_images(network):
        return None
    return _declared(network, "input_scaling", "minmax" if len(sample_shape) == 3 else "standard")


def describe_denoiser(network, schedule, sample_shape, *, num_train_timesteps, beta_schedule, prediction_type):
    """Read ``network``'s declared attributes once and resolve them against the featurizer's parameters.

    Parameters
    ----------
    network : torch.nn.Module
        The denoiser the featurizer will use.
    schedule : NoiseSchedule or None
        The schedule loaded with it (a scheduler config), if any; else its
        declared ``noise_schedule``, if any.
    sample_shape : tuple of int
        Shape of one sample the network denoises.
    num_train_timesteps : int
        Length of the schedule built when none came with the network.
    beta_schedule : str
        diffusers beta schedule of the schedule built when none came with it.
    prediction_type : str
        What the network predicts, unless it declares its own.

    Returns
    -------
    description : DenoiserDescription
    """
    if not isinstance(network, torch.nn.Module):
        raise TypeError(f"a denoiser must be a torch.nn.Module, got {type(network).__name__}.")
    image_size = network.image_size if reads_images(network) else None
    return DenoiserDescription(
        schedule=_schedule(network, schedule, num_train_timesteps, beta_schedule, prediction_type),
        default_layers=_default_layers(network),
        token_activations=bool(_declared(network, "token_activations", False)),
        input_scaling=_input_scaling(network, sample_shape),
        reads_images=reads_images(network),
        sample_shape=tuple(int(size) for size in sample_shape),
        image_size=image_size,
    )
