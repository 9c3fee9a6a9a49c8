"""Real images in: image files read at their depth, and RGB arrays or files for a pretrained model.

**Reading image files.** :func:`read_image_files` is diffrep's one reader of
image files (everything that reads a file calls it, directly or through
:func:`read_image_file`). It reads every file at its depth into float32 and
applies one value rule:

* integer images are divided by their largest value, so that they lie in
  ``[0, 1]`` (or ``[0, max_value]``, see below): 1-bit and 8-bit images (modes ``"1"``, ``"L"``, ``"RGB"``,
  palette ...) by 255, 16-bit images (``"I;16"``, a 16-bit PNG read as
  ``"I"``) by 65,535, keeping their 65,536 levels;
* float images (TIFF mode ``"F"``) and 32-bit integer images (TIFF mode
  ``"I"``), which have no fixed range, keep their values (times ``max_value``).

Colour modes are made uniform: palette images are expanded to RGB, the
alpha channel of RGBA / LA / PA images is dropped (as PIL's ``convert("RGB")``
does; transparent pixels keep whatever colour they hold) unless four
channels are asked for, other colour modes (CMYK, YCbCr ...) are converted
to RGB. Files with several frames (GIF, multi-page TIFF) give their first
frame. Only regular files are opened: a FIFO, device or directory is refused
before it is opened (reading a FIFO would block forever), and every error
names the file. Pillow reads 16-bit *colour* PNGs at 8 bits per channel;
diffrep warns when it meets one.

**One rule to the network's channels and size.** :func:`conform_images`
brings every image that reaches a network in another shape than its own
to the channels and size the network takes: files for a pretrained
pipeline, for a self-trained denoiser and for
:func:`~diffrep.datasets.load_labelled_data`, and arrays for a pretrained
pipeline. Grey is repeated to RGB; RGB becomes grey by its luma
``0.299 R + 0.587 G + 0.114 B`` (ITU-R 601, PIL's rule; exactly the value of
a pixel whose channels are equal); an image of another size is cropped
around its centre to the target's aspect ratio and resized to it, bilinear
and antialiased. The paths differ only in units (``max_value``): ``[0, 1]``
for pipelines, 8-bit units ``[0, 255]`` for self-trained denoisers.

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
RGB values in ``[0, 1]`` (as torchvision's ``ToTensor``) of the model's
square size, by :func:`conform_images` (the center square, resized). Files
are read only when their batch comes, so data that does not fit in memory
still transforms.
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
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")
# Resized values closer than this fraction of one 8-bit step to an 8-bit level are set to the level.
_LEVEL_TOLERANCE = 1e-3
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


def _has_alpha(image):
    """Whether an open PIL image holds transparency (an alpha channel or a transparent palette entry)."""
    return image.mode in _ALPHA_MODES or "transparency" in image.info


def _decoded_pixels(image, max_value, alpha):
    """An open PIL image as ``(H, W, C)`` float32 pixels under the module's value rule, C in {1, 3, 4}.

    Full intensity reads as ``max_value``; 4 channels (RGBA) only when
    ``alpha`` asks for them and the image holds transparency.
    """
    if image.mode in _SIXTEEN_BIT_MODES or (image.mode == "I" and image.format == "PNG"):
        return (np.asarray(image, dtype=np.float32) / np.float32(65535 / max_value))[..., None]
    if image.mode in ("I", "F"):
        return (np.asarray(image, dtype=np.float32) * np.float32(max_value))[..., None]
    mode = "RGBA" if alpha and _has_alpha(image) else "L" if _channels_of(image.mode) == 1 else "RGB"
    pixels = np.asarray(image.convert(mode), dtype=np.float32) / np.float32(255 / max_value)
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


def read_image_file(path: PathLike, *, max_value: float = 1.0, alpha: bool = False):
    """One image file at its depth, channels first, under the module's value rule.

    Parameters
    ----------
    path : str or os.PathLike
    max_value : float, default=1.0
        The value full intensity reads as: 1.0 gives integer images in
        ``[0, 1]``, 255.0 the units of 8-bit pixels (an 8-bit file then
        reads as exactly the numbers a uint8 array of it holds). Float images
        are multiplied by it.
    alpha : bool, default=False
        Whether to keep the transparency of an image that has some (RGBA,
        LA, a palette with a transparent entry) as a fourth channel.

    Returns
    -------
    image : ndarray of float32, shape (C, H, W)
        ``C`` is 1 for grayscale, 16-bit and float images, 3 for colour ones,
        4 (RGBA) for transparent ones when ``alpha``. Integer images are
        scaled to ``[0, max_value]`` by their largest value (255 or 65,535);
        float and 32-bit integer images keep their values (times ``max_value``).

    Raises
    ------
    ValueError
        If the file is missing, not a regular file, not an image PIL can read,
        or larger than ``PIL.Image.MAX_IMAGE_PIXELS`` allows; the message names it.
    """
    path = os.fspath(path)
    with _opened(path) as (image, deep_colour):
        pixels = _decoded_pixels(image, max_value, alpha)
    if deep_colour:
        warnings.warn(
            f"{path!r} is a 16-bit colour PNG: Pillow reads it at 8 bits per channel.",
            InputWarning,
            stacklevel=user_stacklevel(),
        )
    return np.ascontiguousarray(pixels.transpose(2, 0, 1))


def _with_channels(images, channels, max_value):
    """``(n, C, H, W)`` images as ``channels`` channels, as :func:`conform_images` says."""
    have = images.shape[1]
    if have == channels:
        return images
    if channels == 4:
        colour = _with_channels(images, 3, max_value)
        return np.concatenate([colour, np.full_like(colour[:, :1], max_value)], axis=1)
    if have == 1:
        return np.repeat(images, 3, axis=1)
    colour = images[:, :3]
    if channels == 3:
        return colour
    luma = np.einsum("c,nchw->nhw", _LUMA_WEIGHTS, colour)
    grey = (colour[:, 1] == colour[:, 0]) & (colour[:, 2] == colour[:, 0])
    return np.where(grey, colour[:, 0], luma)[:, None]


def _centre_crop_resized(images, height, width):
    """``(n, C, H, W)`` images cropped around their centre to the aspect of ``height x width``, resized to it."""
    have_height, have_width = images.shape[2:]
    crop_height = min(have_height, round(have_width * height / width))
    crop_width = min(have_width, round(have_height * width / height))
    top, left = (have_height - crop_height) // 2, (have_width - crop_width) // 2
    crop = torch.from_numpy(np.ascontiguousarray(images[:, :, top : top + crop_height, left : left + crop_width]))
    if (crop_height, crop_width) == (height, width):
        return crop.numpy()
    return torch.nn.functional.interpolate(crop, size=(height, width), mode="bilinear", antialias=True).numpy()


def _on_eight_bit_levels(images, max_value):
    """Values within :data:`_LEVEL_TOLERANCE` of a step of an 8-bit level ``k * max_value / 255`` set to it."""
    steps = np.float32(255 / max_value)  # levels / steps is the value the reader gives an 8-bit pixel
    levels = np.rint(images * steps)
    return np.where(np.abs(images * steps - levels) < _LEVEL_TOLERANCE, levels / steps, images)


def conform_images(images: np.ndarray, channels: int, size: int | tuple[int, int], max_value: float = 1.0):
    """Images as ``channels`` channels of ``size``: diffrep's one rule for bringing images to a network.

    Every image that reaches a network in another shape than its own goes
    through this function: image files for a pretrained pipeline, for a
    self-trained denoiser and for :func:`~diffrep.datasets.load_labelled_data`
    (through :func:`read_image_files`), and image arrays for a pretrained
    pipeline. The callers differ only in ``max_value``: pipelines take values
    in ``[0, 1]``, self-trained denoisers files in the units of 8-bit pixels.

    **Channels.** Grey becomes RGB by repetition. RGB becomes grey by each
    pixel's luma ``0.299 R + 0.587 G + 0.114 B`` (ITU-R 601, PIL's rule),
    which is exactly its value where ``R = G = B`` (a grey image stored as
    RGB keeps its values to the bit). Alpha is dropped, or, when 4 channels
    are asked of an image without it, added opaque (``max_value``).

    **Geometry.** An image of another size is cropped around its centre to
    the largest region of the target's aspect ratio, then that region is
    resized to ``size``, bilinear and antialiased (the triangle filter
    widened by the shrink factor, as PIL's and torchvision's antialiasing
    do). Why this geometry: cropping first gives the same picture as scaling
    the whole image and cropping its centre, but filters only the pixels
    kept, places the crop on the input's finer grid when shrinking, and lets
    no discarded pixel bleed into the border. Bilinear rather than bicubic
    because its weights are never negative: a resized value always lies
    between the values it is made of, so no image leaves its own range:
    nothing is clipped, float and 16-bit images keep their range, and
    images in ``[0, 1]`` stay there. After resizing,
    values within 1/1000 of an 8-bit step of an 8-bit level
    ``k * max_value / 255`` are set to it, so a constant area of an 8-bit
    image keeps exactly its value.

    Parameters
    ----------
    images : ndarray of shape (n, C, H, W)
        ``C`` in {1, 3, 4}: grey, RGB, RGBA. Not modified.
    channels : {1, 3, 4}
        Channels of the result.
    size : int or (int, int)
        ``(height, width)`` of the result (an int for a square).
    max_value : float, default=1.0
        The value of full intensity (and of an added opaque alpha): 1.0 for
        values in ``[0, 1]``, 255.0 for the units of 8-bit pixels.

    Returns
    -------
    conformed : ndarray of float32, shape (n, channels, height, width)
        A new array, or ``images`` itself (as float32) when it already has
        that shape.

    Raises
    ------
    ValueError
        If ``images`` is not ``(n, C, H, W)`` of 1, 3 or 4 channels, or
        ``channels``, ``size`` or ``max_value`` is invalid.

    Examples
    --------
    >>> import numpy as np
    >>> from diffrep.images import conform_images
    >>> wide = np.zeros((1, 3, 4, 8), dtype=np.float32)
    >>> wide[:, :, :, 2:6] = 1.0  # a white centre square on black
    >>> conform_images(wide, 1, (2, 2))[0, 0]
    array([[1., 1.],
           [1., 1.]], dtype=float32)
    """
    channels, size = _check_target(channels, size, max_value, optional=False)
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4 or images.shape[1] not in (1, 3, 4):
        raise ValueError(
            f"images must be (n, C, H, W) with C = 1, 3 or 4 (grey, RGB, RGBA); got shape {images.shape}."
        )
    images = _with_channels(images, channels, max_value)
    if images.shape[2:] == size:
        return images
    return _on_eight_bit_levels(_centre_crop_resized(images, *size), max_value)


def _is_count(value):
    """Whether ``value`` is an integer (a numpy one included) and not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _check_target(channels, size, max_value, optional):
    """``(channels, (height, width))`` validated; None allowed for the first two when ``optional``.

    Anything else is refused with an error naming the parameter.
    """
    none = "None, " if optional else ""
    if not ((optional and channels is None) or (_is_count(channels) and channels in (1, 3, 4))):
        raise ValueError(f"channels must be {none}1, 3 or 4, got {channels!r}.")
    if isinstance(max_value, (bool, np.bool_)) or not isinstance(max_value, numbers.Real) or not max_value > 0:
        raise ValueError(f"max_value must be a positive number, got {max_value!r}.")
    if optional and size is None:
        return channels, None
    pair = (size, size) if _is_count(size) else tuple(size) if np.ndim(size) == 1 else ()
    if len(pair) != 2 or not all(_is_count(v) and v > 0 for v in pair):
        raise ValueError(f"size must be {none}a positive int or a (height, width) pair of them, got {size!r}.")
    return channels, tuple(int(v) for v in pair)


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
    paths: Sequence[PathLike],
    channels: int | None = None,
    size: int | tuple[int, int] | None = None,
    *,
    max_value: float = 1.0,
):
    """Read image files into one float32 array ``(n, C, H, W)``: diffrep's one image reader.

    Each file is read at its depth by :func:`read_image_file` (see the module
    docstring for the value rule: integer images in ``[0, max_value]``,
    16-bit ones keeping their 65,536 levels, float images as they are) and
    brought to ``channels`` and ``size`` by :func:`conform_images`, the rule
    every path into a network shares.

    Parameters
    ----------
    paths : sequence of str or os.PathLike
        A list, 1-D array or pandas column of image file paths.
    channels : {None, 1, 3, 4}, default=None
        Channels of the result. None gives 1 when every pixel of every image
        has equal colour channels (grey, whatever mode it is stored in), else
        3; alpha is then dropped. 4 gives RGBA: each file's own alpha, opaque
        where a file has none.
    size : None, int or (int, int), default=None
        ``(height, width)`` of the result (an int for a square). None takes
        the most common size among the images (a tie goes to the size met
        first). An image of another size is cropped around its centre to
        that aspect ratio and resized to it (bilinear, antialiased; see
        :func:`conform_images` for why).
    max_value : float, default=1.0
        The value full intensity reads as: 1.0 for ``[0, 1]`` (what a
        pretrained pipeline takes), 255.0 for the units of 8-bit pixels
        (what a self-trained denoiser reads files in).

    Returns
    -------
    images : ndarray of float32, shape (n, C, H, W)

    Raises
    ------
    ValueError
        If a file cannot be read (the message names it), or ``channels``,
        ``size`` or ``max_value`` is invalid.
    TypeError
        If ``paths`` is not a sequence of paths.

    See Also
    --------
    conform_images : The channel and size rule.

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
    channels, size = _check_target(channels, size, max_value, optional=True)
    paths = _check_paths(paths)
    if channels is None or size is None:  # headers only: the pixels are decoded once, into the result
        headers = [_image_header(path) for path in paths]
        size = size or collections.Counter(image_size for _, image_size in headers).most_common(1)[0][0]
    stored = channels or max(image_channels for image_channels, _ in headers)
    result = np.empty((len(paths), stored, *size), dtype=np.float32)
    for index, path in enumerate(paths):
        pixels = read_image_file(path, max_value=max_value, alpha=stored == 4)
        result[index] = conform_images(pixels[None], stored, size, max_value)[0]
    if channels is None and stored == 3 and _all_grey(result):
        return np.ascontiguousarray(result[:, :1])
    return result


def _all_grey(images):
    """Whether every pixel of ``(n, 3, H, W)`` images has equal colour channels."""
    return bool((images[:, 1] == images[:, 0]).all() and (images[:, 2] == images[:, 0]).all())


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
        Values in ``[0, 1]``, on the CPU, brought to the model's size by
        :func:`conform_images`.
    """
    if images.dtype == object:
        return _files_in_unit_range(images, size)
    pixels = _unit_range(_channels_first(images), "the image array")
    return torch.from_numpy(np.ascontiguousarray(conform_images(pixels, 3, size)))
