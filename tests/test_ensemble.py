"""NoiseEnsembleClassifier: probes at several noise levels of one denoiser, aggregated."""

import numpy as np
import pytest
import torch
from scipy.special import softmax
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.utils.estimator_checks import parametrize_with_checks
from sklearn.utils.validation import check_is_fitted

from diffrep._engine.sklearn_compat import InvalidParameterError
from diffrep import DiffusionFeaturizer, LogisticProbeCV
from diffrep.ensemble import NoiseEnsembleClassifier
from diffrep.label_noise import corrupt_labels
from diffrep._engine.probes import one_standard_error_choice
from diffrep.probes import DEFAULT_CS

from .helpers import EXPECTED_FAILURES, TINY, TINY_NO_SEED

GRID = (0, 10, 25, 50, 100)


@parametrize_with_checks(
    [
        NoiseEnsembleClassifier(
            featurizer=DiffusionFeaturizer(denoiser="mlp", **TINY_NO_SEED),
            timesteps=(5, 10, 20),
            n_neighbors=1,
            cv=2,
            random_state=0,
        )
    ],
    expected_failed_checks=lambda estimator: EXPECTED_FAILURES,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("selection", [(25,), "neighbors"])
def test_one_selected_timestep_equals_a_single_probe_with_its_chosen_C(frozen, digits_small, selection):
    X, y = digits_small
    clf = NoiseEnsembleClassifier(frozen, timesteps=GRID, selection=selection, n_neighbors=0, random_state=0)
    clf.fit(X, y)
    (t,) = clf.selected_timesteps_
    (chosen,) = clf.estimators_
    probe = LogisticProbeCV(Cs=(chosen.C_,)).fit(frozen.extract(X, [t]), y)
    features = frozen.extract(X, [t])
    np.testing.assert_array_equal(clf.predict(X), probe.predict(features))
    np.testing.assert_allclose(clf.decision_function(X), probe.decision_function(features), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(clf.predict_proba(X), probe.predict_proba(features), rtol=1e-6, atol=1e-8)


def test_neighbors_are_taken_around_the_best_timestep_on_the_grid(frozen, digits_small):
    X, y = digits_small
    clf = NoiseEnsembleClassifier(frozen, timesteps=(50, 0, 100, 10, 25), n_neighbors=1, random_state=0).fit(X, y)
    assert list(clf.timestep_scores_) == list(GRID)
    means = [clf.timestep_scores_[t]["mean"] for t in GRID]
    best = int(np.argmax(means))
    assert clf.selected_timesteps_ == GRID[max(0, best - 1) : best + 2]
    assert len(clf.estimators_) == len(clf.selected_timesteps_)
    wide = NoiseEnsembleClassifier(frozen, timesteps=GRID, n_neighbors=10, random_state=0).fit(X, y)
    assert wide.selected_timesteps_ == GRID
    everything = NoiseEnsembleClassifier(frozen, timesteps=GRID, selection="all", random_state=0).fit(X, y)
    assert everything.selected_timesteps_ == GRID


def test_timestep_scores_are_the_best_C_of_cross_validated_accuracies(frozen, digits_small):
    X, y = digits_small
    clf = NoiseEnsembleClassifier(frozen, timesteps=(10, 100), selection="all", cv=3, random_state=0).fit(X, y)
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
    per_C = {
        t: {C: cross_val_score(LogisticProbeCV(Cs=(C,)), frozen.extract(X, [t]), y, cv=folds) for C in DEFAULT_CS}
        for t in (10, 100)
    }
    for t, scores in clf.timestep_scores_.items():
        best = max(per_C[t], key=lambda C: per_C[t][C].mean())
        # each C of the path starts from the previous solution: the same accuracy within a test sample or so
        assert scores["mean"] == pytest.approx(per_C[t][best].mean(), abs=0.02)
    assert clf.timestep_scores_[10]["mean"] != clf.timestep_scores_[100]["mean"]
    averaged = np.array([(per_C[10][C] + per_C[100][C]) / 2 for C in DEFAULT_CS]).T  # folds x Cs
    shared = DEFAULT_CS[one_standard_error_choice(averaged)]
    assert [probe.C_ for probe in clf.estimators_] == [shared, shared]


def test_the_selected_probes_share_one_C_so_a_near_chance_timestep_cannot_outweigh_the_others(frozen, digits):
    X, y = digits[0][:600], corrupt_labels(digits[1][:600], 0.8, random_state=1)
    clf = NoiseEnsembleClassifier(frozen, timesteps=(25, 400, 999), selection="all", random_state=0).fit(X, y)
    assert len({probe.C_ for probe in clf.estimators_}) == 1


class _NoNoise(torch.nn.Module):
    """A denoiser that predicts no noise: its ``"x0"`` at t=0 is the (scaled) input itself."""

    def forward(self, x, t):
        return torch.zeros_like(x)


def test_the_tuned_probe_beats_a_fixed_C_under_label_noise_in_high_dimension():
    rng = np.random.default_rng(0)
    centers = 0.1 * rng.normal(size=(3, 500))  # three classes, each of 500 features weakly informative
    y = np.arange(1200) % 3
    X = centers[y] + rng.normal(size=(len(y), 500))
    noisy = corrupt_labels(y[:600], 0.4, random_state=0)
    featurizer = DiffusionFeaturizer(denoiser=_NoNoise(), layers="x0", device="cpu", random_state=0)
    ensembles = {
        name: NoiseEnsembleClassifier(featurizer, timesteps=(0, 5), estimator=probe, random_state=0).fit(
            X[:600], noisy
        )
        for name, probe in {"tuned": None, "C=1": LogisticProbeCV(Cs=(1.0,))}.items()
    }
    assert all(probe.C_ < 1.0 for probe in ensembles["tuned"].estimators_)
    scores = {name: ensemble.score(X[600:], y[600:]) for name, ensemble in ensembles.items()}
    assert scores["tuned"] > scores["C=1"] + 0.08, scores


def _features(frozen, X, clf):
    return np.split(frozen.extract(X, clf.selected_timesteps_), len(clf.selected_timesteps_), axis=1)


def test_logit_aggregation_averages_decision_functions(frozen, digits_small):
    X, y = digits_small
    clf = NoiseEnsembleClassifier(frozen, timesteps=GRID, selection=(10, 50), random_state=0).fit(X, y)
    blocks = _features(frozen, X, clf)
    mean_logits = np.mean([p.decision_function(f) for p, f in zip(clf.estimators_, blocks)], axis=0)
    np.testing.assert_allclose(clf.decision_function(X), mean_logits, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(clf.predict_proba(X), softmax(mean_logits, axis=1), rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[mean_logits.argmax(axis=1)])


def test_proba_aggregation_averages_probabilities(frozen, digits_small):
    X, y = digits_small
    clf = NoiseEnsembleClassifier(frozen, timesteps=GRID, selection=(10, 50), aggregation="proba").fit(X, y)
    mean_proba = np.mean([p.predict_proba(f) for p, f in zip(clf.estimators_, _features(frozen, X, clf))], axis=0)
    np.testing.assert_allclose(clf.predict_proba(X), mean_proba, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[mean_proba.argmax(axis=1)])


def test_vote_ties_go_to_the_lowest_class_index(frozen, digits):
    X, y = digits[0][:300], digits[1][:300]
    unseen = digits[0][300:600]
    clf = NoiseEnsembleClassifier(frozen, timesteps=(0, 400), selection="all", aggregation="vote").fit(X, y)
    first, second = (p.predict(f) for p, f in zip(clf.estimators_, _features(frozen, unseen, clf)))
    disagree = first != second
    assert disagree.any(), "the two probes should disagree somewhere for this test to mean anything"
    np.testing.assert_array_equal(clf.predict(unseen)[disagree], clf.classes_[np.minimum(first, second)[disagree]])
    np.testing.assert_array_equal(clf.predict(unseen)[~disagree], clf.classes_[first[~disagree]])
    np.testing.assert_allclose(clf.predict_proba(unseen).sum(axis=1), 1.0)


def test_string_labels_and_binary_problems(frozen, digits_small):
    X, y = digits_small
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
    clf = NoiseEnsembleClassifier(frozen, timesteps=GRID, n_neighbors=1, random_state=0).fit(X, names[y])
    assert set(clf.classes_) == set(names)
    assert set(clf.predict(X)) <= set(names)
    assert clf.score(X, names[y]) > 0.5

    binary = np.where(y < 5, "low", "high")
    clf = NoiseEnsembleClassifier(frozen, timesteps=GRID, n_neighbors=1, random_state=0).fit(X, binary)
    decision, proba = clf.decision_function(X), clf.predict_proba(X)
    assert decision.shape == (len(X),) and proba.shape == (len(X), 2)
    np.testing.assert_array_equal(clf.predict(X) == clf.classes_[1], decision > 0)
    np.testing.assert_allclose(proba[:, 1], 1.0 / (1.0 + np.exp(-decision)), rtol=1e-6)


def test_trains_the_denoiser_once_and_never_a_frozen_one(frozen, digits_small, trainings):
    X, y = digits_small
    featurizer = DiffusionFeaturizer(image_shape=(1, 8, 8), **TINY)
    clf = NoiseEnsembleClassifier(featurizer, timesteps=GRID, random_state=0).fit(X, y)
    assert len(trainings) == 1
    with pytest.raises(NotFittedError):
        check_is_fitted(clf.featurizer)  # the parameter is never fitted in place
    check_is_fitted(clf.featurizer_)
    NoiseEnsembleClassifier(frozen, timesteps=GRID, random_state=0).fit(X, y)
    assert len(trainings) == 1


def test_accepts_images_as_3d_arrays(frozen, digits_small):
    X, y = digits_small
    clf = NoiseEnsembleClassifier(frozen, timesteps=(10, 50), random_state=0).fit(X.reshape(-1, 8, 8), y)
    assert clf.n_features_in_ == 64
    np.testing.assert_array_equal(clf.predict(X.reshape(-1, 8, 8)), clf.predict(X))


def test_a_class_with_one_sample_falls_back_to_training_scores(frozen, digits_small):
    X, y = digits_small
    y = y.copy()
    y[0] = 99  # a class with a single sample cannot be split into folds
    clf = NoiseEnsembleClassifier(frozen, timesteps=(10, 50), cv=3, random_state=0).fit(X, y)
    assert 99 in clf.classes_
    assert all(scores["std"] == 0.0 for scores in clf.timestep_scores_.values())


@pytest.mark.parametrize(
    "params, error, match",
    [
        (dict(selection="best"), InvalidParameterError, "'selection' parameter.*'neighbors'"),
        (dict(selection=(10, 30)), ValueError, r"selection timesteps \[30\] are not among"),
        (dict(timesteps=(10, 1000)), ValueError, "timesteps must lie in"),
        (dict(n_neighbors=-1), InvalidParameterError, r"'n_neighbors' parameter.*\[0, inf\)"),
        (dict(cv=1), InvalidParameterError, r"'cv' parameter.*\[2, inf\)"),
        (dict(cv="five"), InvalidParameterError, "'cv' parameter"),
        (dict(scoring="accuracy_score"), InvalidParameterError, "'scoring' parameter"),
        (dict(aggregation="median"), InvalidParameterError, "'aggregation' parameter.*'logits'"),
        (dict(estimator=KNeighborsClassifier()), TypeError, "decision_function"),
        (dict(estimator="logistic"), InvalidParameterError, "'estimator' parameter"),
        (dict(featurizer="unet"), InvalidParameterError, "'featurizer' parameter.*'extract'"),
        (dict(random_state="seed"), InvalidParameterError, "'random_state' parameter"),
    ],
)
def test_invalid_parameters_raise_before_training(digits_small, trainings, params, error, match):
    X, y = digits_small
    settings = dict(featurizer=DiffusionFeaturizer(image_shape=(1, 8, 8), **TINY), timesteps=(10, 50))
    with pytest.raises(error, match=match):
        NoiseEnsembleClassifier(**{**settings, **params}).fit(X, y)
    assert trainings == []


def test_a_single_class_is_refused_before_training(digits_small, trainings):
    X, _ = digits_small
    featurizer = DiffusionFeaturizer(image_shape=(1, 8, 8), **TINY)
    with pytest.raises(ValueError, match="at least 2 classes"):
        NoiseEnsembleClassifier(featurizer, timesteps=(10,)).fit(X, np.zeros(len(X)))
    assert trainings == []
