"""The response envelope every Renderbus answer is wrapped in, and the JSON object every request carries."""

import json
import time
import uuid
from typing import Any

from rayfarm.protocol.codes import ApiError, Code

VERSION = "1.0.0"


def envelope(code: int, message: str, data: Any = None, request_id: str | None = None) -> dict:
    return {
        "version": VERSION,
        "result": code == 200,
        "code": int(code),
        "message": message,
        "data": data,
        "serverTime": int(time.time() * 1000),
        "requestId": request_id or uuid.uuid4().hex,
    }


def success(data: Any = None, request_id: str | None = None) -> dict:
    return envelope(200, "success", data, request_id)


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    """A JSON object whose keys are all different: with a key twice, what is signed and what is used could differ."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        twice = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise _DuplicateKey(twice)
    return obj


def json_object(raw: bytes) -> dict:
    """A request body: a JSON object (empty body = {}); 600 with a sentence otherwise."""
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw, object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:
        raise ApiError(Code.INVALID_PARAMETER, f"The request body names {str(exc)[:64]!r} twice; send each key "
                                               f"once.") from None
    except (ValueError, RecursionError):
        raise ApiError(Code.INVALID_PARAMETER, "The request body is not valid JSON; send a JSON object.") from None
    if not isinstance(body, dict):
        raise ApiError(Code.INVALID_PARAMETER, "The request body must be a JSON object, like {\"taskIds\": [1]}.")
    return body
