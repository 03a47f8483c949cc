"""rayfarm's own SDK (rayfarm.sdk) against a real server, plus its retry policy."""

import inspect
import json

import httpx
import pytest

from rayfarm.sdk import (
    QueryOperator,
    RayfarmAPI,
    RayfarmAPIError,
    TaskOperator,
)
from tests.support import taskjson
from tests.support.farms import running_farm
from tests.support.tasks import status, submit

FRAMES = [str(n) for n in range(1, 11)]


@pytest.fixture(scope="module")
def farm(tmp_path_factory):
    yield from running_farm(tmp_path_factory, "sdk")


class Counting(httpx.HTTPTransport):
    """The network, counting the requests sent through it (what a retry would repeat)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = 0
        TRANSPORTS.append(self)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        return super().handle_request(request)


TRANSPORTS: list[Counting] = []


def sent() -> int:
    """Requests sent so far by the clients of this module that count them."""
    return sum(transport.sent for transport in TRANSPORTS)


@pytest.fixture(scope="module")
def api(farm, users):
    client = RayfarmAPI(users[0].access_id, users[0].access_key, domain=farm.domain, transport=Counting())
    yield client
    client.close()


@pytest.fixture(scope="module")
def other(farm, users):
    client = RayfarmAPI(users[1].access_id, users[1].access_key, domain=farm.domain, transport=Counting())
    yield client
    client.close()


def submitted(api: RayfarmAPI, **create) -> int:
    return submit(api, taskjson.blender(), **create)


def refused(call, *args) -> RayfarmAPIError:
    """The call (of a client that counts its requests) is refused: one request, never retried."""
    before = sent()
    with pytest.raises(RayfarmAPIError) as caught:
        call(*args)
    assert sent() - before == 1, "a refused call must not be retried"
    return caught.value


# ------------------------------------------------------------------ the public surface matches the seed


def test_task_operator_surface_matches_the_official_sdk():
    assert TaskOperator.TASK_PARAM == "taskIds"
    expected = {
        "create_task": "(self, count=1, task_user_level=50, out_user_id=None, labels=None, clone_original_id=None, "
                       "artist=None)",
        "submit_task": "(self, task_id, producer=None, only_id=False)",
        "stop_task": "(self, task_param_list)",
        "start_task": "(self, task_param_list)",
        "abort_task": "(self, task_param_list)",
        "delete_task": "(self, task_param_list)",
        "full_speed": "(self, task_id_list)",
        "set_task_overtime_top": "(self, task_id_list, overtime)",
        "update_priority": "(self, task_id, priority)",
        "update_task_limit": "(self, taskId, taskLimit)",
        "upload_task_json": "(self, task_id, content, file_name='task.json')",
        # rayfarm's names for recommitTaskFrames / stopTaskFrames (tests/integration/test_frame_selection.py)
        "recommit_task_frames": "(self, task_id, frame_ids=None, select_all=False, status=None)",
        "stop_task_frames": "(self, task_id, frame_ids=None, select_all=False, status=None)",
    }
    for name, text in expected.items():
        assert plain_signature(getattr(TaskOperator, name)) == text, name
        assert getattr(TaskOperator, name).__doc__, name
    assert isinstance(TaskOperator.task_id, property) and TaskOperator.task_id.__doc__
    query = {
        "get_task_list": "(self, page_num=1, page_size=100, status_list=None, search_keyword=None, start_time=None, "
                         "end_time=None, recycle_flag=None)",
        "task_info": "(self, task_ids_list)",
        "task_frames": "(self, task_id, page_num=1, page_size=100, search_keyword=None, status=None)",
        "all_frame_status": "(self)",
        "platforms": "(self)",
        "iter_tasks": "(self, page_size=100, status_list=None, search_keyword=None, start_time=None, end_time=None, "
                      "recycle_flag=None)",
        # the official QueryOperator's frame calls, same names and signatures
        "restart_failed_frames": "(self, task_param_list, status=None)",
        "restart_frame": "(self, task_id, select_all=1, ids_list=None, status=None)",
        "stop_frame": "(self, task_id, select_all=1, ids_list=None, status=None)",
        "get_frame_thumbnall": "(self, frame_id, frame_status=4)",
        "get_all_frames": "(self, task_id, start_page=1, end_page=2000, page_size=100)",
        "get_custome_frames": "(self, task_id, restartframes)",
    }
    for name, text in query.items():
        assert plain_signature(getattr(QueryOperator, name)) == text, name
        assert getattr(QueryOperator, name).__doc__, name
    # typed: every public method has annotations
    for cls in (TaskOperator, QueryOperator, RayfarmAPI):
        for name, member in vars(cls).items():
            if callable(member) and not name.startswith("_"):
                assert inspect.signature(member).return_annotation is not inspect.Signature.empty, (cls, name)


def plain_signature(func) -> str:
    signature = inspect.signature(func)
    return str(signature.replace(parameters=[p.replace(annotation=inspect.Parameter.empty)
                                             for p in signature.parameters.values()],
                                 return_annotation=inspect.Signature.empty))


# ------------------------------------------------------------------ flows against the farm


def test_login_is_lazy_and_reads_the_profile(farm, users):
    alice = users[0]
    client = RayfarmAPI(alice.access_id, alice.access_key, domain=farm.domain)
    assert client._user_info is None
    assert client.user_info["user_id"] == alice.user_id == client.get_user_id()
    assert client.user_info["user_name"] == "alice" and client.user_info["input_bid"] == "10201"
    client.close()


def test_wrong_key_fails_at_once_with_login(farm, users):
    before = sent()
    with pytest.raises(RayfarmAPIError) as caught:
        RayfarmAPI(users[0].access_id, "not-the-key", domain=farm.domain, login=True, transport=Counting())
    assert caught.value.code == 611 and "signature" in caught.value.message
    assert caught.value.url == f"{farm.url}/api/render/setUp/queryUserProfile"
    assert "Error code: 611" in str(caught.value)
    assert sent() - before == 1  # the first call of the login, not retried


def test_create_submit_twice_and_task_info(api, users):
    created = api.task.create_task(task_user_level=60, labels=("shot010", "lighting"), artist="alice")
    [task_id] = created["taskIdList"]
    assert created == {"taskIdList": [task_id], "aliasTaskIdList": [f"2W{task_id}"], "userId": users[0].user_id}
    assert api.task.upload_task_json(task_id, json.dumps(taskjson.blender())) is None  # str content
    assert api.task.submit_task(task_id, producer="bob the producer") == {"taskId": task_id}
    frames = api.query.task_frames(task_id, page_size=100)
    assert api.task.submit_task(task_id) == {"taskId": task_id}
    assert api.query.task_frames(task_id, page_size=100) == frames
    assert [f["frameIndex"] for f in frames["items"]] == FRAMES and frames["total"] == 10
    item = api.query.task_info([task_id])["items"][0]
    assert item["taskStatus"] == 0 and item["totalFrames"] == 10 and item["waitingCount"] == 10
    assert item["taskUserLevel"] == 60 and item["artist"] == "alice" and item["producer"] == "bob the producer"
    assert sorted(item["labels"]) == ["lighting", "shot010"]
    assert [t["id"] for t in api.query.iter_tasks(search_keyword=str(task_id))].count(task_id) == 1
    assert api.query.task_frames(task_id, search_keyword="7")["items"][0]["frameIndex"] == "7"
    assert api.query.task_frames(task_id, page_num=3, page_size=5)["items"] == []


def test_task_id_property_semantics(api):
    task = TaskOperator(api.connect)
    first = task.task_id
    assert task.task_id == first
    with pytest.raises(RayfarmAPIError) as caught:  # nothing uploaded: the submit fails, the id stays
        task.submit_task(first)
    assert caught.value.code == 741
    assert task.task_id == first
    task.upload_task_json(first, taskjson.blender())  # dict content
    assert task.submit_task(first, only_id=True) == first  # only_id keeps the id, as the official SDK does
    assert task.task_id == first
    assert task.submit_task(first) == {"taskId": first}
    second = task.task_id
    assert second != first and task.task_id == second
    assert status(api, first) == 0 and api.query.task_info([second])["items"][0]["submitDate"] is None


def test_clone_and_count(api):
    original = submitted(api, labels=["keep"])
    api.task.update_task_limit(original, 2)
    clone = api.task.create_task(clone_original_id=original)["taskIdList"][0]
    assert api.task.submit_task(clone) == {"taskId": clone}
    item = api.query.task_info([clone])["items"][0]
    assert item["cloneOriginalId"] == original and item["totalFrames"] == 10 and item["taskStatus"] == 0
    assert item["labels"] == ["keep"] and item["taskLimit"] == 2
    many = api.task.create_task(count=4)
    assert len(set(many["taskIdList"])) == 4
    assert many["aliasTaskIdList"] == [f"2W{i}" for i in many["taskIdList"]]


def test_stop_start_settings_abort_delete(api):
    task_id = submitted(api)
    assert api.task.stop_task([task_id]) is None and status(api, task_id) == 10
    assert api.task.stop_task([task_id]) is None and status(api, task_id) == 10  # a repeat is harmless
    assert {f["frameStatus"] for f in api.query.task_frames(task_id)["items"]} == {3}
    assert api.task.start_task([task_id]) is None and status(api, task_id) == 0
    assert {f["frameStatus"] for f in api.query.task_frames(task_id)["items"]} == {1}
    assert api.task.update_priority(task_id, 90) is None
    assert api.task.update_task_limit(task_id, 4) is None
    assert api.task.set_task_overtime_top([task_id], 1800) == "SUCCESS"
    assert api.task.full_speed([task_id]) == "success"
    item = api.query.task_info([task_id])["items"][0]
    assert (item["taskUserLevel"], item["taskLimit"], item["overTimeStop"], item["taskStatus"]) == (90, 4, 1800, 0)
    assert api.task.set_task_overtime_top([task_id], 0) == "SUCCESS"
    assert api.query.task_info([task_id])["items"][0]["overTimeStop"] is None

    error = refused(api.task.delete_task, [task_id])
    assert error.code == 718 and "stop the task first" in error.message and status(api, task_id) == 0

    assert api.task.abort_task([task_id]) is None and status(api, task_id) == 35
    error = refused(api.task.start_task, [task_id])
    assert error.code == 718 and "abandoned" in error.message
    assert error.url.endswith("/api/rendering/task/renderingTask/startTask")

    assert api.task.delete_task([task_id]) is None
    assert task_id not in [t["id"] for t in api.query.iter_tasks()]
    assert task_id in [t["id"] for t in api.query.iter_tasks(recycle_flag=1)]
    assert api.query.task_info([task_id])["items"][0]["isDelete"] == 0


def test_iter_tasks_pages_until_empty(api):
    made = [submitted(api) for _ in range(3)]
    listed = [t["id"] for t in api.query.iter_tasks(page_size=2)]
    assert len(listed) == len(set(listed))
    assert set(made) <= set(listed)
    assert listed == sorted(listed, reverse=True)
    total = api.query.get_task_list(page_size=1)["total"]
    assert len(listed) == total
    assert api.query.get_task_list(page_num=total + 1, page_size=1)["items"] == []
    stats = api.query.all_frame_status()
    assert stats["totalFrames"] >= 30 and stats["waitingFramesTotal"] >= 30
    assert api.query.platforms()[0]["platform"] == 2


def test_second_user_sees_and_touches_nothing(api, other):
    task_id = submitted(api)
    assert task_id not in [t["id"] for t in other.query.iter_tasks()]
    unknown = 2_000_000_000
    for call in (other.query.task_info, other.task.stop_task, other.task.abort_task, other.task.delete_task,
                 other.task.full_speed):
        foreign, missing = refused(call, [task_id]), refused(call, [unknown])
        assert foreign.code == missing.code == 937
        assert foreign.message.replace(str(task_id), "N") == missing.message.replace(str(unknown), "N")
    for call, args in ((other.task.update_priority, (task_id, 10)), (other.task.update_task_limit, (task_id, 1)),
                       (other.task.submit_task, (task_id,)), (other.query.task_frames, (task_id,)),
                       (other.task.upload_task_json, (task_id, "{}"))):
        assert refused(call, *args).code == 937
    assert refused(other.task.create_task, 1, 50, None, None, task_id).code == 937  # cloning someone else's task
    item = api.query.task_info([task_id])["items"][0]
    assert item["taskStatus"] == 0 and item["taskUserLevel"] == 50 and item["taskLimit"] is None


def test_body_is_signed_as_the_farm_decodes_it(api):
    """Tuples and float overtimes are signed as the JSON the farm reads (the official SDK fails on tuples)."""
    task_id = submitted(api, labels=("a", "b"))
    assert api.task.set_task_overtime_top([task_id], 1800.4) == "SUCCESS"
    assert api.query.task_info([task_id])["items"][0]["overTimeStop"] == 1800
