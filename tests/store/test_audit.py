"""The audit trail's invariant (docs/design.md): every accepted state-changing call has exactly one record,
written in its transaction; a refused one has one record of its refusal and changes nothing else.

Calls run as the signed API runs them (server/audit.py: ``run`` with a ``Call``), in process, on SQLite or
PostgreSQL (RAYFARM_TEST_DATABASE_URL).
"""

import inspect

import pytest
from sqlalchemy import func, select

from rayfarm.domain.states import TaskStatus
from rayfarm.protocol.codes import ApiError
from rayfarm.server import audit
from rayfarm.server.table import TABLE
from rayfarm.store import audit as audit_store
from rayfarm.store.schema import call_record_tasks, call_records, render_envs
from tests.support.farms import make_farm, make_user, status, submit

STOP = "/api/rendering/task/renderingTask/stopTask"


def call(farm, user, path: str, body: dict):
    ctx = audit.Call(farm, path, channel="sdk", address="192.0.2.7", host="farm:8765", request_id="r" * 32,
                     changes_state=not TABLE[path].reads)
    return audit.run(farm, TABLE[path], ctx, user, body)


def records(farm) -> list[tuple]:
    with farm.db.read() as conn:
        rows = conn.execute(select(call_records.c.id, call_records.c.action, call_records.c.code,
                                   call_records.c.address).order_by(call_records.c.id)).all()
        tasks = conn.execute(select(call_record_tasks.c.record_id, call_record_tasks.c.task_id)).all()
    named = {}
    for record_id, task_id in tasks:
        named.setdefault(record_id, []).append(task_id)
    return [(action, code, address, sorted(named.get(record_id, []))) for record_id, action, code, address in rows]


@pytest.fixture
def farm(tmp_path):
    return make_farm(tmp_path)


def test_an_accepted_call_and_its_record_commit_together(farm, monkeypatch):
    user = make_user(farm)
    task_id = submit(farm, user)

    def broken(conn, entry):
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(audit_store, "record_call", broken)
    with pytest.raises(RuntimeError):
        call(farm, user, STOP, {"taskIds": [task_id]})
    assert status(farm, task_id) == TaskStatus.WAITING  # no record, no change
    monkeypatch.undo()
    call(farm, user, STOP, {"taskIds": [task_id]})
    assert status(farm, task_id) == TaskStatus.STOPPED
    assert records(farm) == [("stopTask", 200, "192.0.2.7", [task_id])]


def test_a_refused_call_has_one_record_of_its_refusal_and_changes_nothing(farm):
    user = make_user(farm)
    task_id = submit(farm, user)
    for body in ({"taskIds": [task_id, 1_999_999_999]}, {"taskIds": "x"}):
        with pytest.raises(ApiError):
            call(farm, user, STOP, body)
    assert status(farm, task_id) == TaskStatus.WAITING
    assert records(farm) == [("stopTask", 937, "192.0.2.7", [task_id, 1_999_999_999]), ("stopTask", 600, "192.0.2.7", [])]


def test_a_call_that_changed_nothing_in_the_database_is_recorded_right_after(farm):
    user = make_user(farm)
    call(farm, user, "/api/render/plugin/addUserPluginConfig",
         {"cgId": 2007, "cgName": "Blender", "cgVersion": "3.4", "editName": "a", "renderSystem": 0, "pluginIds": []})
    with farm.db.read() as conn:
        assert conn.scalar(select(func.count()).select_from(render_envs)) == 1
    call(farm, user, "/api/render/plugin/getUserPluginConfig", {})  # a read: no record
    assert [r[:2] for r in records(farm)] == [("addUserPluginConfig", 200)]


def test_reads_are_not_recorded_and_create_names_its_new_ids(farm):
    user = make_user(farm)
    created = call(farm, user, "/api/render/submit/createTask", {"count": 2})["taskIdList"]
    call(farm, user, "/api/render/handle/queryTaskInfo/v2", {"taskIds": created})
    assert records(farm) == [("createTask", 200, "192.0.2.7", sorted(created))]


@pytest.mark.parametrize("path", sorted(p for p, route in TABLE.items() if not route.reads))
def test_every_state_changing_handler_writes_through_its_call(path):
    """A handler that opened ``farm.db.write()`` itself would commit its change without the record."""
    source = inspect.getsource(TABLE[path].handler)
    assert "farm.db.write()" not in source, path


def test_page_filters_and_order(farm):
    user, other = make_user(farm), make_user(farm, "bob")
    entries = [audit_store.Entry(at=1000.0 + i, user_id=(user if i % 2 else other).id, access_id="AK", action="a",
                                 path="/api/x/y", detail="", channel="sdk", address="::1", code=200, message="",
                                 request_id=str(i), task_ids=(i,)) for i in range(6)]
    with farm.db.write() as conn:
        for entry in entries:
            audit_store.record_call(conn, entry)
    with farm.db.read() as conn:
        mine = audit_store.call_page(conn, user_id=user.id, page_num=1, page_size=2, start=None, end=None)
        window = audit_store.call_page(conn, user_id=None, page_num=1, page_size=10, start=1002.0, end=1004.0)
        named = audit_store.call_page(conn, user_id=None, page_num=1, page_size=10, start=None, end=None,
                                      task_ids=[1, 4])
    assert [i["taskIds"] for i in mine["items"]] == [[5], [3]] and mine["total"] == 3 and mine["pageCount"] == 2
    assert [i["taskIds"] for i in window["items"]] == [[3], [2]]
    assert [i["taskIds"] for i in named["items"]] == [[4], [1]]
