"""How far a linear probe can go on mnist_2000 under label noise: chosen by CV, chosen in hindsight, per label count.

Issue 20 set targets on 4,000 training images (0.93 at 40% label noise, 0.72
at 80%); ``../shared/data/mnist_2000.npz`` gives 1,500 for training on the
split every defaults table uses (1,500 / 500, stratified, seed 0). This script
asks whether the default features could reach those targets with any logistic
probe on 1,500 labels, and how accuracy grows with the number of labels:

* the default denoiser (``DiffusionFeaturizer(random_state=0)``: 600 steps,
  trained without labels on the 1,500 training images; ``--cache`` keeps it)
  gives its default features (``up_blocks.0``, maxima on a 4x4 grid) and, beside
  them, ``mid_block`` and ``up_blocks.0`` concatenated, at t = 0, 10, 25;
* for each label-noise rate, corruption seed and number of training labels
  (a stratified subset of the 1,500, seed 0), it fits the default probe
  (:class:`diffrep.LogisticProbeCV`, ``C`` by 3-fold CV on the noisy labels) at
  each timestep and averages their probabilities (the ensemble's recipe with
  the three timesteps given), and it reports the *hindsight ceiling*: the best
  test accuracy of one probe over every ``C`` of a half-decade grid and every
  timestep, an upper bound for any single probe chosen on the training labels
  (the three-timestep average can pass it by a test image or two);
* the raw pixels get the same two figures.

Every probe is scored on the 500 clean test labels. About 15 minutes on one
CPU core with the denoiser cached, 25 more to train it.

Example
-------
    OMP_NUM_THREADS=1 python benchmarks/probe_ceiling.py --cache /tmp/diffrep-probe-ceiling
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from diffrep import DiffusionFeaturizer, LogisticProbeCV
from diffrep.label_noise import corrupt_labels

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist_2000.npz"
TIMESTEPS = (0, 10, 25)
HINDSIGHT_CS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 1.0)


def ensemble_accuracy(blocks_train, blocks_test, labels, y_test):
    """Accuracy of the probabilities of one CV-tuned probe per timestep, averaged."""
    probabilities = [
        LogisticProbeCV(random_state=0).fit(train, labels).predict_proba(test)
        for train, test in zip(blocks_train, blocks_test)
    ]
    return float((np.mean(probabilities, axis=0).argmax(axis=1) == y_test).mean())


def hindsight_accuracy(blocks_train, blocks_test, labels, y_test):
    """The best test accuracy over every ``C`` of ``HINDSIGHT_CS`` and every timestep (an upper bound)."""
    best = 0.0
    for train, test in zip(blocks_train, blocks_test):
        scaler = StandardScaler().fit(train)
        train, test = scaler.transform(train), scaler.transform(test)
        for C in HINDSIGHT_CS:
            best = max(best, LogisticRegression(C=C, max_iter=1000).fit(train, labels).score(test, y_test))
    return float(best)


def feature_sets(featurizer, X_train, X_test):
    """``{name: (train blocks per timestep, test blocks per timestep)}`` for the default features and the pair."""
    widths = [featurizer.feature_info_[layer]["n_features"] for layer in featurizer.layers_]
    sets = {}
    for split, X in (("train", X_train), ("test", X_test)):
        per_timestep = np.split(featurizer.transform(X), len(TIMESTEPS), axis=1)
        layers = [dict(zip(featurizer.layers_, np.split(block, np.cumsum(widths)[:-1], axis=1)))
                  for block in per_timestep]
        sets.setdefault("up_blocks.0 (default)", {})[split] = [block["up_blocks.0"] for block in layers]
        sets.setdefault("mid_block + up_blocks.0", {})[split] = [
            np.hstack([block["mid_block"], block["up_blocks.0"]]) for block in layers
        ]
    return {name: (parts["train"], parts["test"]) for name, parts in sets.items()}


def main():
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--cache", default="/tmp/diffrep-probe-ceiling", help="memory cache of the denoiser")
    cli.add_argument("--rates", default="0,0.4,0.8")
    cli.add_argument("--seeds", default="0,1,2", help="label corruption seeds (at the full label count, noisy rates)")
    cli.add_argument("--label-counts", default="500,1000,1500", help="training labels (seed 0 only below 1500)")
    args = cli.parse_args()
    if not MNIST.exists():
        raise SystemExit(f"{MNIST} is absent: this benchmark needs the project's shared data folder.")
    data = np.load(MNIST)
    train, test = train_test_split(np.arange(len(data["labels"])), test_size=500, stratify=data["labels"],
                                   random_state=0)
    X_train, X_test = data["images"][train], data["images"][test]
    y_train, y_test = data["labels"][train], data["labels"][test]

    featurizer = DiffusionFeaturizer(layers=("mid_block", "up_blocks.0"), timesteps=TIMESTEPS, random_state=0,
                                     memory=args.cache).fit(X_train)
    sets = feature_sets(featurizer, X_train, X_test)
    flat_train, flat_test = X_train.reshape(len(X_train), -1), X_test.reshape(len(X_test), -1)
    sets["raw pixels"] = ([flat_train], [flat_test])

    counts = [int(n) for n in args.label_counts.split(",")]
    print("| label noise | training labels | corruption seed | features | ensemble of t=0,10,25 (C by CV) "
          "| hindsight ceiling (one probe, t and C picked on the test set) |")
    print("|---|---|---|---|---|---|")
    for rate in (float(r) for r in args.rates.split(",")):
        for n in counts:
            subset = (np.arange(len(y_train)) if n >= len(y_train) else
                      train_test_split(np.arange(len(y_train)), train_size=n, stratify=y_train, random_state=0)[0])
            for seed in ([int(s) for s in args.seeds.split(",")] if n >= len(y_train) and rate > 0 else [0]):
                labels = corrupt_labels(y_train[subset], rate, random_state=seed)
                for name, (blocks_train, blocks_test) in sets.items():
                    blocks_train = [block[subset] for block in blocks_train]
                    ensemble = ensemble_accuracy(blocks_train, blocks_test, labels, y_test)
                    ceiling = hindsight_accuracy(blocks_train, blocks_test, labels, y_test)
                    print(f"| {rate:.0%} | {len(subset)} | {seed} | {name} | {ensemble:.3f} | {ceiling:.3f} |",
                          flush=True)


if __name__ == "__main__":
    main()
