"""Pretrained diffusers pipelines as denoisers: pixel-space DDPM/DDIM, DiT and Stable Diffusion.

A pipeline saved whole (``save_pretrained`` of a diffusers pipeline, or a hub
repository such as ``facebook/DiT-XL-2-256``) is a directory with a
``model_index.json`` naming the pipeline class, and one folder per component.
:func:`load_pipeline` recognises the classes in :data:`SUPPORTED_PIPELINES`
and loads their components with the same checks as any model
(:func:`~diffrep.denoisers.loading.load_model`: safetensors, or
``torch.load(weights_only=True)``; no code from the files runs).

Each becomes a :class:`PipelineDenoiser`: a module following the denoiser
protocol (``forward(x_t, t)``) that also turns RGB images into the samples the
network denoises (:meth:`PipelineDenoiser.encode`):

* DDPM/DDIM: the images themselves, mapped from ``[0, 1]`` to ``[-1, 1]``;
* DiT and Stable Diffusion: the mean of the VAE's latent distribution times
  the VAE's ``scaling_factor``. Noise is then added to the latents, with the
  pipeline's own scheduler. DiT is given its null class (the unconditional
  embedding, index ``num_embeds_ada_norm``), Stable Diffusion the CLIP
  embedding of the empty prompt, computed once when the condition is set
  (:meth:`PipelineDenoiser.conditioned`), after which the text encoder is
  dropped.

The denoising network's blocks are this module's own children, so layers are
named as in the network: ``transformer_blocks.14`` of DiT, ``up_blocks.1`` or
``mid_block`` of a UNet.
"""

from __future__ import annotations

import numbers

import torch

from .config_checks import check_model_config, check_token_length, sample_side
from .loading import WEIGHTS_NAMES, _read_json, load_model, load_schedule

_TEXT_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
# The component folders holding a model config (checked before any component is built).
_MODEL_COMPONENTS = ("unet", "transformer", "vae", "text_encoder")


class PipelineDenoiser(torch.nn.Module):
    """A pretrained pipeline's denoising network, with its image encoding and conditioning.

    Parameters
    ----------
    backbone : diffusers.ModelMixin
        The denoising network. Its children become this module's children
        (same objects), so that its blocks keep their names.
    schedule : NoiseSchedule
        The pipeline scheduler's schedule.
    default_layers : tuple of str
        Layers captured when the featurizer's ``layers=None``.
    scale : int, default=1
        Image pixels per side of one sample element (the VAE's downsampling
        factor of a latent pipeline).

    Attributes
    ----------
    noise_schedule : NoiseSchedule
    image_size : int
    sample_shape : tuple of int
        ``(C, h, w)`` of what the backbone denoises (latents or pixels).
    default_layers : tuple of str
    token_activations : bool
        Whether 3-D activations are ``(batch, tokens, dim)`` sequences of
        patch tokens (transformer blocks), rather than ``(batch, C, length)``.
    """

    token_activations = False

    def __init__(self, backbone, schedule, default_layers, scale=1):
        super().__init__()
        for name, child in backbone.named_children():
            self.add_module(name, child)
        self.__dict__["backbone"] = backbone  # called, not registered: its children are registered above
        self.noise_schedule = schedule
        size = sample_side(backbone.config.sample_size, type(backbone).__name__)
        self.image_size = size * scale
        self.sample_shape = (int(backbone.config.in_channels), size, size)
        self.default_layers = tuple(default_layers)

    def train(self, mode=True):
        """Set training mode here, in every block and in the backbone itself.

        Parameters
        ----------
        mode : bool, default=True

        Returns
        -------
        self : PipelineDenoiser
        """
        self.backbone.training = mode
        return super().train(mode)

    def encode(self, images):
        """The samples the backbone denoises, from RGB images in ``[0, 1]``.

        The pixels mapped to ``[-1, 1]``, or for a latent pipeline their VAE
        latent means times the VAE's ``scaling_factor``.

        Parameters
        ----------
        images : torch.Tensor of shape (n, 3, image_size, image_size)

        Returns
        -------
        samples : torch.Tensor of shape ``(n, *sample_shape)``
        """
        from diffusers.image_processor import VaeImageProcessor

        return self._from_pixels(VaeImageProcessor.normalize(images))

    def _from_pixels(self, pixels):
        """The samples of images in ``[-1, 1]``: the pixels themselves (their gray level for one channel)."""
        return pixels.mean(dim=1, keepdim=True) if self.sample_shape[0] == 1 else pixels

    def conditioned(self, condition):
        """Fix the conditioning of every forward pass; return ``self``.

        Parameters
        ----------
        condition : None
            Unconditional pipelines take no condition.

        Returns
        -------
        self : PipelineDenoiser
        """
        if condition is not None:
            raise ValueError(
                f"condition must be None for a {type(self).__name__} (an unconditional pipeline), got {condition!r}; "
                "class ids are for DiT pipelines, prompts for Stable Diffusion ones."
            )
        return self

    def forward(self, x_t, timesteps):
        """The backbone's prediction for noisy samples.

        Parameters
        ----------
        x_t : torch.Tensor of shape ``(batch, *sample_shape)``
        timesteps : torch.LongTensor of shape (batch,)

        Returns
        -------
        prediction : torch.Tensor of shape ``(batch, *sample_shape)``
        """
        output = self.backbone(x_t, timesteps, **self._conditioning(len(x_t))).sample
        return output[:, : x_t.shape[1]]  # DiT also predicts its variance, in further channels

    def _conditioning(self, batch_size):
        """Keyword arguments of the backbone's forward that condition it, for a batch."""
        return {}


class LatentPipelineDenoiser(PipelineDenoiser):
    """A latent pipeline: the backbone denoises the latents of a VAE.

    Parameters
    ----------
    backbone : diffusers.ModelMixin
    vae : diffusers.AutoencoderKL
    schedule : NoiseSchedule
    default_layers : tuple of str
    """

    token_activations = True

    def __init__(self, backbone, vae, schedule, default_layers):
        scale = 2 ** (len(vae.config.block_out_channels) - 1)
        super().__init__(backbone, schedule, default_layers, scale)
        self.vae = vae

    def _from_pixels(self, pixels):
        """VAE latent means of images in ``[-1, 1]``, times the VAE's ``scaling_factor``."""
        config = self.vae.config
        latents = self.vae.encode(pixels).latent_dist.mean
        shift = config.get("shift_factor") or 0.0
        return (latents - shift) * config.scaling_factor


class DiTDenoiser(LatentPipelineDenoiser):
    """DiT: a class-conditional latent transformer, given its null class unless told otherwise.

    Parameters
    ----------
    transformer : diffusers.DiTTransformer2DModel
    vae : diffusers.AutoencoderKL
    schedule : NoiseSchedule
    """

    def __init__(self, transformer, vae, schedule):
        # The middle block, as the paper reads DiT; to be measured on real weights.
        middle = transformer.config.num_layers // 2
        super().__init__(transformer, vae, schedule, (f"transformer_blocks.{middle}",))
        self.n_classes = int(transformer.config.num_embeds_ada_norm)
        self.register_buffer("class_label", torch.tensor([self.n_classes]))

    def conditioned(self, condition):
        """Condition every forward pass on a class, or the null class when ``condition`` is None.

        Parameters
        ----------
        condition : int or None
            A class id in ``[0, n_classes)``.

        Returns
        -------
        self : DiTDenoiser
        """
        if condition is None:
            return self
        if isinstance(condition, bool) or not isinstance(condition, numbers.Integral):
            raise TypeError(f"condition must be None or a class id (int) for a DiT pipeline, got {condition!r}.")
        if not 0 <= condition < self.n_classes:
            raise ValueError(f"condition must be a class id in [0, {self.n_classes - 1}] for this DiT, got {condition}.")
        self.class_label.fill_(int(condition))
        return self

    def _conditioning(self, batch_size):
        return {"class_labels": self.class_label.expand(batch_size)}


class StableDiffusionDenoiser(LatentPipelineDenoiser):
    """Stable Diffusion: a text-conditional latent UNet, given the empty prompt unless told otherwise.

    Parameters
    ----------
    unet : diffusers.UNet2DConditionModel
    vae : diffusers.AutoencoderKL
    text_encoder : transformers.CLIPTextModel
    tokenizer : transformers.CLIPTokenizer
    schedule : NoiseSchedule
    """

    def __init__(self, unet, vae, text_encoder, tokenizer, schedule):
        # DIFT reads up_blocks.1 of Stable Diffusion; to be measured on real weights.
        super().__init__(unet, vae, schedule, ("up_blocks.1",))
        self.text_encoder = text_encoder
        self.tokenizer = tokenizer
        self.register_buffer("prompt_embedding", None)

    @torch.no_grad()
    def conditioned(self, condition):
        """Embed the prompt (the empty one when ``condition`` is None) once; drop the text encoder.

        Parameters
        ----------
        condition : str or None

        Returns
        -------
        self : StableDiffusionDenoiser
        """
        if condition is not None and not isinstance(condition, str):
            raise TypeError(f"condition must be None or a prompt (str) for a Stable Diffusion pipeline, got {condition!r}.")
        tokens = self.tokenizer(
            condition or "",
            padding="max_length",
            max_length=self.tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        )
        embedding = self.text_encoder(tokens.input_ids)[0]
        del self.text_encoder, self.tokenizer
        self.register_buffer("prompt_embedding", embedding.float())
        return self

    def _conditioning(self, batch_size):
        if self.prompt_embedding is None:
            raise RuntimeError("call conditioned() before running a Stable Diffusion denoiser.")
        return {"encoder_hidden_states": self.prompt_embedding.expand(batch_size, -1, -1)}


def _component(directory, name, model_class, weights_names=WEIGHTS_NAMES):
    """Load the component in ``directory/name`` with the checks of :func:`load_model`."""
    folder = directory / name
    if not (folder / "config.json").is_file():
        raise ValueError(f"denoiser: the pipeline {directory} has no {name}/config.json.")
    return load_model(folder, model_class, weights_names)


def _schedule(directory):
    folder = directory / "scheduler"
    if not (folder / "scheduler_config.json").is_file():
        raise ValueError(f"denoiser: the pipeline {directory} has no scheduler/scheduler_config.json.")
    return load_schedule(folder)


def _pixel(directory):
    from diffusers import UNet2DModel

    unet = _component(directory, "unet", UNet2DModel)
    return PipelineDenoiser(unet, _schedule(directory), ("mid_block",))


def _dit(directory):
    from diffusers import AutoencoderKL, DiTTransformer2DModel

    config = directory / "transformer" / "config.json"
    if config.is_file() and _read_json(config).get("num_embeds_ada_norm", 1000) is None:
        raise ValueError(f"denoiser: {config}: num_embeds_ada_norm must be the number of classes of a DiT, got None.")
    transformer = _component(directory, "transformer", DiTTransformer2DModel)
    return DiTDenoiser(transformer, _component(directory, "vae", AutoencoderKL), _schedule(directory))


def _text_classes():
    """transformers' CLIP text encoder and tokenizer classes, or an error naming the extra to install."""
    try:
        from transformers import CLIPTextModel, CLIPTokenizer
    except ImportError:
        raise ImportError(
            "denoiser: Stable Diffusion pipelines need the `transformers` package for their CLIP text encoder; "
            "install it with pip install 'diffrep[text]'."
        ) from None
    return CLIPTextModel, CLIPTokenizer


def _stable_diffusion(directory):
    from diffusers import AutoencoderKL, UNet2DConditionModel

    text_model, tokenizer_class = _text_classes()
    _check_tokenizer(directory)
    return StableDiffusionDenoiser(
        _component(directory, "unet", UNet2DConditionModel),
        _component(directory, "vae", AutoencoderKL),
        _component(directory, "text_encoder", text_model, _TEXT_WEIGHTS),
        tokenizer_class.from_pretrained(directory / "tokenizer"),
        _schedule(directory),
    )


def _check_tokenizer(directory):
    """Raise unless ``tokenizer/`` holds a vocabulary and a prompt length its text encoder takes."""
    folder = directory / "tokenizer"
    if not folder.is_dir():
        raise ValueError(f"denoiser: the pipeline {directory} has no tokenizer/ folder.")
    if not ((folder / "tokenizer.json").is_file() or (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file()):
        raise ValueError(f"denoiser: {folder} holds no vocabulary (tokenizer.json, or vocab.json and merges.txt).")
    text_config = folder.parent / "text_encoder" / "config.json"
    max_positions = _read_json(text_config).get("max_position_embeddings") if text_config.is_file() else None
    config = folder / "tokenizer_config.json"
    check_token_length(_read_json(config), config, max_positions)


def _check_configs(directory):
    """Raise when a component's config sets a size out of bounds, before any network is built."""
    for name in _MODEL_COMPONENTS:
        path = directory / name / "config.json"
        if path.is_file():
            check_model_config(_read_json(path), path)


_LOADERS = {
    "DDPMPipeline": _pixel,
    "DDIMPipeline": _pixel,
    "DiTPipeline": _dit,
    "StableDiffusionPipeline": _stable_diffusion,
}
# The pipeline classes (``_class_name`` of model_index.json) that load_pipeline recognises.
SUPPORTED_PIPELINES = tuple(_LOADERS)


def load_pipeline(directory):
    """Load a pipeline directory (one with ``model_index.json``) as a denoiser.

    Parameters
    ----------
    directory : pathlib.Path

    Returns
    -------
    network : PipelineDenoiser
        On the CPU, in eval mode, not yet conditioned (see
        :meth:`PipelineDenoiser.conditioned`).
    schedule : NoiseSchedule
        The schedule of the pipeline's scheduler.

    Raises
    ------
    ValueError
        If the pipeline class is not one of :data:`SUPPORTED_PIPELINES`, a
        component is missing or broken, or a config sets a size beyond
        :data:`~diffrep.denoisers.config_checks.CONFIG_BOUNDS` (checked before
        any network is built).
    ImportError
        If a Stable Diffusion pipeline is loaded without ``transformers``.
    """
    name = _read_json(directory / "model_index.json").get("_class_name")
    if not isinstance(name, str) or name not in _LOADERS:
        raise ValueError(
            f"denoiser: {directory / 'model_index.json'} describes a {name!r}; diffrep loads the pipelines "
            f"{SUPPORTED_PIPELINES}."
        )
    _check_configs(directory)
    network = _LOADERS[name](directory).eval()
    return network, network.noise_schedule
