"""The ensembles under Kaggle-style protocols: any splitter, groups, scoring, weights, regression."""

import numpy as np
import pytest
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import balanced_accuracy_score, get_scorer, mean_absolute_error
from sklearn.model_selection import GroupKFold, KFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from diffrep import DiffusionFeaturizer, NoiseEnsembleClassifier, NoiseEnsembleRegressor
from diffrep._engine.probes import fit_probe
from diffrep.probes import LogisticProbeCV, default_probe, default_regression_probe

from .helpers import EXPECTED_FAILURES, TINY, TINY_NO_SEED

GRID = (0, 10, 50, 100)


@parametrize_with_checks(
    [
        NoiseEnsembleRegressor(
            featurizer=DiffusionFeaturizer(denoiser="mlp", **TINY_NO_SEED),
            timesteps=(5, 10, 20),
            n_neighbors=1,
            cv=2,
            random_state=0,
        )
    ],
    expected_failed_checks=lambda estimator: {
        "check_sample_weight_equivalence_on_dense_data": EXPECTED_FAILURES[
            "check_sample_weight_equivalence_on_dense_data"
        ]
    },
)
def test_regressor_passes_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def frozen_table(diabetes):
    return FrozenEstimator(DiffusionFeaturizer(**TINY).fit(diabetes[0]))


def _hand_scores(frozen, X, y, timestep, folds, score, probe=None, weights=None):
    """Per-fold scores of a probe fitted by hand on the features at one timestep.

    The default probe is scored along its path of C on every fold; the scores
    are those of the C with the best mean.
    """
    features = frozen.extract(X, [timestep])
    if probe is None:
        path = np.array([
            default_probe().path_scores(
                (features[train], y[train]), (features[test], y[test]), score,
                None if weights is None else (weights[train], weights[test]),
            )
            for train, test in folds
        ])
        return list(path[:, int(np.argmax(path.mean(axis=0)))])
    results = []
    for train, test in folds:
        kwargs = {} if weights is None else {"sample_weight": weights[test]}
        fitted = fit_probe(probe, features[train], y[train], None if weights is None else weights[train])
        results.append(score(fitted, features[test], y[test], **kwargs))
    return results


# ----------------------------------------------------------- splitters, scoring
def test_a_group_splitter_scores_on_the_folds_of_the_groups(frozen, digits_small):
    X, y = digits_small
    groups = np.arange(len(y)) % 4
    clf = NoiseEnsembleClassifier(frozen, timesteps=GRID, selection="all", cv=GroupKFold(2)).fit(X, y, groups=groups)
    folds = list(GroupKFold(2).split(X, y, groups))
    for t in GRID:
        expected = _hand_scores(frozen, X, y, t, folds, get_scorer("accuracy"))
        assert clf.timestep_scores_[t]["mean"] == pytest.approx(np.mean(expected))
    with pytest.raises(ValueError, match="groups"):
        NoiseEnsembleClassifier(frozen, timesteps=GRID, cv=GroupKFold(2)).fit(X, y)


def test_an_iterable_of_splits_is_used_as_given(frozen, digits_small):
    X, y = digits_small
    folds = [(np.arange(60), np.arange(60, 120)), (np.arange(60, 120), np.arange(60))]
    clf = NoiseEnsembleClassifier(frozen, timesteps=GRID, selection="all", cv=folds).fit(X, y)
    expected = _hand_scores(frozen, X, y, 50, folds, get_scorer("accuracy"))
    assert clf.timestep_scores_[50]["mean"] == pytest.approx(np.mean(expected))
    assert clf.timestep_scores_[50]["std"] == pytest.approx(np.std(expected))


def test_scoring_replaces_accuracy(frozen, digits_small):
    X, y = digits_small
    folds = list(KFold(3).split(X))
    by_name = NoiseEnsembleClassifier(frozen, timesteps=GRID, cv=folds, scoring="balanced_accuracy").fit(X, y)

    def balanced(estimator, features, target):
        return balanced_accuracy_score(target, estimator.predict(features))

    by_callable = NoiseEnsembleClassifier(frozen, timesteps=GRID, cv=folds, scoring=balanced).fit(X, y)
    expected = _hand_scores(frozen, X, y, 10, folds, balanced)
    assert by_name.timestep_scores_[10]["mean"] == pytest.approx(np.mean(expected))
    assert by_callable.timestep_scores_ == by_name.timestep_scores_
    plain = NoiseEnsembleClassifier(frozen, timesteps=GRID, cv=folds).fit(X, y)
    assert plain.timestep_scores_ != by_name.timestep_scores_, "accuracy and balanced accuracy should differ here"


# ------------------------------------------------------------------- weights
def test_sample_weight_reaches_the_probes_and_the_selection_scores(frozen, digits_small):
    X, y = digits_small
    weights = np.random.default_rng(0).uniform(0.2, 3.0, size=len(y))
    folds = list(KFold(3, shuffle=True, random_state=0).split(X))
    clf = NoiseEnsembleClassifier(frozen, timesteps=GRID, selection=(10, 50), cv=folds)
    clf.fit(X, y, sample_weight=weights)
    for t in (10, 50):
        expected = _hand_scores(frozen, X, y, t, folds, get_scorer("accuracy"), weights=weights)
        assert clf.timestep_scores_[t]["mean"] == pytest.approx(np.mean(expected))
    features = frozen.extract(X, [10])
    by_hand = LogisticProbeCV(Cs=(clf.estimators_[0].C_,)).fit(features, y, sample_weight=weights)
    np.testing.assert_allclose(clf.estimators_[0].classifier_.coef_, by_hand.classifier_.coef_)
    unweighted = NoiseEnsembleClassifier(frozen, timesteps=GRID, selection=(10, 50), cv=folds).fit(X, y)
    assert not np.allclose(unweighted.estimators_[0].classifier_.coef_, by_hand.classifier_.coef_)


def test_zero_weights_drop_samples_from_a_bare_probe(frozen, digits_small):
    X, y = digits_small
    weights = (np.arange(len(y)) < 80).astype(float)
    probe = LogisticRegression(max_iter=2000)
    clf = NoiseEnsembleClassifier(frozen, timesteps=GRID, selection=(50,), estimator=probe)
    clf.fit(X, y, sample_weight=weights)
    dropped = LogisticRegression(max_iter=2000).fit(frozen.extract(X[:80], [50]), y[:80])
    np.testing.assert_allclose(clf.estimators_[0].coef_, dropped.coef_, rtol=1e-3, atol=1e-3)


def test_a_probe_without_sample_weight_is_refused_before_training(digits_small, trainings):
    X, y = digits_small
    clf = NoiseEnsembleClassifier(
        DiffusionFeaturizer(image_shape=(1, 8, 8), **TINY), timesteps=GRID, estimator=KNeighborsClassifier(),
        aggregation="vote",
    )
    with pytest.raises(TypeError, match="KNeighborsClassifier.*does not accept sample_weight"):
        clf.fit(X, y, sample_weight=np.ones(len(y)))
    assert trainings == []


# ---------------------------------------------------------------- regression
def test_regressor_averages_the_selected_probes(frozen_table, diabetes):
    X, y = diabetes
    reg = NoiseEnsembleRegressor(frozen_table, timesteps=GRID, selection=(10, 100)).fit(X, y)
    blocks = np.split(frozen_table.extract(X, [10, 100]), 2, axis=1)
    probes = [default_regression_probe().fit(block, y) for block in blocks]
    np.testing.assert_allclose(reg.predict(X), np.mean([p.predict(b) for p, b in zip(probes, blocks)], axis=0), rtol=1e-5)
    assert reg.score(X, y) == pytest.approx(
        1 - np.sum((y - reg.predict(X)) ** 2) / np.sum((y - y.mean()) ** 2)
    )


def test_regressor_selects_around_the_best_r2(frozen_table, diabetes):
    X, y = diabetes
    folds = list(KFold(3, shuffle=True, random_state=0).split(X))
    reg = NoiseEnsembleRegressor(frozen_table, timesteps=GRID, n_neighbors=0, cv=3, random_state=0).fit(X, y)
    for t in GRID:
        expected = _hand_scores(frozen_table, X, y, t, folds, get_scorer("r2"), probe=default_regression_probe())
        assert reg.timestep_scores_[t]["mean"] == pytest.approx(np.mean(expected))
    best = max(GRID, key=lambda t: reg.timestep_scores_[t]["mean"])
    assert reg.selected_timesteps_ == (best,)


def test_regressor_takes_scoring_weights_and_its_own_probe(frozen_table, diabetes):
    X, y = diabetes
    weights = np.linspace(0.5, 2.0, len(y))
    folds = list(KFold(2).split(X))
    reg = NoiseEnsembleRegressor(
        frozen_table, timesteps=GRID, selection=(50,), estimator=LinearRegression(), cv=folds,
        scoring="neg_mean_absolute_error",
    ).fit(X, y, sample_weight=weights)

    def neg_mae(estimator, features, target, sample_weight=None):
        return -mean_absolute_error(target, estimator.predict(features), sample_weight=sample_weight)

    expected = _hand_scores(frozen_table, X, y, 50, folds, neg_mae, probe=LinearRegression(), weights=weights)
    assert reg.timestep_scores_[50]["mean"] == pytest.approx(np.mean(expected))
    by_hand = LinearRegression().fit(frozen_table.extract(X, [50]), y, sample_weight=weights)
    np.testing.assert_allclose(reg.estimators_[0].coef_, by_hand.coef_, rtol=1e-4)


def test_weights_reach_the_last_step_of_nested_pipelines(diabetes):
    X, y = diabetes
    weights = np.linspace(0.1, 1.0, len(y))
    nested = make_pipeline(StandardScaler(), make_pipeline(LinearRegression()))
    fitted = fit_probe(nested, X, y, weights)
    by_hand = LinearRegression().fit(StandardScaler().fit_transform(X), y, sample_weight=weights)
    np.testing.assert_allclose(fitted[-1][-1].coef_, by_hand.coef_)
