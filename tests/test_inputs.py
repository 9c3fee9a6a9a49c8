"""Inputs as the user has them: image files by path for every featurizer, and a warning for a changed range."""

import warnings

import numpy as np
import pytest
from PIL import Image

from diffrep import DiffusionFeaturizer
from diffrep._engine.inputs import InputRangeWarning

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


def _featurizer():
    return DiffusionFeaturizer(timesteps=TIMESTEPS, pooling="mean", **TINY)


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
    with pytest.warns(InputRangeWarning, match="range"):
        feat.transform(pixels / 255.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputRangeWarning)
        feat.transform(pixels[:3])
