"""Image files as competitions ship them: read at their depth, in any colour mode and folder layout, or refused by name."""

import os
import struct
import threading
import zlib

import numpy as np
import pytest

PIL_Image = pytest.importorskip("PIL.Image")

from diffrep.app.cli import main  # noqa: E402
from diffrep.datasets import load_labelled_data  # noqa: E402
from diffrep.images import load_batch, read_image_file, read_image_files, read_images  # noqa: E402


def _save(path, pixels, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    image = PIL_Image.fromarray(pixels) if mode is None else PIL_Image.fromarray(pixels).convert(mode)
    image.save(path)
    return path


def _gradient16(path):
    """A 16-bit grayscale PNG of 1024 distinct levels above 255: 8-bit conversion makes every pixel 255."""
    levels = (np.arange(1024, dtype=np.uint16) * 64 + 300).reshape(8, 128)
    return _save(path, levels), levels


def _gray(seed, shape=(6, 5)):
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def _rgb(seed, shape=(6, 5)):
    return np.random.default_rng(seed).integers(0, 256, size=(*shape, 3), dtype=np.uint8)


def test_a_16_bit_gradient_keeps_its_levels(tmp_path):
    path, levels = _gradient16(tmp_path / "gradient.png")
    read = read_image_files([path])
    assert read.shape == (1, 1, 8, 128) and read.dtype == np.float32
    np.testing.assert_array_equal(np.round(read[0, 0] * 65535), levels)
    pipeline_batch = load_batch(np.array([str(path)], dtype=object), 8)
    assert len(np.unique(pipeline_batch.numpy())) > 8, "a pretrained pipeline sees the gradient, not a white square"


def test_a_16_bit_folder_keeps_its_levels(tmp_path):
    for label in ("a", "b"):
        _gradient16(tmp_path / label / "gradient.png")
    X, y = load_labelled_data(tmp_path)
    assert X.shape == (2, 1, 8, 128) and list(y) == ["a", "b"]
    assert len(np.unique(X)) == 1024


def test_float_tiff_values_are_kept(tmp_path):
    values = np.linspace(-1.5, 3.25, 20, dtype=np.float32).reshape(4, 5)
    path = _save(tmp_path / "depth.tif", values)
    np.testing.assert_array_equal(read_image_file(path), values[None])


def test_a_float_tiff_outside_unit_range_is_refused_by_a_pretrained_pipeline_naming_it(tmp_path):
    path = _save(tmp_path / "depth.tif", np.full((4, 5), 2.0, dtype=np.float32))
    with pytest.raises(ValueError, match=r"depth\.tif.*outside \[0, 1\]"):
        load_batch(np.array([str(path)], dtype=object), 4)


def test_palette_and_rgba_images_become_rgb_with_alpha_dropped(tmp_path):
    rgba = np.zeros((4, 5, 4), dtype=np.uint8)
    rgba[..., :3] = (10, 200, 30)
    rgba[:2, :, 3] = 0  # transparent top half keeps its colour
    rgba[2:, :, 3] = 255
    palette = PIL_Image.new("P", (5, 4))
    palette.putpalette([0, 0, 0, 250, 100, 50] + [0] * 762)
    palette.paste(1, (0, 0, 5, 2))
    palette.save(tmp_path / "palette.png")
    _save(tmp_path / "rgba.png", rgba)
    read = read_image_files([tmp_path / "palette.png", tmp_path / "rgba.png"])
    assert read.shape == (2, 3, 4, 5)
    np.testing.assert_allclose(read[0, :, 0, 0] * 255, [250, 100, 50], atol=1e-4)
    np.testing.assert_allclose(read[0, :, 3, 0], [0, 0, 0])
    np.testing.assert_allclose(read[1] * 255, np.broadcast_to(np.array([10, 200, 30.0])[:, None, None], (3, 4, 5)), atol=1e-4)


def test_channels_asked_for_gray_repeats_and_rgb_becomes_luma(tmp_path):
    gray, rgb = _gray(0), _rgb(1)
    paths = [_save(tmp_path / "gray.png", gray), _save(tmp_path / "rgb.png", rgb)]
    three = read_image_files(paths, channels=3)
    np.testing.assert_array_equal(three[0], np.repeat(gray[None] / np.float32(255), 3, axis=0))
    one = read_image_files(paths, channels=1)
    luma = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32) / 255
    np.testing.assert_allclose(one[1, 0], luma, atol=1e-6)


def test_mixed_grayscale_rgb_rgba_and_16_bit_class_folders_load_as_rgb(tmp_path):
    gray = _gray(0)
    _save(tmp_path / "cats" / "gray.png", gray)
    _save(tmp_path / "cats" / "rgb.png", _rgb(1))
    _save(tmp_path / "dogs" / "rgba.png", np.dstack([_rgb(2), np.full((6, 5), 255, np.uint8)]))
    _save(tmp_path / "dogs" / "deep.png", (gray.astype(np.uint16) * 257))
    X, y = load_labelled_data(tmp_path)
    assert X.shape == (4, 3, 6, 5) and list(y) == ["cats", "cats", "dogs", "dogs"]
    np.testing.assert_array_equal(X[0], np.repeat(gray[None] / np.float32(255), 3, axis=0))
    np.testing.assert_allclose(X[2], X[0], atol=1e-6, err_msg="8-bit and 16-bit copies of an image read alike")


def test_images_of_another_size_are_resized_to_the_most_common_one(tmp_path):
    for index in range(3):
        _save(tmp_path / "a" / f"{index}.png", _gray(index))
    _save(tmp_path / "b" / "big.png", np.full((12, 10), 255, np.uint8))
    X, y = load_labelled_data(tmp_path)
    assert X.shape == (4, 1, 6, 5)
    np.testing.assert_allclose(X[3], 1.0)


@pytest.mark.parametrize("layout", ["labels.csv inside", "train.csv beside", "kaggle ids", "labels="])
def test_a_flat_folder_with_a_csv_of_file_names_and_labels(tmp_path, layout):
    folder = tmp_path / "train"
    names = [f"img{index}" for index in range(4)]
    pixels = [_rgb(index) for index in range(4)]
    for name, image in zip(names, pixels):
        _save(folder / f"{name}.png", image)
    rows = {
        "labels.csv inside": (folder / "labels.csv", "filename,label", ".png"),
        "train.csv beside": (tmp_path / "train.csv", "image,label", ".png"),
        "kaggle ids": (tmp_path / "train.csv", "id,breed", ""),
        "labels=": (tmp_path / "elsewhere" / "mine.csv", "file,label", ".png"),
    }
    csv_path, header, suffix = rows[layout]
    csv_path.parent.mkdir(exist_ok=True)
    labels = [3, 1, 3, 2]
    order = [2, 0, 3, 1]  # rows in another order than the files
    csv_path.write_text("\n".join([header] + [f"{names[i]}{suffix},{labels[i]}" for i in order]) + "\n")
    root = tmp_path if layout == "kaggle ids" else folder
    X, y = load_labelled_data(root, labels=csv_path if layout == "labels=" else None)
    assert X.shape == (4, 3, 6, 5)
    np.testing.assert_array_equal(y, [labels[i] for i in order])
    for row, index in enumerate(order):
        np.testing.assert_array_equal(X[row], pixels[index].transpose(2, 0, 1) / np.float32(255))


def test_a_csv_row_naming_a_missing_file_is_refused_with_its_row(tmp_path):
    _save(tmp_path / "a.png", _gray(0))
    (tmp_path / "labels.csv").write_text("filename,label\na.png,1\nb.png,2\n")
    with pytest.raises(ValueError, match=r"labels\.csv, row 3: no image file 'b\.png'"):
        load_labelled_data(tmp_path)


def test_a_flat_folder_without_labels_gives_y_none(tmp_path):
    for index in range(3):
        _save(tmp_path / f"{index}.png", _gray(index))
    (tmp_path / "._0.png").write_bytes(b"macOS resource fork")
    (tmp_path / "README.txt").write_text("not an image")
    X, y = load_labelled_data(tmp_path)
    assert X.shape == (3, 1, 6, 5) and y is None
    np.testing.assert_array_equal(X[1, 0], _gray(1) / np.float32(255))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_among_image_paths_is_refused_quickly_naming_it(tmp_path):
    _save(tmp_path / "ok.png", _gray(0))
    fifo = tmp_path / "stuck.png"
    os.mkfifo(fifo)
    outcome = []

    def read():
        try:
            load_batch(np.array([str(tmp_path / "ok.png"), str(fifo)], dtype=object), 4)
        except ValueError as exc:
            outcome.append(str(exc))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=10)
    if reader.is_alive():  # release the blocked open() before failing
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("reading a FIFO blocked")
    assert outcome and str(fifo) in outcome[0] and "FIFO" in outcome[0]


def test_a_directory_named_like_an_image_is_refused_naming_it(tmp_path):
    (tmp_path / "folder.png").mkdir()
    with pytest.raises(ValueError, match=r"folder\.png.*directory"):
        read_image_files([tmp_path / "folder.png"])


def test_a_non_image_file_in_a_folder_is_named(tmp_path, capsys):
    _save(tmp_path / "cats" / "ok.png", _gray(0))
    (tmp_path / "dogs").mkdir()
    (tmp_path / "dogs" / "notes.png").write_text("not an image")
    with pytest.raises(ValueError, match=r"cannot read the image file .*notes\.png"):
        load_labelled_data(tmp_path)
    assert main(["curve", str(tmp_path), "--max-steps", "1", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "notes.png" in err and "Traceback" not in err


def test_a_decompression_bomb_error_names_the_file(tmp_path, monkeypatch):
    path = _save(tmp_path / "bomb.png", _gray(0, shape=(40, 40)))
    monkeypatch.setattr(PIL_Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(ValueError, match=r"bomb\.png.*MAX_IMAGE_PIXELS"):
        load_batch(np.array([str(path)], dtype=object), 8)


def _png16_rgb(path, pixels):
    """A 16-bit-per-channel RGB PNG written by hand (Pillow cannot write one)."""
    height, width, _ = pixels.shape
    raw = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in pixels)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return path


def test_a_16_bit_colour_png_read_at_8_bits_is_announced(tmp_path):
    path = _png16_rgb(tmp_path / "deep_rgb.png", np.full((2, 3, 3), 40000))
    with pytest.warns(UserWarning, match=r"deep_rgb\.png.*16-bit colour PNG"):
        read_image_file(path)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"paths": "one.png"}, TypeError, "paths must be a sequence"),
        ({"paths": [1, 2]}, TypeError, "paths must be a 1-D sequence"),
        ({"paths": []}, ValueError, "paths holds no image files"),
        ({"paths": ["x.png"], "channels": 2}, ValueError, "channels must be None, 1, 3 or 4"),
        ({"paths": ["x.png"], "channels": 3.0}, ValueError, "channels must be None, 1, 3 or 4"),
        ({"paths": ["x.png"], "channels": True}, ValueError, "channels must be None, 1, 3 or 4"),
        ({"paths": ["x.png"], "size": (0, 4)}, ValueError, "size must be"),
        ({"paths": ["x.png"], "max_value": 0}, ValueError, "max_value must be a positive number"),
        ({"paths": ["x.png"], "max_value": "255"}, ValueError, "max_value must be a positive number"),
    ],
)
def test_bad_reader_arguments_name_the_parameter(kwargs, error, match):
    with pytest.raises(error, match=match):
        read_image_files(**kwargs)


def test_a_shape_the_featurizer_finds_ambiguous_is_not_guessed_for_a_pipeline():
    with pytest.raises(ValueError, match="1-D sequence of image file paths"):
        read_images(np.zeros((2, 3, 8, 3)))
    assert read_images(np.zeros((2, 8, 8, 3))).shape == (2, 8, 8, 3)


def test_a_csv_of_file_names_given_as_the_data_reads_its_images(tmp_path, table):
    for index in range(3):
        _save(tmp_path / "train" / f"{index}.png", _gray(index))
    (tmp_path / "train.csv").write_text("id,label\n0,cat\n1,dog\n2,cat\n")
    X, y = load_labelled_data(tmp_path / "train.csv")
    assert X.shape == (3, 1, 6, 5) and list(y) == ["cat", "dog", "cat"]
    rows = ["id,a,b,c,d,e,f,label"] + [",".join(map(str, [i, *row, label])) for i, (row, label) in enumerate(zip(*table))]
    (tmp_path / "table.csv").write_text("\n".join(rows))
    X, y = load_labelled_data(tmp_path / "table.csv")
    assert X.shape == (len(table[0]), 7), "a numeric table with an id column stays a table"


def test_a_csv_beside_class_folders_does_not_hide_them(tmp_path):
    for label in ("cats", "dogs"):
        _save(tmp_path / "train" / label / "0.png", _gray(0))
    (tmp_path / "train.csv").write_text("id,score\n7,0.5\n")  # another file of the competition
    X, y = load_labelled_data(tmp_path / "train")
    assert X.shape == (2, 1, 6, 5) and list(y) == ["cats", "dogs"]
