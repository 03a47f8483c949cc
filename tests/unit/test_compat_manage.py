"""RayvisionManageTask of the rayvision_sync drop-in: the official answers (and errors) for the same items.

The reference items and expected results are those of the spec (renderbus-workflow.md section 3) and of
rayvision_sync's own tests; ``test_same_answers_and_errors_as_the_official_package`` runs the official
3.1.8 code in its own environment on every shape below and compares.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rayfarm.compat.rayvision_sync import RayvisionError, RayvisionManageTask

ROOT = Path(__file__).resolve().parents[2]

REFERENCE = [
    {"id": 6419169, "taskStatus": 30, "statusText": "render_task_status_0", "isOpen": 0,
     "outputFileName": "test_info_1", "userId": "1001", "bid": "121"},
    {"id": 647611, "taskStatus": 35, "statusText": "render_task_status_-1", "isOpen": 1,
     "outputFileName": "test_info_2", "userId": "1002", "bid": "122",
     "respRenderingTaskList": [{"id": 6416355, "taskStatus": 45, "statusText": "render_task_status_-2", "isOpen": 1,
                                "outputFileName": "test_info_3", "userId": "1002", "bid": "122"}]},
]
PLAIN = {"id": 555, "taskStatus": 5, "statusText": "render_task_status_5", "isOpen": 0, "outputFileName": "555_scene",
         "userId": 100001, "bid": "20201", "respRenderingTaskList": []}


def child(status: int, name: str | None, **extra) -> dict:
    return {"id": 700 + status, "taskStatus": status, "statusText": f"render_task_status_{status}", "isOpen": 0,
            "outputFileName": name, "userId": 1, "bid": "20201", **extra}


def parent(*children, **extra) -> dict:
    item = {"id": 700, "taskStatus": 5, "statusText": "render_task_status_5", "isOpen": 1, "outputFileName": "700_p",
            "userId": 1, "bid": "20201", "respRenderingTaskList": list(children)}
    item.update(extra)
    return item


# Each case: the items queryTaskInfo answers.
SHAPES = {
    "reference": REFERENCE,
    "plain": [PLAIN],
    "plain_done": [{**PLAIN, "taskStatus": 25}],
    "test_done": [{**PLAIN, "taskStatus": 40}],
    "no_items": [],
    "layers": [parent(child(25, "700_l1"), child(5, "700_l2"))],
    "layers_done": [parent(child(25, "700_l1"), child(30, None))],
    "childless_parent": [{k: v for k, v in parent().items() if k != "respRenderingTaskList"}],
    "null_children": [parent(respRenderingTaskList=None)],
    "null_children_closed": [{**PLAIN, "respRenderingTaskList": None}],
    "is_open_missing": [{k: v for k, v in PLAIN.items() if k != "isOpen"}],
    "is_open_null": [{**PLAIN, "isOpen": None}],
    "is_open_false": [{**PLAIN, "isOpen": False}],
    "is_open_true": [parent(child(25, "a"), isOpen=True)],
    "is_open_string": [parent(child(10, "a"), isOpen="1")],
    "status_50": [{**PLAIN, "taskStatus": 50}],
    "status_missing": [{k: v for k, v in PLAIN.items() if k != "taskStatus"}],
    "child_status_60": [parent(child(60, "a"))],
    "null_output_and_ids": [{**PLAIN, "outputFileName": None, "userId": None, "bid": None}],
    "children_without_is_open": [parent({"id": 9, "taskAlias": "2W9", "sceneName": "s.blend", "taskStatus": 25})],
}

# The same code runs against the official class (official venv) and ours (this interpreter).
PROBE = r"""
import json, sys
from {module} import RayvisionManageTask

class Query:
    def __init__(self, items):
        self.items = items
    def task_info(self, task_ids_list):
        return {{"items": json.loads(json.dumps(self.items))}}

def run(call):
    try:
        return {{"ok": call()}}
    except Exception as exc:
        return {{"raised": type(exc).__name__, "code": getattr(exc, "error_code", None)}}

answers = {{}}
for name, items in json.load(sys.stdin).items():
    manage = RayvisionManageTask(Query(items))
    answers[name] = {{
        "status": run(lambda: manage.get_task_status([1])),
        "codes": run(lambda: manage.find_task_status_codes(manage.get_task_status([1]))),
        "outputs": run(lambda: manage.output_file_names(manage.get_task_status([1]))),
        "end": run(lambda: manage.is_task_end(1, False)),
        "end_test_stop": run(lambda: manage.is_task_end(1, True)),
    }}
json.dump(answers, sys.stdout)
"""


def probe(python: str, module: str, env: dict | None = None) -> dict:
    done = subprocess.run([python, "-W", "ignore", "-c", PROBE.format(module=module)], input=json.dumps(SHAPES),
                          capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


class Query:
    def __init__(self, items):
        self.items = items
        self.asked = []

    def task_info(self, task_ids_list):
        self.asked.append(task_ids_list)
        return {"items": self.items}


def test_reference_items_give_the_official_status_dicts():
    manage = RayvisionManageTask(Query(REFERENCE))
    assert manage.get_task_status([6419169, 647611]) == [
        {"task_id": "6419169", "sub_task_status": [], "task_status_description": "Done(with failed frame)",
         "is_opener": "0", "task_status_text": "render_task_status_0", "task_status_code": "30",
         "output_file_name": "test_info_1", "userId": "1001", "bid": "121"},
        {"task_id": "647611",
         "sub_task_status": [{"task_id": "6416355", "sub_task_status": [], "task_status_description": "Failed",
                              "is_opener": "1", "task_status_text": "render_task_status_-2", "task_status_code": "45",
                              "output_file_name": "test_info_3", "userId": "1002", "bid": "122"}],
         "task_status_description": "Abort", "is_opener": "1", "task_status_text": "render_task_status_-1",
         "task_status_code": "35", "output_file_name": "test_info_2", "userId": "1002", "bid": "122"},
    ]
    assert manage._query.asked == [[6419169, 647611]]


def test_only_leaves_count_and_an_open_child_without_list_adds_nothing():
    manage = RayvisionManageTask(Query(REFERENCE))
    statuses = manage.get_task_status([1])
    assert manage.find_task_status_codes(statuses) == ["30"]
    assert manage.output_file_names(statuses) == [{"output_name": "test_info_1", "user_id": "1001", "bid": "121"}]
    assert manage.is_task_end(1, False) is True


def test_status_lists_as_in_the_official_tests():
    statuses = [
        {"task_status_code": "-1", "is_opener": "1", "output_file_name": "test1", "userId": "122223", "bid": "122",
         "sub_task_status": [{"task_status_code": "11", "output_file_name": "test2", "is_opener": "0",
                              "userId": "122223", "bid": "122"}]},
        {"task_status_code": "10", "is_opener": "0", "output_file_name": "test3", "sub_task_status": [],
         "userId": "122222", "bid": "123"},
    ]
    manage = RayvisionManageTask(Query([]))
    assert manage.find_task_status_codes(statuses) == ["11", "10"]
    assert manage.output_file_names(statuses) == [{"output_name": "test2", "user_id": "122223", "bid": "122"},
                                                  {"output_name": "test3", "user_id": "122222", "bid": "123"}]


def test_plain_task_and_the_end_rules():
    assert RayvisionManageTask(Query([PLAIN])).is_task_end(555, False) is False
    assert RayvisionManageTask(Query([{**PLAIN, "taskStatus": 25}])).is_task_end(555, False) is True
    assert RayvisionManageTask(Query([{**PLAIN, "taskStatus": 40}])).is_task_end(555, False) is False
    assert RayvisionManageTask(Query([{**PLAIN, "taskStatus": 40}])).is_task_end(555, True) is True
    assert RayvisionManageTask(Query([])).is_task_end(555, False) is None
    assert RayvisionManageTask(Query(SHAPES["childless_parent"])).is_task_end(700, False) is None


def test_shapes_the_official_rules_refuse():
    with pytest.raises(TypeError):
        RayvisionManageTask(Query(SHAPES["is_open_missing"])).get_task_status([555])
    with pytest.raises(TypeError):
        RayvisionManageTask(Query(SHAPES["null_children"])).get_task_status([700])
    with pytest.raises(ValueError):  # a JSON boolean becomes "False", which int() refuses later
        manage = RayvisionManageTask(Query(SHAPES["is_open_false"]))
        manage.output_file_names(manage.get_task_status([555]))
    with pytest.raises(RayvisionError) as caught:
        RayvisionManageTask(Query(SHAPES["status_50"])).get_task_status([555])
    assert caught.value.error_code == 1000000


def test_same_answers_and_errors_as_the_official_package(rayvision_sync_python):
    official = probe(str(rayvision_sync_python), "rayvision_sync.manage")
    ours = probe(sys.executable, "rayfarm.compat.rayvision_sync.manage", env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert set(official) == set(SHAPES)
    for name in SHAPES:
        assert ours[name] == official[name], name
    # the shapes really exercise both sides of the rules
    assert official["is_open_missing"]["status"]["raised"] == "TypeError"
    assert official["status_50"]["status"] == {"raised": "RayvisionError", "code": 1000000}
    assert official["layers"]["end"] == {"ok": False} and official["layers_done"]["end"] == {"ok": True}
    assert official["layers_done"]["outputs"] == {"ok": [{"output_name": "700_l1", "user_id": 1, "bid": "20201"}]}
