"""rayfarm's own SDK (rayfarm.sdk) against a real server, plus its retry policy."""

import inspect
import json
import socket
import threading
import time

import httpx
import pytest

from rayfarm.protocol import signing
from rayfarm.sdk import (
    Connect,
    QueryOperator,
    RayfarmAPI,
    RayfarmAPIError,
    RayfarmConnectionError,
    RayfarmError,
    TaskOperator,
)
from tests.farmproc import free_port
from tests.integration.support import SCENE, blender_task_json, running_farm

FRAMES = [str(n) for n in range(1, 11)]


@pytest.fixture(scope="module")
def farm(tmp_path_factory):
    yield from running_farm(tmp_path_factory, "sdk")


@pytest.fixture(scope="module")
def users(farm):
    alice, bob = farm.create_user("alice"), farm.create_user("bob")
    farm.input_file(alice, SCENE)
    return alice, bob


@pytest.fixture(scope="module")
def api(farm, users):
    client = RayfarmAPI(users[0].access_id, users[0].access_key, domain=farm.domain)
    yield client
    client.close()


@pytest.fixture(scope="module")
def other(farm, users):
    client = RayfarmAPI(users[1].access_id, users[1].access_key, domain=farm.domain)
    yield client
    client.close()


def submitted(api: RayfarmAPI, **create) -> int:
    task_id = api.task.create_task(**create)["taskIdList"][0]
    api.task.upload_task_json(task_id, blender_task_json())
    api.task.submit_task(task_id)
    return task_id


def status(api: RayfarmAPI, task_id: int) -> int:
    return api.query.task_info([task_id])["items"][0]["taskStatus"]


def refused(call, *args) -> RayfarmAPIError:
    started = time.monotonic()
    with pytest.raises(RayfarmAPIError) as caught:
        call(*args)
    assert time.monotonic() - started < 2, "a refused call must not be retried"
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
    started = time.monotonic()
    with pytest.raises(RayfarmAPIError) as caught:
        RayfarmAPI(users[0].access_id, "not-the-key", domain=farm.domain, login=True)
    assert caught.value.code == 611 and "signature" in caught.value.message
    assert caught.value.url == f"{farm.url}/api/render/setUp/queryUserProfile"
    assert "Error code: 611" in str(caught.value)
    assert time.monotonic() - started < 2


def test_create_submit_twice_and_task_info(api, users):
    created = api.task.create_task(task_user_level=60, labels=("shot010", "lighting"), artist="alice")
    [task_id] = created["taskIdList"]
    assert created == {"taskIdList": [task_id], "aliasTaskIdList": [f"2W{task_id}"], "userId": users[0].user_id}
    assert api.task.upload_task_json(task_id, json.dumps(blender_task_json())) is None  # str content
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
    task.upload_task_json(first, blender_task_json())  # dict content
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


# ------------------------------------------------------------------ retry policy


def quick(domain: str, **options) -> RayfarmAPI:
    options = {"retries": 2, "retry_wait": 0.01, "retry_max_wait": 0.02, "timeout": 5.0, **options}
    return RayfarmAPI("AKID-test", "key-test", domain=domain, **options)


def test_nothing_listening_fails_after_bounded_retries():
    port = free_port()
    client = quick(f"127.0.0.1:{port}")
    for call in (client.query.platforms, lambda: client.task.create_task(count=1)):
        started = time.monotonic()
        with pytest.raises(RayfarmConnectionError) as caught:
            call()
        error = caught.value
        assert time.monotonic() - started < 3
        assert error.attempts == 3 and not error.may_have_reached
        assert f"http://127.0.0.1:{port}/api/" in error.url
        assert str(error).startswith(f"Could not connect to the farm at http://127.0.0.1:{port}")
        assert "tried 3 times" in str(error)
        assert isinstance(error, RayfarmError)
    client.close()


def test_default_retry_is_bounded_by_the_deadline():
    client = RayfarmAPI("AKID-test", "key-test", domain=f"127.0.0.1:{free_port()}", retries=100, retry_wait=0.05,
                        retry_max_wait=0.1, retry_deadline=0.5)
    started = time.monotonic()
    with pytest.raises(RayfarmConnectionError) as caught:
        client.query.all_frame_status()
    assert time.monotonic() - started < 3
    assert 1 < caught.value.attempts < 100


class HangUp:
    """A TCP server that reads each request and closes the connection without answering (or stalls)."""

    def __init__(self, stall: float = 0.0):
        self.stall = stall
        self.connections = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.domain = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self.drop, args=(conn,), daemon=True).start()

    def drop(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(2)
            try:
                conn.recv(65536)
                time.sleep(self.stall)
            except OSError:
                pass

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize("stall", [0.0, 0.6], ids=["hang-up", "read-timeout"])
def test_lost_answer_is_retried_only_for_idempotent_calls(stall):
    server = HangUp(stall)
    client = quick(server.domain, timeout=0.3)
    try:
        with pytest.raises(RayfarmConnectionError) as caught:
            client.query.task_info([1])
        assert caught.value.attempts == 3 and caught.value.may_have_reached
        assert "safe to repeat" in str(caught.value)
        time.sleep(0.1)
        assert server.connections == 3

        server.connections = 0
        with pytest.raises(RayfarmConnectionError) as caught:
            client.task.create_task(count=2)
        assert caught.value.attempts == 1 and caught.value.may_have_reached
        assert "check whether it took effect" in str(caught.value)
        time.sleep(0.1)
        assert server.connections == 1  # createTask is never sent twice
    finally:
        client.close()
        server.close()


def recorder(answers):
    """A mock transport answering from ``answers`` (cycled), recording each request."""
    seen = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        status, payload = answers[min(len(seen), len(answers)) - 1]
        if isinstance(payload, dict):
            return httpx.Response(status, json=payload)
        return httpx.Response(status, text=payload)

    return httpx.MockTransport(handle), seen


def envelope(code: int, data=None, message: str = "An answer for the test.") -> dict:
    return {"version": "1.0.0", "result": code == 200, "code": code, "message": message, "data": data,
            "serverTime": 0, "requestId": "x"}


@pytest.mark.parametrize("code", [600, 601, 602, 603, 610, 611, 718, 740, 741, 937])
def test_client_mistakes_are_never_retried(code):
    transport, seen = recorder([(200, envelope(code))])
    client = quick("farm.example:80", transport=transport)
    for call in (lambda: client.task.stop_task([1]), lambda: client.task.create_task()):
        with pytest.raises(RayfarmAPIError) as caught:
            call()
        assert caught.value.code == code and caught.value.message == "An answer for the test."
    assert len(seen) == 2


def test_server_trouble_is_retried_for_idempotent_calls_only():
    # HTTP 503 twice, then success: an idempotent call gets through on the third attempt
    transport, seen = recorder([(503, "busy"), (503, "busy"), (200, envelope(200, "success"))])
    client = quick("farm.example:80", transport=transport)
    assert client.task.full_speed([5]) == "success" and len(seen) == 3
    # each attempt is signed anew: fresh nonces, valid signatures
    assert len({r.headers["nonce"] for r in seen}) == 3
    for request in seen:
        headers = {name: request.headers[name] for name in signing.SIGNED_HEADERS}
        message = signing.string_to_sign("farm.example:80", request.url.path, headers, json.loads(request.content))
        assert signing.verify("key-test", message, request.headers["signature"])
        assert headers["channel"] == "4" and headers["version"] == "2.0.0" and headers["platform"] == "2"
        assert request.headers["host"] == "farm.example:80"  # the signed host, default port and all

    transport, seen = recorder([(502, "bad gateway"), (200, envelope(200, {"taskIdList": [1]}))])
    client = quick("farm.example:80", transport=transport)
    with pytest.raises(RayfarmAPIError) as caught:
        client.task.create_task()
    assert caught.value.code == 502 and "HTTP 502" in caught.value.message and len(seen) == 1

    transport, seen = recorder([(200, envelope(500)), (200, envelope(200, []))])
    client = quick("farm.example:80", transport=transport)
    assert client.query.platforms() == [] and len(seen) == 2

    # too many requests: the farm did nothing, so even createTask is tried again
    transport, seen = recorder([(200, envelope(429)), (429, "slow down"), (200, envelope(200, {"taskIdList": [7]}))])
    client = quick("farm.example:80", transport=transport)
    assert client.task.create_task() == {"taskIdList": [7]} and len(seen) == 3


def test_answers_that_are_not_envelopes_are_clear_errors():
    transport, seen = recorder([(200, "<html>hello</html>")])
    client = quick("farm.example:80", transport=transport)
    with pytest.raises(RayfarmAPIError) as caught:
        client.query.platforms()
    assert "not a Renderbus envelope" in caught.value.message and len(seen) == 1


def test_body_is_signed_as_the_farm_decodes_it(api):
    """Tuples and float overtimes are signed as the JSON the farm reads (the official SDK fails on tuples)."""
    task_id = submitted(api, labels=("a", "b"))
    assert api.task.set_task_overtime_top([task_id], 1800.4) == "SUCCESS"
    assert api.query.task_info([task_id])["items"][0]["overTimeStop"] == 1800


def test_connect_rejects_bad_configuration():
    with pytest.raises(ValueError):
        Connect("", "key")
    with pytest.raises(ValueError):
        Connect("id", "key", protocol="ftp")
    assert "key-test" not in repr(quick("farm.example:80")) and "key-test" not in repr(quick("x:1").connect)
