"""Feature-extraction throughput of pretrained-pipeline architectures, with random weights.

For each family, a :class:`~diffrep.denoisers.pipelines.PipelineDenoiser` of
the published size is built with random weights (nothing is downloaded;
speed does not depend on the weights):

* ``dit``: DiT-XL/2-256 (28 blocks of width 1152, 2x2 patches of a 32x32x4
  latent) with the Stable Diffusion VAE, on 256x256 images;
* ``sd``: the Stable Diffusion 1.5 UNet (``UNet2DConditionModel`` defaults,
  64x64x4 latents) with its VAE, on 512x512 images; a CLIP-L-sized text
  encoder embeds the empty prompt once, outside the timed runs;
* ``ddpm``: the ``google/ddpm-cifar10-32`` UNet, on 32x32 images.

Per family it prints images/s of ``transform`` at one timestep (VAE encoding,
resizing and noise included; the photos are 5/4 of the model's size, channels
last, 8-bit) and figure [E]: the early-stop speed-up, the default layer alone
vs the same layer plus ``"x0"`` (a full forward pass). ``--small`` runs tiny
configurations (a few channels, 16x16 images) in seconds on a CPU.

Run ``python benchmarks/pretrained.py --help`` for the options.
"""

from __future__ import annotations

import types

import numpy as np
import torch
from _common import compare, parser, setup, time_alternating

from diffrep import DiffusionFeaturizer, NoiseSchedule
from diffrep.denoisers.pipelines import DiTDenoiser, PipelineDenoiser, StableDiffusionDenoiser

# Published sizes, and tiny ones of the same classes for --small.
SIZES = {
    "full": dict(
        vae=dict(block_out_channels=(128, 256, 512, 512), layers_per_block=2, norm_num_groups=32),
        dit=dict(num_attention_heads=16, attention_head_dim=72, num_layers=28, sample_size=32,
                 num_embeds_ada_norm=1000),
        sd=dict(sample_size=64, cross_attention_dim=768),
        clip=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12),
        ddpm=dict(sample_size=32, block_out_channels=(128, 256, 256, 256), layers_per_block=2,
                  down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"),
                  up_block_types=("UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D")),
    ),
    "small": dict(
        vae=dict(block_out_channels=(8, 8), layers_per_block=1, norm_num_groups=4),
        dit=dict(num_attention_heads=2, attention_head_dim=8, num_layers=4, sample_size=8, num_embeds_ada_norm=10),
        sd=dict(sample_size=8, cross_attention_dim=16, block_out_channels=(8, 16), layers_per_block=1,
                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), attention_head_dim=2, norm_num_groups=4),
        clip=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2),
        ddpm=dict(sample_size=16, block_out_channels=(8, 16), layers_per_block=1, norm_num_groups=4,
                  down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D")),
    ),
}


class EmptyPromptTokenizer:
    """Token ids of the empty prompt (start, then end tokens): no vocabulary files needed."""

    model_max_length = 77

    def __call__(self, prompt, **kwargs):
        ids = torch.full((1, self.model_max_length), 49407)
        ids[0, 0] = 49406
        return types.SimpleNamespace(input_ids=ids)


def _vae(sizes):
    from diffusers import AutoencoderKL

    levels = len(sizes["block_out_channels"])
    return AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * levels,
        up_block_types=("UpDecoderBlock2D",) * levels,
        latent_channels=4,
        **sizes,
    )


def build(family, size):
    """A random-weight pipeline denoiser of ``family`` at ``size`` ("full" or "small")."""
    from diffusers import DiTTransformer2DModel, UNet2DConditionModel, UNet2DModel

    sizes = SIZES[size]
    if family == "dit":
        transformer = DiTTransformer2DModel(in_channels=4, out_channels=8, patch_size=2, **sizes["dit"])
        return DiTDenoiser(transformer, _vae(sizes["vae"]), NoiseSchedule())
    if family == "sd":
        from transformers import CLIPTextConfig, CLIPTextModel

        text_encoder = CLIPTextModel(CLIPTextConfig(max_position_embeddings=77, **sizes["clip"]))
        schedule = NoiseSchedule(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
        unet = UNet2DConditionModel(in_channels=4, out_channels=4, **sizes["sd"])
        return StableDiffusionDenoiser(unet, _vae(sizes["vae"]), text_encoder, EmptyPromptTokenizer(), schedule)
    unet = UNet2DModel(in_channels=3, out_channels=3, **sizes["ddpm"])
    return PipelineDenoiser(unet, NoiseSchedule(), sizes["ddpm"]["sample_size"], ("mid_block",))


def featurizer(network, photos, args, device, with_output):
    """A fitted featurizer of ``network``'s default layer, plus ``"x0"`` (a full forward) when asked."""
    layers = (*network.default_layers, "x0") if with_output else None
    return DiffusionFeaturizer(
        denoiser=network, layers=layers, timesteps=(100,), batch_size=args.batch_size, device=str(device),
        precision=args.precision, random_state=0,
    ).fit(photos[:1])


def run(family, args, device):
    """Time one family: images/s of the early-stopped and the full-forward transform."""
    torch.manual_seed(0)  # random weights: this script's own, never the library's, global state
    network = build(family, "small" if args.small else "full")
    side = network.image_size * 5 // 4
    photos = np.random.default_rng(0).integers(0, 256, size=(args.n_samples, side, side, 3), dtype=np.uint8)
    early = featurizer(network, photos, args, device, with_output=False)
    full = featurizer(network, photos, args, device, with_output=True)
    del network
    layer = early.layers_[0]
    print(f"# {family}: {args.n_samples} photos {side}x{side} -> {early.network_.image_size}x"
          f"{early.network_.image_size}, samples {early.sample_shape_}, layer {layer}")
    times = time_alternating(
        {f"{layer} (early stop)": lambda: early.transform(photos), "full forward (+x0)": lambda: full.transform(photos)},
        args.repeats,
        device,
    )
    for name, seconds in times.items():
        print(f"    {name:<34} {args.n_samples / np.median(seconds):9.1f} images/s per timestep")
    compare(f"[E] {family}: early stop vs full forward (speed-up)", times, f"{layer} (early stop)", "full forward (+x0)")


def main():
    cli = parser(__doc__.splitlines()[0], repeats=5)
    cli.add_argument("--small", action="store_true", help="tiny configurations that run in seconds on a CPU")
    cli.add_argument("--families", nargs="+", choices=("dit", "sd", "ddpm"), default=["dit", "sd", "ddpm"])
    cli.add_argument("--n-samples", type=int, default=64)
    cli.add_argument("--precision", choices=("float32", "bfloat16"), default="float32")
    cli.set_defaults(batch_size=32)
    args = cli.parse_args()
    device = setup(args)
    for family in args.families:
        run(family, args, device)


if __name__ == "__main__":
    main()
