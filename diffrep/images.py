"""Real images in: image files read at their depth, and RGB arrays or files for a pretrained model.

**Reading image files.** :func:`read_image_files` is diffrep's one reader of
image files (everything that reads a file calls it, directly or through
:func:`read_image_file`). It reads every file at its depth into float32 and
applies one value rule:

* integer images are divided by their largest value, so that they lie in
  ``[0, 1]``: 1-bit and 8-bit images (modes ``"1"``, ``"L"``, ``"RGB"``,
  palette ...) by 255, 16-bit images (``"I;16"``, a 16-bit PNG read as
  ``"I"``) by 65,535, keeping their 65,536 levels;
* float images (TIFF mode ``"F"``) and 32-bit integer images (TIFF mode
  ``"I"``), which have no fixed range, keep their values.

Colour is then made uniform: palette images are expanded to RGB, the alpha
channel of RGBA / LA / PA images is dropped (as PIL's ``convert("RGB")``
does; transparent pixels keep whatever colour they hold), other colour modes
(CMYK, YCbCr ...) are converted to RGB. A grayscale image asked for as three
channels is repeated on each; an RGB image asked for as one channel becomes
its luma ``0.299 R + 0.587 G + 0.114 B`` (ITU-R 601, PIL's rule). Files with
several frames (GIF, multi-page TIFF) give their first frame. Only regular
files are opened: a FIFO, device or directory is refused before it is opened
(reading a FIFO would block forever), and every error names the file.
Pillow reads 16-bit *colour* PNGs at 8 bits per channel; diffrep warns when
it meets one.

**Images for a pretrained pipeline.** A pretrained pipeline takes square RGB
images of one size. :func:`read_images` validates what the user passes,
without copying or reading anything yet:

* a 1-D sequence of image file paths (a list, an array, a pandas column), or
* an array of RGB images of any size, channels first ``(n, 3, H, W)`` or
  channels last ``(n, H, W, 3)`` (the channel axis found by diffrep's one
  rule, :func:`diffrep._engine.validation.channel_axis`); grayscale
  ``(n, H, W)``, ``(n, 1, H, W)`` and ``(n, H, W, 1)`` are repeated to three
  channels. Integer arrays hold 8-bit values in ``[0, 255]``, float arrays
  values in ``[0, 1]``.

:func:`load_batch` then turns one batch of either into a float32 tensor of
RGB values in ``[0, 1]`` (as torchvision's ``ToTensor``), every image scaled
so that its shorter side fits the model's size and center-cropped to a
square. Files are read only when their batch comes, so data that does not
fit in memory still transforms.
"""

from __future__ import annotations

import collections
import contextlib
import numbers
import os
import stat
import warnings
from typing import TYPE_CHECKING

import numpy as np
import torch

from ._engine.caller import user_stacklevel
from ._engine.notices import InputWarning
from ._engine.validation import channel_axis

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import ArrayLike

    from ._engine.type_aliases import PathLike

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
"""File name endings (lower case) that diffrep takes for image files when it lists a folder."""

_LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
_GRAY_MODES = ("1", "L", "LA", "La")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _is_path(value):
    return isinstance(value, (str, os.PathLike))


def _paths(array):
    """``array`` as a 1-D object array of paths, or None when it holds something else."""
    if array.ndim == 2 and array.shape[1] == 1 and array.dtype == object:
        array = array[:, 0]  # a one-column DataFrame of paths
    if array.ndim != 1 or array.dtype.kind not in "USO":
        return None
    if array.dtype == object and not all(_is_path(value) for value in array):
        return None
    return array.astype(object)


def _rgb_layout(array):
    """``"channels_first"`` / ``"channels_last"`` for a 4-D array of 1 or 3 channels, else None."""
    try:
        layout = channel_axis(array.shape[1:], "auto")
    except ValueError:
        return None
    channels = array.shape[1] if layout == "channels_first" else array.shape[3]
    return layout if channels in (1, 3) else None


def read_images(X: ArrayLike | Sequence[PathLike]):
    """Validate image input for a pretrained pipeline; return it without reading files or copying pixels.

    Parameters
    ----------
    X : array-like
        A 1-D sequence of image file paths, or images of any size as
        ``(n, 3, H, W)``, ``(n, H, W, 3)`` or grayscale ``(n, H, W)``,
        ``(n, 1, H, W)``, ``(n, H, W, 1)``.

    Returns
    -------
    images : ndarray
        A 1-D object array of paths, or the image array (a view of ``X``
        when ``X`` is an array).

    Raises
    ------
    ValueError
        If ``X`` is empty or neither paths nor images.

    See Also
    --------
    read_image_files : Read image files into one array.
    """
    array = np.asarray(X)
    paths = _paths(array)
    if paths is not None:
        images = paths
    elif array.dtype.kind in "uif" and (array.ndim == 3 or (array.ndim == 4 and _rgb_layout(array) is not None)):
        images = array
    else:
        raise ValueError(
            "X must be a 1-D sequence of image file paths, or RGB images as (n, 3, H, W) or (n, H, W, 3) "
            f"(grayscale (n, H, W) also works) for a pretrained pipeline; got an array of shape {array.shape} "
            f"and dtype {array.dtype}."
        )
    if len(images) == 0:
        raise ValueError("X holds no images; pass at least one.")
    return images


def _check_regular_file(path):
    """Raise ``ValueError`` naming ``path`` unless it is an existing regular file (checked before opening)."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise ValueError(f"cannot read the image file {path!r} ({type(exc).__name__}: {exc.strerror}).") from None
    if not stat.S_ISREG(mode):
        kind = "a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "not a regular file"
        raise ValueError(f"cannot read the image file {path!r}: it is {kind}; image paths must name regular files.")


def _is_sixteen_bit_colour_png(handle):
    """Whether an open file is a PNG of 16 bits per colour channel (which Pillow reads at 8 bits)."""
    header = handle.read(26)
    handle.seek(0)
    return header[:8] == _PNG_SIGNATURE and header[12:16] == b"IHDR" and header[24] == 16 and header[25] in (2, 6)


def _channels_of(mode):
    """How many channels an image of PIL ``mode`` reads as: 1 for grayscale, 16-bit and float, else 3."""
    return 1 if mode in _GRAY_MODES + _SIXTEEN_BIT_MODES + ("I", "F") else 3


def _decoded_pixels(image):
    """An open PIL image as ``(H, W, C)`` float32 pixels under the module's value rule, C in {1, 3}."""
    if image.mode in _SIXTEEN_BIT_MODES or (image.mode == "I" and image.format == "PNG"):
        return (np.asarray(image, dtype=np.float32) / np.float32(65535))[..., None]
    if image.mode in ("I", "F"):
        return np.asarray(image, dtype=np.float32)[..., None]
    converted = image.convert("L" if _channels_of(image.mode) == 1 else "RGB")
    pixels = np.asarray(converted, dtype=np.float32) / np.float32(255)
    return pixels[..., None] if pixels.ndim == 2 else pixels


@contextlib.contextmanager
def _opened(path):
    """``(PIL image, whether a 16-bit colour PNG)`` of a regular file; every error names the file."""
    from PIL import Image, UnidentifiedImageError

    _check_regular_file(path)
    try:
        with open(path, "rb") as handle:
            deep_colour = _is_sixteen_bit_colour_png(handle)
            with Image.open(handle) as image:
                yield image, deep_colour
    except Image.DecompressionBombError as exc:
        raise ValueError(
            f"cannot read the image file {path!r}: {exc} Raise PIL.Image.MAX_IMAGE_PIXELS if you trust the file."
        ) from None
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
        raise ValueError(f"cannot read the image file {path!r} ({type(exc).__name__}: {exc}).") from None


def _image_header(path):
    """``(channels, (height, width))`` of an image file, read from its header without decoding the pixels."""
    with _opened(os.fspath(path)) as (image, _):
        return _channels_of(image.mode), (image.height, image.width)


def read_image_file(path: PathLike):
    """One image file at its depth, channels first, under the module's value rule.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    image : ndarray of float32, shape (C, H, W)
        ``C`` is 1 for grayscale, 16-bit and float images, 3 for colour ones.
        Integer images are scaled to ``[0, 1]`` by their largest value (255 or
        65,535); float and 32-bit integer images keep their values.

    Raises
    ------
    ValueError
        If the file is missing, not a regular file, not an image PIL can read,
        or larger than ``PIL.Image.MAX_IMAGE_PIXELS`` allows; the message names it.
    """
    path = os.fspath(path)
    with _opened(path) as (image, deep_colour):
        pixels = _decoded_pixels(image)
    if deep_colour:
        warnings.warn(
            f"{path!r} is a 16-bit colour PNG: Pillow reads it at 8 bits per channel.",
            InputWarning,
            stacklevel=user_stacklevel(),
        )
    return np.ascontiguousarray(pixels.transpose(2, 0, 1))


def _with_channels(image, channels):
    """A ``(C, H, W)`` image with ``channels`` channels: gray repeated, RGB reduced to its luma."""
    if image.shape[0] == channels:
        return image
    if channels == 3:
        return np.repeat(image, 3, axis=0)
    return np.tensordot(_LUMA_WEIGHTS, image, axes=1)[None]


def _is_count(value):
    """Whether ``value`` is an integer (a numpy one included) and not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _check_size(size):
    """``size`` as ``(height, width)`` or None; refuse anything else naming the parameter."""
    if size is None:
        return None
    pair = (size, size) if isinstance(size, (int, np.integer)) else tuple(size) if np.ndim(size) == 1 else ()
    if len(pair) != 2 or not all(_is_count(v) and v > 0 for v in pair):
        raise ValueError(f"size must be None, a positive int or a (height, width) pair of them, got {size!r}.")
    return tuple(int(v) for v in pair)


def _check_paths(paths):
    """``paths`` as a list of ``str``; refuse a lone string or anything but paths, naming the parameter."""
    if _is_path(paths):
        raise TypeError(f"paths must be a sequence of image file paths, not one path; got {paths!r}: wrap it in a list.")
    array = _paths(np.asarray(paths, dtype=object))
    if array is None:
        raise TypeError("paths must be a 1-D sequence of image file paths (str or os.PathLike).")
    if len(array) == 0:
        raise ValueError("paths holds no image files; pass at least one.")
    return [os.fspath(value) for value in array]


def read_image_files(
    paths: Sequence[PathLike], channels: int | None = None, size: int | tuple[int, int] | None = None
):
    """Read image files into one float32 array ``(n, C, H, W)``: diffrep's one image reader.

    Each file is read at its depth by :func:`read_image_file` (see the module
    docstring for the value rule: integer images in ``[0, 1]``, 16-bit ones
    keeping their 65,536 levels, float images as they are), converted to
    ``channels`` and brought to ``size``.

    Parameters
    ----------
    paths : sequence of str or os.PathLike
        A list, 1-D array or pandas column of image file paths.
    channels : {None, 1, 3}, default=None
        Channels of the result. None gives 3 when any image is in colour,
        else 1. Grayscale is repeated to RGB; RGB becomes its luma; alpha is
        dropped.
    size : None, int or (int, int), default=None
        ``(height, width)`` of the result (an int for a square). None takes
        the most common size among the images (a tie goes to the size met
        first). An image of another size is scaled, keeping its aspect ratio,
        so that it covers ``size``, then center-cropped to it (bicubic,
        antialiased when shrinking; the overshoot clipped to ``[0, 1]`` or
        to the image's own range when that is wider).

    Returns
    -------
    images : ndarray of float32, shape (n, C, H, W)

    Raises
    ------
    ValueError
        If a file cannot be read (the message names it), or ``channels`` or
        ``size`` is invalid.
    TypeError
        If ``paths`` is not a sequence of paths.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from pathlib import Path
    >>> from PIL import Image
    >>> from diffrep.images import read_image_files
    >>> folder = Path(tempfile.mkdtemp())
    >>> gray = np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000
    >>> Image.fromarray(gray).save(folder / "depth16.png")
    >>> Image.new("RGB", (4, 3), (255, 0, 0)).save(folder / "red.png")
    >>> images = read_image_files([folder / "depth16.png", folder / "red.png"])
    >>> images.shape, images.dtype
    ((2, 3, 3, 4), dtype('float32'))
    >>> round(float(images[0, 0, 0, 1]) * 65535)
    5000
    """
    if channels is not None and (not _is_count(channels) or channels not in (1, 3)):
        raise ValueError(f"channels must be None, 1 or 3, got {channels!r}.")
    paths = _check_paths(paths)
    size = _check_size(size)
    if channels is None or size is None:  # headers only: the pixels are decoded once, into the result
        headers = [_image_header(path) for path in paths]
        channels = channels or max(image_channels for image_channels, _ in headers)
        size = size or collections.Counter(image_size for _, image_size in headers).most_common(1)[0][0]
    result = np.empty((len(paths), channels, *size), dtype=np.float32)
    for index, path in enumerate(paths):
        result[index] = _fitted(read_image_file(path), channels, size)
    return result


def _fitted(image, channels, size):
    """A ``(C, H, W)`` image with ``channels`` channels and ``size``, resized as :func:`read_image_files` says."""
    image = _with_channels(image, channels)
    if image.shape[1:] == size:
        return image
    low, high = min(0.0, float(image.min())), max(1.0, float(image.max()))
    return resize_center_crop(torch.from_numpy(image)[None], size, (low, high))[0].numpy()


def _unit_range(pixels, what):
    """Pixel values as float32 in ``[0, 1]``: integers are 8-bit values, floats must already lie in ``[0, 1]``."""
    if pixels.dtype.kind in "ui":
        if pixels.size and (pixels.min() < 0 or pixels.max() > 255):
            raise ValueError(f"X: {what} holds integers outside [0, 255]; integer images must be 8-bit values.")
        return pixels.astype(np.float32) / np.float32(255)
    pixels = pixels.astype(np.float32)
    if not np.isfinite(pixels).all() or (pixels.size and (pixels.min() < 0 or pixels.max() > 1)):
        raise ValueError(
            f"X: {what} holds floats outside [0, 1] (or NaN); pass RGB values in [0, 1] or 8-bit integers."
        )
    return pixels


def _channels_first(array):
    """An image batch as ``(n, C, H, W)`` (a view; grayscale 3-D input gets one channel)."""
    if array.ndim == 3:
        return array[:, None]
    return array if _rgb_layout(array) == "channels_first" else array.transpose(0, 3, 1, 2)


def resize_center_crop(
    images: np.ndarray, size: int | tuple[int, int], value_range: tuple[float, float] = (0.0, 1.0)
):
    """Scale images so that they cover ``size``, keeping their aspect ratio, then crop the center.

    Cropping the largest centered region of the target's aspect ratio first
    and resizing it gives the same image with less work. Downscaling is
    antialiased (bicubic, as PIL does).

    Parameters
    ----------
    images : torch.Tensor of shape (n, C, H, W)
    size : int or (int, int)
        The target ``(height, width)``; an int for a square (the shorter side
        scaled to it).
    value_range : (float, float), default=(0.0, 1.0)
        The bicubic overshoot of resized images is clipped to it.

    Returns
    -------
    cropped : torch.Tensor of shape (n, C, height, width)
    """
    target_height, target_width = (size, size) if isinstance(size, (int, np.integer)) else size
    height, width = images.shape[-2:]
    scale = min(height / target_height, width / target_width)
    crop_height, crop_width = round(target_height * scale), round(target_width * scale)
    top, left = (height - crop_height) // 2, (width - crop_width) // 2
    cropped = images[..., top : top + crop_height, left : left + crop_width]
    if (crop_height, crop_width) == (target_height, target_width):
        return cropped
    resized = torch.nn.functional.interpolate(
        cropped, size=(target_height, target_width), mode="bicubic", antialias=True
    )
    return resized.clamp(*value_range)


def _resized(pixels, size):
    """A ``(n, C, H, W)`` float array in ``[0, 1]`` as a ``(n, 3, size, size)`` tensor."""
    square = resize_center_crop(torch.from_numpy(np.ascontiguousarray(pixels)), size)
    return square.expand(-1, 3, -1, -1) if square.shape[1] == 1 else square


def _files_in_unit_range(paths, size):
    """Image files as a ``(n, 3, size, size)`` tensor, refusing (by name) a float file outside ``[0, 1]``."""
    pixels = read_image_files(paths, channels=3, size=size)
    outside = ~np.isfinite(pixels).all(axis=(1, 2, 3)) | (pixels.min(axis=(1, 2, 3)) < 0) | (pixels.max(axis=(1, 2, 3)) > 1)
    if outside.any():
        raise ValueError(
            f"X: the image file {os.fspath(paths[int(np.argmax(outside))])!r} holds values outside [0, 1]; "
            "a pretrained pipeline takes float images in [0, 1]."
        )
    return torch.from_numpy(pixels)


def load_batch(images: np.ndarray, size: int | tuple[int, int]):
    """One batch of :func:`read_images` output as RGB floats of the model's size.

    Parameters
    ----------
    images : ndarray
        A slice of what :func:`read_images` returned: paths or an image array.
    size : int
        Height and width the model takes.

    Returns
    -------
    batch : torch.Tensor of float32, shape (n, 3, size, size)
        Values in ``[0, 1]``, on the CPU.
    """
    if images.dtype == object:
        return _files_in_unit_range(images, size)
    return _resized(_unit_range(_channels_first(images), "the image array"), size).contiguous()
