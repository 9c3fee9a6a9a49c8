"""Representation-dynamics curves: cross-validated probe accuracy per timestep."""

import sys

import numpy as np
import pytest
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import StratifiedKFold

from diffrep import DiffusionFeaturizer
from diffrep._engine.tables import import_pandas, score_table
from diffrep.curves import representation_curve
from diffrep.probes import default_probe

from .helpers import TINY


def test_curve_trains_once_per_fold_and_tabulates_every_timestep(digits_small, trainings):
    X, y = digits_small
    featurizer = DiffusionFeaturizer(image_shape=(1, 8, 8), **TINY)
    table = representation_curve(featurizer, X, y, (100, 0, 25), cv=3, random_state=0)
    assert len(trainings) == 3
    assert table.columns.tolist() == ["timestep", "sigma", "task", "mean", "std", "score_0", "score_1", "score_2"]
    assert set(table["task"]) == {"classification"} and table.attrs["scoring"] == "accuracy"
    assert table["timestep"].tolist() == [0, 25, 100]
    fitted = featurizer.fit(X)
    np.testing.assert_allclose(table["sigma"], fitted.schedule_.sigmas([0, 25, 100]))
    scores = table[["score_0", "score_1", "score_2"]].to_numpy()
    np.testing.assert_allclose(table["mean"], scores.mean(axis=1))


def test_frozen_featurizer_curve_matches_probes_fitted_by_hand(digits_small, trainings):
    X, y = digits_small
    frozen = FrozenEstimator(DiffusionFeaturizer(image_shape=(1, 8, 8), **TINY).fit(X))
    trainings.clear()
    table = representation_curve(frozen, X, y, (10, 200), cv=2, random_state=0)
    assert trainings == []
    train, test = next(StratifiedKFold(2, shuffle=True, random_state=0).split(X, y))
    for row in table.itertuples():
        features = frozen.extract(X, [row.timestep])
        probe = default_probe().fit(features[train], y[train])
        assert row.score_0 == pytest.approx(probe.score(features[test], y[test]))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(timesteps=(10, 1000)), ValueError, "timesteps must lie in"),
        (dict(timesteps=(10, 10)), ValueError, "must not repeat"),
        (dict(cv=1), ValueError, r"'cv' parameter.*\[2, inf\)"),
        (dict(task="ranking"), ValueError, "'task' parameter"),
        (dict(scoring="accuracy_score"), ValueError, "'scoring' parameter"),
        (dict(featurizer="unet"), TypeError, "'featurizer' parameter"),
    ],
)
def test_invalid_arguments_raise_before_training(digits_small, trainings, kwargs, error, match):
    X, y = digits_small
    arguments = dict(featurizer=DiffusionFeaturizer(image_shape=(1, 8, 8), **TINY), timesteps=(10, 50), cv=2)
    arguments.update(kwargs)
    with pytest.raises(error, match=match):
        representation_curve(X=X, y=y, **arguments)
    assert trainings == []


def test_score_table_summarizes_repeated_scores():
    table = score_table([{"name": "a"}, {"name": "b"}], [[0.5, 0.7], [1.0, 1.0]])
    assert table.columns.tolist() == ["name", "mean", "std", "score_0", "score_1"]
    np.testing.assert_allclose(table["mean"], [0.6, 1.0])
    np.testing.assert_allclose(table["std"], [0.1, 0.0])


def test_missing_optional_dependencies_are_explained(monkeypatch):
    from diffrep.plotting import import_pyplot

    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="install pandas"):
        import_pandas()
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match="install matplotlib"):
        import_pyplot()


def test_plot_representation_curve_marks_the_peak():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from diffrep.plotting import plot_representation_curve

    table = score_table(
        [{"timestep": t, "sigma": s} for t, s in [(0, 0.01), (50, 0.2), (400, 2.0)]],
        [[0.8, 0.8], [0.9, 0.92], [0.5, 0.4]],
    )
    ax = plot_representation_curve(table)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [0.8, 0.91, 0.45])
    assert ax.lines[1].get_xdata() == pytest.approx([0.2])
    assert "peak: t=50" in [text.get_text() for text in ax.get_legend().get_texts()]
    assert ax.get_xscale() == "log"
    matplotlib.pyplot.close(ax.figure)


# ------------------------------------------------------------- regression, splitters
def test_a_continuous_target_gets_kfold_and_r2(diabetes):
    from sklearn.metrics import r2_score
    from sklearn.model_selection import KFold

    from diffrep.ensemble import default_regression_probe

    X, y = diabetes
    frozen = FrozenEstimator(DiffusionFeaturizer(**TINY).fit(X))
    table = representation_curve(frozen, X, y + 0.5, (10, 100), cv=3, random_state=0)
    assert set(table["task"]) == {"regression"} and table.attrs["scoring"] == "r2"
    train, test = next(KFold(3, shuffle=True, random_state=0).split(X))
    features = frozen.extract(X, [10])
    probe = default_regression_probe().fit(features[train], y[train] + 0.5)
    assert table["score_0"].iloc[0] == pytest.approx(r2_score(y[test] + 0.5, probe.predict(features[test])))


def test_integer_valued_targets_must_say_their_task(diabetes, trainings):
    X, y = diabetes  # integer values, many of them once: not silently 100+ classes
    frozen = FrozenEstimator(DiffusionFeaturizer(**TINY).fit(X))
    trainings.clear()
    with pytest.raises(ValueError, match="task='regression' or task='classification'"):
        representation_curve(frozen, X, y, (10,), cv=2)
    assert representation_curve(frozen, X, y, (10,), cv=2, task="regression")["task"].iloc[0] == "regression"
    from sklearn.linear_model import Ridge

    by_probe = representation_curve(frozen, X, y, (10,), estimator=Ridge(), cv=2)
    assert by_probe["task"].iloc[0] == "regression"


def test_group_splitter_and_scoring_pass_through(digits_small):
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import GroupKFold

    X, y = digits_small
    groups = np.arange(len(y)) // 30
    frozen = FrozenEstimator(DiffusionFeaturizer(image_shape=(1, 8, 8), **TINY).fit(X))
    table = representation_curve(frozen, X, y, (10,), cv=GroupKFold(4), groups=groups, scoring="balanced_accuracy")
    assert table.attrs["scoring"] == "balanced_accuracy"
    for fold, (train, test) in enumerate(GroupKFold(4).split(X, y, groups)):
        assert len(set(groups[train]) & set(groups[test])) == 0
        features = frozen.extract(X, [10])
        probe = default_probe().fit(features[train], y[train])
        expected = balanced_accuracy_score(y[test], probe.predict(features[test]))
        assert table[f"score_{fold}"].iloc[0] == pytest.approx(expected)


def test_featurizer_after_a_column_transformer_in_a_pipeline(table, trainings):
    pandas = pytest.importorskip("pandas")
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    X, y = table
    frame = pandas.DataFrame(X, columns=[f"x{i}" for i in range(6)])
    frame["city"] = np.where(X[:, 2] > 0, "Paris", "Lyon")
    encode = make_column_transformer((OneHotEncoder(), ["city"]), remainder="passthrough")
    featurizer = DiffusionFeaturizer(**TINY)
    pipeline = make_pipeline(encode, featurizer, LogisticRegression())
    table_ = representation_curve(pipeline, frame, y, (10, 50), cv=2, random_state=0)
    assert len(trainings) == 2 and set(table_["task"]) == {"classification"}
    train, test = next(StratifiedKFold(2, shuffle=True, random_state=0).split(frame, y))
    encoded = encode.fit(frame.iloc[train])
    fitted = DiffusionFeaturizer(**TINY).fit(encoded.transform(frame.iloc[train]))
    features = [fitted.extract(encoded.transform(frame.iloc[part]), [10]) for part in (train, test)]
    probe = LogisticRegression().fit(features[0], y[train])
    assert table_["score_0"].iloc[0] == pytest.approx(probe.score(features[1], y[test]))
    with pytest.raises(ValueError, match="probe one way only"):
        representation_curve(pipeline, frame, y, (10,), estimator=LogisticRegression(), cv=2)
