"""A node's result for a leased chunk: it counts only under the current lease, and once.

Done: the chunk is done and its task settles. Failed or timed out: one attempt is counted, the node
gets one more failure on the task's blocklist, and ``transitions.after_failure`` says whether the
chunk waits again or has failed for good.
"""

from rayfarm.domain import transitions as tr
from rayfarm.domain.states import FrameType, TaskStatus
from rayfarm.store import leases
from rayfarm.store import tasks as task_store
from rayfarm.store.leases import Claimed


def complete(conn, worker_id: int, lease_id: str, result: str, *, error: str | None, seconds: float | None,
             avg_cpu: float | None, avg_memory: float | None, now: float) -> Claimed | None:
    """Record a chunk's result; None when the lease is no longer valid (the result is dropped).

    Where the store defers settling (PostgreSQL, many nodes finishing chunks of one task at once), a done
    main chunk of a rendering task is recorded without locking the task row; once the transaction
    committed, ``settle_after_commit`` settles the task if nothing of it goes on any more."""
    if result == "done" and leases.defers_settling(conn):
        task = leases.leased_chunk_kind(conn, worker_id, lease_id)
        if task is None:
            return None
        if task.chunk_type == FrameType.MAIN and task.status == TaskStatus.RENDERING:
            frame = leases.record_done(conn, worker_id, lease_id, now, seconds, avg_cpu, avg_memory)
            if frame is None:
                return None
            return Claimed(frame, task, settle_after=True)
    task = leases.lock_leased_task(conn, worker_id, lease_id)
    if task is None:
        return None
    if result == "done":
        frame = leases.record_done(conn, worker_id, lease_id, now, seconds, avg_cpu, avg_memory)
        if frame is None:
            return None
        # a done main chunk while others wait or render cannot change a rendering task's status
        if not (frame.frame_type == FrameType.MAIN and task.status == TaskStatus.RENDERING
                and leases.still_going(conn, task.id)):
            task_store.settle(conn, task.id)
            return Claimed(frame, task)
        return Claimed(frame, task, locked=True)  # locked above, unchanged
    frame = leases.current_locked(conn, worker_id, lease_id)
    if frame is None:
        return None
    fail(conn, frame, worker_id, now=now, seconds=seconds, error=error or "", timed_out=result == "timeout",
         samples=(avg_cpu, avg_memory))
    task_store.settle(conn, frame.task_id)
    return Claimed(frame, task)


def fail(conn, frame, worker_id: int | None, *, now: float, seconds: float | None, error: str, timed_out: bool,
         samples: tuple | None = None) -> None:
    """A failed attempt of a leased chunk: counted, blamed on its node, then waiting again or failed for good."""
    status, attempts, reason = tr.after_failure(frame.attempts, leases.max_attempts(conn, frame.task_id),
                                                timed_out=timed_out)
    if worker_id is not None:
        leases.count_failure(conn, frame.task_id, worker_id)
    leases.record_failure(conn, frame, status, attempts, reason, now=now, seconds=seconds, error=error, samples=samples)


def settle_after_commit(db, claimed: Claimed, leased: list[Claimed] = ()) -> None:
    """After a deferred result committed: settle its task if none of its chunks waits or renders any more.

    Results recorded without the task lock may commit concurrently, each seeing the other's chunk still
    rendering. Every such result reads again after its commit, so the last one to commit sees all the
    others' and settles the task (under its lock, if that still holds). Not when the same transaction
    ``leased`` the node a chunk of the task: that chunk rendered as it committed, so the task went on, and
    whatever ends that chunk (its result, a stop, the sweep) settles the task in its turn."""
    if not claimed.settle_after or any(item.task.id == claimed.task.id for item in leased):
        return
    with db.autocommit() as conn:  # one round trip while other chunks go on
        going = leases.still_going(conn, claimed.task.id)
    if not going:
        with db.write() as conn:
            task_store.lock_tasks(conn, [claimed.task.id])
            if not leases.still_going(conn, claimed.task.id):
                task_store.settle(conn, claimed.task.id)
