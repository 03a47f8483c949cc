"""store/driver.py: every hot statement run on the driver gives the rows SQLAlchemy gives, on both databases.

Each statement runs twice in a transaction that is rolled back, once through SQLAlchemy and once through
``Hot``, with the same parameters: same rows, same values, same Python types (JSON decoded, booleans)."""

import time

import pytest
from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError

from rayfarm.store import leases, workers
from rayfarm.store.driver import Hot
from rayfarm.store.schema import frames, tasks
from tests.support.farms import claim, register, submit


class _Undo(Exception):
    pass


def _rolled_back(farm, run):
    """What ``run(conn)`` returns, in a write transaction that is then rolled back."""
    got = []
    with pytest.raises(_Undo):
        with farm.db.write() as conn:
            got.append(run(conn))
            raise _Undo
    return got[0]


def _same(farm, hot: Hot, params: dict):
    """The statement's rows through SQLAlchemy and through the driver; asserts they agree, returns them."""
    rows = hot.statement.is_select or bool(hot.statement._returning)  # else: the count of rows it changed

    def through_sqlalchemy(conn):
        result = conn.execute(hot.statement, params)
        return [tuple(row) for row in result] if rows else result.rowcount

    def through_driver(conn):
        return [tuple(row) for row in hot.all(conn, params)] if rows else hot.run(conn, params)

    by_sqlalchemy, by_driver = _rolled_back(farm, through_sqlalchemy), _rolled_back(farm, through_driver)
    assert by_driver == by_sqlalchemy
    if isinstance(by_driver, list):
        for ours, theirs in zip(by_driver, by_sqlalchemy, strict=True):
            assert [type(v) for v in ours] == [type(v) for v in theirs]
    return by_driver


@pytest.fixture
def leased(farm, user):
    """A farm with two tasks (one with pool tags), a node holding a lease of the first, and an idle node."""
    task_id = submit(farm, user, frames="1-4")
    pooled = submit(farm, user, frames="1-2")
    with farm.db.write() as conn:  # pool tags come as JSON text in the candidates' rows
        conn.execute(update(tasks).where(tasks.c.id == pooled).values(pool_tags=["gpu"]))
    node = register(farm, "n1")
    register(farm, "n2")
    got = claim(farm, node)[0]
    return task_id, node, got.frame


def test_reads_agree(farm, leased):
    task_id, node, frame = leased
    candidates = _same(farm, leases.CANDIDATES, {"worker_id": node.id})
    assert len(candidates) == 2 and any(row[7] is not None for row in candidates)
    assert _same(farm, leases.NODES_ON_TASK, {"task_id": task_id}) == [(1,)]
    assert _same(farm, leases.TASK_ROW, {"task_id": task_id})[0][0] == task_id
    assert _same(farm, leases.TASK_ROW, {"task_id": 10**9}) == []
    for current in (leases.CURRENT, leases.LEASED_MAIN):
        assert len(_same(farm, current, {"lease_id": frame.lease_id, "worker_id": node.id})) == 1
        assert _same(farm, current, {"lease_id": "not-a-lease", "worker_id": node.id}) == []
    assert _same(farm, leases.STILL_GOING, {"task_id": task_id}) == [(True,)]
    assert _same(farm, leases.MAX_ATTEMPTS, {"task_id": task_id})
    row = _same(farm, workers.WORKER_BY_ID, {"worker_id": node.id})[0]
    assert any(isinstance(value, bool) for value in row)  # draining: a boolean on both databases
    assert any(isinstance(value, (list, dict)) for value in row)  # software/tags: JSON decoded


def test_locking_reads_agree(farm, leased):
    task_id, node, frame = leased
    assert _same(farm, leases.LOCK_TASK, {"task_id": task_id})[0][0] == task_id
    assert len(_same(farm, leases.CURRENT_LOCKED, {"lease_id": frame.lease_id, "worker_id": node.id})) == 1
    assert _same(farm, leases.LEASED_TASK_LOCKED, {"lease_id": frame.lease_id, "worker_id": node.id})[0][0] == task_id


def test_writes_agree(farm, leased):
    task_id, node, frame = leased
    now = time.time()
    postgres = farm.db.engine.dialect.name == "postgresql"
    claimed = _same(farm, leases.CLAIM[postgres], {"p_task": task_id, "p_worker": node.id, "p_lease": "L-test",
                                                   "p_expires": now + 10, "p_now": now})
    assert len(claimed) == 1
    done = _same(farm, leases.DONE, {"p_lease": frame.lease_id, "p_worker": node.id, "p_now": now, "p_cpu": 12.5,
                                     "p_memory": None, "p_seconds": None})
    assert len(done) == 1
    assert _same(farm, workers.SEEN, {"worker_id": node.id, "p_now": now, "p_cpu": 3.0, "p_mem": 1024})
    assert _same(farm, workers.STATE, {"worker_id": node.id, "p_state": "busy"}) == 1
    assert _same(farm, workers.EXTEND, {"p_lease": frame.lease_id, "worker_id": node.id, "p_expires": now + 20,
                                        "p_progress": 50.0, "p_cpu": None, "p_memory": None}) == [(frame.id, task_id)]
    assert _same(farm, workers.STATE, {"worker_id": 10**9, "p_state": "busy"}) == 0


def test_writes_change_the_database(farm, leased):
    """What the driver wrote is what SQLAlchemy reads back, after commit."""
    _, node, frame = leased
    now = time.time()
    with farm.db.write() as conn:
        assert workers.EXTEND.first(conn, {"p_lease": frame.lease_id, "worker_id": node.id, "p_expires": now + 60,
                                           "p_progress": 42.0, "p_cpu": 7.0, "p_memory": 8.0}) is not None
    with farm.db.read() as conn:
        row = conn.execute(select(frames).where(frames.c.id == frame.id)).first()
    assert (row.progress, row.avg_cpu, row.avg_memory) == (42.0, 7.0, 8.0)
    assert row.lease_expires == pytest.approx(now + 60)


def test_driver_errors_come_as_sqlalchemy_errors(farm, leased):
    task_id, _, _ = leased
    breaks = Hot(update(tasks).where(tasks.c.id == bindparam("task_id")).values(user_id=None))
    with pytest.raises(IntegrityError):
        with farm.db.engine.connect() as conn:  # not through Database.write: it turns IntegrityError into Conflict
            with conn.begin():
                breaks.run(conn, {"task_id": task_id})


def test_statements_with_expanding_parameters_are_refused(farm):
    in_list = Hot(select(tasks.c.id).where(tasks.c.id.in_(bindparam("ids", expanding=True))))
    with farm.db.read() as conn, pytest.raises(ValueError, match="expanding"):
        in_list.all(conn, {"ids": [1, 2]})
