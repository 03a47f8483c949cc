"""Node pools (hardware configs) on a real database: worker tags become pools, a pinned task renders only on
nodes of its pools, editTaskHardwareConfig moves it, and the claim path spends no extra statement on it."""

import time

import pytest
from sqlalchemy import event

from rayfarm.protocol.codes import ApiError
from rayfarm.scheduler import dispatch
from rayfarm.store import pools, workers
from rayfarm.store import tasks as task_store
from tests.support.farms import claim, complete, make_farm, make_user, submit


def node(farm, name: str, *tags: str, seen: float | None = None):
    info = {"name": name, "hostname": name, "slots": 1, "cores": 1, "memory": 0, "gpu": "",
            "software": {"command": "", "blender": "3.4.1"}, "tags": list(tags), "version": "test"}
    with farm.db.write() as conn:
        worker_id, _, _ = workers.register(conn, info, time.time() if seen is None else seen)
        return conn.execute(workers.workers.select().where(workers.workers.c.id == worker_id)).first()


def pool_ids(farm) -> dict[str, int]:
    with farm.db.read() as conn:
        return {tag: pool_id for pool_id, tag in pools.ids_of(conn, ["gpu", "cpu", "fast", "old"])}


def test_tags_become_pools_and_the_farm_lists_what_recent_nodes_offer(tmp_path):
    farm = make_farm(tmp_path)
    node(farm, "g1", "gpu", "fast")
    node(farm, "g2", "gpu")
    node(farm, "c1")
    node(farm, "gone", "old", seen=time.time() - pools.RECENT_SECONDS - 60)  # seen more than a day ago
    node(farm, "g1", "gpu", "fast")  # registering again adds nothing
    ids = pool_ids(farm)
    assert set(ids) == {"gpu", "fast", "old"} and pools.DEFAULT_ID not in ids.values()
    with farm.db.read() as conn:
        software, listed = pools.offered(conn, time.time())
    assert software == {"command": {""}, "blender": {"3.4.1"}}
    assert listed[0] == {"id": 1, "model": "Default", "tag": None, "nodes": 3}  # any node
    assert sorted(listed[1:], key=lambda p: p["id"]) == listed[1:]  # in the order of their ids
    assert sorted(listed[1:], key=lambda p: p["tag"]) == [{"id": ids["fast"], "model": "fast", "tag": "fast", "nodes": 1},
                                                         {"id": ids["gpu"], "model": "gpu", "tag": "gpu", "nodes": 2}]
    with farm.db.write() as conn:
        workers.set_flags(conn, "g1", disabled=True)  # an administrator took it out
        workers.set_flags(conn, "g2", draining=True)
    with farm.db.read() as conn:
        assert [p["model"] for p in pools.offered(conn, time.time())[1]] == ["Default"]


def test_resolving_ids_and_models(tmp_path):
    farm = make_farm(tmp_path)
    node(farm, "g1", "gpu")
    gpu = pool_ids(farm)["gpu"]
    with farm.db.read() as conn:
        assert pools.resolve(conn, []) is None
        assert pools.resolve(conn, [gpu]) == ["gpu"]
        assert pools.resolve(conn, [gpu, pools.DEFAULT_ID]) is None  # "Default" among them: any node
        assert pools.by_model(conn, "default") is None and pools.by_model(conn, "gpu") == ["gpu"]
        for call in (lambda: pools.resolve(conn, [gpu, 999]), lambda: pools.by_model(conn, "28C")):
            with pytest.raises(ApiError) as info:
                call()
            assert info.value.code == 600 and "hardwareConfig/list" in info.value.message


def test_a_pinned_task_renders_only_on_nodes_with_its_tag_and_can_be_moved(tmp_path):
    farm = make_farm(tmp_path)
    user = make_user(farm)
    cpu_node, gpu_node = node(farm, "c1", "cpu"), node(farm, "g1", "gpu")
    ids = pool_ids(farm)
    pinned = submit(farm, user, frames="1-2", hardwareConfigIds=[str(ids["gpu"])])
    assert claim(farm, cpu_node) == []  # the only waiting task is not for it
    got = claim(farm, gpu_node)
    assert [c.task.id for c in got] == [pinned]
    complete(farm, gpu_node, got[0])

    with farm.db.write() as conn:  # editTaskHardwareConfig: to the cpu pool
        task_store.change_settings(conn, user, [pinned], pool_tags=pools.resolve(conn, [ids["cpu"]]))
    assert claim(farm, gpu_node) == []
    assert [c.task.id for c in claim(farm, cpu_node)] == [pinned]

    anywhere = submit(farm, user, frames="1-1", hardwareConfigIds=[str(pools.DEFAULT_ID)])
    assert [c.task.id for c in claim(farm, gpu_node)] == [anywhere]  # "Default": any node


def test_an_edit_before_submit_is_kept_unless_task_json_names_hardware(tmp_path):
    farm = make_farm(tmp_path)
    user = make_user(farm)
    node(farm, "g1", "gpu")
    node(farm, "c1", "cpu")
    with farm.db.write() as conn:
        (created, _), = task_store.create(conn, user, count=1, priority=50, platform="2", out_user_id=None,
                                          task_labels=[], clone_id=None, artist=None)
        task_store.change_settings(conn, user, [created], pool_tags=["gpu"])
        (clone, _), = task_store.create(conn, user, count=1, priority=50, platform="2", out_user_id=None,
                                        task_labels=[], clone_id=created, artist=None)
    with farm.db.read() as conn:
        assert task_store.owned(conn, user, [clone], lock=False)[clone].pool_tags == ["gpu"]  # a clone keeps it
    kept = submit(farm, user, frames="1-1")
    with farm.db.read() as conn:
        assert task_store.owned(conn, user, [kept], lock=False)[kept].pool_tags is None  # a fresh task: any node
    with pytest.raises(ApiError) as info:
        submit(farm, user, frames="1-1", hardwareConfigIds=["999"])
    assert info.value.code == 600 and "999" in info.value.message


def test_a_blocked_task_is_unblocked_when_no_other_node_of_its_pool_is_alive(tmp_path):
    farm = make_farm(tmp_path)
    user = make_user(farm)
    gpu_node = node(farm, "g1", "gpu")
    node(farm, "c1", "cpu")  # alive, but cannot take the task
    pinned = submit(farm, user, frames="1-1", hardwareConfigIds=[str(pool_ids(farm)["gpu"])])
    for _ in range(2):
        (chunk,) = claim(farm, gpu_node)
        complete(farm, gpu_node, chunk, result="failed")
    assert [c.task.id for c in claim(farm, gpu_node)] == [pinned]  # third attempt, on the only node that may


def test_pools_cost_the_claim_no_statement(tmp_path):
    """The pool rule reads a column of the candidates query: leasing a pinned chunk runs the same statements."""
    farm = make_farm(tmp_path)
    user = make_user(farm)
    gpu_node = node(farm, "g1", "gpu")
    gpu = str(pool_ids(farm)["gpu"])
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    def claimed_statements(task_id: int) -> int:
        statements.clear()
        event.listen(farm.db.engine, "before_cursor_execute", count)
        try:
            with farm.db.write() as conn:
                got = dispatch.claim(conn, gpu_node, 1, time.time(), 10.0)
        finally:
            event.remove(farm.db.engine, "before_cursor_execute", count)
        assert [c.task.id for c in got] == [task_id]
        with farm.db.write() as conn:  # out of the way: the next measure sees one candidate again
            task_store.abort(conn, user, [task_id])
        return len(statements)

    plain = claimed_statements(submit(farm, user, frames="1-1"))
    assert claimed_statements(submit(farm, user, frames="1-1", hardwareConfigIds=[gpu])) == plain
