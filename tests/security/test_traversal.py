"""No request reads or writes outside the farm's storage: uploads, downloads, task.json paths, output names,
thumbnails, `treePath`, the dashboard's files.

Canaries are planted outside the data dir (a real PNG, so a thumbnail made from it would show) and in
another user's storage; afterwards they are unchanged, no answer carries their bytes, and no file appeared
or changed outside the data dir.
"""

import hashlib
import io
import json
import os
import secrets

import httpx
import pytest
from PIL import Image

from tests.support import taskjson
from tests.support.fake_node import Node
from tests.support.farms import make_users
from tests.support.signed import DOWNLOAD, THUMBNAIL, TREE, UPLOAD_INIT, Raw, check_envelope
from tests.support.snapshots import db_snapshot, diff, file_snapshot
from tests.support.taskjson import SCENE


def _png(marker: str) -> bytes:
    buffer = io.BytesIO()
    image = Image.new("RGB", (8, 8), (200, 10, 10))
    image.save(buffer, "PNG", pnginfo=_info(marker))
    return buffer.getvalue()


def _info(marker: str):
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("canary", marker)
    return info


@pytest.fixture(scope="module")
def world(farm):
    alice, bob = make_users(farm, "tina", "tom", commands=("tina", "tom"))
    farm.input_file(alice, SCENE)
    marker = "CANARY-" + secrets.token_hex(8)
    outside = farm.data_dir.parent / "canary.png"
    outside.write_bytes(_png(marker))
    bobs_output = farm.data_dir / "storage" / str(bob.user_id) / "output" / "1_secret"
    bobs_output.mkdir(parents=True)
    (bobs_output / "secret.png").write_bytes(_png(marker))
    bobs_input = farm.input_file(bob, "D:/bob/secret.blend", marker.encode())
    alices_output = farm.data_dir / "storage" / str(alice.user_id) / "output"
    alices_output.mkdir(parents=True, exist_ok=True)
    os.symlink(outside, alices_output / "link-out.png")  # e.g. planted through a shared mount
    os.symlink(farm.data_dir.parent, alices_output / "link-dir")
    raw, raw_bob = Raw(farm, alice), Raw(farm, bob)
    yield {"alice": alice, "bob": bob, "raw": raw, "raw_bob": raw_bob, "marker": marker, "outside": outside,
           "canaries": [outside, bobs_output / "secret.png", bobs_input],
           "hashes": {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in (outside, bobs_output / "secret.png",
                                                                              bobs_input)}}
    raw.close()
    raw_bob.close()


@pytest.fixture
def guarded(farm, world):
    """Around each test: nothing outside the data dir appears or changes, the canaries stay as they were."""
    root = farm.data_dir.parent
    before = {k: v for k, v in file_snapshot(root).items() if not k.startswith("farm")}
    yield
    after = {k: v for k, v in file_snapshot(root).items() if not k.startswith("farm")}
    assert diff(before, after) == {}
    for path, digest in world["hashes"].items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, path


def _no_canary(world, response: httpx.Response) -> None:
    assert world["marker"].encode() not in response.content, response.content[:200]


ESCAPES = ["../canary.png", "../../canary.png", "../../../canary.png", "/../../../canary.png", "....//....//canary.png",
           "..\\..\\..\\canary.png", "%2e%2e/%2e%2e/%2e%2e/canary.png", "link-out.png", "link-dir/canary.png",
           "/link-dir/canary.png", "../2/output/1_secret/secret.png", "../../3/output/1_secret/secret.png",
           "/etc/passwd", "//etc/passwd", "\x2e\x2e/\x2e\x2e/secret.key", "../../secret.key", "../../../farm/secret.key"]


@pytest.mark.parametrize("area", ["output", "thumbnails"])
def test_download_stays_in_the_callers_storage(farm, world, guarded, area):
    raw, bob = world["raw"], world["bob"].user_id
    for path in ESCAPES + [f"../../{bob}/output/1_secret/secret.png", f"/../../{bob}/input/D/bob/secret.blend"]:
        response = raw.send(DOWNLOAD, {"path": path, "area": area})
        _no_canary(world, response)
        answer = check_envelope(response)
        assert answer["code"] in (600, 404), (path, answer)
    assert check_envelope(raw.send(DOWNLOAD, {"path": "x", "area": "../input"}))["code"] == 600


def test_tree_path_lists_only_the_callers_output(farm, world, guarded):
    raw, bob = world["raw"], world["bob"].user_id
    for path in ESCAPES + ["/", "", ".", "link-dir", "/link-dir/", "../", f"../../{bob}/output", f"/../../{bob}/output/"]:
        response = raw.send(TREE, {"treePath": path})
        _no_canary(world, response)
        answer = check_envelope(response)
        if answer["code"] == 200:
            names = {entry["fileName"] for entry in answer["data"]}
            assert "canary.png" not in names and "secret.png" not in names and "secret.key" not in names, (path, names)
        else:
            assert answer["code"] == 600, (path, answer)


UPLOAD_ESCAPES = ["D:/../../canary.png", "D:\\proj\\..\\..\\..\\canary.png", "/../../../canary.png",
                  "//server/../../canary.png", "C:/a/./b.png", "D:/proj/\x00.png", "relative/a.png", "../a.png",
                  "~/a.png", "   "]


def test_upload_paths_that_leave_the_storage_are_refused(farm, world, guarded):
    raw = world["raw"]
    before = db_snapshot(farm)
    for local in UPLOAD_ESCAPES:
        answer = check_envelope(raw.send(UPLOAD_INIT, {"localPath": local, "size": 3,
                                                       "sha256": hashlib.sha256(b"abc").hexdigest()}))
        assert answer["code"] == 600, (local, answer)
    assert diff(before, db_snapshot(farm)) == {}


def test_an_upload_lands_where_its_path_maps_and_nowhere_else(farm, world, guarded):
    raw, alice = world["raw"], world["alice"]
    content = b"texture bytes"
    answer = raw.ok(UPLOAD_INIT, {"localPath": "D:/proj/tex/wood.png",
                                   "size": len(content), "sha256": hashlib.sha256(content).hexdigest()})
    response = httpx.put(farm.url + answer["url"] + "?offset=0", content=content, timeout=30)
    assert response.json()["done"] is True, response.text
    placed = farm.data_dir / "storage" / str(alice.user_id) / "input" / "D" / "proj" / "tex" / "wood.png"
    assert placed.read_bytes() == content
    # not onto a folder, not under a file (the upload would fail at its end)
    for local in ("D:/proj/tex", "D:/proj/tex/wood.png/x.png", "D:/proj/shots/shot010.blend/a/b.png"):
        answer = check_envelope(raw.send(UPLOAD_INIT, {"localPath": local, "size": len(content),
                                                       "sha256": hashlib.sha256(content).hexdigest()}))
        assert answer["code"] == 600, (local, answer)


@pytest.mark.parametrize("scene", ["D:/../../canary.png", "/../../../canary.png", "D:/../../../farm/secret.key",
                                   "D:/../../3/input/D/bob/secret.blend", "__outside__"])
def test_task_json_scene_outside_the_storage_is_refused(farm, world, guarded, scene):
    raw = world["raw"]
    scene = str(world["outside"]) if scene == "__outside__" else scene  # an absolute path with no shared root
    task_id = raw.ok("/api/render/submit/createTask", {"count": 1})["taskIdList"][0]
    raw.ok("/api/render/submit/taskJsonFile", {"taskId": task_id, "fileName": "task.json",
                                                 "content": json.dumps(taskjson.blender(scene))})
    answer = check_envelope(raw.send("/api/render/submit/task", {"taskId": task_id}))
    assert answer["code"] == 600, answer


@pytest.mark.parametrize("asset", ["D:/../../canary.png", "/../../../farm/secret.key", "D:/../../3/input/D/bob/secret.blend"])
def test_upload_json_assets_outside_the_storage_are_refused(farm, world, guarded, asset):
    raw = world["raw"]
    task_id = raw.ok("/api/render/submit/createTask", {"count": 1})["taskIdList"][0]
    raw.ok("/api/render/submit/taskJsonFile", {"taskId": task_id, "fileName": "task.json",
                                                 "content": json.dumps(taskjson.blender())})
    upload = {"asset": [{"local": asset, "server": asset}]}
    raw.ok("/api/render/submit/taskJsonFile", {"taskId": task_id, "fileName": "upload.json",
                                                 "content": json.dumps(upload)})
    answer = check_envelope(raw.send("/api/render/submit/task", {"taskId": task_id}))
    assert answer["code"] == 600, answer


@pytest.mark.parametrize("entry", [
    {"local": "/home/u/../../../canary.png", "server": "home/u/../../../canary.png"},  # append_to_upload's POSIX form
    {"server": "../../../farm/secret.key"},  # no local, no leading "/"
    {"server": "home/../../3/input/D/bob/secret.blend"},
    {"local": "D:/proj/tex", "server": "/D/../../canary.png"},  # a hand-written server path wins: still inside
    {"local": "d:\\proj\\..\\..\\canary.png", "server": "/d/proj/../../canary.png"},
])
def test_official_upload_json_forms_outside_the_storage_are_refused(farm, world, guarded, entry):
    raw = world["raw"]
    task_id = raw.ok("/api/render/submit/createTask", {"count": 1})["taskIdList"][0]
    raw.ok("/api/render/submit/taskJsonFile", {"taskId": task_id, "fileName": "task.json",
                                                 "content": json.dumps(taskjson.blender())})
    raw.ok("/api/render/submit/taskJsonFile", {"taskId": task_id, "fileName": "upload.json",
                                                 "content": json.dumps({"asset": [entry]})})
    answer = check_envelope(raw.send("/api/render/submit/task", {"taskId": task_id}))
    assert answer["code"] == 600 and "upload.json asset 0" in answer["message"], answer


def test_a_folder_entry_never_takes_links_out_of_the_storage(farm, world, guarded):
    """A folder listed in upload.json brings the plain files under it, never a link planted there (to a file
    outside, or to a folder outside), and nothing of another user's storage."""
    from sqlalchemy import create_engine, select

    from rayfarm.store.schema import tasks

    raw, alice = world["raw"], world["alice"]
    folder = farm.input_file(alice, "D:/proj/linked/real.png", b"real").parent
    os.symlink(world["outside"], folder / "out.png")
    os.symlink(farm.data_dir.parent, folder / "outdir")
    os.symlink(farm.data_dir / "storage" / str(world["bob"].user_id), folder / "bobs")
    task_id = raw.ok("/api/render/submit/createTask", {"count": 1})["taskIdList"][0]
    raw.ok("/api/render/submit/taskJsonFile", {"taskId": task_id, "fileName": "task.json",
                                                 "content": json.dumps(taskjson.blender())})
    entry = {"local": "d:/proj/linked", "server": "/d/proj/linked"}  # as typed: a lower-case drive letter
    raw.ok("/api/render/submit/taskJsonFile", {"taskId": task_id, "fileName": "upload.json",
                                                 "content": json.dumps({"asset": [entry]})})
    raw.ok("/api/render/submit/task", {"taskId": task_id})
    engine = create_engine(farm.database_url)
    try:
        with engine.connect() as conn:
            render = conn.scalar(select(tasks.c.render).where(tasks.c.id == task_id))
    finally:
        engine.dispose()
    assert render["inputs"] == ["/D/proj/linked/real.png"]


@pytest.fixture(scope="module")
def leased(farm, world):
    """Node A holds a lease on one of alice's chunks, node B on one of bob's."""
    task_a = world["raw"].submit(taskjson.command(frames="1-1"))
    node_a = Node(farm, "node-a")
    lease_a = node_a.lease()[0]
    task_b = world["raw_bob"].submit(taskjson.command(frames="1-1"))
    node_b = Node(farm, "node-b")
    lease_b = node_b.lease()[0]
    assert {lease_a["taskId"], lease_b["taskId"]} == {task_a, task_b}
    yield node_a, lease_a, node_b, lease_b
    node_a.close()
    node_b.close()


OUTPUT_NAMES = ["..", ".", ".hidden.png", "%2e%2e", "%00", "a%09b.png", "%2E%2E", "..%2F..%2Fcanary.png",
                "a%5C..%5C..%5Ccanary.png", "%00.png", "a%00b.png", "..%5C..%5Ccanary.png", "-" * 300, "%C0%AE%C0%AE"]


def test_output_names_stay_in_the_tasks_output_folder(farm, world, guarded, leased):
    node_a, lease_a, node_b, lease_b = leased
    node_a.heartbeat([lease_a])
    refused = []
    for name in OUTPUT_NAMES:
        response = node_a.http.put(f"/v1/worker/output/{lease_a['leaseId']}/{name}", content=b"\x89PNG overwrite")
        if response.status_code not in (404, 422):
            refused.append((name, response.status_code, response.text))
    assert not refused, refused
    # a lease id that is not this node's writes nothing, wherever it points
    for lease_id in (lease_b["leaseId"], "..", "%2e%2e", secrets.token_hex(8)):
        response = node_a.http.put(f"/v1/worker/output/{lease_id}/out.png", content=b"\x89PNG x")
        assert response.status_code in (200, 404), response.text
        assert response.status_code == 404 or response.json() == {"accepted": False}, response.text
    task_output = farm.data_dir / "storage" / str(world["bob"].user_id) / "output"
    assert not any(p.name == "out.png" for p in task_output.rglob("*"))


def test_completed_outputs_never_thumbnail_files_outside(farm, world, guarded, leased):
    node_a, lease_a, node_b, lease_b = leased
    node_a.heartbeat([lease_a])
    names = ["../../../../../canary.png", str(world["outside"]), "link-out.png", "../link-out.png",
             "..", "../../2/output/1_secret/secret.png", "a/../../canary.png"]
    answer = node_a.post("complete", {"workerId": node_a.id, "session": node_a.session, "leaseId": lease_a["leaseId"],
                                      "result": "done", "outputs": names})
    assert answer["accepted"] is True
    thumbnails = farm.data_dir / "storage" / str(world["alice"].user_id) / "thumbnails"
    assert not thumbnails.exists() or not any(p.is_file() for p in thumbnails.rglob("*"))
    frame = lease_a["frameId"]
    assert world["raw"].ok(THUMBNAIL, {"id": frame}) == []
    # bob cannot see alice's frame, and alice cannot see bob's
    assert check_envelope(world["raw_bob"].send(THUMBNAIL, {"id": frame}))["code"] == 404
    assert check_envelope(world["raw"].send(THUMBNAIL, {"id": lease_b["frameId"]}))["code"] == 404


def test_a_node_reads_only_scenes_and_inputs_of_its_own_leases(farm, world, guarded, leased):
    node_a, lease_a, node_b, lease_b = leased
    node_b.heartbeat([lease_b])
    for url in (f"/v1/worker/scene/{lease_b['frameId']}", f"/v1/worker/input/{lease_b['frameId']}/0",
                "/v1/worker/scene/999999", "/v1/worker/input/999999/0", f"/v1/worker/input/{lease_b['frameId']}/99",
                "/v1/worker/scene/99999999999999999999999", "/v1/worker/input/1/99999999999999999999999"):
        response = node_a.http.get(url)
        _no_canary(world, response)
        assert response.status_code == 404, (url, response.status_code, response.text)


@pytest.mark.parametrize("url", ["/web/static/../../secret.key", "/web/static/%2e%2e/%2e%2e/secret.key",
                                 "/web/static/..%2F..%2Fsecret.key", "/web/static//etc/passwd",
                                 "/web/static/%2e%2e/%2e%2e/%2e%2e/canary.png"])
def test_dashboard_static_files_stay_in_their_folder(farm, world, guarded, url):
    secret = (farm.data_dir / "secret.key").read_bytes()
    with httpx.Client(base_url=farm.url, timeout=30) as http:
        response = http.get(url)
    assert response.status_code == 404, (url, response.status_code)
    assert secret not in response.content
    _no_canary(world, response)


def test_dashboard_thumbnails_stay_in_the_users_thumbnails(farm, world, guarded, leased):
    node_a, lease_a, node_b, lease_b = leased
    tina = world["alice"]
    secret = (farm.data_dir / "secret.key").read_bytes()
    with httpx.Client(base_url=farm.url, timeout=30) as http:
        answer = http.post("/web/signin", json={"accessId": tina.access_id, "accessKey": tina.access_key},
                           headers={"X-Rayfarm-Web": "1"})
        assert answer.json()["code"] == 200
        base = f"/web/thumbnails/{lease_a['taskId']}/{lease_a['frameId']}/"
        for name in ("..%2F..%2F..%2F..%2Fsecret.key", "%2e%2e", "..", ".hidden.jpg", "%2e%2e%2f%2e%2e%2fcanary.png.jpg",
                     "a%00.jpg", "%C0%AE%C0%AE.jpg", "..%5C..%5Ccanary.png.jpg"):
            response = http.get(base + name)
            assert response.status_code == 404, (name, response.status_code, response.text)
            assert secret not in response.content
            _no_canary(world, response)
        other = f"/web/thumbnails/{lease_b['taskId']}/{lease_b['frameId']}/x.png.jpg"  # tom's frame
        assert http.get(other).status_code == 404


def test_no_traceback_in_the_server_log(farm):
    assert "Traceback" not in farm.log()
