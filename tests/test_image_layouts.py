"""Channels-last images, image_shape order, text columns and the memory warning."""

import warnings

import numpy as np
import pytest

from diffrep.exceptions import CacheWarning
import diffrep.featurizer
from diffrep import DiffusionFeaturizer, NoiseEnsembleClassifier

from .helpers import TINY

UNTRAINED = {**TINY, "max_steps": 0}


@pytest.fixture(scope="module")
def rgb():
    """12 random 8x8 RGB images, channels first, and the same images channels last."""
    first = np.random.default_rng(0).uniform(0, 255, size=(12, 3, 8, 8))
    return first, np.ascontiguousarray(first.transpose(0, 2, 3, 1))


@pytest.fixture(scope="module")
def reference(rgb):
    """Features of the channels-first images."""
    return DiffusionFeaturizer(**UNTRAINED).fit(rgb[0])


def test_channels_last_images_are_detected_and_read_as_the_same_images(rgb, reference):
    first, last = rgb
    feat = DiffusionFeaturizer(**UNTRAINED).fit(last)
    assert feat.sample_shape_ == (3, 8, 8) and feat.data_format_ == "channels_last"
    assert reference.data_format_ == "channels_first"
    np.testing.assert_array_equal(feat.transform(last), reference.transform(first))
    np.testing.assert_array_equal(last, first.transpose(0, 2, 3, 1), "the caller's array is untouched")


def test_flattened_channels_last_columns_with_image_shape(rgb, reference):
    first, last = rgb
    feat = DiffusionFeaturizer(image_shape=(3, 8, 8), data_format="channels_last", **UNTRAINED)
    np.testing.assert_array_equal(feat.fit_transform(last.reshape(12, -1)), reference.transform(first))


def test_transform_reads_the_layout_fit_used(rgb):
    last = rgb[1][:, :3, :3, :].copy()  # (n, 3, 3, 3): ambiguous, so "auto" would refuse it
    as_last = DiffusionFeaturizer(data_format="channels_last", **UNTRAINED).fit(last)
    assert as_last.sample_shape_ == (3, 3, 3) and as_last.data_format_ == "channels_last"
    first = last.transpose(0, 3, 1, 2).copy()
    as_first = DiffusionFeaturizer(data_format="channels_first", **UNTRAINED).fit(first)
    np.testing.assert_array_equal(as_last.transform(last), as_first.transform(first))
    assert not np.array_equal(as_last.transform(last), as_first.transform(last))


@pytest.mark.parametrize("shape", [(4, 8, 8, 8), (4, 3, 8, 3), (4, 6, 6, 5)])
def test_an_ambiguous_shape_asks_for_data_format(shape):
    with pytest.raises(ValueError, match=r"data_format='channels_first'.*data_format='channels_last'"):
        DiffusionFeaturizer(**UNTRAINED).fit(np.zeros(shape))
    DiffusionFeaturizer(data_format="channels_first", **UNTRAINED).fit(np.zeros(shape))


def test_image_shape_in_hwc_order_gets_a_suggestion(rgb):
    X = rgb[1].reshape(12, -1)
    with pytest.raises(ValueError, match=r"reads as \(H, W, C\).*image_shape=\(3, 8, 8\)"):
        DiffusionFeaturizer(image_shape=(8, 8, 3), **UNTRAINED).fit(X)
    with pytest.raises(ValueError, match=r"image_shape=\(1, 8, 8\)"):
        DiffusionFeaturizer(image_shape=(8, 8, 1), **UNTRAINED).fit(np.zeros((5, 64)))
    feat = DiffusionFeaturizer(image_shape=(8, 8, 1), data_format="channels_first", **UNTRAINED)
    assert feat.fit(np.zeros((5, 64))).sample_shape_ == (8, 8, 1)


def test_a_4d_array_matching_image_shape_in_either_order(rgb, reference):
    first, last = rgb
    feat = DiffusionFeaturizer(image_shape=(3, 8, 8), **UNTRAINED)
    np.testing.assert_array_equal(feat.fit_transform(last), reference.transform(first))


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"data_format": "nhwc"}, ValueError, "'data_format' parameter"),
        ({"data_format": "channels_last"}, ValueError, "data_format='channels_last' describes images"),
    ],
)
def test_bad_data_format(table, params, error, match, training_forbidden):
    with pytest.raises(error, match=match):
        DiffusionFeaturizer(**TINY, **params).fit(table[0])


def test_the_ensemble_takes_channels_last_images(rgb):
    first, last = rgb
    y = np.arange(12) % 2
    params = dict(timesteps=(10, 50), cv=2, random_state=0)
    from_last = NoiseEnsembleClassifier(DiffusionFeaturizer(**UNTRAINED), **params).fit(last, y)
    from_first = NoiseEnsembleClassifier(DiffusionFeaturizer(**UNTRAINED), **params).fit(first, y)
    np.testing.assert_array_equal(from_last.decision_function(last), from_first.decision_function(first))


# --------------------------------------------------------------- text columns
def test_a_text_column_gets_an_error_that_suggests_an_encoder(table):
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame(table[0], columns=[f"x{i}" for i in range(6)])
    frame["city"] = np.where(table[1] > 0, "Paris", "Lyon")
    frame["kind"] = pandas.Categorical(np.where(table[1] > 0, "a", "b"))
    with pytest.raises(ValueError, match=r"non-numeric column\(s\) \['city', 'kind'\].*OneHotEncoder"):
        DiffusionFeaturizer(**TINY).fit(frame)
    with pytest.raises(ValueError, match="non-numeric values.*OrdinalEncoder"):
        DiffusionFeaturizer(**TINY).fit(frame.to_numpy())
    numbers_as_text = frame.drop(columns=["city", "kind"]).astype(str)
    assert DiffusionFeaturizer(**UNTRAINED).fit(numbers_as_text).n_features_in_ == 6


# ------------------------------------------------------------ memory warning
def test_memory_without_an_int_random_state_warns_and_caches_nothing(table, tmp_path):
    X = table[0]
    params = {**TINY, "random_state": None, "memory": tmp_path / "cache"}
    with pytest.warns(CacheWarning, match=r"memory=.*caches nothing.*int random_state") as record:
        DiffusionFeaturizer(**params).fit(X)
    assert len([w for w in record if "caches nothing" in str(w.message)]) == 1
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.safetensors"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        DiffusionFeaturizer(**{**params, "random_state": 0}).fit(X)
    assert any((tmp_path / "cache").rglob("*.safetensors"))
