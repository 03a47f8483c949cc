"""sha256 of files: the farm, its nodes and the SDK check every transfer with it."""

import hashlib
import os
import threading
from pathlib import Path

_hash_cache: dict[tuple[str, int, int], str] = {}
_hash_lock = threading.Lock()


def hash_file(path: Path) -> str:
    """sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    """sha256 of a file, cached by (path, size, mtime)."""
    stat = os.stat(path)
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    with _hash_lock:
        if key in _hash_cache:
            return _hash_cache[key]
    value = hash_file(path)
    with _hash_lock:
        if len(_hash_cache) > 10_000:
            _hash_cache.clear()
        _hash_cache[key] = value
    return value
