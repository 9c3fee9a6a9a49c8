"""Files that readers never see half-written, and content checksums that tell a damaged file apart."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import tempfile
from pathlib import Path

from .hashing import hash_bytes, new_hash


def _process_umask():
    """The process's file-creation mask (read once, at import, when no other thread creates files)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# Files and directories made here get the permissions an ordinary ``open``/``mkdir`` gives,
# not the owner-only ones of ``tempfile``: a saved model is as readable as any other file.
_UMASK = _process_umask()
_FILE_MODE = 0o666 & ~_UMASK
_DIRECTORY_MODE = 0o777 & ~_UMASK


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
        if hasattr(os, "fchmod"):
            os.fchmod(handle, _FILE_MODE)
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


def file_checksum(path):
    """The SHA-256 hex digest of a file's content, read in blocks.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    checksum : str
    """
    digest = new_hash()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def staged_directory(destination):
    """A fresh directory beside ``destination`` that becomes ``destination`` when the block succeeds.

    The block writes into the yielded temporary directory
    ``.<name>.staged-<random>``; on success its files are fsynced and it is
    moved into place by :func:`replace_directory`, so readers see either the
    whole previous directory or the whole new one. If the block raises (a full
    disk, a ``KeyboardInterrupt``), the temporary directory is removed and
    ``destination`` is untouched.

    Parameters
    ----------
    destination : pathlib.Path
        Not a symbolic link; its parent is created if needed.

    Yields
    ------
    staging : pathlib.Path
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.staged-", dir=destination.parent))
    try:
        os.chmod(staging, _DIRECTORY_MODE)
        yield staging
        _fsync_tree(staging)
        replace_directory(staging, destination)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def replace_directory(source, destination):
    """Move the directory ``source`` to ``destination``, replacing whatever directory is there.

    A missing or empty ``destination`` is replaced by one ``rename``. A full
    one is swapped with ``source`` in one step where the system can
    (``renameat2(RENAME_EXCHANGE)`` on Linux); elsewhere it is first renamed
    aside to ``.<name>.replaced-<random>``, so a crash between the two renames
    leaves the previous directory there, whole. The previous content is then
    deleted. Symbolic links inside it are removed, never followed.

    Parameters
    ----------
    source : pathlib.Path
        A directory on the same file system as ``destination``.
    destination : pathlib.Path
        Not a symbolic link.
    """
    if not _replace_if_empty(source, destination):
        _swap_in(source, destination)
    _fsync_directory(destination.parent)


def _swap_in(source, destination):
    """Put ``source`` in the place of the full directory ``destination``, then delete the previous content."""
    if _exchange(source, destination):
        shutil.rmtree(source)  # it holds the previous content now
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{destination.name}.replaced-", dir=destination.parent))
    os.replace(destination, aside)
    try:
        os.replace(source, destination)
    except BaseException:
        os.replace(aside, destination)
        raise
    shutil.rmtree(aside)


def _replace_if_empty(source, destination):
    """Rename ``source`` to a missing or empty ``destination``; False when ``destination`` holds files."""
    if destination.exists() and any(destination.iterdir()):
        return False
    try:
        os.replace(source, destination)
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
        return False  # another process filled it meanwhile
    return True


def _exchange(first, second):
    """Swap two paths atomically; False where the system offers no such call."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None) if os.name == "posix" else None
    if renameat2 is None:
        return False
    at_current_directory, rename_exchange = -100, 2
    if renameat2(at_current_directory, os.fsencode(first), at_current_directory, os.fsencode(second),
                 rename_exchange) == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False  # an old kernel, or a file system without the call
    raise OSError(error, os.strerror(error), os.fspath(second))


def _fsync_tree(directory):
    """Make every file and directory below ``directory`` durable before it is renamed into place."""
    if os.name != "posix":
        return
    for folder, _, names in os.walk(directory):
        for name in names:
            handle = os.open(os.path.join(folder, name), os.O_RDONLY | os.O_NOFOLLOW)
            try:
                os.fsync(handle)
            finally:
                os.close(handle)
        _fsync_directory(folder)
