"""Inputs as the user has them: image files by path for every featurizer, and a warning for a changed range."""

import warnings

import numpy as np
import pytest
from PIL import Image

from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from diffrep import DiffusionFeaturizer, NoiseEnsembleClassifier, generalization_report
from diffrep.exceptions import InputWarning
from diffrep.curves import representation_curve
from diffrep.label_noise import label_noise_study

from .helpers import TINY

pd = pytest.importorskip("pandas")

TIMESTEPS = (10, 50)


@pytest.fixture(scope="module")
def digit_files(digits_small, tmp_path_factory):
    """30 digits as 8-bit grey PNGs, their uint8 pixels (n, 8, 8) and labels."""
    X, y = digits_small
    pixels = (X[:30] * 15).astype(np.uint8).reshape(-1, 8, 8)
    directory = tmp_path_factory.mktemp("digits")
    paths = []
    for i, image in enumerate(pixels):
        path = directory / f"digit_{i:02d}.png"
        Image.fromarray(image, mode="L").save(path)
        paths.append(str(path))
    return paths, pixels, y[:30]


def _featurizer(**params):
    return DiffusionFeaturizer(timesteps=TIMESTEPS, pooling="mean", **TINY, **params)


def _ensemble(featurizer=None):
    return NoiseEnsembleClassifier(featurizer or _featurizer(), timesteps=TIMESTEPS, cv=3, random_state=0)


PATH_INPUTS = [list, pd.Series, lambda p: pd.DataFrame({"path": p})]
PATH_IDS = ["list", "series", "frame"]


@pytest.mark.parametrize("as_input", [list, np.array, pd.Series, lambda p: pd.DataFrame({"path": p})],
                         ids=["list", "array", "series", "frame"])
def test_a_self_trained_featurizer_fits_and_transforms_paths_as_the_arrays_they_hold(digit_files, as_input):
    paths, pixels, _ = digit_files
    from_arrays = _featurizer().fit(pixels)
    from_paths = _featurizer().fit(as_input(paths))
    expected = from_arrays.transform(pixels)
    np.testing.assert_array_equal(from_paths.transform(as_input(paths)), expected)
    np.testing.assert_array_equal(from_arrays.transform(as_input(paths)), expected)
    assert from_paths.sample_shape_ == (1, 8, 8)


def test_files_of_another_size_and_mode_are_converted_to_the_fitted_images(digit_files, tmp_path):
    paths, pixels, _ = digit_files
    feat = _featurizer().fit(pixels)
    grey = np.full((1, 8, 8), 120, dtype=np.uint8)
    Image.fromarray(np.full((20, 16, 3), 120, dtype=np.uint8), mode="RGB").save(tmp_path / "large_rgb.png")
    features = feat.transform([str(tmp_path / "large_rgb.png")])
    np.testing.assert_array_equal(features, feat.transform(grey))


def test_training_on_files_of_mixed_sizes_takes_the_first_files_size(digit_files, tmp_path):
    paths, _, _ = digit_files
    Image.fromarray(np.zeros((12, 12), dtype=np.uint8), mode="L").save(tmp_path / "larger.png")
    feat = _featurizer().fit([*paths[:5], str(tmp_path / "larger.png")])
    assert feat.sample_shape_ == (1, 8, 8) and feat.transform([str(tmp_path / "larger.png")]).shape[0] == 1


def test_transform_warns_when_its_values_lie_in_another_range_than_fits(digit_files):
    _, pixels, _ = digit_files
    feat = _featurizer().fit(pixels)
    with pytest.warns(InputWarning, match="range"):
        feat.transform(pixels / 255.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputWarning)
        feat.transform(pixels[:3])


@pytest.mark.parametrize("as_input", PATH_INPUTS[:2], ids=PATH_IDS[:2])
def test_the_ensemble_scores_and_predicts_files_as_the_arrays_they_hold(digit_files, as_input):
    paths, pixels, y = digit_files
    on_arrays = _ensemble().fit(pixels, y)
    on_paths = _ensemble().fit(as_input(paths), y)
    assert on_paths.timestep_scores_ == on_arrays.timestep_scores_
    np.testing.assert_array_equal(on_paths.predict_proba(as_input(paths)), on_arrays.predict_proba(pixels))


@pytest.mark.parametrize(
    "as_input", [list, pytest.param(pd.Series, marks=pytest.mark.slow)], ids=PATH_IDS[:2]  # 15 s each
)
def test_the_studies_score_files_as_the_arrays_they_hold(digit_files, as_input):
    paths, pixels, digits = digit_files
    y = digits % 2  # two classes of ~15: every fold of the study's folds holds each class more than once
    probe = LogisticRegression(max_iter=200)

    def curve(X):
        return representation_curve(_featurizer(), X, y, TIMESTEPS, estimator=probe, cv=3, random_state=0)

    def study(X):
        frozen = FrozenEstimator(_featurizer().fit(X))  # the ensemble on a featurizer trained on the files
        ensemble = NoiseEnsembleClassifier(frozen, timesteps=TIMESTEPS, estimator=probe, cv=3, random_state=0)
        return label_noise_study({"ensemble": ensemble}, X, y, rates=(0.4,), n_repeats=1, cv=3, random_state=0)

    pd.testing.assert_frame_equal(curve(as_input(paths)), curve(pixels))
    pd.testing.assert_frame_equal(study(as_input(paths)), study(pixels))


def test_the_ensemble_takes_a_pipeline_that_ends_in_a_featurizer(digit_files):
    _, pixels, y = digit_files
    X = pixels.reshape(len(pixels), -1).astype(float)
    through_pipeline = _ensemble(make_pipeline(MinMaxScaler(), _featurizer(image_shape=(1, 8, 8)))).fit(X, y)
    by_hand = _ensemble(_featurizer(image_shape=(1, 8, 8))).fit(MinMaxScaler().fit_transform(X), y)
    assert through_pipeline.timestep_scores_ == by_hand.timestep_scores_
    assert through_pipeline.n_features_in_ == 64
    np.testing.assert_array_equal(through_pipeline.predict(X), by_hand.predict(MinMaxScaler().fit(X).transform(X)))


def test_the_ensemble_refuses_a_pipeline_with_steps_after_the_featurizer(digit_files):
    _, pixels, y = digit_files
    with pytest.raises(ValueError, match="steps after its DiffusionFeaturizer"):
        _ensemble(make_pipeline(_featurizer(), MinMaxScaler())).fit(pixels, y)


def test_the_generalization_report_reads_files_as_the_arrays_they_hold(digit_files):
    paths, pixels, _ = digit_files

    def report(X):
        fitted = _featurizer().fit(X[:20])
        return generalization_report(fitted, X[:20], X[20:], timesteps=TIMESTEPS, n_bootstrap=20, random_state=0)

    pd.testing.assert_frame_equal(report(paths).table, report(pixels).table)
