"""Feature quality on real images: layer x pooling x UNet width x training steps x timestep x label noise.

The measurement behind diffrep's defaults (layers, pooling, UNet width, step
budget, ensemble candidates). For each UNet width it trains one denoiser on the
training split without labels, in chunks that continue each other through
checkpoint warm starts (``--steps 150,300,600`` costs 600 steps in all), and
after each chunk:

* extracts every ``--layers`` block once per timestep, unpooled, and pools
  it in every ``--poolings`` way (``mean4``: channel means on a 4x4 grid of
  cells, ``max1``: global channel maxima, ``none``: every position) with the
  featurizer's own pooling function;
* fits the default probe (:class:`diffrep.probes.LogisticProbeCV`: standardize,
  ``C`` chosen by 3-fold cross-validation on the training labels, noisy or not)
  on each (layer, pooling, timestep) at each label-noise rate (labels changed
  to a different class, one corruption per rate, the same for every row) and
  scores it on the clean test labels;
* for each ``--ensemble`` configuration, fits the default ``NoiseEnsembleClassifier``
  on the frozen featurizer and reports it next to the best single timestep
  picked by its cross-validation (what a user gets) and picked on the test
  set (an upper bound);
* and next to all of it the same probe on the raw pixels (the tuned baseline
  of the same split and noisy labels).

CPU minutes are this process's CPU time of training, cumulated over chunks
(run it with ``OMP_NUM_THREADS=1``). Datasets: ``mnist28``, the 2,000 real
MNIST digits of ``../shared/data/mnist_2000.npz`` (1,500 train / 500 test,
stratified, seed 0); ``digits8``, scikit-learn's 8x8 digits (1,347 / 450);
``rgb32``, those digits upsampled to 32x32 in a random ink and background
colour per image.

With ``--defaults`` it measures the library's defaults end to end instead: a
``DiffusionFeaturizer(random_state=0)`` inside the default ``NoiseEnsembleClassifier``
(which fits it on the training split, then selects timesteps and ``C``), per rate.
The denoiser fit goes through the ``memory`` cache of ``--cache``: run after the
grid of the same width and steps, it reuses that training (its CPU minutes are
the grid's ``train_cpu_min``).

Examples
--------
    OMP_NUM_THREADS=1 python benchmarks/feature_quality.py --dataset mnist28 --widths 16 \\
        --steps 150,300,600 --out results.json
    OMP_NUM_THREADS=1 python benchmarks/feature_quality.py --dataset mnist28 --defaults --out results.json
    python benchmarks/feature_quality.py --summarize results.json
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import train_test_split

from diffrep import DiffusionFeaturizer, LogisticProbeCV, NoiseEnsembleClassifier
from diffrep._engine.extraction import pool
from diffrep._engine.reuse import shared_work
from diffrep.baselines import tuned_probe
from diffrep.label_noise import corrupt_labels
from diffrep.probes import default_probe

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist_2000.npz"


def mnist28():
    """The 2,000 MNIST digits: images (n, 28, 28) uint8, labels, and the test-set size."""
    if not MNIST.exists():
        raise SystemExit(f"{MNIST} is absent: the mnist28 set needs the project's shared data folder.")
    data = np.load(MNIST)
    return data["images"], data["labels"], 500


def digits8():
    """scikit-learn's 8x8 digits as (n, 8, 8) images, labels, and the test-set size of the demo."""
    X, y = load_digits(return_X_y=True)
    return X.reshape(-1, 8, 8), y, 450


def rgb32():
    """The digits upsampled to 32x32 RGB, a random ink and background colour per image (seeded)."""
    X, y = load_digits(return_X_y=True)
    images = torch.nn.functional.interpolate(
        torch.from_numpy(X.reshape(-1, 1, 8, 8) / 16.0).float(), size=(32, 32), mode="bilinear", align_corners=False
    )
    colours = torch.from_numpy(np.random.default_rng(0).uniform(size=(2, len(y), 3, 1, 1))).float()
    return (colours[1] * (1 - images) + colours[0] * images).numpy(), y, 450


DATASETS = {"mnist28": mnist28, "digits8": digits8, "rgb32": rgb32}


def parse_pooling(spec):
    """``"mean4"`` -> ("mean", 4); ``"none"`` -> ("none", 1)."""
    if spec == "none":
        return "none", 1
    match = re.fullmatch(r"(mean|max)(\d+)", spec)
    if match is None:
        raise SystemExit(f"--poolings takes none, meanN or maxN (N cells per side), got {spec!r}.")
    return match[1], int(match[2])


def pooled_blocks(featurizer, X, timesteps, poolings):
    """``{(layer, pooling): [features per timestep]}`` from one unpooled extraction per timestep."""
    raw = np.split(featurizer.extract(X, timesteps), len(timesteps), axis=1)
    out = {}
    for t_index, block in enumerate(raw):
        offset = 0
        for layer in featurizer.layers_:
            info = featurizer.feature_info_[layer]
            width = info["n_features"]
            maps = torch.from_numpy(block[:, offset : offset + width]).reshape(len(block), *info["shape"])
            offset += width
            for spec in poolings:
                kind, cells = parse_pooling(spec)
                features = pool(maps, kind, (cells, cells)).numpy()
                out.setdefault((layer, spec), []).append(features)
    return out


def probe_accuracy(train, y_train, test, y_test):
    return float(default_probe().fit(train, y_train).score(test, y_test))


def summarize(path):
    """Print the results of a ``--out`` file as markdown tables: one row per configuration and rate."""
    rows = [json.loads(line) for line in open(path)]
    raw = {(r["dataset"], r["rate"]): r["accuracy"] for r in rows if r["kind"] == "raw"}
    curves = {}
    for r in (r for r in rows if r["kind"] == "single"):
        key = (r["dataset"], r["width"], r["steps"], r["train_cpu_min"], r["layer"], r["pooling"], r["rate"])
        curves.setdefault(key, {})[r["timestep"]] = r["accuracy"]
    timesteps = sorted({t for curve in curves.values() for t in curve})
    print("| set | width | steps | CPU min | layer | pooling | noise | " + " | ".join(f"t={t}" for t in timesteps)
          + " | best | raw pixels |")
    print("|" + "---|" * (9 + len(timesteps)))
    for key, curve in sorted(curves.items(), key=lambda item: (item[0][0], item[0][6], item[0][1:6])):
        dataset, width, steps, minutes, layer, pooling, rate = key
        best = max(curve.values())
        cells = [f"**{curve[t]:.3f}**" if curve.get(t) == best else f"{curve.get(t, float('nan')):.3f}" for t in timesteps]
        print(f"| {dataset} | {width} | {steps} | {minutes} | {layer} | {pooling} | {rate:.0%} | " + " | ".join(cells)
              + f" | {best:.3f} | {raw.get((dataset, rate), float('nan')):.3f} |")
    print()
    print("| set | width | steps | layer | pooling | noise | ensemble | selected | single t by CV | best single t "
          "(test) | raw pixels |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in (r for r in rows if r["kind"] == "ensemble"):
        curve = curves.get((r["dataset"], r["width"], r["steps"], r["train_cpu_min"], r["layer"], r["pooling"],
                            r["rate"]), {})
        by_cv = curve.get(r["cv_best"], float("nan"))
        best = max(curve.values()) if curve else float("nan")
        print(f"| {r['dataset']} | {r['width']} | {r['steps']} | {r['layer']} | {r['pooling']} | {r['rate']:.0%} | "
              f"{r['accuracy']:.3f} | {r['selected']} | {by_cv:.3f} (t={r['cv_best']}) | {best:.3f} | "
              f"{raw.get((r['dataset'], r['rate']), float('nan')):.3f} |")
    for r in (r for r in rows if r["kind"].startswith(("default", "single t by CV", "ensemble, fixed"))):
        if r["kind"] == "default fit":
            print(f"\ndefaults on {r['dataset']}: {r['steps']} steps, layers {r['layers']}, pooling {r['pooling']} "
                  f"on a {r['pooling_grid']}x{r['pooling_grid']} grid")
        else:
            print(f"  noise {r['rate']:.0%}: {r['kind']} {r['accuracy']:.3f} (t {r['selected']}, C {r['Cs']}), raw "
                  f"pixels {raw.get((r['dataset'], r['rate']), float('nan')):.3f}")


def main():
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--dataset", choices=list(DATASETS), default="mnist28")
    cli.add_argument("--widths", default="16", help="UNet widths, comma-separated")
    cli.add_argument("--steps", default="150,300,600", help="cumulative training steps to evaluate at")
    cli.add_argument("--layers", default="mid_block,up_blocks.0")
    cli.add_argument("--poolings", default="mean1,mean2,mean4,max4")
    cli.add_argument("--timesteps", default="0,10,25,50,100,200")
    cli.add_argument("--rates", default="0,0.4,0.8")
    cli.add_argument("--ensemble", default="", help="layer:pooling configurations for the ensemble, e.g. "
                                                     "up_blocks.0:mean4;mid_block:mean4")
    cli.add_argument("--cache", default="/tmp/diffrep-feature-quality", help="checkpoints and memory cache")
    cli.add_argument("--out", default=None, help="write every result as JSON lines to this file")
    cli.add_argument("--summarize", default=None, help="print the tables of a --out file and stop")
    cli.add_argument("--defaults", action="store_true",
                     help="only the defaults end to end: DiffusionFeaturizer(random_state=0) in the default "
                          "NoiseEnsembleClassifier, at every rate, next to the raw-pixel probe")
    args = cli.parse_args()
    if args.summarize:
        summarize(args.summarize)
        return

    X, y, test_size = DATASETS[args.dataset]()
    train, test = train_test_split(np.arange(len(y)), test_size=test_size, stratify=y, random_state=0)
    X_train, X_test, y_train, y_test = X[train], X[test], y[train], y[test]
    timesteps = tuple(int(t) for t in args.timesteps.split(","))
    rates = [float(r) for r in args.rates.split(",")]
    poolings = args.poolings.split(",")
    layers = tuple(args.layers.split(","))
    noisy = {rate: corrupt_labels(y_train, rate, random_state=0) for rate in rates}
    out = open(args.out, "a") if args.out else None

    def report(**row):
        print(json.dumps(row), flush=True)
        if out:
            out.write(json.dumps(row) + "\n")
            out.flush()

    flat_train, flat_test = X_train.reshape(len(X_train), -1), X_test.reshape(len(X_test), -1)
    for rate in rates:
        start = time.process_time()
        accuracy = float(tuned_probe().fit(flat_train, noisy[rate]).score(flat_test, y_test))
        report(dataset=args.dataset, kind="raw", rate=rate, accuracy=accuracy, probe_s=time.process_time() - start)

    if args.defaults:
        start = time.process_time()
        featurizer = DiffusionFeaturizer(random_state=0, memory=f"{args.cache}/memory").fit(X_train)
        report(dataset=args.dataset, kind="default fit", steps=featurizer.n_steps_,
               fit_cpu_min=round((time.process_time() - start) / 60, 2), layers=list(featurizer.layers_),
               pooling=featurizer.pooling, pooling_grid=featurizer.pooling_grid)
        with shared_work():  # the single-timestep selection reuses the ensemble's features
            for rate in rates:
                variants = {"default ensemble": dict(n_neighbors=2), "single t by CV": dict(n_neighbors=0),
                            "ensemble, fixed C=1": dict(n_neighbors=2, estimator=LogisticProbeCV(Cs=(1.0,)))}
                for kind, params in variants.items():
                    start = time.process_time()
                    ensemble = NoiseEnsembleClassifier(featurizer, random_state=0, **params)
                    ensemble.fit(X_train, noisy[rate])
                    report(dataset=args.dataset, kind=kind, rate=rate, accuracy=float(ensemble.score(X_test, y_test)),
                           selected=list(ensemble.selected_timesteps_), Cs=[float(p.C_) for p in ensemble.estimators_],
                           fit_cpu_s=round(time.process_time() - start, 1))
        return

    for width in (int(w) for w in args.widths.split(",")):
        spent = 0.0
        for steps in (int(s) for s in args.steps.split(",")):
            settings = dict(model_width=width, max_steps=steps, random_state=0, memory=f"{args.cache}/memory",
                            checkpoint_dir=f"{args.cache}/checkpoints", checkpoint_every=50)
            start = time.process_time()
            featurizer = DiffusionFeaturizer(layers=layers, pooling="none", **settings).fit(X_train)
            spent += time.process_time() - start
            common = dict(dataset=args.dataset, width=width, steps=steps, train_cpu_min=round(spent / 60, 2))
            train_blocks = pooled_blocks(featurizer, X_train, timesteps, poolings)
            test_blocks = pooled_blocks(featurizer, X_test, timesteps, poolings)
            for (layer, spec), blocks in train_blocks.items():
                for rate in rates:
                    for t, block, test_block in zip(timesteps, blocks, test_blocks[layer, spec]):
                        start = time.process_time()
                        accuracy = probe_accuracy(block, noisy[rate], test_block, y_test)
                        report(**common, kind="single", layer=layer, pooling=spec, rate=rate, timestep=t,
                               n_features=block.shape[1], accuracy=accuracy, probe_s=time.process_time() - start)
            for config in filter(None, args.ensemble.split(";")):
                layer, spec = config.split(":")
                kind, cells = parse_pooling(spec)
                chosen = DiffusionFeaturizer(layers=layer, pooling=kind, pooling_grid=cells, **settings).fit(X_train)
                with shared_work():
                    for rate in rates:
                        start = time.process_time()
                        ensemble = NoiseEnsembleClassifier(
                            FrozenEstimator(chosen), timesteps=timesteps, random_state=0
                        ).fit(X_train, noisy[rate])
                        report(**common, kind="ensemble", layer=layer, pooling=spec, rate=rate,
                               accuracy=float(ensemble.score(X_test, y_test)),
                               selected=list(ensemble.selected_timesteps_),
                               cv_best=max(ensemble.timestep_scores_, key=lambda t: ensemble.timestep_scores_[t]["mean"]),
                               Cs=[float(p.C_) for p in ensemble.estimators_], fit_s=time.process_time() - start)


if __name__ == "__main__":
    main()
