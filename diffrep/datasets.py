"""Data diffrep ships or reads: the embedded digits images and users' own files."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ._engine.type_aliases import PathLike

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def load_digit_images():
    """scikit-learn's 8x8 handwritten digits as images (no download).

    Returns
    -------
    X : ndarray of shape (1797, 1, 8, 8), float64
        Pixel intensities 0-16.
    y : ndarray of shape (1797,), int
        Digit labels 0-9.
    """
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X.reshape(-1, 1, 8, 8), y


def _load_numpy(path):
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            missing = {"X", "y"} - set(archive.files)
            if missing:
                raise ValueError(f"{path} must contain arrays 'X' and 'y'; it has {archive.files}.")
            return archive["X"], archive["y"]
    data = np.load(path, allow_pickle=False)
    if data.ndim != 2 or data.shape[1] < 2:
        raise ValueError(f"{path}: a .npy file must be 2-D with the label in its last column.")
    return data[:, :-1], data[:, -1]


def _load_csv(path, label_column):
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    if len(rows) < 3:
        raise ValueError(f"{path}: a CSV needs a header row and at least two data rows.")
    header, body = rows[0], rows[1:]
    if label_column not in header:
        raise ValueError(f"{path}: no label column {label_column!r}; columns are {header}.")
    label_index = header.index(label_column)
    try:
        X = np.array([[float(v) for i, v in enumerate(row) if i != label_index] for row in body])
    except ValueError as exc:
        raise ValueError(f"{path}: every column but {label_column!r} must be numeric ({exc}).") from None
    return X, np.array([row[label_index] for row in body])


def _load_image_folder(path):
    try:
        from PIL import Image
    except ImportError:
        raise ImportError("Reading an image folder needs Pillow: pip install pillow") from None
    images, labels = [], []
    for class_dir in sorted(p for p in path.iterdir() if p.is_dir()):
        for file in sorted(class_dir.iterdir()):
            if file.suffix.lower() in IMAGE_SUFFIXES:
                with Image.open(file) as image:
                    array = np.asarray(image.convert("RGB" if image.mode not in ("L", "1") else "L"))
                images.append(array[None] if array.ndim == 2 else array.transpose(2, 0, 1))
                labels.append(class_dir.name)
    if not images:
        raise ValueError(f"{path}: no images found in class subfolders ({', '.join(IMAGE_SUFFIXES)}).")
    shapes = {image.shape for image in images}
    if len(shapes) > 1:
        raise ValueError(f"{path}: images must all have the same size and mode; found shapes {sorted(shapes)}.")
    return np.stack(images).astype(np.float64), np.array(labels)


def load_labelled_data(path: PathLike, label_column: str = "label"):
    """Read a labelled data set from a file or an image folder.

    Parameters
    ----------
    path : str or os.PathLike
        An ``.npz`` with arrays ``X`` and ``y``; an ``.npy`` 2-D array whose last
        column is the label; a ``.csv`` with a header and a label column; or a
        folder with one subfolder of images per class.
    label_column : str, default="label"
        The label column of a CSV file.

    Returns
    -------
    X : ndarray
        2-D for tables, 4-D ``(n, C, H, W)`` for an image folder.
    y : ndarray of shape (n_samples,)
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file or folder: {path}")
    if path.is_dir():
        return _load_image_folder(path)
    if path.suffix in (".npz", ".npy"):
        return _load_numpy(path)
    if path.suffix == ".csv":
        return _load_csv(path, label_column)
    raise ValueError(f"{path}: unsupported format; use .npz, .npy, .csv or a folder of class subfolders.")
