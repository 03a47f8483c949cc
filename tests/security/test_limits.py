"""Oversized bodies and absurd counts are refused before any work, and every key has a rate limit.

The rate-limit farm runs with `--rate-limit 2 --rate-burst 5` (rayfarm/server/ratelimit.py): a key may
send 5 requests at once, then 2 per second. Assertions only use counts that hold however slow the
machine is (a burst of 30 requests sent back to back cannot all pass).
"""

import hashlib
import json
import secrets

import httpx
import pytest

from tests.support import taskjson
from tests.support.fake_node import Node
from tests.support.farms import make_users, running_farm
from tests.support.signed import CREATE, PROFILE, SUBMIT, UPLOAD, Raw, check_envelope
from tests.support.snapshots import db_snapshot, diff

BURST = 30


@pytest.fixture(scope="module")
def alice(farm):
    (user,) = make_users(farm, "lima")
    farm.input_file(user, "D:/proj/shots/shot010.blend")
    raw = Raw(farm, user)
    yield raw
    raw.close()


# ------------------------------------------------------------------ absurd counts


@pytest.mark.parametrize("path, body, field", [
    (CREATE, {"count": 10**9}, "count"),
    (CREATE, {"count": 1001}, "count"),
    (CREATE, {"count": 1, "labels": ["x"] * 51}, "labels"),
    ("/api/render/handle/getTaskList/v2", {"pageSize": 10**9}, "pageSize"),
    ("/api/render/handle/getTaskList/v2", {"pageNum": 10**12}, "pageNum"),
    ("/api/render/handle/queryTaskFrames", {"taskId": 1, "pageSize": 10**9}, "pageSize"),
    ("/api/render/handle/queryTaskInfo/v2", {"taskIds": list(range(1, 1002))}, "taskIds"),
    ("/api/rendering/task/renderingTask/stopTask", {"taskIds": list(range(1, 1002))}, "taskIds"),
    ("/api/render/handle/recommitTaskFrames", {"taskId": 1, "ids": list(range(1, 100_002))}, "ids"),
    ("/api/rayfarm/task/log", {"taskId": 1, "frameId": 1, "tail": 10**9}, "tail"),
    ("/api/rayfarm/file/uploadInit", {"localPath": "D:/a.bin", "size": 10**15, "sha256": "0" * 64}, "size"),
    ("/api/render/handle/setTaskOverTimeStop", {"taskIds": [1], "overTime": 10**12}, "overTime"),
])
def test_absurd_counts_are_refused_naming_the_field(farm, alice, path, body, field):
    before = db_snapshot(farm)
    answer = alice.call(path, body)
    assert answer["code"] == 600 and repr(field) in answer["message"], answer
    assert diff(before, db_snapshot(farm)) == {}


@pytest.mark.parametrize("frames, code", [
    ("1-1000000000", 600),           # 10^9 frames: the number does not even parse
    ("1-999999999", 600),            # frame numbers above 10^7
    ("0-9999999", 511),              # 10^7 frames: more than a task may have
    ("1-9999999[1]", 511),
    (",".join(str(i) for i in range(1, 20_002)), 600),  # too many items
    ("1-5000000,5000001-9999999", 511),
])
def test_huge_frame_ranges_are_refused_before_any_chunk_exists(farm, alice, frames, code):
    task_id = alice.ok(CREATE, {"count": 1})["taskIdList"][0]
    alice.ok(UPLOAD, {"taskId": task_id, "fileName": "task.json", "content": json.dumps(taskjson.blender(frames=frames))})
    before = db_snapshot(farm)
    answer = alice.call(SUBMIT, {"taskId": task_id})
    assert answer["code"] == code, answer
    assert diff(before, db_snapshot(farm)) == {}  # no frame rows, the task still unsubmitted


def test_oversized_signed_body_is_refused_while_reading(farm, alice):
    before = db_snapshot(farm)
    headers = alice.headers(CREATE, {})
    big = b'{"count": 1, "pad": "' + b"x" * (9 * 1024 * 1024) + b'"}'
    assert alice.call(CREATE, None, content=big, headers=headers)["code"] == 600

    def stream():  # no Content-Length: the limit holds while the body arrives
        yield b'{"count": 1, "pad": "'
        for _ in range(9):
            yield b"x" * (1024 * 1024)
        yield b'"}'

    answer = check_envelope(alice.client.post(farm.url + CREATE, content=stream(), headers=alice.headers(CREATE, {})))
    assert answer["code"] == 600 and "MiB" in answer["message"]
    assert diff(before, db_snapshot(farm)) == {}


def test_oversized_worker_body_is_refused_while_reading(farm, alice):
    node = Node(farm, "big-body")
    before = db_snapshot(farm)
    body = json.dumps({"workerId": node.id, "session": node.session, "running": [],
                       "pad": "x" * (17 * 1024 * 1024)}).encode()
    response = node.http.post("/v1/worker/heartbeat", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and "16 MiB" in response.json()["error"]

    def stream():
        yield b'{"pad": "'
        for _ in range(17):
            yield b"x" * (1024 * 1024)
        yield b'"}'

    response = node.http.post("/v1/worker/heartbeat", content=stream())
    assert response.status_code == 413
    assert diff(before, db_snapshot(farm)) == {}
    node.close()


def test_upload_beyond_its_declared_size_is_cut_off(farm, alice):
    content = b"abc"
    answer = alice.ok("/api/rayfarm/file/uploadInit", {"localPath": "D:/limits/a.bin", "size": len(content),
                                                         "sha256": hashlib.sha256(content).hexdigest()})
    response = httpx.put(farm.url + answer["url"] + "?offset=0", content=b"x" * (1024 * 1024), timeout=30)
    assert response.status_code == 400 and "declared size" in response.json()["error"]
    part = farm.data_dir / "storage" / str(alice.user.user_id) / "uploads" / answer["uploadId"]
    assert not part.exists() or part.stat().st_size == 0
    assert not (farm.data_dir / "storage" / str(alice.user.user_id) / "input" / "D" / "limits" / "a.bin").exists()


def test_worker_counts_are_bounded(farm, alice):
    node = Node(farm, "counts")
    for body in ({"max": 10**9}, {"wait": 10**9}, {"workerId": 2**70}, {"max": -1}):
        response = node.http.post("/v1/worker/lease", json={"workerId": node.id, "session": node.session, **body})
        assert response.status_code == 422, (body, response.text)
    response = node.http.post("/v1/worker/register", json={"name": "n", "memory": 2**80})
    assert response.status_code == 422
    node.close()


# ------------------------------------------------------------------ rate limit


@pytest.fixture(scope="module")
def slow_farm(tmp_path_factory):
    yield from running_farm(tmp_path_factory, "rate-limit", "--rate-limit", "2", "--rate-burst", "5")


def test_a_key_over_its_rate_gets_429_with_a_sentence_and_others_are_not_slowed(slow_farm):
    carol, dan = make_users(slow_farm, "carol", "dan")
    raw_carol, raw_dan = Raw(slow_farm, carol), Raw(slow_farm, dan)
    codes, messages = [], set()
    before = db_snapshot(slow_farm)
    for _ in range(BURST):
        answer = raw_carol.call(CREATE, {"count": 1})
        codes.append(answer["code"])
        if answer["code"] != 200:
            messages.add(answer["message"].split(" and try again")[0])
    assert set(codes) == {200, 429} and codes[:5] == [200] * 5, codes
    assert messages == {"Too many requests from this access id; slow down to 2 per second"}, messages
    refused = codes.count(429)
    tasks = json.loads(json.dumps(db_snapshot(slow_farm)["tasks"]))
    assert len(tasks) - len(before["tasks"]) == BURST - refused  # a refused call did nothing
    assert raw_dan.call(PROFILE, {})["code"] == 200  # another key has its own bucket
    raw_carol.close()
    raw_dan.close()


def test_bad_signature_and_unknown_id_floods_are_limited_per_address(slow_farm):
    (erin,) = make_users(slow_farm, "erin")
    raw = Raw(slow_farm, erin)
    assert raw.call(PROFILE, {})["code"] == 200  # erin's id is known to the server from now on
    codes = [raw.call(PROFILE, {}, access_id="AKID" + secrets.token_hex(6), key="guess")["code"] for _ in range(BURST)]
    assert set(codes) == {602, 429}, codes
    assert raw.call(PROFILE, {})["code"] == 200  # a known key is not slowed by the address's bad attempts
    codes = [raw.call(PROFILE, {}, key="wrong")["code"] for _ in range(BURST)]
    assert set(codes) == {611, 429}, codes  # a known id with bad signatures spends that id's tokens
    raw.close()


def test_native_api_answers_429_with_retry_after(slow_farm):
    with httpx.Client(base_url=slow_farm.url, timeout=30) as http:
        statuses = []
        for _ in range(BURST):
            response = http.post("/v1/worker/heartbeat", json={},
                                 headers={"Authorization": "Bearer " + secrets.token_urlsafe(16)})
            statuses.append(response.status_code)
            if response.status_code == 429:
                assert int(response.headers["Retry-After"]) >= 1
                assert response.json()["error"].startswith("Too many requests from this address with a wrong worker "
                                                            "token; slow down to 2 per second")
        assert 429 in statuses and set(statuses) <= {401, 429}, statuses
    make_users(slow_farm)  # the worker token
    node = Node(slow_farm, "busy")  # a node with the right token is not slowed by the bad attempts
    statuses = [node.http.post("/v1/worker/heartbeat", json={"workerId": node.id, "session": node.session}).status_code
                for _ in range(BURST)]
    assert set(statuses) == {200, 429}, statuses
    node.close()
