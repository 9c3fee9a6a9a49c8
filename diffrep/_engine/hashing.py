"""The one content hash of diffrep: SHA-256, for file checksums and training fingerprints alike.

(The per-sample noise keys of :mod:`.noise` are not content hashes: they are
computed on the device, vectorized, and feed a counter-based generator.)
"""

from __future__ import annotations

import hashlib
import json


def new_hash():
    """A fresh incremental hash; feed it with ``update(bytes)`` and read ``hexdigest()``.

    Returns
    -------
    hash : hashlib._Hash
    """
    return hashlib.sha256()


def hash_bytes(data):
    """The hex digest of ``data``.

    Parameters
    ----------
    data : bytes-like

    Returns
    -------
    digest : str
    """
    return hashlib.sha256(data).hexdigest()


def hash_json(value):
    """The hex digest of a JSON-like value, independent of dict order and of list-versus-tuple.

    Parameters
    ----------
    value : dict, list, str, number, bool or None
        Sets are hashed sorted; any other object by its ``repr``.

    Returns
    -------
    digest : str
    """
    return hash_bytes(json.dumps(value, sort_keys=True, default=_jsonable).encode())


def _jsonable(value):
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    return repr(value)
