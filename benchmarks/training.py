"""Training throughput of diffrep._engine.training.train_denoiser vs a minimal diffusers loop.

Figure 4: steps per second of ``train_denoiser`` (AdamW + EMA, loss check every
step) vs a minimal hand-written diffusers loop (DDPMScheduler.add_noise, the
same UNet2DModel, AdamW, MSE on the noise, data already on the device, no EMA,
no logging) for the same initial weights and batch size. Target >= 0.95.

Run ``python benchmarks/training.py --help`` for the options.
"""

from __future__ import annotations

import copy

import torch
from _common import compare, images, parser, setup, time_alternating

from diffrep.denoisers.unet import build_unet
from diffrep._engine.scaling import DataScaler
from diffrep.schedules import NoiseSchedule
from diffrep._engine.training import train_denoiser
from diffrep._engine.training_config import TrainingConfig

LEARNING_RATE = 1e-3


def minimal_loop(network, data, scheduler, steps, batch_size, device, seed):
    """The hand-written reference: what a careful diffusers user would write."""
    network.to(device).train()
    optimizer = torch.optim.AdamW(network.parameters(), lr=LEARNING_RATE)
    generator = torch.Generator(device=device).manual_seed(seed)
    n_timesteps = scheduler.config.num_train_timesteps
    for _ in range(steps):
        index = torch.randint(len(data), (batch_size,), generator=generator, device=device)
        x0 = data[index]
        noise = torch.randn(x0.shape, generator=generator, device=device)
        timesteps = torch.randint(n_timesteps, (batch_size,), generator=generator, device=device)
        prediction = network(scheduler.add_noise(x0, noise, timesteps), timesteps).sample
        loss = torch.nn.functional.mse_loss(prediction, noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def main():
    cli = parser(__doc__.splitlines()[0], repeats=25)
    cli.add_argument("--n-samples", type=int, default=2000)
    cli.add_argument("--steps", type=int, default=3, help="training steps per repetition")
    args = cli.parse_args()
    device = setup(args)
    X, image_shape = images(args.image, args.n_samples)
    data = DataScaler("minmax").fit(X).transform(X).reshape(-1, *image_shape)
    schedule = NoiseSchedule()
    scheduler = schedule.to_diffusers()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        initial = build_unet(image_shape, args.model_width)
    data_on_device = torch.from_numpy(data).to(device)

    def diffrep_run():
        config = TrainingConfig(max_steps=args.steps, batch_size=args.batch_size, learning_rate=LEARNING_RATE,
                                ema_decay=0.999, seed=0)
        train_denoiser(copy.deepcopy(initial), data, schedule, config, device=device)

    def minimal_run():
        minimal_loop(copy.deepcopy(initial), data_on_device, scheduler, args.steps, args.batch_size, device, 0)

    print(f"# {args.n_samples} images of shape {image_shape}, {args.steps} steps per repetition")
    times = time_alternating(
        {"diffrep train_denoiser": diffrep_run, "minimal diffusers loop": minimal_run}, args.repeats, device
    )
    compare("[4] training steps/s: train_denoiser vs minimal diffusers loop", times,
            "diffrep train_denoiser", "minimal diffusers loop", target=0.95)


if __name__ == "__main__":
    main()
