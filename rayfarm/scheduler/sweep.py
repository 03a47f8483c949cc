"""The background sweep (every second, one server process at a time): the farm's own outage forgiven,
lost nodes' chunks and expired leases back to waiting (no attempt counted), per-chunk timeouts
(``job_stop_time``, an attempt) and the task's over-time stop (the task is stopped, 23)."""

from rayfarm.domain import transitions as tr
from rayfarm.scheduler.results import fail
from rayfarm.store import leases, outage, workers
from rayfarm.store import tasks as task_store

EXPIRED = tr.requeue("lease expired")


def sweep(conn, now: float, lease_seconds: float) -> set[int] | None:
    """One sweep in the caller's write transaction; the tasks it touched, or None if another process sweeps."""
    if not leases.sweep_turn(conn):
        return None
    outage.forgive_outage(conn, now, lease_seconds)  # the farm was down: not the nodes' fault
    touched = set(workers.mark_lost(conn, now, lease_seconds))
    touched.update(requeue_expired(conn, now))
    for task_id in touched:
        task_store.settle(conn, task_id)
    touched.update(enforce_time_limits(conn, now))
    return touched


def requeue_expired(conn, now: float) -> list[int]:
    """Leases not renewed in time (node died or lost its network) go back to waiting; task ids."""
    rows = leases.expired(conn, now)
    if rows:
        task_store.lock_tasks(conn, [r.task_id for r in rows])
        leases.requeue(conn, [r.id for r in rows], EXPIRED, expired_before=now)
    return sorted({r.task_id for r in rows})


def enforce_time_limits(conn, now: float) -> list[int]:
    """Per-chunk timeout (job_stop_time) and the task's over-time stop; returns task ids touched."""
    touched: set[int] = set()
    stopped: set[int] = set()
    for row in leases.running_with_limits(conn):
        elapsed = now - (row.started_at or now)
        if row.task_id in stopped:
            continue
        if row.over_time_stop and elapsed > row.over_time_stop:
            if leases.stop_over_time(conn, row, now):
                stopped.add(row.task_id)
                touched.add(row.task_id)
        elif row.job_stop_time and elapsed > row.job_stop_time:
            task_store.lock_tasks(conn, [row.task_id])
            fail(conn, row, row.node_id, now=now, seconds=elapsed, timed_out=True,
                 error=f"The chunk ran longer than its time limit of {row.job_stop_time} s (the task's chunk "
                       f"time-out, job_stop_time) and was killed.")
            touched.add(row.task_id)
    for task_id in touched:
        task_store.settle(conn, task_id)
    return sorted(touched)
