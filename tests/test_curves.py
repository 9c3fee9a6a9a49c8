"""Representation-dynamics curves: cross-validated probe accuracy per timestep."""

import sys

import numpy as np
import pytest
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import StratifiedKFold

from diffrep import DiffusionFeaturizer
from diffrep.curves import import_pandas, representation_curve, score_table
from diffrep.ensemble import default_probe

from .conftest import TINY


def test_curve_trains_once_per_fold_and_tabulates_every_timestep(digits_small, trainings):
    X, y = digits_small
    featurizer = DiffusionFeaturizer(image_shape=(1, 8, 8), **TINY)
    table = representation_curve(featurizer, X, y, (100, 0, 25), cv=3, random_state=0)
    assert len(trainings) == 3
    assert table.columns.tolist() == ["timestep", "sigma", "mean", "std", "score_0", "score_1", "score_2"]
    assert table["timestep"].tolist() == [0, 25, 100]
    fitted = featurizer.fit(X)
    np.testing.assert_allclose(table["sigma"], fitted.schedule_.sigmas([0, 25, 100]))
    scores = table[["score_0", "score_1", "score_2"]].to_numpy()
    assert np.all((scores >= 0) & (scores <= 1))
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
        (dict(cv=1), ValueError, "cv must be >= 2"),
        (dict(featurizer="unet"), TypeError, "featurizer must be a DiffusionFeaturizer"),
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
