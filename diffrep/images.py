"""Real images in: RGB arrays of any size and image files, read as a pretrained model wants them.

A pretrained pipeline takes square RGB images of one size. :func:`read_images`
validates what the user passes, without copying or reading anything yet:

* a 1-D sequence of image file paths (a list, an array, a pandas column), or
* an array of RGB images of any size, channels first ``(n, 3, H, W)`` or
  channels last ``(n, H, W, 3)``; grayscale ``(n, H, W)``, ``(n, 1, H, W)``
  and ``(n, H, W, 1)`` are repeated to three channels. Integer arrays hold
  8-bit values in ``[0, 255]``, float arrays values in ``[0, 1]``.

:func:`load_batch` then turns one batch of either into a float32 tensor of
RGB values in ``[0, 1]`` (as torchvision's ``ToTensor``), every image scaled
so that its shorter side fits the model's size and center-cropped to a
square. Files are read only when their batch comes, so data that does not
fit in memory still transforms.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from collections.abc import Sequence
    from numpy.typing import ArrayLike
    from ._engine.type_aliases import PathLike


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


def read_images(X: ArrayLike | Sequence[PathLike]):
    """Validate image input; return it without reading files or copying pixels.

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
    """
    array = np.asarray(X)
    paths = _paths(array)
    if paths is not None:
        images = paths
    elif array.dtype.kind in "uif" and (array.ndim == 3 or (array.ndim == 4 and _channel_axis(array) is not None)):
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


def _channel_axis(array):
    """The channel axis (1 or 3) of a 4-D image array, or None when neither has 1 or 3 values."""
    if array.shape[1] in (1, 3):
        return 1
    if array.shape[3] in (1, 3):
        return 3
    return None


def read_image_file(path: PathLike):
    """One image file as RGB floats in ``[0, 1]``, channels first.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    image : ndarray of float32, shape (3, H, W)

    Raises
    ------
    ValueError
        If the file is missing or is not an image PIL can read; the message names it.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB"))
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise ValueError(f"X: cannot read the image file {os.fspath(path)!r} ({type(exc).__name__}: {exc}).") from None
    return _unit_range(pixels, f"the image file {os.fspath(path)!r}").transpose(2, 0, 1)


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
    return array if _channel_axis(array) == 1 else array.transpose(0, 3, 1, 2)


def resize_center_crop(images: np.ndarray, size: int | tuple[int, int]):
    """Scale images so that the shorter side is ``size``, then crop the center square.

    Cropping the largest centered square first and resizing it gives the same
    image with less work. Downscaling is antialiased (bicubic, as PIL does).

    Parameters
    ----------
    images : torch.Tensor of shape (n, C, H, W)
    size : int

    Returns
    -------
    square : torch.Tensor of shape (n, C, size, size)
        Clamped to the input's range ``[0, 1]``.
    """
    height, width = images.shape[-2:]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = images[..., top : top + side, left : left + side]
    if side == size:
        return square
    resized = torch.nn.functional.interpolate(square, size=(size, size), mode="bicubic", antialias=True)
    return resized.clamp(0.0, 1.0)


def _resized(pixels, size):
    """A ``(n, C, H, W)`` float array in ``[0, 1]`` as a ``(n, 3, size, size)`` tensor."""
    square = resize_center_crop(torch.from_numpy(np.ascontiguousarray(pixels)), size)
    return square.expand(-1, 3, -1, -1) if square.shape[1] == 1 else square


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
        return torch.cat([_resized(read_image_file(path)[None], size) for path in images])
    return _resized(_unit_range(_channels_first(images), "the image array"), size).contiguous()
