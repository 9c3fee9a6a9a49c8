"""The manifest of a saved directory: every file with its SHA-256, checked before anything is read.

``diffrep_manifest.json`` lists each file of the directory (by its path
relative to the directory, with ``/`` separators) and the checksum of its
bytes. A directory is accepted only when it holds exactly the listed files,
as regular files (no symbolic links), with those checksums: a flipped byte in
a weight file, a file truncated by a full disk, or a file swapped in from
another save is refused with the file's name, never loaded silently.
"""

from __future__ import annotations

import json
import os
from pathlib import Path, PurePosixPath

from .files import atomic_write, file_checksum

MANIFEST_NAME = "diffrep_manifest.json"
MANIFEST_FORMAT = "diffrep-manifest/1"


def _listed_files(directory):
    """Paths below ``directory`` relative to it (``/``-separated), symbolic links included, manifest excluded."""
    found = []
    for folder, subfolders, names in os.walk(directory):
        links = [name for name in subfolders if os.path.islink(os.path.join(folder, name))]
        for name in sorted(names + links):
            relative = PurePosixPath(Path(folder, name).relative_to(directory).as_posix())
            if str(relative) != MANIFEST_NAME and not name.startswith("."):
                found.append(str(relative))
    return sorted(found)


def write_manifest(directory):
    """List every file of ``directory`` with its checksum in ``diffrep_manifest.json``.

    Parameters
    ----------
    directory : pathlib.Path
        Written completely, and by this process only; hidden files (names
        starting with ``.``) are not listed.

    Raises
    ------
    ValueError
        If the directory holds a symbolic link.
    """
    files = {}
    for name in _listed_files(directory):
        path = directory / name
        if path.is_symlink():
            raise ValueError(f"{path} is a symbolic link; a saved directory holds regular files only.")
        files[name] = file_checksum(path)
    manifest = {"format": MANIFEST_FORMAT, "files": files}
    atomic_write(directory / MANIFEST_NAME, json.dumps(manifest, indent=2, sort_keys=True).encode())


def _read_manifest(path):
    try:
        manifest = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} cannot be read ({exc}); the save is damaged: save the featurizer again.") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise ValueError(f"{path} is not a diffrep manifest of format {MANIFEST_FORMAT!r}.")
    files = manifest.get("files")
    if not isinstance(files, dict) or not all(isinstance(value, str) for value in files.values()):
        raise ValueError(f"{path}: 'files' must map each file name to its SHA-256 checksum.")
    return files


def check_manifest(directory):
    """Raise ``ValueError`` unless ``directory`` holds exactly the files of its manifest, unchanged.

    Parameters
    ----------
    directory : pathlib.Path
        A directory with a ``diffrep_manifest.json``.

    Raises
    ------
    ValueError
        Naming the file at fault: one listed but missing, a symbolic link or
        not a regular file, one whose checksum differs, or one not listed.
    """
    files = _read_manifest(directory / MANIFEST_NAME)
    hint = "the save is damaged or was changed after it was written: save the featurizer again."
    for name, checksum in sorted(files.items()):
        relative = PurePosixPath(name)
        if relative.is_absolute() or ".." in relative.parts:
            raise ValueError(f"{directory / MANIFEST_NAME} lists {name!r}, which is not a file inside the directory.")
        path = directory.joinpath(*relative.parts)
        if path.is_symlink() or not path.is_file():
            problem = "is a symbolic link" if path.is_symlink() else "is missing or not a regular file"
            raise ValueError(f"{path} {problem}; {hint}")
        if file_checksum(path) != checksum:
            raise ValueError(f"{path} does not match its checksum in {MANIFEST_NAME}: {hint}")
    unlisted = sorted(set(_listed_files(directory)) - set(files))
    if unlisted:
        raise ValueError(f"{directory} holds files its {MANIFEST_NAME} does not list: {unlisted}; {hint}")
