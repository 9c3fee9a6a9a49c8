"""Probe accuracy per minute of training: what a user waiting for features feels.

Three image sets made without a download, 75% of each for training:
``digits8``, scikit-learn's 8x8 digits; ``digits28``, the same upsampled to
28x28 (MNIST-sized, one channel); ``rgb32``, the same at 32x32 in RGB, each
drawn in a random colour on a random background (colour carries no class).

Each variant's denoiser is trained in chunks of ``--chunk`` steps, continuing
through a checkpoint directory (a warm start: the chunks add up to exactly one
uninterrupted run). After each chunk the training clock stops, features at
``--timestep`` (independent per-sample noise) are extracted, and a
standardized logistic-regression probe is scored on the test split, next to
raw pixels with a tuned probe (GridSearchCV over C,
:func:`diffrep.baselines.tuned_probe`). The table gives the accuracy reached
after 1, 2, 5 and 10 minutes of training (CPU seconds of this process with
``--clock cpu``), per variant, as the mean ± standard deviation over
``--seeds`` random states; ``--plot`` saves the curves.

Run ``python benchmarks/time_to_features.py --threads 1 --clock cpu``
(``--minutes 1 2 5`` for a shorter run; each variant trains for the largest).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from diffrep import DiffusionFeaturizer
from diffrep.baselines import tuned_probe
from diffrep.probes import default_probe

VARIANTS = {
    "0.1 default: channels (32, 64, 64)": {"channels": (32, 64, 64)},
    "default": {},
    "channels (16, 32, 32)": {"channels": (16, 32, 32)},
    "batch 64": {"batch_size": 64},
    "lr 2e-3": {"learning_rate": 2e-3},
    "batch 64, lr 2e-3": {"batch_size": 64, "learning_rate": 2e-3},
}


def unet(image_shape, channels, seed):
    """A UNet like the built-in one but with these channels per level, initialized as diffrep does."""
    from diffrep.denoisers.factory import initialize_weights
    from diffrep.denoisers.unet import unet_with_channels

    return initialize_weights(unet_with_channels(image_shape, channels), seed)


def upsampled_digits(size):
    """Digits upsampled bilinearly from 8x8 to ``size`` x ``size``, in [0, 1], shape (n, 1, size, size)."""
    X, y = load_digits(return_X_y=True)
    images = torch.from_numpy(X.reshape(-1, 1, 8, 8) / 16.0).float()
    return torch.nn.functional.interpolate(images, size=(size, size), mode="bilinear", align_corners=False), y


def digits_8():
    """The digits as shipped, 8x8, one channel: flattened images, labels and the image shape."""
    images, y = upsampled_digits(8)
    return images.reshape(len(y), -1).numpy(), y, (1, 8, 8)


def digits_28():
    """Digits at 28x28, one channel: flattened images, labels and the image shape."""
    images, y = upsampled_digits(28)
    return images.reshape(len(y), -1).numpy(), y, (1, 28, 28)


def colored_digits_32():
    """Digits at 32x32 in RGB, a random ink and background colour per image (seeded)."""
    images, y = upsampled_digits(32)
    colours = torch.from_numpy(np.random.default_rng(0).uniform(size=(2, len(y), 3, 1, 1))).float()
    rgb = colours[1] * (1 - images) + colours[0] * images
    return rgb.reshape(len(y), -1).numpy(), y, (3, 32, 32)


DATASETS = {"digits8": digits_8, "digits28": digits_28, "rgb32": colored_digits_32}


def accuracy(featurizer, split, timestep):
    X_train, X_test, y_train, y_test = split
    train, test = featurizer.extract(X_train, (timestep,)), featurizer.extract(X_test, (timestep,))
    return default_probe().fit(train, y_train).score(test, y_test)


def curve(settings, split, image_shape, args, clock, seed):
    """``[(training seconds, steps, accuracy)]`` after each chunk, until the last minute mark."""
    points, spent, steps = [], 0.0, 0
    if "channels" in settings:  # a UNet the parameters cannot describe, trained as the built-in one is
        settings = dict(settings, denoiser=unet(image_shape, settings["channels"], seed), train_denoiser=True)
        del settings["channels"]
    with tempfile.TemporaryDirectory() as checkpoints:
        while spent < 60 * max(args.minutes):
            steps += args.chunk
            featurizer = DiffusionFeaturizer(
                image_shape=image_shape, max_steps=steps, checkpoint_dir=checkpoints,
                checkpoint_every=args.chunk, random_state=seed, device="cpu", **settings,
            )
            start = clock()
            featurizer.fit(split[0])
            spent += clock() - start
            points.append((spent, steps, accuracy(featurizer, split, args.timestep)))
            print(f"    {spent:7.0f} s  {steps:6d} steps  accuracy {points[-1][2]:.3f}", flush=True)
    return points


def at_marks(points, minutes):
    """The accuracy of the last evaluation at or before each minute mark (nan before the first)."""
    marks = []
    for minute in minutes:
        reached = [acc for seconds, _, acc in points if seconds <= 60 * minute]
        marks.append(reached[-1] if reached else np.nan)
    return marks


def main():
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--dataset", choices=list(DATASETS), default="digits28")
    cli.add_argument("--minutes", type=float, nargs="+", default=[1, 2, 5, 10])
    cli.add_argument("--chunk", type=int, default=100, help="training steps between evaluations")
    cli.add_argument("--timestep", type=int, default=25)
    cli.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS), metavar="NAME")
    cli.add_argument("--seeds", type=int, default=1, help="random states per variant (mean ± std reported)")
    cli.add_argument("--threads", type=int, default=None)
    cli.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    cli.add_argument("--plot", default=None, help="save the accuracy-over-time curves to this PNG")
    args = cli.parse_args()
    warnings.filterwarnings("ignore", message="Training the denoiser")  # the cost notice of every chunk
    warnings.filterwarnings("ignore", category=ConvergenceWarning)  # lbfgs on raw RGB pixels, at large C
    if args.threads:
        torch.set_num_threads(args.threads)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    X, y, image_shape = DATASETS[args.dataset]()
    split = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    raw = tuned_probe().fit(split[0], split[2]).score(split[1], split[3])
    print(f"# {args.dataset}: raw pixels, tuned probe: {raw:.3f}", flush=True)
    results = {}
    for seed in range(args.seeds):  # variants interleaved, so that a changing load on the machine hits all alike
        for name in args.variants:
            print(f"# {name}, random_state={seed}", flush=True)
            results.setdefault(name, []).append(curve(VARIANTS[name], split, image_shape, args, clock, seed))
    header = f"{'variant (' + args.dataset + ')':<44}" + "".join(f"{f'{m:g} min':>13}" for m in args.minutes)
    print(f"\n{header}\n{'raw pixels, tuned probe':<44}" + f"{raw:13.3f}" * len(args.minutes))
    for name, runs in results.items():
        marks = np.array([at_marks(points, args.minutes) for points in runs])
        cells = [f"{np.mean(column):.3f}" + (f" ±{np.std(column):.3f}" if len(runs) > 1 else "") for column in marks.T]
        print(f"{name:<44}" + "".join(f"{cell:>13}" for cell in cells))
    if args.plot:
        plot(results, raw, args)


def plot(results, raw, args):
    """Save every run's accuracy over training time, one colour per variant."""
    from diffrep.plotting import import_pyplot

    plt = import_pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for colour, (name, runs) in enumerate(results.items()):
        for seed, points in enumerate(runs):
            ax.plot([s / 60 for s, _, _ in points], [a for _, _, a in points], "o-", color=f"C{colour}",
                    markersize=3, label=name if seed == 0 else None)
    ax.axhline(raw, color="gray", linestyle="--", label="raw pixels, tuned probe")
    ax.set(title=f"{args.dataset}, {args.seeds} seed(s) per variant",
           xlabel=f"training time (min, {args.clock} clock)", ylabel=f"probe accuracy at t={args.timestep}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.plot, dpi=110)


if __name__ == "__main__":
    main()
