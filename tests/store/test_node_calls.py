"""The nodes' hot calls: batches (store/writer.py), complete-and-lease (`next`), heartbeat intervals."""

import asyncio
import threading

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from rayfarm.app import make_app
from rayfarm.store import users as users_store
from rayfarm.store import workers
from rayfarm.store.schema import frames, users
from rayfarm.store.writer import Writer
from tests.support.farms import make_farm, make_user, submit


def _names(farm) -> set[str]:
    with farm.db.read() as conn:
        return set(conn.scalars(select(users.c.name)))


def test_a_failing_call_in_a_batch_changes_nothing_and_the_others_commit(tmp_path):
    farm = make_farm(tmp_path)
    writer = Writer(farm.db)
    writer.start()
    entered, gate, seen_after = threading.Event(), threading.Event(), {}

    def blocker(conn):  # holds the writer thread so that the calls below queue up into one batch
        entered.set()
        gate.wait(60)
        return "first"

    def create(name: str, fail: bool = False):
        def fn(conn):
            users_store.create(conn, farm.keys, name)
            if fail:
                raise ValueError(f"{name} failed after writing")
            return name
        return fn

    def after(name):  # runs once committed: a separate connection sees the row
        seen_after[name] = name in _names(farm)
        return name.upper()

    async def main():
        first = asyncio.ensure_future(writer.run(blocker))
        assert await asyncio.to_thread(entered.wait, 60), "the writer did not start the first call"
        calls = [writer.run(create(f"user{i}", fail=i == 3), after) for i in range(6)]
        futures = [asyncio.ensure_future(c) for c in calls]
        await asyncio.sleep(0)  # each call's first step queues it (they run before this coroutine resumes)
        gate.set()
        return await first, await asyncio.gather(*futures, return_exceptions=True)

    try:
        first, results = asyncio.run(main())
    finally:
        writer.stop()
    assert first == "first"
    assert isinstance(results[3], ValueError)
    assert [r for i, r in enumerate(results) if i != 3] == ["USER0", "USER1", "USER2", "USER4", "USER5"]
    names = _names(farm)
    assert {f"user{i}" for i in (0, 1, 2, 4, 5)} <= names and "user3" not in names
    assert seen_after == {f"user{i}": True for i in (0, 1, 2, 4, 5)}
    if farm.db.is_sqlite:
        assert writer.calls == 7 and writer.batches < writer.calls  # batched (then replayed one by one)
    else:
        assert not writer.batching  # PostgreSQL: a transaction per call, in the thread pool


def _worker_call(client, token, path, body):
    response = client.post(f"/v1/worker/{path}", json=body, headers={"Authorization": f"Bearer {token}"})
    return response.status_code, response.json()


@pytest.fixture
def native(tmp_path):
    farm = make_farm(tmp_path)
    with TestClient(make_app(farm)) as client:
        with farm.db.write() as conn:
            token = workers.worker_token(conn, farm.keys)
        yield farm, client, token


def _register(client, token, name):
    status, answer = _worker_call(client, token, "register", {"name": name, "software": {"command": ""}})
    assert status == 200
    return {"workerId": answer["workerId"], "session": answer["session"]}


def test_complete_with_next_returns_the_next_chunk_in_the_same_call(native):
    farm, client, token = native
    task_id = submit(farm, make_user(farm), frames="1-3")
    node = _register(client, token, "n1")
    status, answer = _worker_call(client, token, "lease", {**node, "max": 1})
    assert status == 200 and len(answer["leases"]) == 1
    lease = answer["leases"][0]
    seen = [lease["frameId"]]
    for _ in range(2):
        status, answer = _worker_call(client, token, "complete", {**node, "leaseId": lease["leaseId"], "result": "done",
                                                                  "next": 1})
        assert status == 200 and answer["accepted"] is True and len(answer["leases"]) == 1
        lease = answer["leases"][0]
        assert lease["taskId"] == task_id and lease["frameId"] not in seen
        seen.append(lease["frameId"])
    status, answer = _worker_call(client, token, "complete", {**node, "leaseId": lease["leaseId"], "result": "done",
                                                              "next": 1})
    assert answer == {"accepted": True, "leases": []}  # nothing left
    with farm.db.read() as conn:
        assert sorted(conn.scalars(select(frames.c.status).where(frames.c.task_id == task_id))) == [4, 4, 4]
    # without next the answer is what it always was
    status, answer = _worker_call(client, token, "complete", {**node, "leaseId": lease["leaseId"], "result": "done"})
    assert answer == {"accepted": False}
    # the attempt lines of the chunks leased through complete are in their logs
    farm.logs.flush()
    for frame_id in seen[1:]:
        assert "=== attempt 1 on node n1" in (farm.settings.logs / str(task_id) / f"{frame_id}.log").read_text()


def test_complete_with_next_leases_nothing_to_a_draining_node_and_refuses_a_stale_session(native):
    farm, client, token = native
    submit(farm, make_user(farm), frames="1-3")
    node = _register(client, token, "n2")
    status, answer = _worker_call(client, token, "lease", {**node, "max": 1})
    lease = answer["leases"][0]
    with farm.db.write() as conn:
        workers.set_mode(conn, [node["workerId"]], "drain")
    status, answer = _worker_call(client, token, "complete", {**node, "leaseId": lease["leaseId"], "result": "done",
                                                              "next": 1})
    assert status == 200 and answer == {"accepted": True, "leases": []}
    status, answer = _worker_call(client, token, "complete", {"workerId": node["workerId"], "session": "stale",
                                                              "leaseId": "x", "result": "done", "next": 1})
    assert status == 409


def test_heartbeat_intervals_stretch_on_a_big_farm_and_nodes_hear_it(native, monkeypatch):
    farm, client, token = native
    counted = [0]
    monkeypatch.setattr(workers, "count_live", lambda conn: counted[0])  # what the sweep counts (every second)
    node = _register(client, token, "n3")
    farm.live_nodes = 1
    status, answer = _worker_call(client, token, "heartbeat", {**node})
    assert status == 200 and (answer["heartbeatSeconds"], answer["busyHeartbeatSeconds"]) == (3.0, 1.0)
    counted[0] = farm.live_nodes = 1000  # a farm of a thousand nodes
    status, answer = _worker_call(client, token, "heartbeat", {**node})
    lease = farm.settings.lease_seconds
    # at most HEARTBEAT_BUDGET beats a second from all nodes, but still three per lease
    assert answer["busyHeartbeatSeconds"] == answer["heartbeatSeconds"] == pytest.approx(lease / 3)
    counted[0] = farm.live_nodes = 300
    status, answer = _worker_call(client, token, "register", {"name": "n4", "software": {"command": ""}})
    assert answer["busyHeartbeatSeconds"] == pytest.approx(min(301 / 200, lease / 3))
    assert answer["heartbeatSeconds"] == pytest.approx(min(3.0, lease / 3))
