"""Memorization where it can be computed exactly: the learned MoLRG denoiser on a large and a tiny set.

The paper's learnable denoiser ``x_theta = U h(x, t)`` (``LearnedMoLRGDenoiser``,
orthonormal ``U`` initialized by K-subspaces clustering, then trained by the
x0-prediction loss through ``DiffusionFeaturizer``) is trained on a large
training set (3,000 samples of the MoLRG model n=50, d=5, K=3, delta=0.2) and
on a tiny one (12 samples, 4 per class), and compared with the closed-form
optimal denoiser (the true bases) on 1,000 held-out samples:

* the principal angles between the learned class subspaces and the true ones
  (cosines; 1 = aligned);
* the representation SNR of ``x_hat = U h`` (paper Definition 1, true bases)
  over the noise level sigma;
* the subspace-probe accuracy on ``h`` (class subspaces estimated from 4
  held-out samples per class, 20 random draws, tested on 600 others: the
  regime where the optimal curve is unimodal, see the theory page);
* :func:`diffrep.generalization_report`: held-out / training x0-error and verdict.

With 12 samples the 15-dimensional ``U`` can hold every training sample: the
denoiser recovers its training samples far better than new ones (memorization),
its subspaces are off, and its SNR curve falls below the optimal one.

Timesteps index a DDPM-linear schedule of 1,000 steps with x0 prediction;
sigma = sqrt((1 - abar) / abar) (variance-exploding convention x0 + sigma eps).

Usage::

    python examples/molrg_memorization.py            # about half a minute; writes molrg_memorization.png
    python examples/molrg_memorization.py --quick    # fewer steps and noise levels
"""

from __future__ import annotations

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.model_selection import StratifiedShuffleSplit  # noqa: E402

from diffrep import (  # noqa: E402
    DiffusionFeaturizer,
    LearnedMoLRGDenoiser,
    MoLRGDenoiser,
    SubspaceClassifier,
    generalization_report,
    make_molrg,
    representation_snr,
)
from diffrep.theory.metrics import principal_angle_cosines  # noqa: E402

N_FEATURES, N_CLASSES, RANK, DELTA = 50, 3, 5, 0.2
SIZES = {"large (3,000)": 3000, "tiny (12)": 12}


def parse_args():
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer training steps and noise levels")
    parser.add_argument("--out", default="molrg_memorization.png", help="where to save the figure")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def learned(X_train, steps, seed):
    """A LearnedMoLRGDenoiser initialized by K-subspaces on ``X_train``, then trained by the denoising loss."""
    torch.manual_seed(seed)  # the random start U, before K-subspaces replaces it
    model = LearnedMoLRGDenoiser(N_FEATURES, N_CLASSES, RANK, DELTA).fit_subspaces(X_train, random_state=seed)
    return DiffusionFeaturizer(denoiser=model, train_denoiser=True, max_steps=steps, learning_rate=1e-3,
                               device="cpu", random_state=seed).fit(X_train)


def snr_curve(featurizer, X, y, bases, timesteps):
    """Exact representation SNR of ``x_hat = U h`` at each timestep (true class bases)."""
    basis = featurizer.network_.basis.detach().numpy()
    blocks = np.split(featurizer.extract(X, timesteps), len(timesteps), axis=1)
    return np.array([representation_snr(h @ basis.T, y, bases) for h in blocks])


def main():
    args = parse_args()
    X, y, bases = make_molrg(4000, N_FEATURES, N_CLASSES, RANK, DELTA, random_state=args.seed, return_bases=True)
    X_pool, X_heldout, y_heldout = X[:3000], X[3000:], y[3000:]
    timesteps = (0, 25, 50, 100, 200, 400) if args.quick else (0, 5, 10, 25, 50, 75, 100, 150, 200, 300, 400, 600)
    steps = 100 if args.quick else 1000
    probe_splits = StratifiedShuffleSplit(n_splits=20, train_size=4 * N_CLASSES, test_size=600,
                                          random_state=args.seed)
    models = {"optimal (true U)": (DiffusionFeaturizer(denoiser=MoLRGDenoiser(bases, DELTA), device="cpu").fit(X_pool),
                                   X_pool)}
    for name, size in SIZES.items():
        models[f"learned, {name}"] = (learned(X_pool[:size], steps, args.seed), X_pool[:size])
    figure, (snr_ax, probe_ax) = plt.subplots(1, 2, figsize=(11, 4))
    print(f"MoLRG n={N_FEATURES}, d={RANK}, K={N_CLASSES}, delta={DELTA}; {steps} training steps; "
          "held-out: 1,000 samples")
    for name, (featurizer, X_train) in models.items():
        report = generalization_report(featurizer, X_train, X_heldout, y_heldout, timesteps=timesteps,
                                       probe=SubspaceClassifier(n_components=RANK), cv=probe_splits,
                                       random_state=args.seed)
        snr = snr_curve(featurizer, X_heldout, y_heldout, bases, timesteps)
        cosines = principal_angle_cosines(featurizer.network_.get_bases(), bases)
        sigma = report.table["sigma"].to_numpy()
        print(f"\n{name}: principal-angle cosines (rows: classes)\n{np.round(cosines, 3)}")
        print(f"{'t':>5s} {'sigma':>8s} {'SNR':>8s} {'probe acc':>10s} {'train err':>10s} {'held err':>10s} "
              f"{'ratio':>6s}")
        for i, t in enumerate(timesteps):
            row = report.table.iloc[i]
            print(f"{t:5d} {sigma[i]:8.4f} {snr[i]:8.2f} {row['accuracy']:10.3f} {row['train_error']:10.5f} "
                  f"{row['heldout_error']:10.5f} {row['error_ratio']:6.2f}")
        print(f"SNR peak {snr.max():.2f} at sigma={sigma[np.argmax(snr)]:.3f}")
        print(report)
        label = f"{name}: {report.verdict}, min cos {np.nanmin(cosines):.2f}"
        snr_ax.plot(sigma, snr, "o-", ms=3, label=label)
        probe_ax.errorbar(sigma, report.table["accuracy"], yerr=report.table["accuracy_std"], marker="o", ms=3,
                          capsize=2, label=f"{name} (ratio {report.error_ratio:.2f})")
    snr_ax.set(title="representation SNR of x_hat = U h (true bases)", ylabel="SNR", yscale="log")
    probe_ax.set(title="subspace probe on h (4 samples/class), held-out", ylabel="accuracy (mean ± std, 20 draws)")
    for ax in (snr_ax, probe_ax):
        ax.set(xscale="log", xlabel="sigma")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(args.out, dpi=110)
    print(f"\nsaved {args.out}")


if __name__ == "__main__":
    main()
