"""The dashboard's routes take its session cookie and its own page's header, nothing else, and another user's
ids answer like unknown ids (tests/support/routes.py lists the routes)."""

import re

import httpx
import pytest

from rayfarm.server.table import TABLE
from tests.support.routes import NO_TASK_ID, WEB_FILES, alike, bodies, with_unknown_ids
from tests.support.signed import PROFILE, UNKNOWN, WEB, check_envelope
from tests.support.snapshots import db_snapshot, diff, file_snapshot


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
    unknown = _web_call(web_bob, path, with_unknown_ids(body), WEB)
    assert theirs["code"] == unknown["code"] and theirs["code"] in (937, 404), (theirs, unknown)
    assert alike(theirs["message"], body) == alike(unknown["message"], body)
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
