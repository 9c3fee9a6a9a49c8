"""Data diffrep ships or reads: the embedded digits images and users' own files.

:func:`load_labelled_data` reads tables (``.npz``, ``.npy``, ``.csv``) and
image folders in the layouts competitions ship them; every image file is read
by :func:`diffrep.images.read_image_files` (at its depth, integer images
scaled to ``[0, 1]``).
"""

from __future__ import annotations

import csv
import itertools
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .images import IMAGE_SUFFIXES, read_image_files

if TYPE_CHECKING:
    from ._engine.type_aliases import PathLike

LABEL_FILES = ("labels.csv", "train.csv")
"""Names of the CSV of (file name, label) that :func:`load_labelled_data` looks for inside an image folder."""

FILE_COLUMNS = ("filename", "file", "image", "image_id", "id", "path")
"""Header names that mark the file-name column of a labels CSV."""


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
    rows = _csv_rows(path)
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
    return X, _parsed_labels([row[label_index] for row in body])


def _csv_rows(path, limit=None):
    """The non-empty rows of a CSV file (the first ``limit`` of them when given)."""
    with open(path, newline="") as handle:
        return list(itertools.islice((row for row in csv.reader(handle) if row), limit))


def _parsed_labels(values):
    """Labels as integers when they all read as integers, else as floats when they can, else as strings."""
    for kind in (int, float):
        try:
            return np.array([kind(value) for value in values])
        except ValueError:
            pass
    return np.array(values)


def _image_files(folder):
    """The image files directly in ``folder``, sorted; hidden files (``._x.png``, ``.DS_Store``) skipped."""
    return sorted(
        entry
        for entry in folder.iterdir()
        if entry.suffix.lower() in IMAGE_SUFFIXES and not entry.name.startswith(".") and not entry.is_dir()
    )


def _label_file(folder, flat):
    """The labels CSV of an image folder: inside it (``labels.csv``, ``train.csv``), or beside it when ``flat``."""
    candidates = [folder / name for name in LABEL_FILES]
    if flat:
        candidates += [folder.parent / f"{folder.name}.csv", folder.parent / f"{folder.name}_labels.csv"]
    return next((candidate for candidate in candidates if candidate.is_file()), None)


def _column_indices(header, label_column, labels_path):
    """``(file column, label column)`` of a labels CSV's header, or None when the header is a data row."""
    names = [name.strip().lower() for name in header]
    file_index = next((names.index(name) for name in FILE_COLUMNS if name in names), None)
    if label_column in header:
        label_index = header.index(label_column)
        if file_index is None and len(header) == 2:
            file_index = 1 - label_index
        if file_index is not None:
            return file_index, label_index
    if len(header) == 2:
        return (0, 1) if file_index is None or file_index == 0 else (1, 0)
    raise ValueError(
        f"{labels_path}: a labels CSV needs a file-name column (one of {list(FILE_COLUMNS)}) and the label "
        f"column {label_column!r}, or exactly two columns (file name, label); its header is {header}."
    )


def _find_image(name, folders):
    """The image file ``name`` in the first of ``folders`` that holds it (its suffix may be omitted), or None."""
    for folder in folders:
        candidate = folder / name
        found = [candidate] + [candidate.with_name(candidate.name + suffix) for suffix in IMAGE_SUFFIXES]
        found = [path for path in found if path.exists() and not path.is_dir()]
        if found:
            return found[0]
    return None


def _image_path(name, folders, labels_path, row_number):
    """The image file a labels CSV names at ``row_number``; refuse a name found nowhere."""
    found = _find_image(name, folders)
    if found is None:
        places = " or ".join(str(folder) for folder in folders)
        raise ValueError(f"{labels_path}, row {row_number}: no image file {name!r} in {places}.")
    return found


def _names_images(labels_path, label_column):
    """Whether a CSV's first data row names an image file beside it: a labels CSV rather than a table."""
    rows = _csv_rows(labels_path, limit=2)
    try:
        file_index = _column_indices(rows[0], label_column, labels_path)[0] if rows else None
    except ValueError:
        return False
    folders = [labels_path.parent, labels_path.parent / labels_path.stem]
    return any(_find_image(row[file_index].strip(), folders) is not None for row in rows if len(row) > file_index)


def _load_labelled_images(folder, labels_path, label_column):
    """Images named by a CSV of (file name, label), looked up in ``folder`` then in ``folder/<CSV stem>``."""
    rows = _csv_rows(labels_path)
    if not rows:
        raise ValueError(f"{labels_path}: the labels CSV is empty.")
    folders = [folder, folder / labels_path.stem]
    file_index, label_index = _column_indices(rows[0], label_column, labels_path)
    headless = label_column not in rows[0] and _find_image(rows[0][file_index].strip(), folders) is not None
    first = 1 if headless else 2  # row numbers as a spreadsheet shows them
    body = rows[first - 1 :]
    if not body:
        raise ValueError(f"{labels_path}: the labels CSV has a header but no rows.")
    width = max(file_index, label_index) + 1
    short = next((number for number, row in enumerate(body, first) if len(row) < width), None)
    if short is not None:
        raise ValueError(f"{labels_path}, row {short}: expected at least {width} columns.")
    files = [_image_path(row[file_index].strip(), folders, labels_path, number) for number, row in enumerate(body, first)]
    return read_image_files(files), _parsed_labels([row[label_index].strip() for row in body])


def _load_class_folders(path):
    """One subfolder of images per class; the folder's name is the label."""
    files, labels = [], []
    for class_dir in sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")):
        images = _image_files(class_dir)
        files += images
        labels += [class_dir.name] * len(images)
    if not files:
        raise ValueError(
            f"{path}: no images found: expected image files ({', '.join(IMAGE_SUFFIXES)}) with an optional "
            f"labels CSV ({' or '.join(LABEL_FILES)}), or one subfolder of images per class."
        )
    return read_image_files(files), _parsed_labels(labels)


def load_labelled_data(path: PathLike, label_column: str = "label", labels: PathLike | None = None):
    """Read a labelled data set from a file or an image folder.

    Parameters
    ----------
    path : str or os.PathLike
        One of:

        * an ``.npz`` with arrays ``X`` and ``y``;
        * an ``.npy`` 2-D array whose last column is the label;
        * a ``.csv`` table with a header and a label column, every other
          column numeric;
        * a ``.csv`` of (file name, label) whose first row names an image
          file beside it or in the subfolder named after it (read as
          ``labels`` for the CSV's folder);
        * a folder of image files with a labels CSV (see ``labels``);
        * a flat folder of image files without one: ``y`` is None;
        * a folder with one subfolder of images per class (the subfolder's
          name is the label).

        A folder is read in this order: a labels CSV if there is one, else its
        image files, else its class subfolders. Image files are those ending
        in one of ``diffrep.images.IMAGE_SUFFIXES``; hidden files are skipped.
    label_column : str, default="label"
        The label column of a CSV table or of a labels CSV.
    labels : str or os.PathLike, optional
        The CSV of (file name, label) for the images of the folder ``path``.
        When None, the first of ``path/labels.csv``, ``path/train.csv`` and,
        for a folder holding image files, ``<path>.csv`` and
        ``<path>_labels.csv`` (beside the folder) that exists is used. Its file-name column is the one named ``filename``,
        ``file``, ``image``, ``image_id``, ``id`` or ``path`` (any case), its
        label column ``label_column``; a CSV of two columns is read as (file
        name, label) whatever its header, or without a header when its first
        row names an image file. File names are looked up in ``path``, then in
        the subfolder named after the CSV (``train.csv`` -> ``train/``), and
        may omit their image suffix (Kaggle ids).

    Returns
    -------
    X : ndarray
        2-D for tables; for images, float32 ``(n, C, H, W)`` as
        :func:`diffrep.images.read_image_files` reads them with its defaults:
        integer images scaled to ``[0, 1]`` (16-bit ones keeping their
        levels), float images as they are, one channel when every image is
        grey (whatever mode it is stored in), else RGB (grey images then
        repeated, alpha dropped), and images of another size than the most
        common one cropped around their centre to its aspect ratio and
        resized to it (:func:`diffrep.images.conform_images`).
    y : ndarray of shape (n_samples,) or None
        Integers when every label reads as one, else floats when every label
        reads as a number, else strings; None for a folder without labels.

    Raises
    ------
    FileNotFoundError
        If ``path`` (or ``labels``) does not exist.
    ValueError
        If the file or folder cannot be read; the message names the file.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file or folder: {path}")
    if labels is not None:
        labels = Path(labels)
        if not labels.is_file():
            raise FileNotFoundError(f"labels: no such CSV file: {labels}")
        if not path.is_dir():
            raise ValueError(f"labels names a CSV of image file names, so path must be their folder; got {path}.")
        return _load_labelled_images(path, labels, label_column)
    if path.is_dir():
        files = _image_files(path)
        labels = _label_file(path, flat=bool(files))
        if labels is not None:
            return _load_labelled_images(path, labels, label_column)
        return (read_image_files(files), None) if files else _load_class_folders(path)
    if path.suffix in (".npz", ".npy"):
        return _load_numpy(path)
    if path.suffix == ".csv":
        if _names_images(path, label_column):
            return _load_labelled_images(path.parent, path, label_column)
        return _load_csv(path, label_column)
    raise ValueError(f"{path}: unsupported format; use .npz, .npy, .csv or a folder of class subfolders.")
