"""The default probe: logistic regression whose C is chosen by cross-validation on the labels it is given."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from diffrep import LogisticProbeCV
from diffrep._engine.probes import one_standard_error_choice
from diffrep.label_noise import corrupt_labels


@parametrize_with_checks([LogisticProbeCV(Cs=(0.01, 1.0), cv=2)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def _high_dimensional_task(n_train=150, n_features=400, seed=0):
    """Three classes apart along a few directions, buried in hundreds of noise features."""
    rng = np.random.default_rng(seed)
    centers = np.zeros((3, n_features))
    centers[:, :3] = 1.2 * np.eye(3)
    y = np.arange(n_train + 600) % 3
    X = centers[y] + rng.normal(size=(len(y), n_features))
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


def test_the_chosen_C_is_the_smallest_within_one_standard_error_of_the_best_on_the_same_folds():
    X, y, _, _ = _high_dimensional_task()
    probe = LogisticProbeCV(Cs=(1e-3, 1e-2, 1e-1), random_state=0).fit(X, y)
    by_hand = np.array([
        [
            make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=1000)).fit(X[train], y[train])
            .score(X[test], y[test])
            for C in (1e-3, 1e-2, 1e-1)
        ]
        for train, test in StratifiedKFold(3, shuffle=True, random_state=0).split(X, y)
    ])
    np.testing.assert_allclose(probe.cv_scores_, by_hand, atol=0.02)  # warm starts end within the tolerance
    means, best = by_hand.mean(axis=0), int(np.argmax(by_hand.mean(axis=0)))
    within = means >= means[best] - by_hand[:, best].std() / np.sqrt(3)  # one standard error of the best
    assert probe.C_ == (1e-3, 1e-2, 1e-1)[int(np.flatnonzero(within)[0])]
    final = make_pipeline(StandardScaler(), LogisticRegression(C=probe.C_, max_iter=1000)).fit(X, y)
    np.testing.assert_allclose(probe.decision_function(X), final.decision_function(X), atol=1e-3)


def test_tuning_beats_a_fixed_C_under_label_noise_in_high_dimension():
    rng = np.random.default_rng(0)
    centers = 0.1 * rng.normal(size=(3, 500))  # every one of 500 features weakly informative
    labels = np.arange(1000) % 3
    features = centers[labels] + rng.normal(size=(len(labels), 500))
    X, y, X_test, y_test = features[:400], labels[:400], features[400:], labels[400:]
    noisy = corrupt_labels(y, 0.4, random_state=0)
    fixed = LogisticProbeCV(Cs=(1.0,)).fit(X, noisy)
    tuned = LogisticProbeCV(random_state=0).fit(X, noisy)
    assert fixed.C_ == 1.0 and fixed.cv_scores_.shape == (0, 1)
    assert tuned.C_ < 1.0
    assert tuned.score(X_test, y_test) > fixed.score(X_test, y_test) + 0.05


def test_a_class_too_small_to_split_fits_the_C_closest_to_one():
    X, y, _, _ = _high_dimensional_task(n_train=30)
    y = y.copy()
    y[0] = 7  # a class of one sample
    probe = LogisticProbeCV(Cs=(1e-3, 0.3, 10.0)).fit(X, y)
    assert probe.C_ == 0.3
    assert probe.predict(X).shape == (30,)


@pytest.mark.parametrize("Cs", [(), (0.0, 1.0), (-1,), ("a",), [[1.0]], "a"])
def test_bad_Cs_are_refused_naming_the_parameter(Cs):
    X, y, _, _ = _high_dimensional_task(n_train=30)
    with pytest.raises(ValueError, match="'?Cs'? (must be a non-empty sequence of positive numbers|parameter)"):
        LogisticProbeCV(Cs=Cs).fit(X, y)


def test_sample_weights_reach_the_standardization_and_the_logistic_loss():
    X, y, _, _ = _high_dimensional_task(n_train=60)
    weights = np.where(y == 0, 5.0, 1.0)
    weighted = LogisticProbeCV(Cs=(1.0,)).fit(X, y, sample_weight=weights)
    scaler = StandardScaler().fit(X, sample_weight=weights)
    by_hand = LogisticRegression(C=1.0, max_iter=1000).fit(scaler.transform(X), y, sample_weight=weights)
    np.testing.assert_allclose(weighted.decision_function(X), by_hand.decision_function(scaler.transform(X)),
                               atol=1e-4)


def test_the_one_standard_error_rule_prefers_the_stronger_regularization_among_ties():
    scores = np.array([[0.80, 0.90, 0.93], [0.82, 0.92, 0.88], [0.78, 0.88, 0.93]])  # folds x (C ascending)
    assert one_standard_error_choice(scores) == 1  # 0.900 is within 0.014 of 0.913; 0.800 is not
    assert one_standard_error_choice(scores[:, [0, 2]]) == 1
    assert one_standard_error_choice(scores[:1]) == 2  # one fold: no spread, the best
