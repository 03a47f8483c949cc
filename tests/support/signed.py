"""Hand-made signed Renderbus requests (``Raw``, independent of rayfarm.sdk), to send what no SDK would,
and the paths they call."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping
from typing import Any

import httpx

from rayfarm.protocol import signing
from tests.support import taskjson
from tests.support.processes import Credentials, FarmServer

CREATE = "/api/render/submit/createTask"
UPLOAD = "/api/render/submit/taskJsonFile"
SUBMIT = "/api/render/submit/task"
STOP = "/api/rendering/task/renderingTask/stopTask"
START = "/api/rendering/task/renderingTask/startTask"
ABORT = "/api/render/handle/abandonTask"
DELETE = "/api/render/handle/deleteTask"
FULL_SPEED = "/api/render/handle/fullSpeedRendering"
OVERTIME = "/api/render/handle/setTaskOverTimeStop"
LEVEL = "/api/rendering/task/renderingTask/updateTaskUserLevel"
LIMIT = "/api/render/handle/updateTaskLimit"
LIST = "/api/render/handle/getTaskList/v2"
INFO = "/api/render/handle/queryTaskInfo/v2"
FRAMES = "/api/render/handle/queryTaskFrames"
PROFILE = "/api/render/setUp/queryUserProfile"
SETTING = "/api/render/setUp/queryUserSetting"
UPLOAD_INIT = "/api/rayfarm/file/uploadInit"
DOWNLOAD = "/api/rayfarm/file/download"
TREE = "/api/render/file/operate/getOutputUserDirFile"
THUMBNAIL = "/api/render/handle/loadingFrameThumbnail"
WEB = {"X-Rayfarm-Web": "1"}  # the header every dashboard call carries
UNKNOWN = 1_999_999_999  # a task id nobody has


def sign_headers(domain: str, path: str, body: Mapping, access_id: str, key: str, *, timestamp: int | None = None,
                 nonce: str | None = None, platform: str = "2") -> dict[str, str]:
    """The signed Renderbus headers of one request (a fresh nonce unless given)."""
    headers = {
        "accessId": access_id,
        "channel": "4",
        "platform": platform,
        "UTCTimestamp": str(int(time.time()) if timestamp is None else timestamp),
        "nonce": nonce or secrets.token_hex(8),
        "version": "2.0.0",
    }
    headers["signature"] = signing.sign(key, signing.string_to_sign(domain, path, headers, body))
    return headers


class Raw:
    """Signed requests by hand for one user of one farm."""

    def __init__(self, farm: FarmServer, user: Credentials | None = None):
        self.farm = farm
        self.user = user
        self.client = httpx.Client(timeout=30)

    def close(self) -> None:
        self.client.close()

    def headers(self, path: str, body: Any, *, access_id: str | None = None, key: str | None = None,
                timestamp: int | None = None, nonce: str | None = None, platform: str = "2") -> dict[str, str]:
        assert self.user is not None or (access_id and key)
        signable = body if isinstance(body, Mapping) else {}
        headers = sign_headers(self.farm.domain, path, signable,
                               access_id if access_id is not None else self.user.access_id,
                               key if key is not None else self.user.access_key, timestamp=timestamp, nonce=nonce,
                               platform=platform)
        headers["Content-Type"] = "application/json"
        return headers

    def send(self, path: str, body: Any = None, *, content: bytes | None = None,
             headers: dict[str, str] | None = None, **sign_options: Any) -> httpx.Response:
        """POST ``body`` (JSON) or ``content`` (raw bytes) to ``path``, signed unless ``headers`` are given."""
        body = {} if body is None else body
        if headers is None:
            headers = self.headers(path, body, **sign_options)
        if content is None:
            content = json.dumps(body).encode()
        return self.client.post(self.farm.url + path, content=content, headers=headers)

    def call(self, path: str, body: Any = None, **options: Any) -> dict:
        """Send and return the checked envelope (HTTP 200, a proper Renderbus answer)."""
        return check_envelope(self.send(path, body, **options))

    def refused(self, path: str, body: Any, code: int, *fragments: str, **options: Any) -> str:
        """A call that must be refused with ``code``, no data, and a sentence containing every fragment: the sentence."""
        answer = self.call(path, body, **options)
        assert answer["code"] == code, answer
        assert answer["data"] is None
        for fragment in fragments:
            assert fragment in answer["message"], answer["message"]
        return answer["message"]

    def ok(self, path: str, body: Any = None) -> Any:
        """A call that must succeed: its data."""
        answer = self.call(path, body)
        assert answer["code"] == 200, answer
        return answer["data"]

    def create(self, task_json: dict | None = None) -> int:
        """A created task with its task.json (a Blender task unless given), not submitted."""
        task_id = self.ok(CREATE, {"count": 1, "taskUserLevel": 50})["taskIdList"][0]
        self.ok(UPLOAD, {"taskId": task_id, "fileName": "task.json",
                         "content": taskjson.text(task_json or taskjson.blender(frames="1-4[1]"))})
        return task_id

    def submit(self, task_json: dict | None = None) -> int:
        """A submitted task (a Blender task of 4 frames unless given: its scene must be in the user's input)."""
        task_id = self.create(task_json)
        self.ok(SUBMIT, {"taskId": task_id})
        return task_id


def check_envelope(response: httpx.Response) -> dict:
    """Every answer is HTTP 200 with a full envelope; errors carry an English sentence, never a traceback."""
    assert response.status_code == 200, response.text[:500]
    payload = response.json()
    assert set(payload) >= {"version", "result", "code", "message", "data", "serverTime", "requestId"}, payload
    assert isinstance(payload["code"], int)
    assert payload["result"] is (payload["code"] == 200)
    assert payload["code"] != 500, payload
    message = payload["message"]
    assert isinstance(message, str) and message.strip(), payload
    if payload["code"] != 200:
        assert "Traceback" not in message and 'File "' not in message, message
        assert message.isascii() and len(message) > 15 and " " in message, message
    return payload
