"""The dashboard's server side, without a browser: sign-in, the session cookie, CSRF, ownership, thumbnails.

One in-process farm (the real Starlette app on SQLite, or on PostgreSQL with RAYFARM_TEST_DATABASE_URL)
for the whole module, driven with Starlette's TestClient.
"""

import base64
import json
import os
import time
import warnings

from itsdangerous import URLSafeSerializer
from starlette.exceptions import StarletteDeprecationWarning

from rayfarm.config import farm_secret
from rayfarm.store import users as users_store
from rayfarm.store.schema import frames, tasks, workers
from rayfarm.web.session import COOKIE, LIFETIME, Sessions
from tests.support.farms import register, status, submit
from tests.support.signed import WEB

with warnings.catch_warnings():  # Starlette 1.x suggests httpx2 for its TestClient; httpx works the same here
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

STOP = "/web/api/rendering/task/renderingTask/stopTask"
INFO = "/web/api/render/handle/queryTaskInfo/v2"


def new_user(farm, name: str, **flags):
    with farm.db.write() as conn:
        return users_store.create(conn, farm.keys, name, **flags)


def sign_in(client: TestClient, user, key: str) -> dict:
    response = client.post("/web/signin", json={"accessId": user.access_id, "accessKey": key}, headers=WEB)
    assert response.status_code == 200
    return response.json()


def cookie_payload(cookie: str) -> dict:
    """What a session cookie carries, read without its signature (itsdangerous may have compressed it)."""
    return URLSafeSerializer(b"unused").load_payload(cookie.rsplit(".", 1)[0].encode())


def envelope(response) -> dict:
    assert response.status_code == 200, response.text
    payload = response.json()
    assert set(payload) >= {"code", "message", "data", "result", "requestId"}
    if payload["code"] != 200:
        assert "Traceback" not in payload["message"] and " " in payload["message"], payload
    return payload


def test_sign_in_sets_a_signed_http_only_strict_cookie_without_the_key(farm, client):
    user, key = new_user(farm, "alice1")
    task_id = submit(farm, user)
    response = client.post("/web/signin", json={"accessId": user.access_id, "accessKey": key}, headers=WEB)
    answer = envelope(response)
    assert answer["code"] == 200 and answer["data"]["userName"] == "alice1"
    cookie = client.cookies[COOKIE]
    raw = response.headers["set-cookie"]
    assert raw.startswith(f"{COOKIE}=") and "HttpOnly" in raw and "SameSite=strict" in raw and "Path=/" in raw
    assert "Secure" not in raw  # plain http on loopback; https sets Secure:
    with TestClient(client.app, base_url="https://testserver") as secure:
        answer = secure.post("/web/signin", json={"accessId": user.access_id, "accessKey": key}, headers=WEB)
        assert "; Secure" in answer.headers["set-cookie"] and "HttpOnly" in answer.headers["set-cookie"]
    assert key not in raw and key not in cookie
    payload = cookie_payload(cookie)
    assert payload["uid"] == user.id and payload["exp"] > time.time() + LIFETIME - 60 and set(payload) == {
        "uid", "aid", "kf", "sid", "exp"}

    me = envelope(client.get("/web/me"))["data"]
    assert me["userId"] == user.id and me["isAdmin"] is False
    # which buttons work in which state comes from the one state table (a waiting task is stopped, not deleted)
    assert me["rules"]["stop"] == [0, 5, 40] and me["rules"]["start"] == [10, 20, 23]
    assert 0 not in me["rules"]["delete"] and 10 in me["rules"]["delete"]
    listed = envelope(client.post("/web/api/render/handle/getTaskList/v2", json={"pageSize": 10}, headers=WEB))
    assert [t["id"] for t in listed["data"]["items"]] == [task_id]
    assert envelope(client.get("/web/counts"))["data"] == {"0": 1}

    # signing out removes the cookie; the next call asks to sign in
    envelope(client.post("/web/signout", headers=WEB))
    assert COOKIE not in client.cookies
    assert envelope(client.post(INFO, json={"taskIds": [task_id]}, headers=WEB))["code"] == 602


def test_bad_key_unknown_id_and_disabled_user_are_refused(farm, client):
    user, key = new_user(farm, "alice2")
    for access_id, access_key in [(user.access_id, key[:-1] + ("x" if key[-1] != "x" else "y")),
                                  (user.access_id, ""), ("AKnobody", key), (user.access_id, key.upper())]:
        response = client.post("/web/signin", json={"accessId": access_id, "accessKey": access_key}, headers=WEB)
        assert envelope(response)["code"] in (600, 602), response.text
        assert "set-cookie" not in response.headers
    assert envelope(client.get("/web/me"))["code"] == 602

    sign_in(client, user, key)
    assert envelope(client.get("/web/me"))["code"] == 200
    with farm.db.write() as conn:
        users_store.set_disabled(conn, user.name, True)
    assert envelope(client.get("/web/me"))["code"] == 403  # the open session stops working at once
    response = client.post("/web/signin", json={"accessId": user.access_id, "accessKey": key}, headers=WEB)
    assert envelope(response)["code"] == 403 and "disabled" in response.json()["message"]
    assert "set-cookie" not in response.headers


def test_tampered_foreign_and_expired_cookies_are_refused(farm, client):
    alice, alice_key = new_user(farm, "alice3")
    bob, _ = new_user(farm, "bob3")
    task_id = submit(farm, alice)
    sign_in(client, alice, alice_key)
    good = client.cookies[COOKIE]
    signature = good.rsplit(".", 1)[1]
    data = cookie_payload(good)

    def works(cookie: str) -> int:
        client.cookies.set(COOKIE, cookie)
        return envelope(client.post(INFO, json={"taskIds": [task_id]}, headers=WEB))["code"]

    assert works(good) == 200
    forged = {**data, "uid": bob.id, "aid": bob.access_id}
    forged_payload = base64.urlsafe_b64encode(json.dumps(forged, separators=(",", ":")).encode()).decode().rstrip("=")
    assert works(f"{forged_payload}.{signature}") == 602  # someone else's id, old signature
    longer = base64.urlsafe_b64encode(json.dumps({**data, "exp": data["exp"] + 10**6}).encode()).decode().rstrip("=")
    assert works(f"{longer}.{signature}") == 602  # a later expiry
    assert works(good[:-2] + ("AA" if not good.endswith("AA") else "BB")) == 602
    assert works("") == 602 and works("garbage") == 602
    sid = data["sid"]
    assert works(Sessions(b"another farm's secret").issue(alice, alice_key, sid)) == 602

    # the server's secret derives from the farm's secret: a cookie made with it now is accepted (another
    # process or a restarted server reads it), but one that expired a second ago is not
    sessions = Sessions(farm_secret(farm.settings.data_dir))
    assert works(sessions.issue(alice, alice_key, sid)) == 200
    assert works(sessions.issue(alice, alice_key, sid, now=time.time() - LIFETIME - 1)) == 602
    assert works(sessions.issue(alice, "an old key", sid)) == 602  # made for a key the user no longer has
    assert works(sessions.issue(alice, alice_key, "a-session-that-never-was")) == 602  # no such session row


def test_rotating_the_key_ends_browser_sessions(farm, client):
    user, key = new_user(farm, "alice4")
    sign_in(client, user, key)
    assert envelope(client.get("/web/me"))["code"] == 200
    with farm.db.write() as conn:
        users_store.rotate_key(conn, farm.keys, user.name)
    assert envelope(client.get("/web/me"))["code"] == 602


def test_state_changing_calls_need_the_dashboard_header_and_the_same_origin(farm, client):
    user, key = new_user(farm, "alice5")
    task_id = submit(farm, user)
    refused = [
        {},  # no custom header: a plain cross-site form post could not add it
        {**WEB, "Origin": "http://evil.example"},
        {**WEB, "Origin": "null"},
        {**WEB, "Sec-Fetch-Site": "cross-site"},
        {**WEB, "Sec-Fetch-Site": "same-site"},
    ]
    for headers in refused:
        response = client.post("/web/signin", json={"accessId": user.access_id, "accessKey": key}, headers=headers)
        assert envelope(response)["code"] == 403 and "set-cookie" not in response.headers
    sign_in(client, user, key)
    for headers in refused:
        answer = envelope(client.post(STOP, json={"taskIds": [task_id]}, headers=headers))
        assert answer["code"] == 403, (headers, answer)
        assert envelope(client.post("/web/signout", headers=headers))["code"] == 403
    assert status(farm, task_id) == 0 and COOKIE in client.cookies  # nothing changed

    same = {**WEB, "Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
    assert envelope(client.post(STOP, json={"taskIds": [task_id]}, headers=same))["code"] == 200
    assert status(farm, task_id) == 10
    assert envelope(client.post("/web/api/rendering/task/renderingTask/startTask", json={"taskIds": [task_id]},
                                headers=WEB))["code"] == 200
    assert status(farm, task_id) == 0


def test_another_users_task_looks_exactly_like_an_unknown_one(farm, client):
    alice, _ = new_user(farm, "alice6")
    bob, bob_key = new_user(farm, "bob6")
    task_id = submit(farm, alice)
    unknown_id = task_id + 100_000
    sign_in(client, bob, bob_key)
    calls = [(INFO, lambda i: {"taskIds": [i]}), (STOP, lambda i: {"taskIds": [i]}),
             ("/web/api/render/handle/queryTaskFrames", lambda i: {"taskId": i}),
             ("/web/api/rayfarm/task/log", lambda i: {"taskId": i, "frameIndex": "1"}),
             ("/web/api/render/handle/updateTaskLimit", lambda i: {"taskId": i, "taskLimit": 1})]
    for path, body in calls:
        theirs = envelope(client.post(path, json=body(task_id), headers=WEB))
        nobodys = envelope(client.post(path, json=body(unknown_id), headers=WEB))
        assert theirs["code"] == nobodys["code"] == 937, (path, theirs)
        assert theirs["message"].replace(str(task_id), "N") == nobodys["message"].replace(str(unknown_id), "N")
    listed = envelope(client.post("/web/api/render/handle/getTaskList/v2", json={"searchKeyword": str(task_id)},
                                  headers=WEB))
    assert listed["data"]["items"] == [] and envelope(client.get("/web/counts"))["data"] == {}
    assert status(farm, task_id) == 0


def test_web_api_is_the_route_table_same_checks_same_envelope(farm, client):
    user, key = new_user(farm, "alice7")
    sign_in(client, user, key)
    assert envelope(client.post("/web/api/no/such/route", json={}, headers=WEB))["code"] == 404
    assert envelope(client.post(STOP, json={}, headers=WEB))["code"] == 601  # taskIds missing, named
    assert envelope(client.post(STOP, json={"taskIds": ["x"]}, headers=WEB))["code"] == 600
    assert envelope(client.post(STOP, content=b"{not json", headers=WEB))["code"] == 600
    assert envelope(client.post("/web/api/rayfarm/farm/summary", headers=WEB))["data"]["user"]["name"] == "alice7"
    assert client.get(STOP).status_code == 405
    # the signed API next to it is untouched
    assert client.post("/api/render/handle/queryTaskInfo/v2", json={"taskIds": [1]}).json()["code"] == 602
    assert client.get("/healthz").json()["status"] == "ok"


def test_worker_controls_are_refused_for_non_admins(farm, client):
    worker = register(farm, "web-node")
    user, key = new_user(farm, "alice8")
    boss, boss_key = new_user(farm, "boss8", is_admin=True)
    sign_in(client, user, key)
    listed = envelope(client.post("/web/api/rayfarm/worker/list", headers=WEB))["data"]
    assert worker.id in [w["id"] for w in listed]
    answer = envelope(client.post("/web/api/rayfarm/worker/setMode", json={"workerIds": [worker.id], "mode": "disable"},
                                  headers=WEB))
    assert answer["code"] == 403 and "administrator" in answer["message"]
    with farm.db.read() as conn:
        assert conn.scalar(workers.select().with_only_columns(workers.c.disabled).where(workers.c.id == worker.id)) is False
    sign_in(client, boss, boss_key)
    answer = envelope(client.post("/web/api/rayfarm/worker/setMode", json={"workerIds": [worker.id], "mode": "disable"},
                                  headers=WEB))
    assert answer["code"] == 200 and answer["data"] == {"updated": 1}
    envelope(client.post("/web/api/rayfarm/worker/setMode", json={"workerIds": [worker.id], "mode": "enable"},
                         headers=WEB))


def test_thumbnails_only_for_the_owner_and_never_outside_the_frame_folder(farm, client, tmp_path):
    alice, alice_key = new_user(farm, "alice9")
    bob, bob_key = new_user(farm, "bob9")
    task_id = submit(farm, alice)
    with farm.db.read() as conn:
        frame_id = conn.scalar(frames.select().with_only_columns(frames.c.id).where(frames.c.task_id == task_id))
    folder = farm.storage.user_dir(alice.id, "thumbnails") / str(task_id) / str(frame_id)
    folder.mkdir(parents=True)
    image = b"\xff\xd8\xff\xe0 a jpeg"
    (folder / "shot_0001.png.jpg").write_bytes(image)
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(b"not yours")
    os.symlink(secret, folder / "link.jpg")
    (farm.storage.user_dir(alice.id, "thumbnails") / str(task_id) / "loose.jpg").write_bytes(b"beside the frame")
    url = f"/web/thumbnails/{task_id}/{frame_id}/shot_0001.png.jpg"

    assert client.get(url).status_code == 401  # not signed in
    sign_in(client, alice, alice_key)
    got = client.get(url)
    assert got.status_code == 200 and got.content == image and got.headers["content-type"] == "image/jpeg"

    not_found = [url.replace(f"/{frame_id}/", f"/{frame_id + 9999}/"),  # a frame that does not exist
                 f"/web/thumbnails/{task_id + 9999}/{frame_id}/shot_0001.png.jpg",  # a task that does not exist
                 f"/web/thumbnails/{task_id}/{frame_id}/link.jpg",  # symlink out of the storage
                 f"/web/thumbnails/{task_id}/{frame_id}/..jpg",
                 f"/web/thumbnails/{task_id}/{frame_id}/.hidden.jpg",
                 f"/web/thumbnails/{task_id}/{frame_id}/x.png",  # not a thumbnail
                 f"/web/thumbnails/{task_id}/{frame_id}/../loose.jpg",
                 f"/web/thumbnails/{task_id}/{frame_id}/..%2Floose.jpg",
                 f"/web/thumbnails/{task_id}/{frame_id}/%2e%2e%2f%2e%2e%2f%2e%2e%2fsecret.key",
                 f"/web/thumbnails/99999999999999999999/{frame_id}/shot_0001.png.jpg",  # beyond any id
                 f"/web/thumbnails/-1/{frame_id}/shot_0001.png.jpg"]
    for path in not_found:
        response = client.get(path)
        assert response.status_code == 404, (path, response.status_code)
        assert b"not yours" not in response.content and b"beside" not in response.content

    # another user's real thumbnail answers exactly like a thumbnail that does not exist
    sign_in(client, bob, bob_key)
    theirs = client.get(url)
    nobodys = client.get(not_found[0])
    assert theirs.status_code == nobodys.status_code == 404 and theirs.content == nobodys.content


def test_the_page_and_its_files_are_served_by_the_farm(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert '<script type="module" src="/web/static/app.js">' in page.text and "http" not in page.text.split("<body")[0]
    for name, kind in [("app.js", "javascript"), ("api.js", "javascript"), ("tasks.js", "javascript"),
                       ("task.js", "javascript"), ("workers.js", "javascript"), ("ui.js", "javascript"),
                       ("style.css", "text/css"), ("favicon.svg", "image/svg+xml")]:
        response = client.get(f"/web/static/{name}")
        assert response.status_code == 200 and kind in response.headers["content-type"], name
        assert "//cdn" not in response.text and "https://" not in response.text, name
    assert client.get("/web/static/../routes.py").status_code == 404
    assert client.get("/web/static/").status_code == 404


def test_ten_thousand_tasks_are_paged_and_counted_on_the_server(farm, client):
    user, key = new_user(farm, "busy10k")
    now = time.time()
    codes = [0, 5, 10, 25, 30, 45]
    rows = [{"user_id": user.id, "alias": f"a{i}", "status": codes[i % len(codes)], "is_deleted": False,
             "priority": 50, "scene_name": f"shot{i:05d}.blend", "project_name": "", "frames_range": "1-1",
             "total_frames": 1, "per_chunk": 1, "pause_after_test": False, "job_stop_time": 0, "max_attempts": 3,
             "created_at": now, "submitted_at": now + i} for i in range(10_000)]
    with farm.db.write() as conn:
        conn.execute(tasks.insert(), rows)
    sign_in(client, user, key)
    counts = envelope(client.get("/web/counts"))["data"]
    assert sum(counts.values()) == 10_000 and counts["25"] == 1667 and counts["45"] == 1666

    def page(**body):
        return envelope(client.post("/web/api/render/handle/getTaskList/v2", json=body, headers=WEB))["data"]

    last = page(pageNum=200, pageSize=50)
    assert last["total"] == 10_000 and last["pageCount"] == 200 and len(last["items"]) == 50
    assert last["items"][-1]["sceneName"] == "shot00000.blend"  # newest first: the last page ends with the oldest
    done = page(pageNum=3, pageSize=100, statusList=[25])
    assert done["total"] == 1667 and {t["taskStatus"] for t in done["items"]} == {25}
    found = page(searchKeyword="shot04242")
    assert [t["sceneName"] for t in found["items"]] == ["shot04242.blend"]
