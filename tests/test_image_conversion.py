"""One rule brings an image file to a network's channels and size, for pretrained pipelines and self-trained denoisers alike."""

import numpy as np
import pytest

from diffrep import DiffusionFeaturizer
from diffrep.datasets import load_labelled_data
from diffrep.images import conform_images, load_batch, read_image_files

from .helpers import TINY

PIL_Image = pytest.importorskip("PIL.Image")

SIZE = 8


def _noise(seed, shape):
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def _rgba_wide(path):
    """A non-square RGBA file, transparent on its left half (alpha is dropped for 3 channels)."""
    pixels = _noise(0, (10, 23, 4))
    pixels[:, :11, 3] = 0
    PIL_Image.fromarray(pixels, mode="RGBA").save(path)


def _sixteen_bit_tall(path):
    PIL_Image.fromarray(np.random.default_rng(1).integers(0, 65536, size=(19, 12), dtype=np.uint16)).save(path)


def _rgb_small(path):
    PIL_Image.fromarray(_noise(2, (5, 6, 3)), mode="RGB").save(path)


def _self_trained_on_rgb(size):
    """A featurizer trained on RGB arrays of ``size``: it reads later files in 8-bit units."""
    return DiffusionFeaturizer(**{**TINY, "max_steps": 1}).fit(_noise(3, (4, 3, size, size)))


@pytest.mark.parametrize("write", [_rgba_wide, _sixteen_bit_tall, _rgb_small], ids=["rgba-wide", "16bit-tall", "rgb-small"])
def test_a_file_reaches_a_pipeline_and_a_self_trained_denoiser_as_the_same_pixels(tmp_path, write):
    path = str(tmp_path / "image.png")
    write(path)
    for_pipeline = load_batch(np.array([path], dtype=object), SIZE).numpy()
    feat = _self_trained_on_rgb(SIZE)
    for_self_trained = feat.input_.read(feat, [path]).reshape(1, 3, SIZE, SIZE)
    np.testing.assert_allclose(for_self_trained / 255, for_pipeline, rtol=0, atol=1e-6)
    as_array = np.asarray(PIL_Image.open(path).convert("RGB")).copy()[None]  # 8-bit pixels of the same file
    if as_array.max() > 1 and write is not _sixteen_bit_tall:  # the array a pipeline user holds
        np.testing.assert_array_equal(load_batch(as_array, SIZE).numpy(), for_pipeline)


def test_resizing_crops_the_centre_and_never_leaves_the_images_range(tmp_path):
    framed = np.full((6, 12), 255, dtype=np.uint8)
    framed[:, 3:9] = 64  # a constant centre square in a white frame
    PIL_Image.fromarray(framed, mode="L").save(tmp_path / "framed.png")
    np.testing.assert_array_equal(read_image_files([tmp_path / "framed.png"], size=4), 64 / np.float32(255))
    step = np.full((6, 15), 51, dtype=np.uint8)
    step[:, 7:] = 204  # a sharp edge that a bicubic filter rings around
    PIL_Image.fromarray(step, mode="L").save(tmp_path / "step.png")
    resized = read_image_files([tmp_path / "step.png"], size=(4, 7), max_value=255.0)
    assert resized.min() >= 51 and resized.max() <= 204 and len(np.unique(resized)) > 2


def test_a_grey_pixel_stored_as_rgb_keeps_its_exact_value_as_one_channel(tmp_path):
    colour = np.repeat(np.arange(256, dtype=np.uint8)[None, :, None], 3, axis=2)  # every 8-bit grey
    colour[0, 0] = (255, 0, 0)  # and one red pixel
    PIL_Image.fromarray(colour, mode="RGB").save(tmp_path / "greys.png")
    grey = read_image_files([tmp_path / "greys.png"], channels=1)
    np.testing.assert_array_equal(grey[0, 0, 0, 1:], np.arange(1, 256, dtype=np.float32) / np.float32(255))
    assert grey[0, 0, 0, 0] == pytest.approx(0.299)


def test_grey_files_stored_as_rgb_load_as_one_channel_like_their_grey_copies(tmp_path):
    for index in range(3):
        grey = _noise(index, (6, 5))
        PIL_Image.fromarray(grey, mode="L").save(tmp_path / f"grey{index}.png")
        PIL_Image.fromarray(grey, mode="L").convert("RGB").save(tmp_path / f"rgb{index}.png")
    stored_grey = read_image_files([tmp_path / f"grey{index}.png" for index in range(3)])
    stored_rgb = read_image_files([tmp_path / f"rgb{index}.png" for index in range(3)])
    assert stored_rgb.shape == (3, 1, 6, 5)
    np.testing.assert_array_equal(stored_rgb, stored_grey)
    X, _ = load_labelled_data(tmp_path)
    assert X.shape == (6, 1, 6, 5)


def test_four_channels_keep_each_files_own_alpha(tmp_path):
    rgba = _noise(4, (6, 5, 4))
    PIL_Image.fromarray(rgba, mode="RGBA").save(tmp_path / "sprite.png")
    PIL_Image.fromarray(rgba[..., :3], mode="RGB").save(tmp_path / "opaque.png")
    paths = [str(tmp_path / "sprite.png"), str(tmp_path / "opaque.png")]
    read = read_image_files(paths, channels=4, max_value=255.0)
    np.testing.assert_array_equal(read[0], rgba.transpose(2, 0, 1))
    np.testing.assert_array_equal(read[1, 3], 255.0)
    feat = DiffusionFeaturizer(image_shape=(4, 6, 5), **{**TINY, "max_steps": 1}).fit(paths)
    np.testing.assert_array_equal(feat.input_.read(feat, paths[:1]).reshape(4, 6, 5), rgba.transpose(2, 0, 1))


def test_the_most_common_size_sets_the_self_trained_image_shape(tmp_path):
    PIL_Image.fromarray(_noise(5, (12, 12)), mode="L").save(tmp_path / "a_larger.png")
    for index in range(3):
        PIL_Image.fromarray(_noise(index, (8, 8)), mode="L").save(tmp_path / f"b{index}.png")
    paths = sorted(str(path) for path in tmp_path.iterdir())  # the odd size first
    feat = DiffusionFeaturizer(**{**TINY, "max_steps": 1}).fit(paths)
    assert feat.sample_shape_ == (1, 8, 8)
    assert read_image_files(paths).shape == (4, 1, 8, 8)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"images": np.zeros((2, 8, 8))}, r"images must be \(n, C, H, W\)"),
        ({"images": np.zeros((1, 2, 8, 8))}, r"images must be .* C = 1, 3 or 4"),
        ({"channels": 2}, "channels must be 1, 3 or 4"),
        ({"size": None}, "size must be a positive int"),
        ({"max_value": -1}, "max_value must be a positive number"),
    ],
)
def test_bad_conversion_arguments_name_the_parameter(kwargs, match):
    arguments = {"images": np.zeros((1, 3, 8, 8)), "channels": 1, "size": 4, **kwargs}
    with pytest.raises(ValueError, match=match):
        conform_images(**arguments)
