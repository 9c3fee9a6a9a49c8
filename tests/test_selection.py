"""One selection routine: the ensembles, the curves, the label-noise study and the demo fold and score alike."""

import numpy as np
import pytest
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold, KFold, StratifiedKFold, train_test_split

from diffrep import DiffusionFeaturizer, LogisticProbeCV, NoiseEnsembleClassifier, NoiseEnsembleRegressor
from diffrep._engine.selection import make_folds
from diffrep.curves import representation_curve
from diffrep.label_noise import label_noise_study

from .helpers import TINY

TIMESTEPS = (10, 100)


@pytest.fixture(scope="module")
def frozen(digits_small):
    """One tiny image featurizer, trained once on the small digits and frozen."""
    X, _ = digits_small
    return FrozenEstimator(DiffusionFeaturizer(image_shape=(1, 8, 8), **TINY).fit(X))


def _same_folds(folds, expected):
    assert len(folds) == len(expected)
    for (train, test), (expected_train, expected_test) in zip(folds, expected):
        np.testing.assert_array_equal(train, expected_train)
        np.testing.assert_array_equal(test, expected_test)


# --------------------------------------------------------------------- folds
def test_an_int_cv_is_a_stratified_k_fold_shuffled_only_when_seeded(digits_small):
    _, y = digits_small
    X = np.zeros((len(y), 1))
    _same_folds(make_folds(3, y, classifier=True, random_state=0),
                list(StratifiedKFold(3, shuffle=True, random_state=0).split(X, y)))
    _same_folds(make_folds(3, y, classifier=True), list(StratifiedKFold(3).split(X, y)))
    _same_folds(make_folds(None, y, classifier=True), list(StratifiedKFold(5).split(X, y)))
    _same_folds(make_folds(4, y.astype(float), classifier=False), list(KFold(4).split(X)))


def test_an_int_cv_is_capped_by_the_smallest_class_and_refused_below_two_folds():
    y = np.array([0] * 10 + [1] * 3)
    assert len(make_folds(5, y, classifier=True)) == 3
    assert len(make_folds(None, np.arange(6.0), classifier=False)) == 3  # one fold per two samples
    with pytest.raises(ValueError, match=r"cv=5 cannot make 2 stratified folds: the smallest class of y has 1"):
        make_folds(5, np.array([0] * 10 + [1]), classifier=True)


@pytest.mark.parametrize(
    "cv, message",
    [
        ([], "cv gave no"),
        ([(np.arange(10), np.array([], dtype=int))], "cv fold 0 has an empty test part"),
        ([(np.arange(5), np.arange(5, 12))], "cv fold 0 has test indices that are not positions 0 .. 9"),
    ],
)
def test_folds_without_samples_on_a_side_are_refused_naming_cv(cv, message):
    with pytest.raises(ValueError, match=message):
        make_folds(cv, np.arange(10) % 2, classifier=True)


def test_holdout_is_the_stratified_train_test_split_and_takes_no_groups():
    y = np.arange(40) % 4
    ((train, test),) = make_folds("holdout", y, classifier=True, random_state=3, test_size=0.25)
    expected_train, expected_test = train_test_split(np.arange(40), test_size=0.25, stratify=y, random_state=3)
    np.testing.assert_array_equal(train, expected_train)
    np.testing.assert_array_equal(test, expected_test)
    with pytest.raises(ValueError, match="groups"):
        make_folds("holdout", y, groups=y, classifier=True)


# ------------------------------------------------------- one score everywhere
@pytest.mark.parametrize("cv", ["int", "stratified", "groups"])
def test_the_ensembles_timestep_scores_are_the_curves_scores(frozen, digits_small, cv):
    X, y = digits_small
    groups = np.arange(len(y)) % 6 if cv == "groups" else None
    cv = {"int": 3, "stratified": StratifiedKFold(3, shuffle=True, random_state=1), "groups": GroupKFold(3)}[cv]
    probe = LogisticProbeCV(Cs=(0.01, 1.0), max_iter=100)  # the default probe's kind, on a short path
    clf = NoiseEnsembleClassifier(frozen, timesteps=TIMESTEPS, selection="all", estimator=probe, cv=cv, random_state=0)
    clf.fit(X, y, groups=groups)
    table = representation_curve(frozen, X, y, TIMESTEPS, estimator=probe, cv=cv, random_state=0, groups=groups)
    for row in table.itertuples():
        assert clf.timestep_scores_[row.timestep] == {"mean": row.mean, "std": row.std}


def test_the_curve_caps_its_folds_by_the_smallest_class_as_the_ensemble_does(frozen, digits_small):
    X, y = digits_small
    keep = np.flatnonzero(y != 9)[:100]
    X, y = np.vstack([X[keep], X[y == 9][:3]]), np.concatenate([y[keep], [9, 9, 9]])  # class 9: three samples
    probe = LogisticRegression(max_iter=200)
    table = representation_curve(frozen, X, y, TIMESTEPS, estimator=probe, cv=5, random_state=0)
    assert [c for c in table.columns if c.startswith("score_")] == ["score_0", "score_1", "score_2"]
    clf = NoiseEnsembleClassifier(frozen, timesteps=TIMESTEPS, estimator=probe, cv=5, random_state=0).fit(X, y)
    assert [clf.timestep_scores_[t]["mean"] for t in TIMESTEPS] == table["mean"].tolist()


def test_an_unseeded_ensemble_scores_the_same_twice(frozen, digits_small):
    X, y = digits_small
    probe = LogisticRegression(max_iter=200)
    first, second = (
        NoiseEnsembleClassifier(frozen, timesteps=TIMESTEPS, estimator=probe, cv=3).fit(X, y).timestep_scores_
        for _ in range(2)
    )
    assert first == second


# ------------------------------------------------------------ refused inputs
def test_no_folds_is_refused_naming_cv_by_the_ensembles_the_curve_and_the_study(frozen, digits_small):
    X, y = digits_small
    probe = LogisticRegression(max_iter=200)
    with pytest.raises(ValueError, match="cv gave no"):
        NoiseEnsembleClassifier(frozen, timesteps=TIMESTEPS, estimator=probe, cv=[]).fit(X, y)
    with pytest.raises(ValueError, match="cv gave no"):
        NoiseEnsembleRegressor(frozen, timesteps=TIMESTEPS, cv=[]).fit(X, y.astype(float))
    with pytest.raises(ValueError, match="cv gave no"):
        representation_curve(frozen, X, y, TIMESTEPS, estimator=probe, cv=[])
    with pytest.raises(ValueError, match="cv gave no"):
        label_noise_study({"probe": probe}, X, y, rates=(0.0,), n_repeats=1, cv=[])


def test_a_class_of_one_sample_is_refused_naming_cv_by_the_ensemble(frozen, digits_small):
    X, y = digits_small
    y = np.where(np.arange(len(y)) == 0, 10, y)  # class 10: a single sample
    clf = NoiseEnsembleClassifier(frozen, timesteps=TIMESTEPS, estimator=LogisticRegression(max_iter=200), cv=3)
    with pytest.raises(ValueError, match="cv=3 cannot make 2 stratified folds"):
        clf.fit(X, y)


def test_negative_sample_weights_are_refused_by_the_ensembles_and_the_probe(frozen, digits_small):
    X, y = digits_small
    weights = np.ones(len(y))
    weights[5] = -1.0
    estimators = [
        NoiseEnsembleClassifier(frozen, timesteps=TIMESTEPS, estimator=LogisticRegression(max_iter=200)),
        NoiseEnsembleRegressor(frozen, timesteps=TIMESTEPS),
    ]
    for estimator in estimators:
        with pytest.raises(ValueError, match="Negative values in data passed to `sample_weight`"):
            estimator.fit(X, y.astype(float), sample_weight=weights)
    with pytest.raises(ValueError, match="Negative values in data passed to `sample_weight`"):
        LogisticProbeCV().fit(X, y, sample_weight=weights)


# ------------------------------------------------------------ the study's cv
def test_the_study_keeps_its_single_split_as_holdout_and_none_means_five_folds(digits_small):
    X, y = digits_small
    estimators = {"probe": LogisticRegression(max_iter=200)}
    study = dict(rates=(0.0,), n_repeats=1, random_state=0)
    default = label_noise_study(estimators, X, y, **study)
    holdout = label_noise_study(estimators, X, y, cv="holdout", **study)
    assert default.equals(holdout)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    assert holdout["score_0"].item() == LogisticRegression(max_iter=200).fit(X_train, y_train).score(X_test, y_test)
    five = label_noise_study(estimators, X, y, cv=None, **study)
    assert [c for c in five.columns if c.startswith("score_")] == [f"score_{i}" for i in range(5)]
