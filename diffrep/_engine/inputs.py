"""Input adapters: what a featurizer takes as ``X``, read, validated, scaled and keyed for the noise.

One adapter per kind of input, chosen and fitted once in ``fit`` and held by
the featurizer as ``input_``:

* :class:`ArrayInput`: tables and image arrays (2-D, 3-D, 4-D), scaled by a
  :class:`~.scaling.DataScaler` learned in ``fit``. Once fitted on images it
  also takes image file paths, read as :func:`read_pixel_files` describes.
* :class:`ImageFileInput`: image file paths given to ``fit`` of a
  self-trained denoiser; the files' most common size and the channels they
  hold set the image shape the network is built for, then it reads as
  :class:`ArrayInput`.
* :class:`PipelineImageInput`: RGB images of any size or image files for a
  pretrained pipeline, read and encoded batch by batch.

Every adapter answers the same questions: ``fit`` (validate the training
input, learn what transform needs), ``read`` (validate later input),
``prepare`` (one batch as the denoiser's samples, with the tensor whose bytes
key each sample's noise) and ``reuse_key`` (what features depend on besides
the input, or None when its extractions are not shared).
"""

from __future__ import annotations

import math
import warnings
from os import PathLike

import numpy as np

from ..images import load_batch, read_image_files, read_images
from .caller import user_stacklevel
from .notices import InputWarning
from .extraction import autocast, to_device
from .scaling import DataScaler
from .training_config import fingerprint_array
from .validation import read_samples, resolve_data_format

# Image files are read in the units of 8-bit pixels, as arrays of uint8 hold them.
PIXEL_UNITS = 255.0
# transform warns when its input's largest magnitude is this many times larger or smaller than fit's.
RANGE_FACTOR = 10.0


def image_paths(X):
    """``X`` as a 1-D object array of file paths, or None when it holds anything else.

    Paths come as a list, a 1-D array of str or ``os.PathLike``, a pandas
    Series or a one-column DataFrame.

    Parameters
    ----------
    X : object

    Returns
    -------
    paths : ndarray of object, shape (n_samples,), or None
    """
    values = X.to_numpy() if hasattr(X, "to_numpy") else X
    if isinstance(values, (list, tuple)) and not all(isinstance(value, (str, PathLike)) for value in values):
        return None
    values = np.asarray(values) if isinstance(values, (list, tuple, np.ndarray)) else None
    if values is None or values.dtype.kind not in "USO" or values.ndim not in (1, 2):
        return None
    if values.ndim == 2:
        if values.shape[1] != 1:
            return None
        values = values[:, 0]
    if len(values) == 0 or not all(isinstance(value, (str, PathLike)) for value in values):
        return None
    return values.astype(object)


def read_pixel_files(paths, image_shape=None):
    """Image files as float64 ``(n, C, H, W)`` in 8-bit units, by :func:`diffrep.images.read_image_files`.

    Values are ``[0, 255]``, exactly as a uint8 array of an 8-bit file holds
    them (deeper files keep their depth as fractions), in float64 as
    validation makes such an array; channels and size follow the one rule
    of :func:`diffrep.images.conform_images`.

    Parameters
    ----------
    paths : ndarray of object
        From :func:`image_paths`.
    image_shape : (int, int, int) or None, default=None
        The network's ``(C, H, W)``; None for the channels the files hold
        and their most common size.

    Returns
    -------
    images : ndarray of float64, shape (n, C, H, W)
    """
    channels, size = (None, None) if image_shape is None else (image_shape[0], image_shape[1:])
    if channels not in (None, 1, 3, 4):
        raise ValueError(
            f"X: image files give grey, RGB or RGBA pixels, but the network takes {channels} channels; "
            "pass the images as an array of that many channels."
        )
    return read_image_files(paths, channels, size, max_value=PIXEL_UNITS).astype(np.float64)


class ArrayInput:
    """Tables and image arrays, validated as sklearn does and scaled by a map learned in ``fit``.

    Parameters
    ----------
    image_shape : tuple of int or None
        A validated ``(C, H, W)`` of flattened images, or None.
    data_format : {"auto", "channels_first", "channels_last"}
        Layout of image arrays.

    Attributes
    ----------
    sample_shape : tuple of int
        One sample as the denoiser sees it: ``(C, H, W)`` or ``(n_features,)``.
    data_format : {"channels_first", "channels_last"} or None
        The layout ``fit`` read; None for tables.
    scaler : DataScaler
        The scaling learned by :meth:`fit_scaling`.
    value_max : float or None
        The largest magnitude of the images ``fit`` read (None for tables):
        :meth:`read` warns when later images differ from it tenfold.
    """

    def __init__(self, image_shape, data_format):
        self.image_shape = image_shape
        self.data_format = data_format
        self.value_max = None

    @property
    def reads_images(self):
        """Whether samples are images ``(C, H, W)``."""
        return len(self.sample_shape) == 3

    def fit(self, estimator, X):
        """Validate the training input, set ``estimator.n_features_in_``; return it as a raw 2-D array.

        Parameters
        ----------
        estimator : BaseEstimator
        X : array-like

        Returns
        -------
        X_2d : ndarray of shape (n_samples, n_features)
        """
        self.data_format = resolve_data_format(X, self.image_shape, self.data_format)
        X_2d, self.sample_shape = read_samples(estimator, X, self.image_shape, reset=True, data_format=self.data_format)
        if self.reads_images:
            self.value_max = float(np.abs(X_2d).max())
        return X_2d

    def fit_scaling(self, kind, X_2d):
        """Learn the ``kind`` of scaling from the raw training data; return the scaler.

        Parameters
        ----------
        kind : {"minmax", "standard", "none"}
        X_2d : ndarray

        Returns
        -------
        scaler : DataScaler
        """
        self.scaler = DataScaler(kind).fit(X_2d)
        return self.scaler

    def read(self, estimator, X):
        """Validate later input against what ``fit`` read; return it raw as 2-D.

        Image file paths are read (see :func:`read_pixel_files`) when the
        samples are images. Warns with :class:`InputWarning` when images
        lie in a clearly other range than ``fit``'s.

        Parameters
        ----------
        estimator : BaseEstimator
        X : array-like or sequence of paths

        Returns
        -------
        X_2d : ndarray of shape (n_samples, n_features)
        """
        paths = image_paths(X) if self.reads_images else None
        if paths is not None:
            X, data_format = read_pixel_files(paths, self.sample_shape), "channels_first"
        else:
            data_format = self.data_format or "auto"
        image_shape = self.sample_shape if self.reads_images else None
        X_2d, _ = read_samples(estimator, X, image_shape, reset=False, data_format=data_format)
        self._check_range(X_2d)
        return X_2d

    def _check_range(self, X_2d):
        if self.value_max is None or not self.value_max or not X_2d.size:
            return
        largest = float(np.abs(X_2d).max())
        if largest and not self.value_max / RANGE_FACTOR <= largest <= self.value_max * RANGE_FACTOR:
            warnings.warn(
                f"X holds values up to {largest:.4g}, but the images fit read went up to {self.value_max:.4g}: "
                "features of inputs in another range than the training data's are meaningless (e.g. floats in "
                "[0, 1] after 8-bit images in [0, 255]). Give transform the same kind of values as fit.",
                InputWarning,
                stacklevel=user_stacklevel(),
            )

    def scaled(self, X_2d):
        """Raw 2-D rows as the float32 samples the denoiser takes, ``(n, *sample_shape)``.

        Parameters
        ----------
        X_2d : ndarray

        Returns
        -------
        samples : ndarray of float32
        """
        return self.scaler.transform(X_2d).reshape(-1, *self.sample_shape)

    def prepare(self, batch, network, device, precision):
        """One batch of :meth:`read` output as scaled samples (they key their own noise).

        Parameters
        ----------
        batch : ndarray
        network, device, precision
            Unused: scaling needs no network.

        Returns
        -------
        samples : ndarray of float32
        """
        return self.scaled(batch)

    def reuse_key(self):
        """What the features depend on besides the input, the network and the extraction settings."""
        scaling = fingerprint_array(np.concatenate([np.ravel(self.scaler.offset_), np.ravel(self.scaler.scale_)]))
        return scaling, self.sample_shape


class ImageFileInput(ArrayInput):
    """Image file paths given to ``fit`` of a self-trained denoiser.

    The network is built for ``image_shape`` when given, else for the most
    common size among the files and the channels they hold (grey, whatever
    mode it is stored in, when every file has equal colour channels, else
    RGB; RGBA only when ``image_shape`` asks for 4 channels); every file is
    read to that shape as :func:`read_pixel_files` describes. Later input
    may be paths or arrays of that shape.
    """

    def fit(self, estimator, X):
        """Read the files into the training images; see :meth:`ArrayInput.fit`."""
        images = read_pixel_files(image_paths(X), self.image_shape)
        self.image_shape, self.data_format = None, "channels_first"
        return super().fit(estimator, images)  # an array: validation drops the names of a path column


class PipelineImageInput:
    """RGB images of any size or image files for a pretrained pipeline, encoded batch by batch.

    Parameters
    ----------
    image_size : int
        Height and width the pipeline takes.
    sample_shape : tuple of int
        The pipeline's samples (latents or pixels).

    Attributes
    ----------
    data_format : None
        The pipeline finds the channel axis of each array itself.
    scaler : None
        The pipeline reads RGB values in [0, 1]: no scaling is learned.
    """

    data_format = None
    scaler = None
    reads_images = True

    def __init__(self, image_size, sample_shape):
        self.image_size = image_size
        self.sample_shape = tuple(sample_shape)

    def fit(self, estimator, X):
        """Validate the images (files are not read yet); set ``estimator.n_features_in_``.

        Parameters
        ----------
        estimator : BaseEstimator
            Receives ``n_features_in_``: values per image, 1 for file paths.
        X : RGB image array of any size, or image file paths

        Returns
        -------
        images : ndarray
            Paths or the image array.
        """
        images = read_images(X)
        vars(estimator).pop("feature_names_in_", None)
        estimator.n_features_in_ = math.prod(images.shape[1:])
        return images

    def fit_scaling(self, kind, X):
        """No scaling: the pipeline reads RGB values in [0, 1]; returns None."""
        return None

    def read(self, estimator, X):
        """Validate later images; files are read batch by batch in :meth:`prepare`."""
        return read_images(X)

    def prepare(self, batch, network, device, precision):
        """One batch of images as the pipeline's samples, with the pixels that key their noise.

        An encoder's output can differ in its last bits with the batch it ran
        in; the pixels do not, so the noise is keyed by them.
        """
        images = to_device(load_batch(batch, self.image_size), device)
        with autocast(device, precision):
            return network.encode(images).float(), images

    def reuse_key(self):
        """None: files are read batch by batch, and never fingerprinted whole."""
        return None
