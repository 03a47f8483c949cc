"""upload.json: the files a task needs besides its scene (textures, caches), as the Renderbus client lists them.

``{"asset": [{"local": "D:/proj/tex/wood.png", "server": "/D/proj/tex/wood.png"}, ...]}``, as the official SDK's
``append_to_upload`` writes it: ``server`` is ``local`` with ``\\`` turned into ``/`` and, for a drive path, the
colon dropped and a ``/`` put in front (``d:/p/a`` → ``/d/p/a``, the case kept); any other path just loses its
first character (``/home/u/a.blend`` → ``home/u/a.blend``, no leading ``/``).

Where an entry is kept on the farm: where its ``local`` path maps (exactly as task.json's ``input_cg_file``
maps, drive letters upper-cased), unless ``server`` is hand-written (not what the SDK derives from ``local``):
then ``server``, with or without its leading ``/``. An entry may name a folder (every file under it counts);
``{"asset": []}`` lists nothing.
"""

import json
import re

from rayfarm.domain.paths import to_storage_path
from rayfarm.protocol.codes import ApiError, Code

MAX_ASSETS = 10_000
_DRIVE = re.compile(r"^[A-Za-z]:(/|$)")


def derived_server(local: str) -> str:
    """The ``server`` value the official SDK writes for ``local`` (``rayvision_api.utils.convert_path``)."""
    text = local.replace("\\", "/")
    if text[1:2] == ":":
        return "/" + text.replace(":", "")
    return text[1:]


def _same_as_derived(local: str, server: str) -> bool:
    derived = derived_server(local)
    if server == derived:
        return True
    # a drive letter typed in another case: "/d/p/a" for local "D:/p/a"
    return (_DRIVE.match(local.replace("\\", "/")) is not None and len(server) >= 2
            and server[:2].lower() == derived[:2].lower() and server[2:] == derived[2:])


def _server_path(server: str) -> str:
    """A ``server`` value as an absolute path: the official POSIX form has no leading ``/``."""
    if _DRIVE.match(server) or server.startswith("//"):
        return server
    return "/" + server.lstrip("/")


def upload_target(local: str | None, server: str | None) -> str:
    """The path an upload.json entry is kept under, in the form ``paths.to_storage_path`` maps (not checked here)."""
    text = server.replace("\\", "/").strip() if isinstance(server, str) else ""
    if local and isinstance(local, str) and local.strip():
        if text and not _same_as_derived(local.strip(), text):
            return _server_path(text)
        return local.strip()
    return _server_path(text)


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
        local, server = (item.get("local"), item.get("server")) if isinstance(item, dict) else (None, None)
        if not any(isinstance(p, str) and p.strip() for p in (local, server)):
            raise ApiError(Code.INVALID_PARAMETER, f"upload.json asset {index} has no \"local\" or \"server\" path.")
        try:
            mapped = to_storage_path(upload_target(local if isinstance(local, str) else None, server))
        except ApiError as exc:
            raise ApiError(exc.code, f"upload.json asset {index}: {exc.message}") from None
        if mapped not in paths:
            paths.append(mapped)
    return paths
