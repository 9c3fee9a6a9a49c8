"""Files that readers never see half-written, and content checksums that tell a damaged file apart."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from .hashing import hash_bytes


def atomic_write(path, data):
    """Write ``data`` to ``path`` such that ``path`` is never left half-written.

    The bytes go to a temporary file ``.<name>.<random>.tmp`` in the same
    directory, which is flushed and fsynced, then moved over ``path`` with
    ``os.replace``. If anything fails (a full disk, a crash, a
    ``KeyboardInterrupt``), the temporary file is removed and the previous
    ``path`` is untouched.

    Parameters
    ----------
    path : str or os.PathLike
        The destination; its directory is created if needed.
    data : bytes
        The whole content.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_directory(path.parent)


def remove_stray_temporaries(path):
    """Delete the temporary files that killed :func:`atomic_write` calls for ``path`` left behind.

    Only the temporaries of this very destination are touched, so writes of
    other files in the same directory (by other processes) are never disturbed.

    Parameters
    ----------
    path : str or os.PathLike
        The destination whose ``.<name>.*.tmp`` leftovers are removed.
    """
    path = Path(path)
    if not path.parent.is_dir():
        return
    for stray in path.parent.glob(f".{path.name}.*.tmp"):
        with contextlib.suppress(OSError):
            stray.unlink()


def _fsync_directory(directory):
    """Make a rename in ``directory`` durable (POSIX only; elsewhere a no-op)."""
    if os.name != "posix":
        return
    handle = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def sealed(magic, payload):
    """``payload`` behind a header of ``magic`` and the payload's SHA-256, as written to disk.

    Parameters
    ----------
    magic : bytes
        Names the format and its version; one line, ending in ``b"\\n"``.
    payload : bytes

    Returns
    -------
    data : bytes
        ``magic + sha256(payload).hexdigest() + b"\\n" + payload``.
    """
    return magic + hash_bytes(payload).encode() + b"\n" + payload


def unsealed(magic, data):
    """The payload of :func:`sealed` data, after checking its header and checksum.

    Parameters
    ----------
    magic : bytes
        The expected format line.
    data : bytes
        What was read from disk.

    Returns
    -------
    payload : bytes

    Raises
    ------
    ValueError
        If the header is not ``magic`` (another format or version) or the
        payload's checksum differs from the recorded one (damaged bytes).
    """
    if not data.startswith(magic):
        raise ValueError("it is not in this format (or of another version)")
    checksum, newline, payload = data[len(magic) :].partition(b"\n")
    if not newline or hash_bytes(payload).encode() != checksum:
        raise ValueError("its checksum does not match its content: it is damaged")
    return payload
