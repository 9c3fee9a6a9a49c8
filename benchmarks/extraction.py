"""Feature-extraction throughput of DiffusionFeaturizer, side by side with references.

Figures (all ratios are throughput ratios: above 1 means the first is faster):

1. ``transform`` capturing the last up block (a full forward pass) vs a bare
   loop calling the same UNet's forward on the same noisy batches. Target >= 0.95.
2. ``transform`` capturing ``mid_block`` only (the decoder half is skipped)
   vs the same full-forward ``transform``: the early-stop speed-up.
3. ``T`` timesteps extracted in one call vs ``T`` separate calls. Target >= 1.0.

Run ``python benchmarks/extraction.py --help`` for the options.
"""

from __future__ import annotations

import numpy as np
import torch
from _common import compare, images, parser, setup, time_alternating

from diffrep import DiffusionFeaturizer


def fitted_featurizer(X, image_shape, args, device, layers, timesteps=(50,)):
    """An untrained (randomly initialized) featurizer: extraction costs do not depend on training."""
    featurizer = DiffusionFeaturizer(
        timesteps=timesteps,
        layers=layers,
        image_shape=image_shape,
        train_denoiser=False,
        model_width=args.model_width,
        batch_size=args.batch_size,
        device=str(device),
        precision=args.precision,
        random_state=0,
    )
    return featurizer.fit(X)


def bare_batches(featurizer, X, timestep):
    """Noisy batches like those ``transform`` feeds the network, prepared ahead on the device.

    Their noise is drawn beforehand, so the bare loop pays nothing for it while
    ``transform`` derives each sample's noise during the timed run.
    """
    scaled = featurizer.scaler_.transform(X).reshape(-1, *featurizer.sample_shape_)
    data = torch.from_numpy(scaled).to(featurizer.device_)
    noise = torch.randn(data.shape, generator=torch.Generator().manual_seed(0)).to(featurizer.device_)
    batches = []
    for start in range(0, len(data), featurizer.batch_size):
        x0 = data[start : start + featurizer.batch_size]
        t = torch.full((len(x0),), timestep, dtype=torch.long, device=featurizer.device_)
        batches.append((featurizer.schedule_.add_noise(x0, noise[start : start + len(x0)], t), t))
    return batches


def main():
    cli = parser(__doc__.splitlines()[0], repeats=15)
    cli.add_argument("--n-samples", type=int, default=300)
    cli.add_argument("--n-timesteps", type=int, default=4, help="T of figure 3")
    cli.add_argument("--precision", choices=("float32", "bfloat16"), default="float32",
                     help="precision of the featurizers (the bare loop stays float32)")
    args = cli.parse_args()
    device = setup(args)
    X, image_shape = images(args.image, args.n_samples)

    probe = fitted_featurizer(X[:2], image_shape, args, device, layers=None)
    last_up = f"up_blocks.{len(probe.network_.up_blocks) - 1}"
    full = fitted_featurizer(X, image_shape, args, device, layers=(last_up,))
    mid = fitted_featurizer(X, image_shape, args, device, layers=("mid_block",))
    batches = bare_batches(full, X, full.timesteps_[0])

    def bare_loop():
        with torch.inference_mode():
            for x_t, t in batches:
                full.network_(x_t, t)

    print(f"# {args.n_samples} images of shape {image_shape}; figures 1-2 at timestep {full.timesteps_[0]}")
    times = time_alternating(
        {
            f"transform ({last_up})": lambda: full.transform(X),
            "bare UNet forward loop": bare_loop,
            "transform (mid_block)": lambda: mid.transform(X),
        },
        args.repeats,
        device,
    )
    compare("[1] transform vs bare forward loop (throughput)", times,
            f"transform ({last_up})", "bare UNet forward loop", target=0.95)
    compare("[2] early stop: mid_block only vs full forward (speed-up)", times,
            "transform (mid_block)", f"transform ({last_up})")

    timesteps = tuple(int(t) for t in np.linspace(25, 400, args.n_timesteps))
    one_call = mid.extract(X, timesteps)
    separate = np.hstack([mid.extract(X, (t,)) for t in timesteps])
    gap = float(np.abs(one_call - separate).max())
    times = time_alternating(
        {
            f"one call, T={len(timesteps)}": lambda: mid.extract(X, timesteps),
            f"{len(timesteps)} separate calls": lambda: [mid.extract(X, (t,)) for t in timesteps],
        },
        args.repeats,
        device,
    )
    compare(f"[3] T timesteps {timesteps} in one call vs T calls (mid_block; max |diff| {gap:.1e})",
            times, f"one call, T={len(timesteps)}", f"{len(timesteps)} separate calls", target=1.0)


if __name__ == "__main__":
    main()
