"""Shared helpers of the integration tests: a farm per module, task.json, raw signed requests."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator, Mapping
from typing import Any

import httpx
import pytest

from rayfarm.protocol import signing
from tests.farmproc import Credentials, FarmServer, free_port

SCENE = "D:/proj/shots/shot010.blend"


def running_farm(tmp_path_factory: pytest.TempPathFactory, name: str = "farm", *args: str) -> Iterator[FarmServer]:
    """Start one real `rayfarm server` (extra ``args``) for a whole test module (see the module-scoped fixtures)."""
    server = FarmServer(tmp_path_factory.mktemp(name) / "farm", free_port(), extra_args=list(args))
    server.data_dir.mkdir()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def blender_task_json(scene: str = SCENE, frames: str = "1-10[1]", **task_info: str) -> dict:
    """A task.json for Blender as the official SDK's analysis writes it (all values are strings)."""
    info = {
        "task_id": "",
        "user_id": "",
        "project_name": "integration",
        "cg_id": "2007",
        "input_cg_file": scene,
        "input_project_path": "",
        "frames_per_task": "1",
        "pre_frames": "000",
        "stop_after_test": "2",
        "job_stop_time": "259200",
        "task_stop_time": "0",
        "time_out": "43200",
        "ram": "64",
        "os_name": "1",
    }
    info.update(task_info)
    return {
        "software_config": {"cg_name": "Blender", "cg_version": "4.2", "plugins": {}},
        "task_info": info,
        "scene_info": {
            "common": {
                "frames": frames,
                "width": "640",
                "height": "360",
                "Render_Format": "PNG",
                "Output_path": "D:/proj/render/",
                "camera_name": "Camera",
                "scene_name": "Scene",
            }
        },
    }


class Raw:
    """Hand-made signed requests (independent of rayfarm.sdk), to send what no SDK would."""

    def __init__(self, farm: FarmServer, user: Credentials | None = None):
        self.farm = farm
        self.user = user
        self.client = httpx.Client(timeout=30)

    def close(self) -> None:
        self.client.close()

    def headers(self, path: str, body: Any, *, access_id: str | None = None, key: str | None = None,
                timestamp: int | None = None, nonce: str | None = None, platform: str = "2") -> dict[str, str]:
        assert self.user is not None or (access_id and key)
        headers = {
            "accessId": access_id if access_id is not None else self.user.access_id,
            "channel": "4",
            "platform": platform,
            "UTCTimestamp": str(int(time.time()) if timestamp is None else timestamp),
            "nonce": nonce or secrets.token_hex(8),
            "version": "2.0.0",
        }
        signable = body if isinstance(body, Mapping) else {}
        message = signing.string_to_sign(self.farm.domain, path, headers, signable)
        headers["signature"] = signing.sign(key if key is not None else self.user.access_key, message)
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
        response = self.send(path, body, **options)
        return check_envelope(response)


class FakeNode:
    """A render node speaking the native API by hand: register (software, tags), lease, heartbeat with log lines,
    upload outputs, complete."""

    def __init__(self, farm, name: str, software: dict[str, str], tags: list[str]):
        self.http = httpx.Client(base_url=farm.url, timeout=30,
                                 headers={"Authorization": f"Bearer {farm.worker_token()}"})
        answer = self.post("register", {"name": name, "software": software, "tags": tags})
        self.id, self.session = answer["workerId"], answer["session"]
        self.http.headers.update({"X-Worker-Id": str(self.id), "X-Worker-Session": self.session})

    def post(self, call: str, body: dict) -> dict:
        response = self.http.post(f"/v1/worker/{call}", json=body)
        assert response.status_code == 200, response.text
        return response.json()

    def lease(self) -> list[dict]:
        return self.post("lease", {"workerId": self.id, "session": self.session, "max": 1})["leases"]

    def heartbeat(self, lease: dict, lines: list[str]) -> None:
        self.post("heartbeat", {"workerId": self.id, "session": self.session,
                                "running": [{"leaseId": lease["leaseId"], "progress": 50, "log": lines}]})

    def finish(self, lease: dict, outputs: dict[str, bytes] | None = None) -> None:
        for name, content in (outputs or {}).items():
            response = self.http.put(f"/v1/worker/output/{lease['leaseId']}/{name}", content=content)
            assert response.status_code == 200, response.text
        answer = self.post("complete", {"workerId": self.id, "session": self.session, "leaseId": lease["leaseId"],
                                        "result": "done", "outputs": list(outputs or {})})
        assert answer["accepted"] is True

    def close(self) -> None:
        self.http.close()


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
