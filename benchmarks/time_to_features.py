"""Probe accuracy per minute of training: what a user waiting for features feels.

Digits upsampled to 28x28 (MNIST-sized, one channel, shipped with
scikit-learn), 75% for training. Each variant's denoiser is trained in chunks of
``--chunk`` steps, continuing through a checkpoint directory (a warm start:
the chunks add up to exactly one uninterrupted run). After each chunk the
training clock stops, features at ``--timestep`` (independent per-sample
noise) are extracted, and a standardized logistic-regression probe is scored
on the test split. The table gives the accuracy reached after 1, 2, 5 and 10
minutes of training (CPU seconds of this process with ``--clock cpu``), per
variant; ``--plot`` saves the curves.

Run ``python benchmarks/time_to_features.py --threads 1 --clock cpu``
(``--minutes 1 2 5`` for a shorter run; each variant trains for the largest).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from diffrep import DiffusionFeaturizer
from diffrep._engine.probes import default_probe

VARIANTS = {
    "default (width 32, batch 128, lr 1e-3)": {},
    "width 16": {"model_width": 16},
    "batch 64": {"batch_size": 64},
    "lr 2e-3": {"learning_rate": 2e-3},
}


def digits_28():
    """Digits upsampled bilinearly from 8x8 to 28x28, flattened, with their labels."""
    X, y = load_digits(return_X_y=True)
    images = torch.from_numpy(X.reshape(-1, 1, 8, 8)).float()
    upsampled = torch.nn.functional.interpolate(images, size=(28, 28), mode="bilinear", align_corners=False)
    return upsampled.reshape(len(X), -1).numpy(), y


def accuracy(featurizer, split, timestep):
    X_train, X_test, y_train, y_test = split
    train, test = featurizer.extract(X_train, (timestep,)), featurizer.extract(X_test, (timestep,))
    return default_probe().fit(train, y_train).score(test, y_test)


def curve(settings, split, args, clock):
    """``[(training seconds, steps, accuracy)]`` after each chunk, until the last minute mark."""
    points, spent, steps = [], 0.0, 0
    with tempfile.TemporaryDirectory() as checkpoints:
        while spent < 60 * max(args.minutes):
            steps += args.chunk
            featurizer = DiffusionFeaturizer(
                image_shape=(1, 28, 28), max_steps=steps, checkpoint_dir=checkpoints,
                checkpoint_every=args.chunk, random_state=0, device="cpu", **settings,
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
    cli.add_argument("--minutes", type=float, nargs="+", default=[1, 2, 5, 10])
    cli.add_argument("--chunk", type=int, default=100, help="training steps between evaluations")
    cli.add_argument("--timestep", type=int, default=25)
    cli.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS), metavar="NAME")
    cli.add_argument("--threads", type=int, default=None)
    cli.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    cli.add_argument("--plot", default=None, help="save the accuracy-over-time curves to this PNG")
    args = cli.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    X, y = digits_28()
    split = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    results = {}
    for name in args.variants:
        print(f"# {name}", flush=True)
        results[name] = curve(VARIANTS[name], split, args, clock)
    header = f"{'variant':<40}" + "".join(f"{f'{m:g} min':>9}" for m in args.minutes)
    print("\n" + header)
    for name, points in results.items():
        print(f"{name:<40}" + "".join(f"{acc:9.3f}" for acc in at_marks(points, args.minutes)))
    if args.plot:
        from diffrep.plotting import import_pyplot

        plt = import_pyplot()
        fig, ax = plt.subplots(figsize=(7, 4))
        for name, points in results.items():
            ax.plot([s / 60 for s, _, _ in points], [a for _, _, a in points], "o-", label=name)
        ax.set(xlabel=f"training time (min, {args.clock} clock)", ylabel=f"probe accuracy at t={args.timestep}")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=110)


if __name__ == "__main__":
    main()
