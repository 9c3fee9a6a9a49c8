"""One content hash for checksums and fingerprints, used by every module that hashes."""

import ast
from pathlib import Path

import numpy as np

import diffrep
from diffrep._engine.hashing import hash_bytes, hash_json, new_hash
from diffrep._engine.training_config import fingerprint_array

PACKAGE = Path(diffrep.__file__).parent


def test_no_module_but_the_hashing_one_picks_a_hash_function():
    offences = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "hashing.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [alias.name for alias in node.names] if isinstance(node, (ast.Import, ast.ImportFrom)) else []
            if "hashlib" in names or "xxhash" in names or (isinstance(node, ast.ImportFrom) and node.module == "hashlib"):
                offences.append(f"{path.relative_to(PACKAGE)} imports a hash library")
            if isinstance(node, ast.Attribute) and ast.unparse(node) == "joblib.hash":
                offences.append(f"{path.relative_to(PACKAGE)} uses joblib.hash")
    assert offences == []


def test_the_incremental_hash_equals_the_one_shot_hash():
    digest = new_hash()
    digest.update(b"diff")
    digest.update(b"rep")
    assert digest.hexdigest() == hash_bytes(b"diffrep") != hash_bytes(b"diffrap")


def test_json_values_hash_by_content_not_by_order_or_container():
    assert hash_json({"a": 1, "b": [1, 2], "c": {3, 1}}) == hash_json({"c": {1, 3}, "b": (1, 2), "a": 1})
    assert hash_json({"a": 1}) != hash_json({"a": 2})


def test_array_fingerprints_follow_values_dtype_and_shape_not_memory_layout():
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert fingerprint_array(array) == fingerprint_array(np.asfortranarray(array))
    assert fingerprint_array(array) != fingerprint_array(array.reshape(4, 3))
    assert fingerprint_array(array) != fingerprint_array(array.astype(np.float64))
