"""Does the interior peak vanish when a denoiser memorizes? Real 28x28 digits (mnist_2000).

The decisive experiment of issue 21 on real images: the default UNet is trained
without labels on N in {20, 100, 500, all} images of ``../shared/data/mnist_2000.npz``
(2,000 MNIST digits, 200 per class), each for ``--steps`` steps (default 300: the
step budget planned for 28x28 images in issue 20 when this was measured; the
default it settled on, ``max_steps=None``, gives 600 above 16x16 pixels; about
8 minutes per 300-step training on 1 CPU core). A fixed, stratified held-out split of ``--heldout``
images (default 400) is never trained on: the probe is cross-validated on it
(5 folds) and the denoising errors are compared on it. "All" is therefore the
1,600 images outside that split (training on all 2,000 would leave nothing to
hold out).

Two protocols are measured on the same denoisers: diffrep's defaults
(``up_blocks.0`` pooled on a 4x4 grid, a logistic probe whose C is chosen by
cross-validation) and the paper's (channel means, C=1; ``_paper`` is added to
the figure's name). For each model :func:`diffrep.generalization_report` gives, per timestep, the
training and held-out x0-error (the same per-sample noise as ``transform``),
their ratio, and the held-out probe accuracy; the script prints every table
and a summary row per model, and saves the curves side by side (``--plot``)
and the summary (``--csv``).

Run ``OMP_NUM_THREADS=1 python benchmarks/generalization_mnist.py --memory /tmp/cache --plot docs/generalization_mnist.png``
(``--train-only`` fills the cache first). Without the data file the script
stops with a message saying where it looks.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist_2000.npz"
SIZES = (20, 100, 500, None)  # None: every image outside the held-out split
TIMESTEPS = (0, 10, 25, 50, 100, 200, 400, 700)
COLUMNS = ["n_train", "n_steps", "error_ratio", "error_ratio_low", "error_ratio_high", "ratio_timestep",
           "denoising_gain", "peak_timestep", "rise", "rise_se", "verdict"]


def load(path):
    """The images (n, 28, 28) uint8 and labels, or exit with a message where the file is absent."""
    if not Path(path).is_file():
        sys.exit(f"{path} not found: this benchmark needs mnist_2000.npz (see ../shared/data/README); skipped.")
    with np.load(path, allow_pickle=False) as archive:
        return archive["images"], archive["labels"]


def splits(labels, n_heldout, seed=0):
    """A fixed stratified held-out split, and the training pool in a fixed random order (nested subsets)."""
    pool, heldout = train_test_split(np.arange(len(labels)), test_size=n_heldout, stratify=labels,
                                     random_state=seed)
    return np.random.default_rng(seed).permutation(pool), heldout


def featurizer(args):
    """The denoiser settings shared by every training set size."""
    from diffrep import DiffusionFeaturizer

    return DiffusionFeaturizer(timesteps=TIMESTEPS, max_steps=args.steps, memory=args.memory,
                               random_state=args.seed, verbose=args.verbose)


def protocols():
    """Featurizer settings and probe of each measured protocol: diffrep's defaults and the paper's."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    paper_probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    return {"defaults (4x4 grid, C tuned)": ({}, None), "paper (channel means, C=1)": ({"pooling_grid": 1}, paper_probe)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--heldout", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--memory", default=None, help="cache directory of the trained denoisers")
    parser.add_argument("--train-only", action="store_true", help="only train (fill --memory)")
    parser.add_argument("--plot", default=None, help="save the curves side by side to this PNG")
    parser.add_argument("--csv", default=None, help="save the summary table to this CSV")
    parser.add_argument("--verbose", type=int, default=0)
    args = parser.parse_args(argv)
    images, labels = load(args.data)
    pool, heldout = splits(labels, args.heldout, args.seed)
    if args.train_only:
        for size in SIZES:
            fitted = featurizer(args).fit(images[pool[:size]])
            print(f"# trained on {size or len(pool)} images: {fitted.n_steps_} steps", flush=True)
        return None
    from diffrep import training_size_study
    from diffrep.plotting import plot_training_size_study

    tables = {}
    for i, (name, (params, probe)) in enumerate(protocols().items()):
        table, reports = training_size_study(
            featurizer(args).set_params(**params), images[pool], images[heldout], labels[heldout], SIZES,
            report_params=dict(timesteps=TIMESTEPS, probe=probe, random_state=args.seed),
        )
        print(f"\n===== {name} =====")
        for n_train, report in reports.items():
            print(f"\nN = {n_train}")
            print(report.table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
            print(report)
        print(table[COLUMNS].to_string(index=False, float_format=lambda v: f"{v:.3f}"), flush=True)
        if args.plot:
            plot = Path(args.plot)
            plot_training_size_study(reports).savefig(plot if i == 0 else plot.with_name(f"{plot.stem}_paper.png"),
                                                      dpi=110)
        tables[name] = table.assign(protocol=name)
    if args.csv:
        import pandas

        pandas.concat(tables.values()).to_csv(args.csv, index=False)
    return tables


if __name__ == "__main__":
    main()
