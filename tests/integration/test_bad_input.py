"""Bad requests get HTTP 200, the right Renderbus code and an English sentence; never a 500, and nothing changes.

Requests are built by hand (tests.support.signed.Raw signs them with rayfarm.protocol.signing)
so that they can be as wrong as needed.
"""

import json

import pytest

from rayfarm.server.hardware import HARDWARE_ROUTES
from rayfarm.server.progress import PROGRESS_ROUTES
from rayfarm.server.renderbus import ROUTES
from tests.support import taskjson
from tests.support.farms import running_farm
from tests.support.signed import (
    ABORT,
    CREATE,
    DELETE,
    FRAMES,
    FULL_SPEED,
    INFO,
    LEVEL,
    LIMIT,
    LIST,
    OVERTIME,
    PROFILE,
    START,
    STOP,
    SUBMIT,
    UNKNOWN,
    UPLOAD,
    Raw,
    check_envelope,
)
from tests.support.taskjson import SCENE


@pytest.fixture(scope="module")
def farm(tmp_path_factory):
    yield from running_farm(tmp_path_factory, "bad-input")


@pytest.fixture(scope="module")
def raw(farm, users):
    client = Raw(farm, users[0])
    yield client
    client.close()


@pytest.fixture(scope="module")
def raw_bob(farm, users):
    client = Raw(farm, users[1])
    yield client
    client.close()


def new_task(raw: Raw) -> int:
    return raw.ok(CREATE, {"count": 1, "taskUserLevel": 50})["taskIdList"][0]


def waiting_task(raw: Raw) -> int:
    return raw.submit(taskjson.blender())


def info(raw: Raw, task_id: int) -> dict:
    return raw.ok(INFO, {"taskIds": [task_id]})["items"][0]


# ------------------------------------------------------------------ wrong types, missing fields, limits


@pytest.mark.parametrize("path, body, where", [
    (STOP, {"taskIds": "x"}, "taskIds"),
    (STOP, {"taskIds": [True]}, "taskIds[0]"),
    (STOP, {"taskIds": ["seven"]}, "taskIds[0]"),
    (STOP, {"taskIds": [1.5]}, "taskIds[0]"),
    (STOP, {"taskIds": [-3]}, "taskIds[0]"),
    (STOP, {"taskIds": [{"id": 1}]}, "taskIds[0]"),
    (CREATE, {"count": "many", "taskUserLevel": 50}, "count"),
    (CREATE, {"count": True, "taskUserLevel": 50}, "count"),
    (CREATE, {"count": 1, "taskUserLevel": "high"}, "taskUserLevel"),
    (CREATE, {"count": 1, "taskUserLevel": 50, "labels": "not-a-list"}, "labels"),
    (SUBMIT, {"taskId": [1]}, "taskId"),
    (OVERTIME, {"taskIds": [1], "overTime": "long"}, "overTime"),
    (LEVEL, {"taskId": 1, "taskUserLevel": None}, "taskUserLevel"),
    (LIST, {"pageNum": "first"}, "pageNum"),
    (LIST, {"statusList": [2**70]}, "statusList[0]"),
    (LIST, {"startTime": "yesterday"}, "startTime"),
    (UPLOAD, {"taskId": 1, "fileName": "../../etc/passwd", "content": "{}"}, "fileName"),
    (UPLOAD, {"taskId": 1, "fileName": "task.json", "content": {"a": 1}}, "content"),
])
def test_wrong_types_are_600_naming_the_field(raw, path, body, where):
    raw.refused(path, body, 600, where)


@pytest.mark.parametrize("path, body, field", [
    (CREATE, {"taskUserLevel": 50}, "count"),
    (STOP, {}, "taskIds"),
    (DELETE, {"ids": [1]}, "taskIds"),
    (SUBMIT, {"producer": "x"}, "taskId"),
    (UPLOAD, {"taskId": 1, "fileName": "task.json"}, "content"),
    (LEVEL, {"taskId": 1}, "taskUserLevel"),
    (OVERTIME, {"taskIds": [1]}, "overTime"),
    (FRAMES, {"pageNum": 1}, "taskId"),
])
def test_missing_fields_are_601_naming_the_field(raw, path, body, field):
    raw.refused(path, body, 601, repr(field))


@pytest.mark.parametrize("path, body", [
    (CREATE, {"count": 100000, "taskUserLevel": 50}),
    (CREATE, {"count": 0, "taskUserLevel": 50}),
    (CREATE, {"count": 1, "taskUserLevel": 500}),
    (CREATE, {"count": 1, "taskUserLevel": 50, "labels": [f"l{i}" for i in range(51)]}),
    (LIST, {"pageNum": 1, "pageSize": 100000}),
    (LIST, {"pageNum": 0, "pageSize": 10}),
    (FRAMES, {"taskId": 1, "pageNum": 1, "pageSize": 100000}),
    (STOP, {"taskIds": list(range(1, 1002))}),
    (STOP, {"taskIds": []}),
    (OVERTIME, {"taskIds": [1], "overTime": -5}),
    (LIMIT, {"taskId": 1, "taskLimit": -1}),
])
def test_out_of_range_values_are_600(raw, path, body):
    message = raw.refused(path, body, 600)
    assert "not valid" in message


def test_huge_count_creates_nothing(raw):
    before = new_task(raw)
    raw.refused(CREATE, {"count": 100000, "taskUserLevel": 50}, 600, "count")
    assert new_task(raw) == before + 1


@pytest.mark.parametrize("path, body", [
    (STOP, {"taskIds": [UNKNOWN]}),
    (START, {"taskIds": [UNKNOWN]}),
    (ABORT, {"taskIds": [UNKNOWN]}),
    (DELETE, {"taskIds": [UNKNOWN]}),
    (FULL_SPEED, {"taskIds": [UNKNOWN]}),
    (OVERTIME, {"taskIds": [UNKNOWN], "overTime": 60}),
    (LEVEL, {"taskId": UNKNOWN, "taskUserLevel": 60}),
    (LIMIT, {"taskId": UNKNOWN, "taskLimit": 2}),
    (SUBMIT, {"taskId": UNKNOWN}),
    (UPLOAD, {"taskId": UNKNOWN, "fileName": "task.json", "content": "{}"}),
    (INFO, {"taskIds": [UNKNOWN]}),
    (FRAMES, {"taskId": UNKNOWN}),
    (CREATE, {"count": 1, "taskUserLevel": 50, "cloneOriginalId": UNKNOWN}),
    ("/api/render/handle/addTaskLabel", {"taskIds": [UNKNOWN], "label": "x"}),
])
def test_unknown_ids_are_937_naming_the_id(raw, path, body):
    raw.refused(path, body, 937, str(UNKNOWN), "does not exist")


# ------------------------------------------------------------------ task.json and scene files


@pytest.mark.parametrize("content, code, fragment", [
    (None, 741, "never uploaded"),
    ("", 741, "empty"),
    ("   ", 741, "empty"),
    ("{}", 741, "empty object"),
    ("this is not json", 740, "not valid JSON"),
    ("[1, 2, 3]", 740, "JSON object"),
    ('{"task_info": ', 740, "not valid JSON"),
    (json.dumps({"task_info": {"input_cg_file": SCENE}}), 600, "software_config"),
    (json.dumps({**taskjson.blender(), "software_config": {"cg_name": "Maya"}}), 600, "not supported"),
    (json.dumps(taskjson.blender(frames="250-1")), 600, "250-1"),
    (json.dumps(taskjson.blender(frames="banana")), 600, "banana"),
    (json.dumps(taskjson.blender(frames="1-99999999")), 600, "frame"),
    (json.dumps(taskjson.blender(frames_per_task="zero")), 600, "frames_per_task"),
    (json.dumps(taskjson.blender(input_cg_file="")), 600, "input_cg_file"),
    (json.dumps(taskjson.blender(input_cg_file="shot.blend")), 600, "not absolute"),
    (json.dumps(taskjson.blender(cg_id="2000")), 600, "cg_id"),
    (json.dumps({**taskjson.blender(), "task_info": "nope"}), 600, "task_info"),
])
def test_malformed_task_json_is_refused_at_submit(raw, content, code, fragment):
    task_id = new_task(raw)
    if content is not None:
        raw.ok(UPLOAD, {"taskId": task_id, "fileName": "task.json", "content": content})
    raw.refused(SUBMIT, {"taskId": task_id}, code, fragment)
    item = info(raw, task_id)
    assert item["submitDate"] is None and item["totalFrames"] == 0  # nothing was queued
    assert task_id not in [t["id"] for t in raw.ok(LIST, {"pageNum": 1, "pageSize": 1000})["items"]]


def test_other_config_files_are_not_task_json(raw):
    task_id = new_task(raw)
    raw.ok(UPLOAD, {"taskId": task_id, "fileName": "upload.json", "content": json.dumps(taskjson.blender())})
    raw.refused(SUBMIT, {"taskId": task_id}, 741, "task.json")


@pytest.mark.parametrize("scene, fragments", [
    ("D:/proj/shots/missing.blend", ("D:/proj/shots/missing.blend", "upload it first")),
    ("/mnt/studio/shot.blend", ("/mnt/studio/shot.blend", "not on the farm")),
    ("D:/../../etc/passwd", ("D:/../../etc/passwd", "'..'")),
    ("D:\\proj\\..\\..\\..\\etc\\passwd", ("'..'",)),
    ("/etc/passwd", ("/etc/passwd",)),
    ("//server/share/../../../etc/passwd", ("'..'",)),
    ("D:/proj/shots/shot010.blend\x00.png", ("NUL",)),
])
def test_scene_must_be_on_the_farm_and_inside_the_users_storage(raw, scene, fragments):
    task_id = new_task(raw)
    raw.ok(UPLOAD, {"taskId": task_id, "fileName": "task.json", "content": json.dumps(taskjson.blender(scene))})
    raw.refused(SUBMIT, {"taskId": task_id}, 600, *fragments)
    assert info(raw, task_id)["submitDate"] is None


def test_another_users_scene_is_not_reachable(farm, raw, users):
    """bob's scene is at the same local path; alice's task cannot read bob's storage by a relative trick."""
    task_id = new_task(raw)
    sneaky = f"D:/../../{users[1].user_id}/input/D/proj/shots/shot010.blend"
    raw.ok(UPLOAD, {"taskId": task_id, "fileName": "task.json", "content": json.dumps(taskjson.blender(sneaky))})
    raw.refused(SUBMIT, {"taskId": task_id}, 600, "'..'")


def test_task_json_cannot_change_after_submit(raw):
    task_id = waiting_task(raw)
    raw.refused(UPLOAD, {"taskId": task_id, "fileName": "task.json", "content": "{}"}, 718, "before submit")
    raw.ok(SUBMIT, {"taskId": task_id})  # a repeat submit is still fine
    assert info(raw, task_id)["totalFrames"] == 10


# ------------------------------------------------------------------ bodies and paths


@pytest.mark.parametrize("content, fragment", [
    (b"this is not json", "not valid JSON"),
    (b"{\"taskIds\": [1,", "not valid JSON"),
    (b"\xff\xfe{}", "not valid JSON"),
    (b"[1, 2, 3]", "JSON object"),
    (b"[{\"taskIds\": [1]}]", "JSON object"),
    (b"\"taskIds\"", "JSON object"),
    (b"42", "JSON object"),
    (b"null", "JSON object"),
    (b"[" * 100000 + b"]" * 100000, "JSON"),
    (json.dumps(json.loads("[" * 60 + "1" + "]" * 60)).encode().join([b'{"taskIds": ', b"}"]), "nested"),
])
def test_bodies_that_are_not_a_json_object_are_600(raw, content, fragment):
    headers = raw.headers(STOP, {})
    raw.refused(STOP, None, 600, fragment, content=content, headers=headers)


def test_body_over_8_mib_is_600(raw):
    big = json.dumps({"taskIds": [1], "pad": "x" * (8 * 1024 * 1024)}).encode()
    headers = raw.headers(STOP, {})
    raw.refused(STOP, None, 600, "MiB", content=big, headers=headers)

    def chunks():  # no Content-Length: the limit holds while reading
        yield b'{"pad": "'
        for _ in range(9):
            yield b"x" * (1024 * 1024)
        yield b'"}'

    response = raw.client.post(raw.farm.url + STOP, content=chunks(), headers=headers)
    assert check_envelope(response)["code"] == 600


def test_unknown_path_is_404_and_get_is_refused(raw, farm):
    raw.refused("/api/render/handle/noSuchThing", {}, 404, "/api/render/handle/noSuchThing")
    raw.refused("/api/render/handle/getTaskList/v3", {}, 404)
    raw.refused("/api/render/handle/..%2F..%2Fsetup", {}, 404)
    response = raw.client.get(farm.url + PROFILE)
    assert check_envelope(response)["code"] == 603


# ------------------------------------------------------------------ all or nothing


def test_list_operation_with_an_unknown_id_changes_nothing(raw):
    good = [waiting_task(raw), waiting_task(raw)]
    for path, body in ((STOP, {}), (ABORT, {}), (FULL_SPEED, {}), (OVERTIME, {"overTime": 600}),
                       ("/api/render/handle/addTaskLabel", {"label": "nope"})):
        message = raw.refused(path, {"taskIds": [good[0], UNKNOWN, good[1]], **body}, 937, str(UNKNOWN))
        assert str(good[0]) not in message
    for task_id in good:
        item = info(raw, task_id)
        assert item["taskStatus"] == 0 and item["overTimeStop"] is None and item["labels"] == []
        assert {f["frameStatus"] for f in raw.ok(FRAMES, {"taskId": task_id})["items"]} == {1}


def test_list_operation_with_another_users_id_changes_nothing(raw, raw_bob):
    mine, theirs = waiting_task(raw), waiting_task(raw_bob)
    raw.refused(ABORT, {"taskIds": [mine, theirs]}, 937, str(theirs))
    raw.refused(DELETE, {"taskIds": [theirs]}, 937, str(theirs))
    assert info(raw, mine)["taskStatus"] == 0
    assert info(raw_bob, theirs)["taskStatus"] == 0 and info(raw_bob, theirs)["isDelete"] == 1


def test_list_operation_with_one_task_in_the_wrong_state_changes_nothing(raw):
    waiting, stopped, created = waiting_task(raw), waiting_task(raw), new_task(raw)
    raw.ok(STOP, {"taskIds": [stopped]})
    raw.refused(STOP, {"taskIds": [waiting, created]}, 718, str(created), "not been submitted", "Nothing was changed")
    raw.refused(DELETE, {"taskIds": [stopped, waiting]}, 718, str(waiting), "stop the task first")
    raw.refused(START, {"taskIds": [stopped, created]}, 718, str(created))
    assert info(raw, waiting)["taskStatus"] == 0
    assert info(raw, stopped)["taskStatus"] == 10 and info(raw, stopped)["isDelete"] == 1
    assert info(raw, created)["taskStatus"] == 0 and info(raw, created)["submitDate"] is None


def test_refused_operation_leaves_the_frames(raw):
    task_id = waiting_task(raw)
    raw.ok(ABORT, {"taskIds": [task_id]})
    before = raw.ok(FRAMES, {"taskId": task_id, "pageSize": 100})
    raw.refused(START, {"taskIds": [task_id]}, 718, "abandoned")
    raw.refused(FULL_SPEED, {"taskIds": [task_id]}, 718)
    assert raw.ok(FRAMES, {"taskId": task_id, "pageSize": 100}) == before
    assert info(raw, task_id)["taskStatus"] == 35


# ------------------------------------------------------------------ every route, nasty values


NASTY = [None, True, -1, 0, 2**31, 2**63, 2**70, -2**70, 1e308, 1.5, "", "x" * 5000, "%_%'\";--", "\x00",
         [], {}, [None], [2**70], ["x"], [[1]], {"a": 1}, "D:/../../etc/passwd", "0001-01-01 00:00:00"]
PLAUSIBLE = {"fileName": "task.json", "content": "{}", "label": "n", "newName": "n", "delName": "n"}


def _plausible(name: str):
    if name in PLAUSIBLE:
        return PLAUSIBLE[name]
    return [UNKNOWN] if name.endswith(("Ids", "Names")) else UNKNOWN


@pytest.fixture(scope="module")
def raw_carol(farm):
    client = Raw(farm, farm.create_user("carol"))
    yield client
    client.close()


RENDERBUS_ROUTES = {**ROUTES, **HARDWARE_ROUTES, **PROGRESS_ROUTES}


@pytest.mark.parametrize("path", sorted(RENDERBUS_ROUTES))
def test_every_route_survives_nasty_values(raw_carol, path):
    fields = RENDERBUS_ROUTES[path].model.model_fields
    required = {name: _plausible(name) for name, field in fields.items() if field.is_required()}
    wrong = []
    for name in list(fields) or ["unexpected"]:
        for value in NASTY:
            response = raw_carol.send(path, {**required, name: value})
            try:
                answer = check_envelope(response)
                assert answer["code"] in (200, 403, 404, 503, 600, 601, 718, 740, 741, 937)
            except AssertionError:
                wrong.append((name, repr(value)[:40], response.text[:300]))
    assert not wrong, wrong


def test_nul_characters_are_refused_before_they_reach_the_database(raw):
    raw.refused(CREATE, {"count": 1, "taskUserLevel": 50, "labels": ["ok", "bad\x00"]}, 600, "'labels[1]'", "NUL")
    raw.refused(CREATE, {"count": 1, "taskUserLevel": 50, "artist": "\x00"}, 600, "'artist'", "NUL")
    raw.refused(LIST, {"searchKeyword": "shot\x00"}, 600, "'searchKeyword'", "NUL")
    task_id = new_task(raw)
    raw.refused(UPLOAD, {"taskId": task_id, "fileName": "task.json", "content": "{\x00}"}, 600, "'content'")


def test_no_traceback_in_the_server_log(farm):
    """Runs last in this module: nothing above made the server fail."""
    assert "Traceback" not in farm.log()
