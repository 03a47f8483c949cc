"""Per-user quotas in the store (rayfarm/store/quotas.py) and their wording (rayfarm/domain/quotas.py)."""

import threading

import pytest
from sqlalchemy import func, select, text

from rayfarm.domain import quotas as words
from rayfarm.domain.states import TaskStatus as T
from rayfarm.protocol.codes import ApiError
from rayfarm.store import frame_ops, quotas, uploads
from rayfarm.store import tasks as task_store
from rayfarm.store.schema import frames, tasks
from tests.support.databases import on_postgres
from tests.support.farms import (
    claim,
    complete,
    create_task,
    make_farm,
    make_user,
    register,
    status,
    submit,
    submit_created,
)
from tests.support.processes import wait_for


def limit(farm, name: str, **limits) -> quotas.Usage:
    with farm.db.write() as conn:
        return quotas.set_limits(conn, name, **limits)


def usage(farm, user) -> quotas.Usage:
    with farm.db.read() as conn:
        return quotas.usage(conn, user.id)


def frame_count(farm) -> int:
    with farm.db.read() as conn:
        return conn.scalar(select(func.count()).select_from(frames))


def write(farm, change):
    """``change(conn)`` in a write transaction, rolled back if it raises (as a request's is)."""
    with farm.db.write() as conn:
        return change(conn)


def refused(call) -> ApiError:
    with pytest.raises(ApiError) as caught:
        call()
    return caught.value


def test_a_new_user_has_the_defaults(tmp_path):
    farm = make_farm(tmp_path)
    user = make_user(farm)
    assert usage(farm, user) == quotas.Usage(words.DEFAULT_ACTIVE_TASKS, None, None, 0, 0, 0, 0)


def test_active_tasks_are_counted_at_submit_and_the_refusal_changes_nothing(tmp_path):
    farm = make_farm(tmp_path)
    user = make_user(farm)
    limit(farm, "alice", max_active_tasks=2)
    submit(farm, user)
    submit(farm, user)
    third = create_task(farm, user)
    before = frame_count(farm)
    error = refused(lambda: submit_created(farm, user, third))
    assert error.code == 403
    assert error.message.startswith("Your account may have at most 2 tasks waiting or rendering (you have 2)")
    assert "rayfarm user quota alice --active-tasks 4." in error.message
    assert status(farm, third) == T.CREATED and frame_count(farm) == before
    limit(farm, "alice", max_active_tasks=3)
    submit_created(farm, user, third)
    assert usage(farm, user).active_tasks == 3


def test_start_counts_the_tasks_it_would_make_active(tmp_path):
    farm = make_farm(tmp_path)
    user = make_user(farm)
    ids = [submit(farm, user) for _ in range(3)]
    with farm.db.write() as conn:
        task_store.stop(conn, user, ids[:2])
    limit(farm, "alice", max_active_tasks=2)
    error = refused(lambda: write(farm, lambda conn: task_store.start(conn, user, ids[:2])))
    assert error.code == 403 and "(you have 1, and this would add 2)" in error.message
    assert [status(farm, i) for i in ids] == [T.STOPPED, T.STOPPED, T.WAITING]
    with farm.db.write() as conn:
        task_store.start(conn, user, ids[:1])
    assert usage(farm, user).active_tasks == 2


def test_rerendering_a_finished_task_counts_it_again(tmp_path):
    farm = make_farm(tmp_path)
    user = make_user(farm)
    done = submit(farm, user, frames="1")
    node = register(farm, "n1")
    complete(farm, node, claim(farm, node)[0])
    assert status(farm, done) == T.DONE
    submit(farm, user)
    limit(farm, "alice", max_active_tasks=1)
    error = refused(lambda: write(farm, lambda conn: frame_ops.recommit(conn, user, [done], [4])))
    assert error.code == 403 and "at most 1 task waiting or rendering (you have 1)" in error.message
    assert status(farm, done) == T.DONE


def test_unsubmitted_ids_are_capped_by_the_active_tasks_limit(tmp_path):
    farm = make_farm(tmp_path)
    user = make_user(farm)
    limit(farm, "alice", max_active_tasks=3)
    ids = [create_task(farm, user) for _ in range(3)]

    def create(count: int):
        with farm.db.write() as conn:
            return task_store.create(conn, user, count=count, priority=50, platform="2", out_user_id=None,
                                     task_labels=[], clone_id=None, artist=None)

    error = refused(lambda: create(1))
    assert error.code == 403
    assert "at most 3 tasks created but not submitted (you have 3, and this would create 1 more)" in error.message
    with farm.db.read() as conn:
        assert conn.scalar(select(func.count()).select_from(tasks)) == 3
    with farm.db.write() as conn:
        task_store.delete_tasks(conn, user, ids[:1])
    assert len(create(1)) == 1
    assert usage(farm, user).unsubmitted_tasks == 3


def test_frames_per_task(tmp_path):
    farm = make_farm(tmp_path)
    user = make_user(farm)
    limit(farm, "alice", max_frames_per_task=10)
    task_id = create_task(farm, user, frames="1-11")
    error = refused(lambda: submit_created(farm, user, task_id))
    assert error.code == 511
    assert error.message.startswith("Your account may render at most 10 frames in one task (this task has 11)")
    assert error.message.endswith("rayfarm user quota alice --frames-per-task 11.")
    assert status(farm, task_id) == T.CREATED and frame_count(farm) == 0
    limit(farm, "alice", max_frames_per_task=11)
    submit_created(farm, user, task_id)
    assert frame_count(farm) == 11


def test_uploads_reserve_their_size_and_stored_bytes_refuse_the_next_upload_and_submit(tmp_path):
    farm = make_farm(tmp_path)
    user = make_user(farm)
    limit(farm, "alice", max_storage_bytes=1000)

    def begin(size: int, sha: str) -> str:
        with farm.db.write() as conn:
            return uploads.begin(conn, user, f"D:/{sha}.bin", f"/D/{sha}.bin", size, sha * 64)

    first = begin(600, "a")
    assert begin(600, "a") == first  # the same file again: its session, reserved once
    error = refused(lambda: begin(401, "b"))
    assert error.code == 403 and "at most 1000 bytes (you use 0 bytes and 600 bytes held for unfinished uploads" \
        in error.message and "--storage 2K." in error.message
    with farm.db.write() as conn:
        uploads.finish(conn, first, user.id, 600)
    assert usage(farm, user).storage_bytes == 600 and usage(farm, user).reserved_bytes == 0
    begin(400, "c")
    with farm.db.write() as conn:
        quotas.add_stored(conn, user.id, 500)  # a node's output: counted, never refused
    assert usage(farm, user).storage_bytes == 1100
    task_id = create_task(farm, user)
    error = refused(lambda: submit_created(farm, user, task_id))
    assert error.code == 403 and "at most 1000 bytes and uses 1.1 KiB" in error.message
    limit(farm, "alice", max_storage_bytes=None)
    submit_created(farm, user, task_id)


def test_expired_upload_sessions_are_dropped_and_reserve_nothing(tmp_path):
    farm = make_farm(tmp_path)
    user = make_user(farm)
    limit(farm, "alice", max_storage_bytes=1000)
    with farm.db.write() as conn:
        old = uploads.begin(conn, user, "D:/a.bin", "/D/a.bin", 900, "a" * 64)
        conn.execute(uploads.uploads.update().values(created_at=0.0))
    assert usage(farm, user).reserved_bytes == 0
    with farm.db.write() as conn:
        assert uploads.drop_expired(conn, user.id, 10 * uploads.LIFETIME) == [old]
        fresh = uploads.begin(conn, user, "D:/a.bin", "/D/a.bin", 900, "a" * 64)
    assert fresh != old and usage(farm, user).reserved_bytes == 900


def test_stored_bytes_never_go_below_zero_and_a_recount_sets_them(tmp_path):
    farm = make_farm(tmp_path)
    user = make_user(farm)
    with farm.db.write() as conn:
        quotas.add_stored(conn, user.id, 100)
        quotas.add_stored(conn, user.id, -300)
    assert usage(farm, user).storage_bytes == 0
    with farm.db.write() as conn:
        assert quotas.set_stored(conn, "alice", 4242).storage_bytes == 4242


def test_limits_are_checked_when_set(tmp_path):
    farm = make_farm(tmp_path)
    make_user(farm)
    assert refused(lambda: limit(farm, "alice", max_frames_per_task=1_000_001)).code == 600
    assert refused(lambda: limit(farm, "alice", max_active_tasks=0)).code == 600
    assert refused(lambda: limit(farm, "nobody", max_active_tasks=5)).code == 404
    assert limit(farm, "alice", max_active_tasks=None, max_storage_bytes=5).max_storage_bytes == 5


@pytest.mark.skipif(not on_postgres(), reason="SQLite runs one write transaction at a time")
def test_two_submits_at_once_cannot_both_take_the_last_place(tmp_path):
    """The second submit passes the early (unlocked) check while the first is uncommitted, then waits for the
    user's row at its end and, once the first commits, counts it and is refused."""
    farm = make_farm(tmp_path)
    user = make_user(farm)
    first, second = create_task(farm, user), create_task(farm, user)
    limit(farm, "alice", max_active_tasks=1)
    outcome = {}

    def other():
        try:
            submit_created(farm, user, second)
            outcome["second"] = "submitted"
        except ApiError as exc:
            outcome["second"] = exc.code

    with farm.db.write() as conn:
        submit_created(farm, user, first, conn)
        thread = threading.Thread(target=other)
        thread.start()

        def waiting_for_a_lock():
            with farm.db.engine.connect() as probe:
                return probe.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                         "AND datname = current_database()"))

        wait_for(lambda: waiting_for_a_lock() or not thread.is_alive(), 60, "the second submit to wait for the "
                 "user's row")
    thread.join()
    assert outcome["second"] == 403
    assert [status(farm, first), status(farm, second)] == [T.WAITING, T.CREATED]


def test_sizes_and_counts_as_administrators_write_them():
    assert words.parse_size("500G") == 500 * 1024**3
    assert words.parse_size("1.5t") == 3 * 1024**4 // 2
    assert words.parse_size("2GiB") == words.parse_size("2 GB") == 2 * 1024**3
    assert words.parse_size("4096") == 4096
    assert words.parse_size("none") is words.parse_size("0") is None
    for bad in ("-1", "5X", "G", "", "9" * 30):
        with pytest.raises(ValueError, match="--storage"):
            words.parse_size(bad)
    assert words.parse_count("40", "--active-tasks") == 40
    assert words.parse_count("unlimited", "--active-tasks") is None
    with pytest.raises(ValueError, match="--frames-per-task"):
        words.parse_frames("1000001")
    assert words.show_size(512) == "512 bytes" and words.show_size(1536 * 1024**2) == "1.5 GiB"
    assert words.size_option(1000) == "1000" and words.size_option(1025) == "2K"
    assert words.size_option(3 * 1024**4) == "3T"

