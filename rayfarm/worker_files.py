"""File helpers shared by the server and the nodes: hashes, safe names, thumbnails."""

import hashlib
import os
import re
import threading
from pathlib import Path

THUMBNAIL_SIZE = (320, 320)
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._+#()-]{0,254}$")
_hash_cache: dict[tuple[str, int, int], str] = {}
_hash_lock = threading.Lock()


def safe_file_name(name: str) -> str | None:
    """A plain file name (no folders, no '..', no hidden files), or None."""
    if not name or "/" in name or "\\" in name or name in (".", "..") or not _SAFE.match(name):
        return None
    return name


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


def make_thumbnail(source: Path, target: Path) -> bool:
    """A JPEG thumbnail of an image Pillow can decode; False for anything else (no fake thumbnails)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(source) as image:
            image.thumbnail(THUMBNAIL_SIZE)
            target.parent.mkdir(parents=True, exist_ok=True)
            image.convert("RGB").save(target, "JPEG", quality=85)
        return True
    except (UnidentifiedImageError, OSError, ValueError):
        return False
