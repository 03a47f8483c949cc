"""Every route of both APIs refuses whoever may not use it, with the right code, and changes nothing.

The routes are enumerated from the application itself (`make_app(...).routes`, the signed route table
`TABLE`, `nodes.http_routes`, `files.http_routes`): a route added without a place here fails
`test_every_route_of_the_app_is_covered`.
"""

import re
import secrets
import time

import httpx
import pytest

from rayfarm.app import make_app
from rayfarm.config import Settings
from rayfarm.server import files, nodes
from rayfarm.server.farm import Farm
from rayfarm.server.table import TABLE
from rayfarm.store.db import sqlite_url
from tests.farmproc import wait_for
from tests.security.support import (
    SCENE,
    Node,
    Raw,
    check_envelope,
    command_task,
    db_snapshot,
    diff,
    file_snapshot,
    make_users,
    ok,
    submitted_task,
)

UNKNOWN = 1_999_999_999
PROFILE = "/api/render/setUp/queryUserProfile"
TASK_RECORD = "/api/render/handle/operate/sdk/taskRecord"

# Routes anyone may call: liveness and Prometheus metrics (counts only, no user data).
PUBLIC = {"/healthz", "/metrics"}
SIGNED_PREFIX = "/api/{rest:path}"  # the dispatcher of every route in TABLE
UPLOAD_ROUTES = {"/v1/upload/{upload_id}"}  # the unguessable upload id is the capability
# The dashboard (rayfarm/web): the page and its static files are public; everything else needs the session
# cookie from /web/signin, and /web/api/<path> runs the signed route /api/<path> (same TABLE) for it.
WEB_PUBLIC = {"/", "/web/static"}
# a task's output files, their zip and previews (rayfarm/web/outputs.py): GET with the session cookie
WEB_FILES = {"/web/tasks/{task_id:int}/outputs/{name}", "/web/tasks/{task_id:int}/outputs.zip",
             "/web/tasks/{task_id:int}/contact-sheet.jpg", "/web/tasks/{task_id:int}/preview.mp4"}
WEB_SESSION = {"/web/me", "/web/counts", "/web/thumbnails/{task_id:int}/{frame_id:int}/{name}", *WEB_FILES}
WEB_SIGN = {"/web/signin", "/web/signout", "/web/signout-everywhere"}
WEB_API = "/web/api/{rest:path}"
WEB = {"X-Rayfarm-Web": "1"}


# ------------------------------------------------------------------ the world the requests aim at


@pytest.fixture(scope="module")
def farm(shared_farm):
    return shared_farm


@pytest.fixture(scope="module")
def world(farm):
    alice, bob, dave = make_users(farm, "alice", "bob", "dave", disabled=("dave",), commands=("alice",))
    farm.input_file(alice, SCENE)
    raw_alice, raw_bob, raw_dave = Raw(farm, alice), Raw(farm, bob), Raw(farm, dave)
    waiting = submitted_task(raw_alice)
    created = ok(raw_alice, "/api/render/submit/createTask", {"count": 1})["taskIdList"][0]
    ok(raw_alice, "/api/render/submit/taskJsonFile", {"taskId": created, "fileName": "task.json", "content": "{}"})
    ok(raw_alice, "/api/render/handle/addTaskLabel", {"taskIds": [waiting], "label": "keep"})
    ok(raw_alice, "/api/render/project/add", {"newName": "alpha"})
    frame = ok(raw_alice, "/api/render/handle/queryTaskFrames", {"taskId": waiting})["items"][0]["id"]
    ok(raw_alice, "/api/render/plugin/addUserPluginConfig", {**ENV, "editName": "studio"})
    yield {"alice": alice, "bob": bob, "raw": raw_alice, "raw_bob": raw_bob, "raw_dave": raw_dave,
           "waiting": waiting, "created": created, "frame": frame}
    for client in (raw_alice, raw_bob, raw_dave):
        client.close()


ENV = {"cgId": 2007, "cgName": "Blender", "cgVersion": "3.4", "renderSystem": 0, "pluginIds": []}


def bodies(w: dict) -> dict[str, dict]:
    """For every signed route: a body that, from its owner with valid credentials, would be accepted."""
    waiting, created, frame = w["waiting"], w["created"], w["frame"]
    return {
        "/api/render/setUp/queryUserProfile": {},
        "/api/render/setUp/queryUserSetting": {},
        "/api/render/transfer/getBid": {},
        "/api/render/common/queryPlatforms": {"zone": 1},
        "/api/render/submit/createTask": {"count": 1, "taskUserLevel": 50, "cloneOriginalId": waiting},
        "/api/render/submit/taskJsonFile": {"taskId": created, "fileName": "upload.json", "content": "{}"},
        "/api/render/submit/task": {"taskId": waiting},
        "/api/rendering/task/renderingTask/stopTask": {"taskIds": [waiting]},
        "/api/rendering/task/renderingTask/startTask": {"taskIds": [waiting]},
        "/api/render/handle/abandonTask": {"taskIds": [waiting]},
        "/api/render/handle/deleteTask": {"taskIds": [created]},
        "/api/render/handle/fullSpeedRendering": {"taskIds": [waiting]},
        "/api/render/handle/setTaskOverTimeStop": {"taskIds": [waiting], "overTime": 60},
        "/api/rendering/task/renderingTask/updateTaskUserLevel": {"taskId": waiting, "taskUserLevel": 90},
        "/api/render/handle/updateTaskLimit": {"taskId": waiting, "taskLimit": 3},
        "/api/render/handle/addTaskLabel": {"taskIds": [waiting], "label": "intruder"},
        "/api/render/handle/deleteTaskLabel": {"taskIds": [waiting], "labelNames": ["keep"]},
        "/api/render/handle/getTaskList/v2": {"pageNum": 1, "pageSize": 10},
        "/api/render/handle/queryTaskInfo/v2": {"taskIds": [waiting]},
        "/api/render/handle/queryTaskFrames": {"taskId": waiting},
        "/api/render/handle/queryAllFrameStats": {},
        "/api/render/project/list": {},
        "/api/render/project/getList": {},
        "/api/render/project/add": {"newName": "intruder"},
        "/api/render/project/delete": {"delName": "alpha"},
        "/api/render/handle/recommitTasks": {"taskIds": [waiting]},
        "/api/render/handle/recommitTaskFrames": {"taskId": waiting, "ids": [frame]},
        "/api/render/handle/stopTaskFrames": {"taskId": waiting, "ids": [frame]},
        "/api/render/handle/loadingFrameThumbnail": {"id": frame},
        "/api/render/file/operate/getOutputUserDirFile": {"taskId": waiting},
        "/api/rayfarm/task/log": {"taskId": waiting, "frameId": frame},
        "/api/render/handle/showLog": {"renderingType": "render", "pageNum": 1, "pageSize": 1, "id": frame},
        "/api/render/handle/loadTaskProcessImg": {"taskId": waiting},
        "/api/render/plugin/querySoftwareDetail": {"cgId": 2007, "osName": "linux"},
        "/api/render/plugin/querySoftwareList": {},
        "/api/render/hardwareConfig/list": {"cloneTask": "false", "taskIds": [waiting]},
        "/api/render/handle/editTaskHardwareConfig": {"taskIds": [waiting], "hardwareConfigIds": ["1"],
                                                      "model": "Default", "gpuNum": "", "ram": "128GB"},
        "/api/render/submit/getUserPackNodeInfo": {},
        "/api/rayfarm/file/download": {"path": "/x.png"},
        "/api/rayfarm/file/uploadInit": {"localPath": "D:/proj/intruder.blend", "size": 3, "sha256": "0" * 64},
        "/api/rayfarm/task/outputs": {"taskId": waiting},
        "/api/rayfarm/task/preview": {"taskId": waiting, "kind": "sheet"},
        "/api/rayfarm/worker/list": {},
        "/api/rayfarm/worker/setMode": {"workerIds": [1], "mode": "disable"},
        "/api/rayfarm/farm/summary": {},
        "/api/render/setUp/updateUserSetting": {"taskOverTimeSec": 3600},
        "/api/render/plugin/addUserPluginConfig": {**ENV, "editName": "intruder"},
        "/api/render/plugin/editUserPluginConfig": {**ENV, "cgVersion": "4.2", "editName": "studio"},
        "/api/render/plugin/deleteUserPluginConfig": {"editName": "studio"},
        "/api/render/plugin/setDefaultUserPluginConfig": {"editName": "studio"},
        "/api/render/plugin/getUserPluginConfig": {"osName": 0},
        "/api/render/handle/operate/sdk/taskRecord": {"pageNum": 1, "pageSize": 10, "platform": 2, "taskIds": [waiting]},
        "/api/render/handle/operate/sdk/loginRecord": {"pageNum": 1, "pageSize": 10},
        "/api/render/submit/queryAnalyseErrorDetail": {"code": "46003", "language": 1},
        "/api/render/transfer/getConfig": {},
        "/api/render/transfer/getServerInfo": {"zone": 1},
        "/api/render/transfer/getRaySyncUserKey": {},
    }


# Signed routes that take one of the caller's task (or frame) ids: another user's id must answer exactly
# like an id that does not exist. The others name no task: they only ever see the caller's own data
# (their answers are checked for alice's ids below) or are admin-only.
NO_TASK_ID = {
    "/api/render/setUp/queryUserProfile", "/api/render/setUp/queryUserSetting", "/api/render/transfer/getBid",
    "/api/render/common/queryPlatforms", "/api/render/handle/getTaskList/v2", "/api/render/handle/queryAllFrameStats",
    "/api/render/project/list", "/api/render/project/getList", "/api/render/project/add",
    "/api/render/project/delete", "/api/rayfarm/file/download", "/api/rayfarm/file/uploadInit",
    "/api/rayfarm/worker/list", "/api/rayfarm/worker/setMode", "/api/rayfarm/farm/summary",
    "/api/render/setUp/updateUserSetting", "/api/render/plugin/addUserPluginConfig",
    "/api/render/plugin/getUserPluginConfig", "/api/render/handle/operate/sdk/loginRecord",
    "/api/render/submit/queryAnalyseErrorDetail", "/api/render/transfer/getConfig",
    "/api/render/transfer/getServerInfo", "/api/render/transfer/getRaySyncUserKey",
    "/api/render/plugin/querySoftwareDetail", "/api/render/plugin/querySoftwareList",
    "/api/render/submit/getUserPackNodeInfo",
}
# Routes that name one of the caller's render environments (editName): another user's name answers exactly
# like a name nobody has (404). They take the ID rules below with the names compared as NAME.


def native_calls(w: dict) -> dict[str, tuple[str, str, dict | None]]:
    """For every native route: (method, URL path, JSON body) that a node with the token could send."""
    return {
        "/v1/worker/register": ("POST", "/v1/worker/register", {"name": "intruder", "software": {"command": ""}}),
        "/v1/worker/lease": ("POST", "/v1/worker/lease", {"workerId": 1, "session": "s", "max": 5}),
        "/v1/worker/heartbeat": ("POST", "/v1/worker/heartbeat", {"workerId": 1, "session": "s", "running": []}),
        "/v1/worker/complete": ("POST", "/v1/worker/complete", {"workerId": 1, "session": "s", "leaseId": "l",
                                                                "result": "done"}),
        "/v1/worker/output/{lease_id}/{file_name}": ("PUT", "/v1/worker/output/lease/out.png", None),
        "/v1/worker/scene/{frame_id:int}": ("GET", f"/v1/worker/scene/{w['frame']}", None),
        "/v1/worker/input/{frame_id:int}/{index:int}": ("GET", f"/v1/worker/input/{w['frame']}/0", None),
    }


@pytest.fixture(scope="module")
def app_routes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inventory")
    farm = Farm(Settings(data_dir=folder, database_url=sqlite_url(folder)))
    yield farm, make_app(farm).routes
    farm.db.dispose()


def test_every_route_of_the_app_is_covered(app_routes, world):
    farm, routes = app_routes
    native = {r.path for r in nodes.http_routes(farm)}
    uploads = {r.path for r in files.http_routes(farm)}
    assert native == set(native_calls(world)), "a native route has no place in native_calls()"
    assert uploads == UPLOAD_ROUTES
    covered = PUBLIC | native | uploads | {SIGNED_PREFIX} | WEB_PUBLIC | WEB_SESSION | WEB_SIGN | {WEB_API}
    served = {getattr(r, "path", repr(r)) for r in routes}
    assert served <= covered, f"routes the security matrix does not cover: {sorted(served - covered)}"
    assert set(bodies(world)) == set(TABLE), "a signed route has no body in bodies()"
    assert set(TABLE) >= NO_TASK_ID


# ------------------------------------------------------------------ signed routes: who is refused


def _variants(w: dict, token: str) -> list[tuple[str, int, dict]]:
    """(name, expected code, options for Raw.send) for one signed route."""
    now = int(time.time())
    return [
        ("no credentials", 602, {"headers": {"Content-Type": "application/json"}}),
        ("worker token as bearer", 602, {"headers": {"Authorization": f"Bearer {token}",
                                                     "Content-Type": "application/json"}}),
        ("unknown access id", 602, {"access_id": "AKIDnobody" + secrets.token_hex(4), "key": "whatever"}),
        ("bad signature", 611, {"key": "not-" + w["alice"].access_key}),
        ("worker token as access key", 611, {"key": token}),
        ("timestamp an hour old", 610, {"timestamp": now - 3600}),
        ("timestamp an hour ahead", 610, {"timestamp": now + 3600}),
        ("timestamp just outside the window", 610, {"timestamp": now - 400}),
    ]


def _moved_into_the_body(raw: Raw, path: str, body: dict, name: str, signed_value: str, sent_value: str):
    """A request signed with ``name`` = ``signed_value``, sent with the header changed to ``sent_value`` and
    the signed value in the body, where the SDK's string to sign would take it from (a captured call made new)."""
    headers = raw.headers(path, body, **{"nonce" if name == "nonce" else "timestamp": signed_value})
    headers[name] = str(sent_value)
    return raw.send(path, {**body, name: signed_value}, headers=headers)


def _twice(raw: Raw, path: str, body: dict, name: str):
    """A signed request with a second, different value of one signed header."""
    headers = raw.headers(path, body)
    pairs = [*headers.items(), (name, "1" + headers[name])]
    return raw.client.post(raw.farm.url + path, json=body, headers=pairs)


def _forged(raw: Raw, path: str, body: dict) -> list[tuple[str, int, httpx.Response]]:
    """Captured-request tricks: a signed value moved into the body under a fresh header value, a header twice."""
    now = int(time.time())
    return [
        ("nonce moved into the body", 600, _moved_into_the_body(raw, path, body, "nonce", secrets.token_hex(8),
                                                                secrets.token_hex(8))),
        ("an hour-old timestamp moved into the body", 600,
         _moved_into_the_body(raw, path, body, "UTCTimestamp", now - 3600, now)),
        ("nonce header twice", 603, _twice(raw, path, body, "nonce")),
        ("timestamp header twice", 603, _twice(raw, path, body, "UTCTimestamp")),
    ]


@pytest.mark.parametrize("path", sorted(TABLE))
def test_signed_route_refuses_bad_credentials_and_changes_nothing(farm, world, path):
    raw = world["raw"]
    body = bodies(world)[path]
    before_db, before_files = db_snapshot(farm), file_snapshot(farm.data_dir.parent)
    wrong = []
    sent = [(name, code, raw.send(path, body, **options)) for name, code, options in _variants(world, farm.worker_token())]
    for name, code, response in sent + _forged(raw, path, body):
        answer = check_envelope(response)
        if answer["code"] != code or answer["data"] is not None:
            wrong.append((name, code, answer))
    # the exact same request twice: the second is a replay (the first one is refused for its body, so
    # that nothing changes; its nonce is remembered all the same)
    bogus = {name: [[]] for name in TABLE[path].model.model_fields}
    headers = raw.headers(path, bogus)
    first = check_envelope(raw.send(path, bogus, headers=headers))
    assert first["code"] in (200, 600), first  # 200: a read-only route without parameters
    replay = check_envelope(raw.send(path, bogus, headers=headers))
    if replay["code"] != 603:
        wrong.append(("exact replay", 603, replay))
    disabled = check_envelope(world["raw_dave"].send(path, body))
    if disabled["code"] != 403:
        wrong.append(("disabled user", 403, disabled))
    assert not wrong, wrong
    assert diff(before_db, db_snapshot(farm)) == {}
    assert diff(before_files, file_snapshot(farm.data_dir.parent)) == {}


ID_FIELDS = {"taskId", "taskIds", "id", "ids", "frameId", "cloneOriginalId"}
NAME_FIELDS = {"editName": "nobody-has-this-env"}  # names of the caller's own things, and one nobody has


def _with_unknown_ids(body: dict) -> dict:
    """The same body with every task or frame id replaced by one that does not exist (and every name of the
    caller's own things by one nobody has)."""
    return {key: ([UNKNOWN] * len(value) if isinstance(value, list) else UNKNOWN) if key in ID_FIELDS
            else NAME_FIELDS.get(key, value) for key, value in body.items()}


def _alike(message: str, body: dict) -> str:
    """The answer's text with ids and the names the body gave (or the unknown ones) made alike."""
    for key, unknown in NAME_FIELDS.items():
        if key in body:
            message = message.replace(repr(body[key]), "NAME").replace(repr(unknown), "NAME")
    return re.sub(r"[0-9]+", "N", message)


@pytest.mark.parametrize("path", sorted(set(TABLE) - NO_TASK_ID))
def test_another_users_ids_answer_like_unknown_ids_and_change_nothing(farm, world, path):
    raw_bob = world["raw_bob"]
    body = bodies(world)[path]
    before_db, before_files = db_snapshot(farm), file_snapshot(farm.data_dir.parent)
    theirs = check_envelope(raw_bob.send(path, body))
    unknown = check_envelope(raw_bob.send(path, _with_unknown_ids(body)))
    assert theirs["code"] == unknown["code"] and theirs["code"] in (937, 404), (theirs, unknown)
    # nothing tells the two apart, not even another id in the text
    assert _alike(theirs["message"], body) == _alike(unknown["message"], body)
    assert theirs["data"] is None
    assert diff(before_db, db_snapshot(farm)) == {}
    assert diff(before_files, file_snapshot(farm.data_dir.parent)) == {}


def test_listings_show_only_the_callers_own(world):
    raw, raw_bob = world["raw"], world["raw_bob"]
    assert ok(raw, "/api/render/handle/getTaskList/v2", {"pageSize": 1000})["items"] != []
    assert ok(raw_bob, "/api/render/handle/getTaskList/v2", {"pageSize": 1000})["items"] == []
    assert ok(raw_bob, "/api/render/project/list", {}) == {"projectNameList": []}
    assert ok(raw, "/api/render/handle/queryAllFrameStats", {})["totalFrames"] == 4
    assert set(ok(raw_bob, "/api/render/handle/queryAllFrameStats", {}).values()) == {0}
    summary = ok(raw_bob, "/api/rayfarm/farm/summary", {})
    assert not any(summary["tasks"].values()) and not any(summary["frames"].values()), summary
    refused = raw_bob.call("/api/rayfarm/worker/setMode", {"workerIds": [1], "mode": "disable"})
    assert refused["code"] == 403, refused
    assert [env["editName"] for env in ok(raw, "/api/render/plugin/getUserPluginConfig", {"osName": 0})] == ["studio"]
    assert ok(raw_bob, "/api/render/plugin/getUserPluginConfig", {"osName": 0}) == []
    ok(raw, PROFILE, {})  # a sign-in record of alice's
    for path in ("/api/render/handle/operate/sdk/taskRecord", "/api/render/handle/operate/sdk/loginRecord"):
        assert {item["userId"] for item in ok(raw, path, {"pageSize": 1000})["items"]} == {world["alice"].user_id}
        assert world["alice"].user_id not in {item["userId"] for item in ok(raw_bob, path, {"pageSize": 1000})["items"]}
        refused = raw_bob.call(path, {"allUsers": 1})  # every user's records: administrators only
        assert refused["code"] == 403, refused


# ------------------------------------------------------------------ native API: only the worker token


def _native_variants(farm, w: dict) -> list[tuple[str, dict]]:
    alice = w["alice"]
    signed = w["raw"].headers(PROFILE, {})
    token = farm.worker_token()
    return [
        ("no credentials", {}),
        ("wrong token", {"Authorization": "Bearer " + secrets.token_urlsafe(24)}),
        ("user access key", {"Authorization": f"Bearer {alice.access_key}"}),
        ("user access id", {"Authorization": f"Bearer {alice.access_id}"}),
        ("signed user headers", signed),
        ("token without Bearer", {"Authorization": token}),
        ("token as Basic", {"Authorization": f"Basic {token}"}),
        ("token with a suffix", {"Authorization": f"Bearer {token}x"}),
    ]


@pytest.mark.parametrize("route", ["/v1/worker/register", "/v1/worker/lease", "/v1/worker/heartbeat",
                                   "/v1/worker/complete", "/v1/worker/output/{lease_id}/{file_name}",
                                   "/v1/worker/scene/{frame_id:int}", "/v1/worker/input/{frame_id:int}/{index:int}"])
def test_native_route_takes_only_the_worker_token(farm, world, route):
    method, url, body = native_calls(world)[route]
    before_db, before_files = db_snapshot(farm), file_snapshot(farm.data_dir.parent)
    wrong = []
    with httpx.Client(base_url=farm.url, timeout=30) as http:
        for name, headers in _native_variants(farm, world):
            response = http.request(method, url, headers=headers, json=body,
                                    content=None if body is not None else b"\x89PNG intruder")
            if response.status_code != 401 or "token" not in response.json().get("error", ""):
                wrong.append((name, response.status_code, response.text[:300]))
    assert not wrong, wrong
    assert diff(before_db, db_snapshot(farm)) == {}
    assert diff(before_files, file_snapshot(farm.data_dir.parent)) == {}


# ------------------------------------------------------------------ native API: a node acts only as itself


def _as_node(node: Node, worker_id: int, session: str, lease: dict) -> list[tuple[str, str, str, dict | None]]:
    """Every node call that names a node, sent with ``node``'s token but (``worker_id``, ``session``)."""
    who = {"workerId": worker_id, "session": session}
    frame = lease["frameId"]
    return [
        ("lease", "POST", "/v1/worker/lease", {**who, "max": 5}),
        ("heartbeat", "POST", "/v1/worker/heartbeat", {**who, "running": [{"leaseId": lease["leaseId"],
                                                                            "progress": 50, "log": ["forged"]}]}),
        ("complete done", "POST", "/v1/worker/complete", {**who, "leaseId": lease["leaseId"], "result": "done"}),
        ("complete failed", "POST", "/v1/worker/complete", {**who, "leaseId": lease["leaseId"], "result": "failed",
                                                            "error": "injected by another node"}),
        ("output", "PUT", f"/v1/worker/output/{lease['leaseId']}/forged.png", None),
        ("scene", "GET", f"/v1/worker/scene/{frame}", None),
        ("input", "GET", f"/v1/worker/input/{frame}/0", None),
    ]


def test_a_node_acts_only_on_its_own_session_and_leases(farm, world):
    """Node X's id and lease with node Y's session (both hold the token) is refused on every node route, and
    changes nothing: X's chunk stays X's, no attempt is counted, no error text or log line is injected."""
    task = command_task(world["raw"], frames="1-1[1]")
    x, y = Node(farm, "victim-x"), Node(farm, "forger-y")
    try:
        (lease,) = x.lease()
        assert lease["taskId"] == task
        attempt_log = farm.data_dir / "logs" / str(task) / f"{lease['frameId']}.log"
        wait_for(attempt_log.exists, 30, "the lease's attempt line in the render log (written in the background)")
        before_db, before_files = db_snapshot(farm), file_snapshot(farm.data_dir.parent)
        wrong = []
        for name, method, url, body in _as_node(y, x.id, y.session, lease):
            headers = {"X-Worker-Id": str(x.id), "X-Worker-Session": y.session}
            response = y.http.request(method, url, json=body, headers=headers,
                                      content=None if body is not None else b"\x89PNG forged")
            if response.status_code != 409 or "session" not in response.json().get("error", ""):
                wrong.append((name, response.status_code, response.text[:300]))
        # Y as itself cannot finish X's lease either: the result is dropped
        answer = y.post("complete", {"workerId": y.id, "session": y.session, "leaseId": lease["leaseId"],
                                     "result": "failed", "error": "not mine"})
        if answer["accepted"] is not False:
            wrong.append(("complete as itself", 200, answer))
        assert not wrong, wrong
        assert diff(before_db, db_snapshot(farm)) == {}
        assert diff(before_files, file_snapshot(farm.data_dir.parent)) == {}
        # the lease was real: X itself completes it
        assert x.post("complete", {"workerId": x.id, "session": x.session, "leaseId": lease["leaseId"],
                                   "result": "done"})["accepted"] is True
    finally:
        x.close()
        y.close()


# ------------------------------------------------------------------ upload URLs: the upload id is the key


def test_upload_urls_need_a_live_upload_id(farm, world):
    before_db, before_files = db_snapshot(farm), file_snapshot(farm.data_dir.parent)
    alice = world["alice"]
    credentials = [{}, {"Authorization": f"Bearer {farm.worker_token()}"}, world["raw"].headers(PROFILE, {}),
                   {"Authorization": f"Bearer {alice.access_key}"}]
    with httpx.Client(base_url=farm.url, timeout=30) as http:
        for upload_id in (secrets.token_urlsafe(24), "..", "%2e%2e", "1", alice.access_id):
            for headers in credentials:
                put = http.put(f"/v1/upload/{upload_id}?offset=0", content=b"intruder", headers=headers)
                get = http.get(f"/v1/upload/{upload_id}", headers=headers)
                for response in (put, get):
                    assert response.status_code == 404, (upload_id, response.text)
                    if response.headers["content-type"] == "application/json":  # else no route matched at all
                        assert "uploadInit" in response.json()["error"]
    assert diff(before_db, db_snapshot(farm)) == {}
    assert diff(before_files, file_snapshot(farm.data_dir.parent)) == {}


# ------------------------------------------------------------------ dashboard: only a session cookie


def _sign_in(farm, user) -> httpx.Client:
    http = httpx.Client(base_url=farm.url, timeout=30)
    answer = http.post("/web/signin", json={"accessId": user.access_id, "accessKey": user.access_key}, headers=WEB)
    assert answer.json()["code"] == 200, answer.text
    return http


@pytest.fixture(scope="module")
def web_alice(farm, world):
    http = _sign_in(farm, world["alice"])
    yield http
    http.close()


@pytest.fixture(scope="module")
def web_bob(farm, world):
    http = _sign_in(farm, world["bob"])
    yield http
    http.close()


def _web_call(http: httpx.Client, path: str, body: dict, headers: dict) -> dict:
    response = http.post("/web/api/" + path.removeprefix("/api/"), json=body, headers=headers)
    return check_envelope(response)


@pytest.mark.parametrize("path", sorted(TABLE))
def test_dashboard_api_needs_the_session_cookie_and_its_own_page(farm, world, web_alice, path):
    body = bodies(world)[path]
    before_db, before_files = db_snapshot(farm), file_snapshot(farm.data_dir.parent)
    signed = {**world["raw"].headers(path, body), **WEB}
    wrong = []
    for name, headers, cookies in [
        ("no session", WEB, None),
        ("forged session", WEB, {"rayfarm_session": "eyJ1aWQiOjF9.forged"}),
        ("signed API headers", signed, None),
        ("worker token", {**WEB, "Authorization": f"Bearer {farm.worker_token()}"}, None),
    ]:
        with httpx.Client(base_url=farm.url, timeout=30, cookies=cookies) as anonymous:
            answer = _web_call(anonymous, path, body, headers)
        if answer["code"] != 602:
            wrong.append((name, 602, answer))
    for name, headers in [("no dashboard header", {}), ("another site", {**WEB, "Origin": "http://evil.example"}),
                          ("cross-site fetch", {**WEB, "Sec-Fetch-Site": "cross-site"})]:
        answer = _web_call(web_alice, path, body, headers)
        if answer["code"] != 403:
            wrong.append((name, 403, answer))
    assert not wrong, wrong
    assert diff(before_db, db_snapshot(farm)) == {}
    assert diff(before_files, file_snapshot(farm.data_dir.parent)) == {}


@pytest.mark.parametrize("path", sorted(set(TABLE) - NO_TASK_ID))
def test_dashboard_another_users_ids_answer_like_unknown_ids(farm, world, web_bob, path):
    body = bodies(world)[path]
    before_db = db_snapshot(farm)
    theirs = _web_call(web_bob, path, body, WEB)
    unknown = _web_call(web_bob, path, _with_unknown_ids(body), WEB)
    assert theirs["code"] == unknown["code"] and theirs["code"] in (937, 404), (theirs, unknown)
    assert _alike(theirs["message"], body) == _alike(unknown["message"], body)
    assert diff(before_db, db_snapshot(farm)) == {}


def test_dashboard_session_routes_and_sign_in(farm, world, web_alice, web_bob):
    alice = world["alice"]
    with httpx.Client(base_url=farm.url, timeout=30, cookies={"rayfarm_session": "x.y"}) as forged:
        for url in ("/web/me", "/web/counts"):
            assert check_envelope(forged.get(url))["code"] == 602
    with httpx.Client(base_url=farm.url, timeout=30) as anonymous:
        for url in ("/web/me", "/web/counts"):
            assert check_envelope(anonymous.get(url))["code"] == 602
        assert check_envelope(anonymous.post("/web/signout-everywhere", json={}, headers=WEB))["code"] == 602
        thumb = f"/web/thumbnails/{world['waiting']}/{world['frame']}/a.png.jpg"
        assert anonymous.get(thumb).status_code == 401
        assert web_bob.get(thumb).status_code == 404  # alice's frame: like one that does not exist
        for key in ("wrong-" + alice.access_key, farm.worker_token(), alice.access_id):
            answer = anonymous.post("/web/signin", json={"accessId": alice.access_id, "accessKey": key}, headers=WEB)
            assert check_envelope(answer)["code"] == 602 and "set-cookie" not in answer.headers
        answer = anonymous.post("/web/signin", json={"accessId": alice.access_id, "accessKey": alice.access_key})
        assert check_envelope(answer)["code"] == 403 and "set-cookie" not in answer.headers  # no dashboard header
        dave = world["raw_dave"].user
        answer = anonymous.post("/web/signin", json={"accessId": dave.access_id, "accessKey": dave.access_key},
                                headers=WEB)
        assert check_envelope(answer)["code"] == 403 and "set-cookie" not in answer.headers  # disabled
    assert check_envelope(web_alice.post("/web/signout-everywhere", json={}))["code"] == 403  # no dashboard header
    assert check_envelope(web_alice.get("/web/me"))["data"]["userName"] == "alice"


def test_every_state_changing_call_has_exactly_one_record(world):
    """docs/design.md, "the audit trail": each call of a route that changes state, accepted or refused, adds one
    record with the call's outcome; a read adds none."""
    raw = world["raw"]

    def newest() -> dict:
        return ok(raw, TASK_RECORD, {"pageSize": 1})

    wrong = []
    for path, body in bodies(world).items():
        before = newest()["total"]
        answer = raw.call(path, body)
        after = newest()
        added = after["total"] - before
        if TABLE[path].reads:
            if added:
                wrong.append((path, "a read was recorded", added))
        elif added != 1 or (after["items"][0]["path"], after["items"][0]["code"]) != (path, answer["code"]):
            wrong.append((path, answer["code"], added, after["items"][:1]))
    assert not wrong, wrong


def _web_file_urls(task_id: int) -> list[str]:
    return [f"/web/tasks/{task_id}/outputs/shot_0001.png", f"/web/tasks/{task_id}/outputs.zip",
            f"/web/tasks/{task_id}/contact-sheet.jpg", f"/web/tasks/{task_id}/preview.mp4"]


def test_dashboard_file_routes_need_the_session_and_answer_others_like_unknown(farm, world, web_bob):
    """A task's files, zip and previews: no session, a forged one or a signature is 401; another user's task
    answers exactly like one that does not exist; nothing is made or changed."""
    before_db, before_files = db_snapshot(farm), file_snapshot(farm.data_dir.parent)
    signed = world["raw"].headers(PROFILE, {})
    urls = _web_file_urls(world["waiting"])
    assert WEB_FILES == {re.sub(r"/web/tasks/[0-9]+/", "/web/tasks/{task_id:int}/", u)
                                      .replace("shot_0001.png", "{name}") for u in urls}
    wrong = []
    for cookies, headers in [(None, {}), ({"rayfarm_session": "eyJ1aWQiOjF9.forged"}, {}), (None, signed),
                             (None, {"Authorization": f"Bearer {farm.worker_token()}"})]:
        with httpx.Client(base_url=farm.url, timeout=30, cookies=cookies) as anonymous:
            for url in urls:
                response = anonymous.get(url, headers=headers)
                if response.status_code != 401:
                    wrong.append((url, cookies, response.status_code))
    for theirs, unknown in zip(urls, _web_file_urls(UNKNOWN), strict=True):
        a, b = web_bob.get(theirs), web_bob.get(unknown)
        if not (a.status_code == b.status_code == 404 and a.content == b.content):
            wrong.append((theirs, a.status_code, a.content[:100], b.status_code))
    assert not wrong, wrong
    assert diff(before_db, db_snapshot(farm)) == {}
    assert diff(before_files, file_snapshot(farm.data_dir.parent)) == {}


def test_no_traceback_in_the_server_log(farm):
    assert "Traceback" not in farm.log()
