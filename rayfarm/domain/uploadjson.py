"""upload.json: the files a task needs besides its scene (textures, caches), as the Renderbus client lists them.

``{"asset": [{"local": "D:/proj/tex/wood.png", "server": "/D/proj/tex/wood.png"}, ...]}``; ``server`` is the
farm-side path and wins over ``local`` (which is mapped the Renderbus way when ``server`` is missing).
"""

import json

from rayfarm.domain.paths import to_storage_path
from rayfarm.protocol.codes import ApiError, Code

MAX_ASSETS = 10_000


def asset_paths(content: str | None) -> list[str]:
    """Storage paths of the assets listed in upload.json (no duplicates, in order); [] without one."""
    if content is None or not content.strip():
        return []
    try:
        data = json.loads(content.lstrip("\ufeff"))
    except (ValueError, RecursionError):
        raise ApiError(Code.INVALID_PARAMETER, "upload.json is not valid JSON; fix it and upload it again.") from None
    items = data.get("asset", []) if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ApiError(Code.INVALID_PARAMETER, "upload.json must hold {\"asset\": [{\"local\": ..., \"server\": ...}]}.")
    if len(items) > MAX_ASSETS:
        raise ApiError(Code.INVALID_PARAMETER, f"upload.json lists more than {MAX_ASSETS} assets; pack them into fewer files.")
    paths: list[str] = []
    for index, item in enumerate(items):
        path = item.get("server") or item.get("local") if isinstance(item, dict) else None
        if not isinstance(path, str) or not path.strip():
            raise ApiError(Code.INVALID_PARAMETER, f"upload.json asset {index} has no \"local\" or \"server\" path.")
        mapped = to_storage_path(path)
        if mapped not in paths:
            paths.append(mapped)
    return paths
