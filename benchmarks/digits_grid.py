"""Which layer, timesteps and noise draws make the best digits features: the measurement behind the defaults.

One default ``DiffusionFeaturizer`` (UNet, 2,000 training steps) is trained
without labels on the digits training split (75%, stratified). Its features are
read at every layer of the grid (``mid_block``, each ``up_blocks.i``, ``"x0"``),
timestep and number of noise draws, and a probe (standardize + logistic
regression, C=1: the ensemble's default probe) is fitted on the training split,
with clean labels and with 40% symmetric label noise (always a wrong class),
and scored on the clean test labels. The table prints test accuracy.

Run ``python benchmarks/digits_grid.py`` (about 10 minutes on 2 CPU cores,
most of it training); ``--max-steps`` trains a shorter denoiser.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from diffrep import DiffusionFeaturizer, corrupt_labels
from diffrep.probes import default_probe

TIMESTEPS = (0, 10, 25, 50, 100, 200, 400, 700, 999)
DRAWS = (1, 4)
RATES = (0.0, 0.4)


def layer_blocks(featurizer, features, timesteps):
    """Split an extraction of all layers into ``{(layer, timestep): block}``."""
    widths = [featurizer.feature_info_[layer]["n_features"] for layer in featurizer.layers_]
    per_timestep = np.split(features, len(timesteps), axis=1)
    blocks = {}
    for t, block in zip(timesteps, per_timestep):
        for layer, part in zip(featurizer.layers_, np.split(block, np.cumsum(widths)[:-1], axis=1)):
            blocks[layer, t] = part
    return blocks


def main():
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--max-steps", type=int, default=2000)
    cli.add_argument("--seed", type=int, default=0)
    cli.add_argument("--memory", default=None, help="cache of trained denoisers (shared with `diffrep demo`)")
    args = cli.parse_args()

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=args.seed)
    probe_layers = DiffusionFeaturizer(image_shape=(1, 8, 8), max_steps=0).fit(X_train[:2])
    ups = [f"up_blocks.{i}" for i in range(len(probe_layers.network_.up_blocks))]
    layers = ("mid_block", *ups, "x0")
    start = time.perf_counter()
    featurizer = DiffusionFeaturizer(
        image_shape=(1, 8, 8), layers=layers, max_steps=args.max_steps, random_state=args.seed, memory=args.memory
    ).fit(X_train)
    print(f"# trained {args.max_steps} steps in {time.perf_counter() - start:.0f} s; "
          f"sigmas {dict(zip(TIMESTEPS, np.round(featurizer.schedule_.sigmas(TIMESTEPS), 3)))}")
    labels = {rate: corrupt_labels(y_train, rate, random_state=args.seed) for rate in RATES}
    rows = []
    for draws in DRAWS:
        featurizer.set_params(n_noise_draws=draws)
        start = time.perf_counter()
        train = layer_blocks(featurizer, featurizer.extract(X_train, TIMESTEPS), TIMESTEPS)
        test = layer_blocks(featurizer, featurizer.extract(X_test, TIMESTEPS), TIMESTEPS)
        print(f"# {draws} draw(s): extraction {time.perf_counter() - start:.0f} s")
        for rate in RATES:
            for layer in layers:
                scores = [default_probe().fit(train[layer, t], labels[rate]).score(test[layer, t], y_test)
                          for t in TIMESTEPS]
                rows.append((draws, rate, layer, scores))
    header = f"{'draws':>5} {'noise':>5} {'layer':>12} " + " ".join(f"{f't={t}':>6}" for t in TIMESTEPS)
    print(header)
    for draws, rate, layer, scores in rows:
        print(f"{draws:>5} {rate:>5.0%} {layer:>12} " + " ".join(f"{s:6.3f}" for s in scores))


if __name__ == "__main__":
    main()
