"""The native API takes the worker token and nothing else, a node acts only as itself, and an upload URL
needs a live upload id: every refusal changes nothing (tests/support/routes.py lists the routes)."""

import secrets

import httpx
import pytest

from tests.support import taskjson
from tests.support.fake_node import Node
from tests.support.farms import make_users
from tests.support.processes import wait_for
from tests.support.routes import native_calls
from tests.support.signed import PROFILE, Raw
from tests.support.snapshots import db_snapshot, diff, file_snapshot


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
    (owner,) = make_users(farm, "nora", commands=("nora",))
    raw = Raw(farm, owner)
    task = raw.submit(taskjson.command(frames="1-1[1]"))
    raw.close()
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


def test_no_traceback_in_the_server_log(farm):
    assert "Traceback" not in farm.log()
