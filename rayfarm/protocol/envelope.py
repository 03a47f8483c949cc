"""The response envelope every Renderbus answer is wrapped in."""

import time
import uuid
from typing import Any

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
