"""Scheduler and lease rules on a real (temporary SQLite) database, without HTTP."""

import threading
import time

from rayfarm.domain.states import FrameStatus as F
from rayfarm.domain.states import TaskStatus as T
from rayfarm.scheduler import sweep
from rayfarm.store import frame_ops, workers
from rayfarm.store import tasks as task_store
from tests.support.farms import claim, complete, frame_statuses, make_user, register, status, submit


def test_higher_level_renders_first(farm, user):
    low = submit(farm, user, level=50)
    high = submit(farm, user, level=80)
    node = register(farm, "n1")
    assert claim(farm, node)[0].task.id == high
    assert status(farm, high) == T.RENDERING
    assert status(farm, low) == T.WAITING


def test_fair_share_between_users(farm):
    alice, bob = make_user(farm, "alice"), make_user(farm, "bob")
    submit(farm, alice, frames="1-10")
    bobs = submit(farm, bob, frames="1-10")
    n1, n2 = register(farm, "n1"), register(farm, "n2")
    first = claim(farm, n1)[0].task
    second = claim(farm, n2)[0].task
    assert first.user_id != second.user_id
    assert bobs in (first.id, second.id)


def test_task_limit_never_exceeded(farm, user):
    task_id = submit(farm, user, frames="1-10")
    with farm.db.write() as conn:
        task_store.change_settings(conn, user, [task_id], task_limit=1)
    nodes = [register(farm, f"n{i}") for i in range(3)]
    got = [claim(farm, node) for node in nodes]
    assert [len(g) for g in got] == [1, 0, 0]
    complete(farm, nodes[0], got[0][0])
    assert len(claim(farm, nodes[1])) == 1  # a node freed up: another may take it


def test_priority_frames_then_pause_then_full_speed(farm, user):
    task_id = submit(farm, user, frames="1-6", per_chunk=2, pre_frames="100", stop_after_test="1")
    node = register(farm, "n1")
    first = claim(farm, node)
    assert first[0].frame.frame_type == 4 and first[0].frame.start_frame == 1
    assert claim(farm, node) == []  # main chunks are held
    complete(farm, node, first[0])
    assert status(farm, task_id) == T.TEST_DONE
    assert claim(farm, node) == []
    with farm.db.write() as conn:
        task_store.full_speed(conn, user, [task_id])
    assert status(farm, task_id) == T.WAITING
    done = 0
    while got := claim(farm, node):
        complete(farm, node, got[0])
        done += 1
    assert done == 3  # 2-3, 4-5, 6
    assert status(farm, task_id) == T.DONE


def test_priority_frames_release_by_themselves_without_pause(farm, user):
    task_id = submit(farm, user, frames="1-3", pre_frames="001", stop_after_test="2")
    node = register(farm, "n1")
    first = claim(farm, node)[0]
    assert first.frame.start_frame == 3
    complete(farm, node, first)
    assert frame_statuses(farm, task_id).count(F.WAITING) == 2


def test_failures_retry_then_fail_and_blocklist(farm, user):
    task_id = submit(farm, user, frames="1-2", max_attempts="3")
    n1, n2 = register(farm, "n1"), register(farm, "n2")
    for _ in range(2):
        got = claim(farm, n1)
        assert got and got[0].frame.start_frame == 1
        complete(farm, n1, got[0], "failed")
    assert claim(farm, n1) == []  # blocked after 2 failures of this task
    got = claim(farm, n2)
    assert got[0].frame.start_frame == 1 and got[0].frame.attempts == 2
    complete(farm, n2, got[0], "failed")  # third attempt: final
    got = claim(farm, n2)
    complete(farm, n2, got[0], "done")
    assert frame_statuses(farm, task_id) == [F.FAILED, F.DONE]
    assert status(farm, task_id) == T.DONE_WITH_FAILURES


def test_all_frames_failed_is_failed(farm, user):
    task_id = submit(farm, user, frames="1", max_attempts="1")
    node = register(farm, "n1")
    complete(farm, node, claim(farm, node)[0], "failed")
    assert status(farm, task_id) == T.FAILED


def test_stale_lease_result_is_dropped(farm, user):
    task_id = submit(farm, user, frames="1")
    n1, n2 = register(farm, "n1"), register(farm, "n2")
    old = claim(farm, n1)[0]
    with farm.db.write() as conn:
        assert sweep.requeue_expired(conn, time.time() + 60) == [task_id]
        task_store.settle(conn, task_id)
    new = claim(farm, n2)[0]
    assert complete(farm, n1, old) is None  # the old holder's result does not count
    assert complete(farm, n2, new) is not None
    assert frame_statuses(farm, task_id) == [F.DONE]


def test_lost_node_chunks_wait_again_without_counting_failure(farm, user):
    task_id = submit(farm, user, frames="1-2")
    node = register(farm, "n1")
    claim(farm, node)
    with farm.db.write() as conn:
        assert workers.mark_lost(conn, time.time() + 60, 10.0) == [task_id]
        task_store.settle(conn, task_id)
    assert frame_statuses(farm, task_id) == [F.WAITING, F.WAITING]
    assert status(farm, task_id) == T.RENDERING  # it has started: it stays "rendering" until it ends
    other = register(farm, "n2")
    assert claim(farm, other)[0].frame.attempts == 0


def test_reregister_releases_old_session_leases(farm, user):
    task_id = submit(farm, user, frames="1")
    node = register(farm, "n1")
    claim(farm, node)
    register(farm, "n1")
    assert frame_statuses(farm, task_id) == [F.WAITING]


def test_job_stop_time_times_out_chunk(farm, user):
    task_id = submit(farm, user, frames="1", job_stop_time="5", max_attempts="1")
    node = register(farm, "n1")
    claim(farm, node)
    with farm.db.write() as conn:
        assert sweep.enforce_time_limits(conn, time.time() + 2) == []
        assert sweep.enforce_time_limits(conn, time.time() + 10) == [task_id]
    assert frame_statuses(farm, task_id) == [F.TIMED_OUT]
    assert status(farm, task_id) == T.FAILED


def test_over_time_stop_stops_task_and_start_resumes(farm, user):
    task_id = submit(farm, user, frames="1-3")
    with farm.db.write() as conn:
        task_store.change_settings(conn, user, [task_id], over_time_stop=30)
    node = register(farm, "n1")
    claim(farm, node)
    with farm.db.write() as conn:
        sweep.enforce_time_limits(conn, time.time() + 31)
    assert status(farm, task_id) == T.TIMEOUT_STOPPED
    assert frame_statuses(farm, task_id) == [F.TIMED_OUT, F.STOPPED, F.STOPPED]
    with farm.db.write() as conn:
        task_store.start(conn, user, [task_id])
    assert frame_statuses(farm, task_id) == [F.WAITING] * 3
    assert status(farm, task_id) == T.WAITING


def test_stop_revokes_leases_and_start_resumes(farm, user):
    task_id = submit(farm, user, frames="1-2")
    node = register(farm, "n1")
    got = claim(farm, node)[0]
    with farm.db.write() as conn:
        task_store.stop(conn, user, [task_id])
        stop, _ = workers.heartbeat(conn, node, [{"leaseId": got.frame.lease_id, "progress": 10}], None, None,
                                    time.time(), 10.0)
    assert stop == [got.frame.lease_id]  # the node is told to kill it
    assert complete(farm, node, got) is None
    with farm.db.write() as conn:
        task_store.start(conn, user, [task_id])
    while got := claim(farm, node):
        complete(farm, node, got[0])
    assert status(farm, task_id) == T.DONE


def test_recommit_and_stop_frames(farm, user):
    task_id = submit(farm, user, frames="1-2", max_attempts="1")
    node = register(farm, "n1")
    complete(farm, node, claim(farm, node)[0], "failed")
    complete(farm, node, claim(farm, node)[0], "done")
    assert status(farm, task_id) == T.DONE_WITH_FAILURES
    with farm.db.write() as conn:
        assert frame_ops.recommit(conn, user, [task_id], None) == 1
    assert status(farm, task_id) == T.WAITING
    with farm.db.write() as conn:
        assert frame_ops.stop_frames(conn, user, task_id, None, True, None) == 1
    assert status(farm, task_id) == T.STOPPED


def test_no_double_booking_under_concurrent_claims(farm, user):
    task_id = submit(farm, user, frames="1-200")
    nodes = [register(farm, f"n{i}") for i in range(8)]
    seen: list[int] = []
    lock = threading.Lock()

    def run(node):
        while True:
            got = claim(farm, node, count=2)
            if not got:
                return
            for item in got:
                with lock:
                    seen.append(item.frame.id)
                complete(farm, node, item)

    threads = [threading.Thread(target=run, args=(n,)) for n in nodes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 200 and len(set(seen)) == 200
    assert status(farm, task_id) == T.DONE


def test_block_is_lifted_when_no_other_node_could_take_the_task(farm, user):
    task_id = submit(farm, user, frames="1", max_attempts="3")
    node = register(farm, "only")
    for _ in range(3):
        got = claim(farm, node)
        assert got, "a one-node farm must still hand out the last attempts"
        complete(farm, node, got[0], "failed")
    assert frame_statuses(farm, task_id) == [F.FAILED]
    assert status(farm, task_id) == T.FAILED
