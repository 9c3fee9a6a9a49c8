"""The generalization diagnostic: a memorizing denoiser is caught, a trained one on enough data passes,
an untrained one never passes, and the errors are those of the noise transform adds."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import StratifiedShuffleSplit, train_test_split

from diffrep import (
    DiffusionFeaturizer,
    LearnedMoLRGDenoiser,
    MoLRGDenoiser,
    SubspaceClassifier,
    generalization_report,
    make_molrg,
    training_size_study,
)
from diffrep.generalization import _verdict

from .helpers import TINY, extraction_noise, scaled_samples

# The paper's MoLRG setting (n=50, d=5, K=3, delta=0.2).
N_FEATURES, N_CLASSES, RANK, DELTA = 50, 3, 5, 0.2
SWEEP = (0, 10, 25, 50, 100, 200, 400)


@pytest.fixture(scope="module")
def molrg():
    X, y, bases = make_molrg(4000, N_FEATURES, N_CLASSES, RANK, DELTA, random_state=0, return_bases=True)
    return X[:3000], X[3000:], y[3000:], bases


def few_shot_probe_splits():
    """Probes fitted on 4 samples per class: the regime where the MoLRG curve is unimodal (docs/theory.rst)."""
    return StratifiedShuffleSplit(n_splits=20, train_size=4 * N_CLASSES, test_size=600, random_state=0)


def learned_molrg(X_train, steps):
    """The paper's learnable MoLRG denoiser, initialized by K-subspaces and trained by the denoising loss."""
    torch.manual_seed(0)  # LearnedMoLRGDenoiser draws its random start from torch's generator
    model = LearnedMoLRGDenoiser(N_FEATURES, N_CLASSES, RANK, DELTA).fit_subspaces(X_train, random_state=0)
    return DiffusionFeaturizer(denoiser=model, train_denoiser=True, max_steps=steps, learning_rate=1e-2,
                               device="cpu", random_state=0).fit(X_train)


def molrg_report(featurizer, X_train, X_heldout, y_heldout):
    return generalization_report(featurizer, X_train, X_heldout, y_heldout, timesteps=SWEEP,
                                 probe=SubspaceClassifier(n_components=RANK), cv=few_shot_probe_splits(),
                                 random_state=0)


def test_a_network_that_memorized_ten_digits_is_called_memorizing(digits):
    X, y = digits
    featurizer = DiffusionFeaturizer(denoiser="mlp", max_steps=300, device="cpu", random_state=0).fit(X[:10])
    report = generalization_report(featurizer, X[:10], X[1000:1300], y[1000:1300], timesteps=SWEEP, cv=3,
                                   random_state=0)
    assert report.verdict == "memorizing"
    assert report.error_ratio > 2 and report.error_ratio_interval[0] > 1.5
    assert (report.table["error_ratio"] > 1).all()


def test_the_learned_molrg_denoiser_on_a_tiny_set_memorizes_and_on_a_large_one_generalizes(molrg):
    X_pool, X_heldout, y_heldout, _ = molrg
    tiny = molrg_report(learned_molrg(X_pool[:12], steps=300), X_pool[:12], X_heldout, y_heldout)
    large = molrg_report(learned_molrg(X_pool, steps=200), X_pool, X_heldout, y_heldout)
    assert tiny.verdict == "memorizing" and tiny.error_ratio > 3
    assert large.verdict == "generalizing", large.summary_text()
    assert large.error_ratio_interval[1] < 1.2 and large.denoising_gain < 0.5
    assert large.peak_timestep > 0 and large.rise > 2 * large.rise_se


def test_the_optimal_molrg_denoiser_generalizes(molrg):
    X_pool, X_heldout, y_heldout, bases = molrg
    featurizer = DiffusionFeaturizer(denoiser=MoLRGDenoiser(bases, DELTA), device="cpu").fit(X_pool)
    report = molrg_report(featurizer, X_pool, X_heldout, y_heldout)
    assert report.verdict == "generalizing", report.summary_text()
    assert abs(report.table["error_ratio"] - 1).max() < 0.1  # it never saw its "training" set at all


@pytest.mark.parametrize("denoiser, image_shape", [("unet", (1, 8, 8)), ("mlp", None)])
def test_an_untrained_network_is_never_called_generalizing(digits, denoiser, image_shape):
    X, y = digits
    featurizer = DiffusionFeaturizer(denoiser=denoiser, image_shape=image_shape, max_steps=0, device="cpu",
                                     random_state=0).fit(X[:200])
    for labels in (None, y[1000:1300]):
        report = generalization_report(featurizer, X[:200], X[1000:1300], labels, timesteps=SWEEP, cv=3,
                                       random_state=0)
        assert report.verdict != "generalizing", report.summary_text()
        assert report.denoising_gain > 0.95  # it does not beat the denoiser that knows only mean and variance


@pytest.mark.parametrize(
    "interval, gain, rise, expected",
    [
        ((2.0, 3.0), 0.5, (25, -0.01, 0.005), "memorizing"),
        ((1.0, 1.05), 0.4, (25, 0.02, 0.005), "generalizing"),
        ((1.0, 1.05), 1.03, (25, 0.02, 0.005), "inconclusive"),  # untrained: a bump in its curve is not enough
        ((1.0, 1.05), 0.4, (0, 0.0, 0.0), "inconclusive"),  # under-trained: errors agree, the curve falls
        ((1.0, 1.05), 0.4, (25, 0.01, 0.006), "inconclusive"),  # a rise within 2 standard errors
        ((1.1, 1.3), 0.4, (25, 0.02, 0.005), "inconclusive"),  # ambiguous ratio
        ((1.0, 1.05), 0.4, None, "inconclusive"),  # no labels
    ],
)
def test_the_verdict_rule(interval, gain, rise, expected):
    verdict, reasons = _verdict(interval, gain, rise, ratio_threshold=1.2, max_gain=0.8)
    assert verdict == expected and reasons


def test_the_error_is_measured_with_the_noise_of_transform(digits):
    X, _ = digits
    X_train, X_heldout, timestep = X[:40], X[1000:1040], 100
    featurizer = DiffusionFeaturizer(image_shape=(1, 8, 8), **TINY).fit(X_train)
    table = generalization_report(featurizer, X_train, X_heldout, timesteps=[timestep], n_bootstrap=0).table
    # transform's own clean estimate of every sample, from an equal featurizer asked for "x0" unpooled
    estimates = clone(featurizer).set_params(layers=["x0"], pooling="none", timesteps=[timestep]).fit(X_train)
    for X_part, column in ((X_train, "train_error"), (X_heldout, "heldout_error")):
        clean = scaled_samples(featurizer, X_part).reshape(len(X_part), -1)
        expected = np.mean((estimates.transform(X_part) - clean) ** 2)
        np.testing.assert_allclose(table[column].iloc[0], expected, rtol=1e-5)
    # ... and not with other noise: the same estimate from the second noise draw gives another error
    sigma = featurizer.schedule_.sigmas([timestep])[0]
    errors = {}
    for draw in (0, 1):
        noise = extraction_noise(featurizer, X_train, timestep, draw=draw)
        x0 = torch.from_numpy(scaled_samples(featurizer, X_train)).float()
        steps = torch.full((len(x0),), timestep)
        with torch.no_grad():
            x_t = featurizer.schedule_.add_noise(x0, noise, steps)
            output = featurizer.network_(x_t, steps)
            x0_hat = featurizer.schedule_.predict_x0(x_t, getattr(output, "sample", output), steps)
        errors[draw] = float(((x0_hat - x0) ** 2).mean())
    np.testing.assert_allclose(table["train_error"].iloc[0], errors[0], rtol=1e-5)
    assert abs(errors[1] - errors[0]) > 1e-3 * errors[0] and sigma > 0


def test_the_report_table_and_summary(digits):
    X, y = digits
    featurizer = DiffusionFeaturizer(image_shape=(1, 8, 8), **TINY).fit(X[:50])
    report = generalization_report(FrozenEstimator(featurizer), X[:50], X[1000:1100], y[1000:1100],
                                   timesteps=(100, 0, 25), cv=2, random_state=0)
    assert report.table.columns.tolist() == ["timestep", "sigma", "train_error", "heldout_error", "error_ratio",
                                             "baseline_error", "accuracy", "accuracy_std"]
    assert report.table["timestep"].tolist() == [0, 25, 100]
    np.testing.assert_allclose(report.table["sigma"], featurizer.schedule_.sigmas([0, 25, 100]))
    assert report.fold_scores.shape == (3, 2)
    summary = report.summary()
    assert summary["verdict"] == report.verdict and summary["peak_timestep"] in (0, 25, 100)
    assert "verdict" in str(report)
    unlabelled = generalization_report(featurizer, X[:50], X[1000:1100], timesteps=(0, 25), random_state=0)
    assert "accuracy" not in unlabelled.table and unlabelled.rise is None
    assert unlabelled.verdict != "generalizing"


def test_the_report_is_reproducible_and_changes_nothing_it_is_given(digits):
    X, y = digits
    featurizer = DiffusionFeaturizer(image_shape=(1, 8, 8), **TINY).fit(X[:50])
    X_train, X_heldout, y_heldout = X[:50].copy(), X[1000:1100].copy(), y[1000:1100].copy()
    before = featurizer.transform(X_heldout)
    first = generalization_report(featurizer, X_train, X_heldout, y_heldout, timesteps=(0, 50), cv=2,
                                  max_samples=30, random_state=3)
    second = generalization_report(featurizer, X_train, X_heldout, y_heldout, timesteps=(0, 50), cv=2,
                                   max_samples=30, random_state=3)
    assert first.table.equals(second.table) and first.error_ratio_interval == second.error_ratio_interval
    np.testing.assert_array_equal(X_train, X[:50])
    np.testing.assert_array_equal(X_heldout, X[1000:1100])
    np.testing.assert_array_equal(y_heldout, y[1000:1100])
    assert featurizer.layers_ != ("x0",) and featurizer.pooling == "max" and featurizer.n_noise_draws == 1
    np.testing.assert_array_equal(featurizer.transform(X_heldout), before)


def test_pretrained_directories_work(digits, tmp_path):
    X, y = digits
    DiffusionFeaturizer(image_shape=(1, 8, 8), **TINY).fit(X[:50]).save_pretrained(tmp_path)
    loaded = DiffusionFeaturizer.from_pretrained(tmp_path, device="cpu")
    report = generalization_report(loaded, X[:50], X[1000:1060], timesteps=(0, 100), random_state=0)
    assert np.isfinite(report.table[["train_error", "heldout_error"]].to_numpy()).all()


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(featurizer=object()), TypeError, "featurizer"),
        (dict(y_heldout=np.zeros(3)), ValueError, "inconsistent numbers of samples"),
        (dict(timesteps=(0, 5000)), ValueError, "timesteps"),
        (dict(max_samples=1), ValueError, "max_samples"),
        (dict(ratio_threshold=0.5), ValueError, "ratio_threshold"),
    ],
)
def test_bad_arguments_are_named(digits, kwargs, error, match):
    X, _ = digits
    featurizer = DiffusionFeaturizer(image_shape=(1, 8, 8), **TINY).fit(X[:20])
    arguments = dict(featurizer=featurizer, X_train=X[:20], X_heldout=X[100:120])
    arguments.update(kwargs)
    with pytest.raises(error, match=match):
        generalization_report(**arguments)


def test_an_unfitted_featurizer_is_refused(digits):
    X, _ = digits
    with pytest.raises(NotFittedError):
        generalization_report(DiffusionFeaturizer(image_shape=(1, 8, 8)), X[:20], X[100:120])


def test_the_training_size_study_trains_one_denoiser_per_size(digits):
    X, y = digits
    featurizer = DiffusionFeaturizer(denoiser="mlp", **TINY)
    table, reports = training_size_study(featurizer, X[:60], X[1000:1090], y[1000:1090], sizes=(10, None),
                                         report_params=dict(timesteps=(0, 50), cv=2, random_state=0))
    assert table["n_train"].tolist() == [10, 60] and sorted(reports) == [10, 60]
    assert set(table["verdict"]) <= {"generalizing", "memorizing", "inconclusive"}
    with pytest.raises(ValueError, match="sizes"):
        training_size_study(featurizer, X[:60], X[1000:1090], sizes=(100,))


def test_the_report_plots(digits):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from diffrep.plotting import import_pyplot, plot_generalization_report

    X, y = digits
    featurizer = DiffusionFeaturizer(image_shape=(1, 8, 8), **TINY).fit(X[:50])
    report = generalization_report(featurizer, X[:50], X[1000:1100], y[1000:1100], timesteps=(0, 50), cv=2,
                                   random_state=0)
    ax = plot_generalization_report(report, title="N=50")
    assert report.verdict in ax.get_title() and len(ax.right_ax.lines) == 2
    import_pyplot().close("all")


@pytest.mark.slow
def test_the_default_unet_at_full_length_memorizes_ten_digits_and_not_the_full_set(digits):
    X, y = digits
    # A random split, as in examples/generalization_digits.py: the digits in file order change writers, and
    # the last 450 against the first 1,347 give a held-out / training ratio of 1.19 from that shift alone.
    pool, heldout = train_test_split(np.arange(len(y)), test_size=450, stratify=y, random_state=0)
    pool = np.random.default_rng(0).permutation(pool)
    X_pool, X_heldout, y_heldout = X[pool], X[heldout], y[heldout]
    settings = dict(image_shape=(1, 8, 8), device="cpu", random_state=0)  # the default 2,000 steps
    reports = {}
    for n_train in (10, 1347):
        featurizer = DiffusionFeaturizer(**settings).fit(X_pool[:n_train])
        reports[n_train] = generalization_report(featurizer, X_pool[:n_train], X_heldout, y_heldout,
                                                 random_state=0)
    assert reports[10].verdict == "memorizing" and reports[10].error_ratio > 10
    assert reports[1347].verdict != "memorizing" and reports[1347].error_ratio_interval[1] < 1.2
    assert reports[1347].denoising_gain < 0.5
