"""DiffusionFeaturizer inside scikit-learn pipelines, grid searches and cross-validation."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from diffrep import DiffusionFeaturizer

from .helpers import TINY


def _probe(featurizer):
    return Pipeline(
        [("features", featurizer), ("scale", StandardScaler()), ("probe", LogisticRegression(max_iter=2000))]
    )


def test_digit_features_from_a_short_training_classify_well_above_chance(digits):
    X, y = digits
    featurizer = DiffusionFeaturizer(
        image_shape=(1, 8, 8), timesteps=(50,), model_width=16, max_steps=60, batch_size=64,
        device="cpu", random_state=0,
    )
    pipe = _probe(featurizer).fit(X[:300], y[:300])
    assert len(pipe.named_steps["features"].loss_curve_) == 60
    assert pipe.score(X[300:600], y[300:600]) > 0.5  # chance is 0.1


def test_table_features_from_the_mlp_classify_well(table):
    X, y = table
    featurizer = DiffusionFeaturizer(timesteps=(10,), layers=("blocks.0",), model_width=32, max_steps=20,
                                     device="cpu", random_state=0)
    pipe = _probe(featurizer).fit(X[:100], y[:100])
    assert pipe.score(X[100:], y[100:]) > 0.85  # chance is about 0.5


def test_grid_search_over_timesteps(table):
    X, y = table
    search = GridSearchCV(
        _probe(DiffusionFeaturizer(**TINY)),
        {"features__timesteps": [(5,), (200,), (5, 200)]},
        cv=2,
    ).fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    assert len(scores) == 3 and np.all(np.isfinite(scores))
    best = search.best_estimator_.named_steps["features"]
    assert best.timesteps_ == search.best_params_["features__timesteps"]
    assert search.predict(X[:5]).shape == (5,)


def test_cross_val_score_on_images(digits_small):
    X, y = digits_small
    scores = cross_val_score(_probe(DiffusionFeaturizer(image_shape=(1, 8, 8), **TINY)), X, y, cv=2,
                             error_score="raise")
    assert scores.shape == (2,) and scores.min() > 0.3  # ten classes: chance is 0.1


def test_pipeline_passes_pandas_feature_names_through(table):
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(table[0], columns=[f"c{i}" for i in range(table[0].shape[1])])
    pipe = Pipeline([("features", DiffusionFeaturizer(timesteps=(5, 50), **TINY)), ("scale", StandardScaler())])
    pipe.set_output(transform="pandas").fit(X)
    out = pipe.transform(X)
    assert list(out.columns) == list(pipe.named_steps["features"].get_feature_names_out())
    assert out.columns[0].startswith("t5__blocks.1__")
