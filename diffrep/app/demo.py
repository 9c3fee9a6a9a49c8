"""The end-to-end demonstration behind ``diffrep demo`` and ``diffrep curve``.

Train one denoiser without labels, extract features at a grid of timesteps
once, then probe every timestep and the noise-level ensemble at several
label-noise rates, next to baselines on the raw inputs with the same probe
(whose ``C`` is tuned by cross-validation), alone and after a PCA.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import train_test_split

from .._engine.probes import extract_blocks
from .._engine.reuse import shared_work
from ..baselines import tuned_probe
from ..ensemble import NoiseEnsembleClassifier
from ..featurizer import DiffusionFeaturizer
from ..label_noise import corrupt_labels
from ..probes import default_probe

DEMO_TIMESTEPS = (0, 10, 25, 50, 100, 200, 400, 700, 999)
PCA_COMPONENTS = 32
TEST_FRACTION = 0.25


def held_out_count(n_samples):
    """Number of the ``n_samples`` that :func:`run` holds out to test (as ``train_test_split`` rounds it).

    Parameters
    ----------
    n_samples : int

    Returns
    -------
    n_test : int
    """
    return math.ceil(TEST_FRACTION * n_samples)


def baselines(n_features, n_samples):
    """The raw-input baselines: name -> unfitted probe.

    Parameters
    ----------
    n_features : int
        Number of raw input features; PCA keeps at most ``PCA_COMPONENTS`` of them.
    n_samples : int
        Number of training samples; PCA keeps no more components than the
        training folds of the tuning's 3-fold search hold samples.

    Returns
    -------
    probes : dict of str -> estimator
        The diffusion features' own probe (``C`` tuned by 3-fold
        cross-validation) on the raw inputs, and after a PCA.
    """
    n_components = max(1, min(PCA_COMPONENTS, n_features, (2 * n_samples) // 3))
    return {
        "raw, same probe": tuned_probe(),
        f"PCA{n_components}, same probe": tuned_probe(n_components=n_components),
    }


@dataclass
class SweepResult:
    """Accuracies of one label-noise rate.

    Parameters
    ----------
    rate : float
        Fraction of corrupted training labels.
    per_timestep : dict of int -> float
        Test accuracy of a probe on each timestep's features.
    ensemble : float
        Test accuracy of the NoiseEnsembleClassifier.
    selected_timesteps : tuple of int
        Timesteps the ensemble chose.
    cv_scores : dict of int -> (float, float)
        The ensemble's cross-validated score of each timestep on the training
        labels: mean and standard deviation over the folds.
    baselines : dict of str -> float
        Test accuracy of each raw-input baseline (see :func:`baselines`).
    """

    rate: float
    per_timestep: dict = field(default_factory=dict)
    ensemble: float = np.nan
    selected_timesteps: tuple = ()
    cv_scores: dict = field(default_factory=dict)
    baselines: dict = field(default_factory=dict)

    @property
    def best_timestep(self):
        """The timestep whose probe scored highest."""
        return max(self.per_timestep, key=self.per_timestep.get)


def sweep(featurizer, X_train, y_train, X_test, y_test, timesteps, rate, random_state=0):
    """Probe every timestep, the ensemble and the raw-input baselines at one label-noise rate.

    Parameters
    ----------
    featurizer : DiffusionFeaturizer
        Already fitted (on unlabelled training data); never refitted.
    X_train, y_train, X_test, y_test : array-like
    timesteps : sequence of int
    rate : float
        Fraction of training labels replaced by a different random class.
    random_state : int, default=0

    Returns
    -------
    result : SweepResult
    """
    noisy = corrupt_labels(y_train, rate, random_state=random_state)
    train_blocks = extract_blocks(featurizer, X_train, timesteps)
    test_blocks = extract_blocks(featurizer, X_test, timesteps)
    result = SweepResult(rate=rate)
    for t, train_features, test_features in zip(timesteps, train_blocks, test_blocks):
        result.per_timestep[t] = default_probe().fit(train_features, noisy).score(test_features, y_test)
    ensemble = NoiseEnsembleClassifier(
        featurizer=FrozenEstimator(featurizer), timesteps=timesteps, random_state=random_state
    ).fit(X_train, noisy)
    result.ensemble = ensemble.score(X_test, y_test)
    result.selected_timesteps = tuple(ensemble.selected_timesteps_)
    result.cv_scores = {t: (score["mean"], score["std"]) for t, score in ensemble.timestep_scores_.items()}
    flat_train = np.asarray(X_train).reshape(len(X_train), -1)
    flat_test = np.asarray(X_test).reshape(len(X_test), -1)
    for name, probe in baselines(flat_train.shape[1], len(flat_train)).items():
        result.baselines[name] = probe.fit(flat_train, noisy).score(flat_test, y_test)
    return result


def run(X, y, *, timesteps=DEMO_TIMESTEPS, rates=(0.0, 0.4), featurizer=None, random_state=0, verbose=1):
    """Fit one featurizer on the training split and sweep every label-noise rate.

    Parameters
    ----------
    X : array-like
        Images ``(n, C, H, W)`` / ``(n, H, W)`` or a table ``(n, features)``.
    y : array-like of shape (n_samples,)
    timesteps : sequence of int
    rates : sequence of float, default=(0.0, 0.4)
    featurizer : DiffusionFeaturizer or None
        Unfitted settings to use; None for the defaults.
    random_state : int, default=0
    verbose : int, default=1

    Returns
    -------
    results : list of SweepResult
    fitted : DiffusionFeaturizer
    seconds : dict
        Wall time of ``"training"`` and ``"probing"``.
    """
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=TEST_FRACTION, stratify=y, random_state=random_state
    )
    settings = featurizer if featurizer is not None else DiffusionFeaturizer(random_state=random_state)
    fitted = clone(settings).set_params(timesteps=tuple(timesteps), verbose=verbose)
    start = time.perf_counter()
    fitted.fit(X_train)
    trained = time.perf_counter()
    with shared_work():  # every rate and the ensemble reuse one extraction per split and timestep
        results = [sweep(fitted, X_train, y_train, X_test, y_test, timesteps, rate, random_state) for rate in rates]
    return results, fitted, {"training": trained - start, "probing": time.perf_counter() - trained}


def format_table(results, sigmas):
    """A plain-text table: one row per timestep; per label-noise rate, a test and a CV column.

    Parameters
    ----------
    results : list of SweepResult
    sigmas : sequence of float
        Noise level of each timestep, in the order of ``results[0].per_timestep``.

    Returns
    -------
    text : str
    """
    columns = [f"noise {r.rate:.0%}" for r in results] + [f"CV {r.rate:.0%} (sd)" for r in results]
    header = f"{'timestep':>8}  {'sigma':>8}  " + "  ".join(f"{name:>14}" for name in columns)
    lines = [header, "-" * len(header)]
    for (t, sigma) in zip(results[0].per_timestep, sigmas):
        cells = [f"{r.per_timestep[t]:.3f}" for r in results]
        cells += ["{:.3f} ({:.3f})".format(*r.cv_scores[t]) if t in r.cv_scores else "-" for r in results]
        lines.append(f"{t:>8}  {sigma:>8.3f}  " + "  ".join(f"{cell:>14}" for cell in cells))
    lines.append("-" * len(header))
    rows = [("best single t (test)", lambda r: f"{r.per_timestep[r.best_timestep]:.3f} (t={r.best_timestep})"),
            ("ensemble", lambda r: f"{r.ensemble:.3f}")]
    rows += [(name, lambda r, name=name: f"{r.baselines[name]:.3f}") for name in results[0].baselines]
    for label, value in rows:
        lines.append(f"{label:>20}  " + "  ".join(f"{value(r):>14}" for r in results))
    for r in results:
        lines.append(f"ensemble timesteps at noise {r.rate:.0%}: {list(r.selected_timesteps)}")
    lines.append("noise columns: test accuracy; CV columns: the ensemble's cross-validated accuracy on the "
                 "training labels, mean (standard deviation over folds)")
    lines.append("(best single t is picked on the test set: an upper bound; the ensemble chose by cross-validation)")
    return "\n".join(lines)


def plot_sweep(results, sigmas, path):
    """Save the accuracy-over-noise-level curves as a PNG, written atomically (never half a file).

    Parameters
    ----------
    results : list of SweepResult
    sigmas : sequence of float
    path : str or os.PathLike
    """
    import io

    from .._engine.files import atomic_write
    from ..plotting import import_pyplot

    plt = import_pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for result, color in zip(results, plt.rcParams["axes.prop_cycle"].by_key()["color"]):
        timesteps = list(result.per_timestep)
        ax.plot(sigmas, [result.per_timestep[t] for t in timesteps], "o-", color=color,
                label=f"single timestep, {result.rate:.0%} label noise")
        ax.axhline(result.ensemble, color=color, linestyle="-.", label=f"noise-level ensemble, {result.rate:.0%}")
        best_name = max(result.baselines, key=result.baselines.get)
        ax.axhline(result.baselines[best_name], color=color, linestyle=":",
                   label=f"best raw baseline ({best_name}), {result.rate:.0%}")
    ax.set_xscale("log")
    ax.set_xlabel("noise level sigma = sqrt((1 - abar_t) / abar_t)   (timestep in labels)")
    ax.set_ylabel("test accuracy (logistic probe)")
    for t, sigma in zip(results[0].per_timestep, sigmas):
        ax.annotate(f"t={t}", (sigma, results[0].per_timestep[t]), textcoords="offset points",
                    xytext=(0, 6), ha="center", fontsize=7)
    ax.legend(fontsize=7, loc="lower left")
    ax.set_title("Representation quality over noise level")
    fig.tight_layout()
    image = io.BytesIO()
    fig.savefig(image, format="png", dpi=120)
    plt.close(fig)
    atomic_write(path, image.getvalue())
