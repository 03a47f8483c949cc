"""Every route of both APIs refuses whoever may not use it, with the right code, and changes nothing.

The routes are enumerated from the application itself (`make_app(...).routes`, the signed route table
`TABLE`, `nodes.http_routes`, `files.http_routes`): a route added without a place here fails
`test_every_route_of_the_app_is_covered`. The signed routes here; the native API and upload URLs in
test_auth_native.py, the dashboard in test_auth_dashboard.py (the requests: tests/support/routes.py).
"""

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
from tests.support.routes import (
    NO_TASK_ID,
    PUBLIC,
    SIGNED_PREFIX,
    UPLOAD_ROUTES,
    WEB_API,
    WEB_PUBLIC,
    WEB_SESSION,
    WEB_SIGN,
    alike,
    bodies,
    native_calls,
    with_unknown_ids,
)
from tests.support.signed import PROFILE, Raw, check_envelope
from tests.support.snapshots import db_snapshot, diff, file_snapshot

TASK_RECORD = "/api/render/handle/operate/sdk/taskRecord"


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


@pytest.mark.parametrize("path", sorted(set(TABLE) - NO_TASK_ID))
def test_another_users_ids_answer_like_unknown_ids_and_change_nothing(farm, world, path):
    raw_bob = world["raw_bob"]
    body = bodies(world)[path]
    before_db, before_files = db_snapshot(farm), file_snapshot(farm.data_dir.parent)
    theirs = check_envelope(raw_bob.send(path, body))
    unknown = check_envelope(raw_bob.send(path, with_unknown_ids(body)))
    assert theirs["code"] == unknown["code"] and theirs["code"] in (937, 404), (theirs, unknown)
    # nothing tells the two apart, not even another id in the text
    assert alike(theirs["message"], body) == alike(unknown["message"], body)
    assert theirs["data"] is None
    assert diff(before_db, db_snapshot(farm)) == {}
    assert diff(before_files, file_snapshot(farm.data_dir.parent)) == {}


def test_listings_show_only_the_callers_own(world):
    raw, raw_bob = world["raw"], world["raw_bob"]
    assert raw.ok("/api/render/handle/getTaskList/v2", {"pageSize": 1000})["items"] != []
    assert raw_bob.ok("/api/render/handle/getTaskList/v2", {"pageSize": 1000})["items"] == []
    assert raw_bob.ok("/api/render/project/list", {}) == {"projectNameList": []}
    assert raw.ok("/api/render/handle/queryAllFrameStats", {})["totalFrames"] == 4
    assert set(raw_bob.ok("/api/render/handle/queryAllFrameStats", {}).values()) == {0}
    summary = raw_bob.ok("/api/rayfarm/farm/summary", {})
    assert not any(summary["tasks"].values()) and not any(summary["frames"].values()), summary
    refused = raw_bob.call("/api/rayfarm/worker/setMode", {"workerIds": [1], "mode": "disable"})
    assert refused["code"] == 403, refused
    assert [env["editName"] for env in raw.ok("/api/render/plugin/getUserPluginConfig", {"osName": 0})] == ["studio"]
    assert raw_bob.ok("/api/render/plugin/getUserPluginConfig", {"osName": 0}) == []
    raw.ok(PROFILE, {})  # a sign-in record of alice's
    for path in (TASK_RECORD, "/api/render/handle/operate/sdk/loginRecord"):
        assert {item["userId"] for item in raw.ok(path, {"pageSize": 1000})["items"]} == {world["alice"].user_id}
        assert world["alice"].user_id not in {item["userId"] for item in raw_bob.ok(path, {"pageSize": 1000})["items"]}
        refused = raw_bob.call(path, {"allUsers": 1})  # every user's records: administrators only
        assert refused["code"] == 403, refused


def test_every_state_changing_call_has_exactly_one_record(world):
    """docs/design.md, "the audit trail": each call of a route that changes state, accepted or refused, adds one
    record with the call's outcome; a read adds none."""
    raw = world["raw"]

    def newest() -> dict:
        return raw.ok(TASK_RECORD, {"pageSize": 1})

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


def test_no_traceback_in_the_server_log(farm):
    assert "Traceback" not in farm.log()
