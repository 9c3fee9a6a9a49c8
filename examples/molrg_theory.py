"""Representation dynamics of the optimal MoLRG denoiser (the paper's theory, in numbers).

For the two settings of the paper (n=50, d=5, K=3, delta=0.2 and
n=100, d=5, K=10, delta=0.3) this script sweeps the noise level sigma
(variance-exploding convention ``x_t = x0 + sigma * eps``) and measures, for the
closed-form posterior mean ``x_hat = U h``:

* the exact representation SNR (paper Definition 1, true class bases),
* the paper's Theorem-1 approximation of it,
* the test accuracy of a subspace (energy) probe on ``h``: with ``V_k`` learned
  from the whole training split (thousands of samples per class), learned from
  only ``FEW_PER_CLASS`` training samples per class (averaged over random
  subsets), and with the true bases,
* the posterior-mean error ``E ||x_hat - x0||^2``.

The SNR peaks at an intermediate sigma while the denoising error keeps falling
as sigma -> 0: the generation/representation trade-off. Whether the probe
accuracy is unimodal too depends on the regime, and the table shows both:

* **many training samples per class** (or the true bases): the accuracy falls
  monotonically with sigma, beyond sampling noise. With the true bases the
  energy rule is the Bayes classifier at every sigma (the class scores differ
  only through the subspace energies), and a noisier input carries less
  information about the class (data-processing inequality);
* **few training samples per class**: the learned subspaces are estimated from
  a handful of features, and moderate noise, by shrinking the class-irrelevant
  detail (``delta``) out of them, makes them better estimates: the accuracy
  rises, peaks at a moderate sigma, then falls, as on real data.

The SNR measures how concentrated the features are in their class subspace,
not Bayes separability.

Usage::

    python examples/molrg_theory.py            # full sweep, writes molrg_theory.png
    python examples/molrg_theory.py --quick    # coarser and smaller, a few seconds
"""

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from diffrep.theory.metrics import (  # noqa: E402
    SubspaceClassifier,
    posterior_mean_error,
    representation_snr,
    theoretical_snr,
)
from diffrep.theory.model import make_molrg, molrg_representation  # noqa: E402

SETTINGS = {
    "n=50, d=5, K=3, delta=0.2": dict(n_features=50, rank=5, n_classes=3, delta=0.2),
    "n=100, d=5, K=10, delta=0.3": dict(n_features=100, rank=5, n_classes=10, delta=0.3),
}
FEW_PER_CLASS = 4
FEW_SUBSETS = 20
FEW = f"acc ({FEW_PER_CLASS}/class)"
COLUMNS = ("exact SNR", "Thm-1 SNR", "acc (learned V)", FEW, "acc (true U)", "E||xhat-x0||^2")


def parse_args():
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer noise levels and samples")
    parser.add_argument("--out", default="molrg_theory.png", help="where to save the figure")
    parser.add_argument("--seed", type=int, default=0, help="random seed of data and noise")
    return parser.parse_args()


def few_per_class(y, per_class, n_subsets, seed=0):
    """``n_subsets`` index arrays, each with ``per_class`` random samples of every class of ``y``."""
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    return [
        np.concatenate([rng.choice(np.flatnonzero(y == k), per_class, replace=False) for k in classes])
        for _ in range(n_subsets)
    ]


def measure(x0, y, bases, delta, sigma, noise, n_train):
    """Every curve's value at one noise level, as a dict keyed by COLUMNS."""
    rank, n_classes = bases.shape[2], bases.shape[0]
    h = molrg_representation(x0 + sigma * noise, sigma, bases, delta)
    x_hat = h @ np.concatenate(list(bases), axis=1).T
    train, test = slice(None, n_train), slice(n_train, None)
    probe = SubspaceClassifier(n_components=rank).fit(h[train], y[train])
    few = [SubspaceClassifier(n_components=rank).fit(h[subset], y[subset]).score(h[test], y[test])
           for subset in few_per_class(y[train], FEW_PER_CLASS, FEW_SUBSETS)]
    true_energy = (h[test] ** 2).reshape(-1, n_classes, rank).sum(axis=2)
    return {
        "exact SNR": representation_snr(x_hat, y, bases),
        "Thm-1 SNR": float(theoretical_snr(sigma, rank, n_classes, delta)),
        "acc (learned V)": probe.score(h[test], y[test]),
        FEW: float(np.mean(few)),
        "acc (true U)": np.mean(true_energy.argmax(axis=1) == y[test]),
        "E||xhat-x0||^2": posterior_mean_error(x_hat, x0),
    }


def sweep(setting, sigmas, n_samples, seed):
    """Curves of one setting; the same clean samples and noise draw serve every sigma."""
    x0, y, bases = make_molrg(
        n_samples, setting["n_features"], setting["n_classes"], setting["rank"],
        setting["delta"], random_state=seed, return_bases=True,
    )
    noise = np.random.default_rng(seed + 1).standard_normal(x0.shape)
    rows = [measure(x0, y, bases, setting["delta"], s, noise, 2 * n_samples // 3) for s in sigmas]
    return {column: np.array([row[column] for row in rows]) for column in COLUMNS}


def print_table(name, sigmas, curves):
    """The sweep as a text table, then where the exact SNR and the accuracy peak."""
    print(f"\n{name}")
    print(f"{'sigma':>8s} " + " ".join(f"{c:>15s}" for c in COLUMNS))
    for i, sigma in enumerate(sigmas):
        print(f"{sigma:8.4f} " + " ".join(f"{curves[c][i]:15.4f}" for c in COLUMNS))
    for column in ("exact SNR", "Thm-1 SNR", "acc (learned V)", FEW):
        peak = int(np.argmax(curves[column]))
        print(f"peak {column}: {curves[column][peak]:.4f} at sigma={sigmas[peak]:.4f}")


def plot(results, sigmas, out):
    """One row per setting: exact SNR, Theorem 1 vs exact, probe accuracy, denoising error."""
    fig, axes = plt.subplots(len(results), 4, figsize=(17, 4.2 * len(results)), squeeze=False)
    for row, (name, curves) in zip(axes, results.items()):
        peak = int(np.argmax(curves["exact SNR"]))
        row[0].plot(sigmas, curves["exact SNR"], "o-", ms=3, label="exact (Monte Carlo)")
        row[0].axvline(sigmas[peak], color="gray", ls=":", label=f"peak sigma={sigmas[peak]:.2f}")
        row[0].set(title=f"{name}\nexact SNR", ylabel="SNR")
        row[1].plot(sigmas, curves["exact SNR"], "o-", ms=3, label="exact")
        row[1].plot(sigmas, curves["Thm-1 SNR"], "s--", ms=3, label="Theorem 1")
        row[1].set(title="Theorem-1 approximation vs exact", yscale="log")
        row[2].plot(sigmas, curves["acc (learned V)"], "o-", ms=3, label="V from train split")
        row[2].plot(sigmas, curves[FEW], "^-", ms=3, label=f"V from {FEW_PER_CLASS} samples/class")
        row[2].plot(sigmas, curves["acc (true U)"], "s--", ms=3, label="true U")
        row[2].set(title="subspace-probe test accuracy on h", ylabel="accuracy")
        row[3].plot(sigmas, curves["E||xhat-x0||^2"], "o-", ms=3, color="C3")
        row[3].set(title="posterior-mean error E||xhat - x0||^2", yscale="log")
        for ax in row:
            ax.set(xscale="log", xlabel="sigma (x_t = x0 + sigma eps)")
            ax.grid(alpha=0.3)
        for ax in row[:3]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main():
    """Run both sweeps, print the tables, save the figure."""
    args = parse_args()
    sigmas = np.geomspace(1e-2, 4, 12 if args.quick else 40)
    n_samples = 2400 if args.quick else 6000
    results = {
        name: sweep(setting, sigmas, n_samples, args.seed) for name, setting in SETTINGS.items()
    }
    for name, curves in results.items():
        print_table(name, sigmas, curves)
    plot(results, sigmas, args.out)
    print(f"\nsaved {args.out}")


if __name__ == "__main__":
    main()
