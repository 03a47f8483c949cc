"""Lease chunks to a node in the scheduler's order (``order.rank``), never one chunk to two nodes."""

from rayfarm.domain.states import TaskStatus
from rayfarm.scheduler.order import BLOCK_AFTER, Candidate, in_pool, rank
from rayfarm.store import leases
from rayfarm.store import tasks as task_store
from rayfarm.store.leases import RUNNABLE, Claimed


def _blocked(conn, worker_id: int, rows: dict[int, object]) -> dict[int, int]:
    """Failures per task on this node; a block is lifted when no other node could take the task (in its pools)."""
    blocked = {task_id: row.node_failures for task_id, row in rows.items() if row.node_failures}
    for task_id, failures in list(blocked.items()):
        if failures < BLOCK_AFTER:
            continue
        pools = leases.pool_tags(rows[task_id].pool_tags)
        if not any(in_pool(pools, tags or ()) for tags in leases.other_nodes(conn, worker_id, task_id, BLOCK_AFTER)):
            del blocked[task_id]
    return blocked


def claim(conn, worker, count: int, now: float, lease_seconds: float, holding: bool = False,
          known: Claimed | None = None) -> list[Claimed]:
    """Lease up to ``count`` chunks to ``worker`` (none while it is disabled or draining), in one transaction.

    ``holding``: this transaction already holds row locks (a result recorded just before), so it must
    not wait for a task lock (see ``leases.lock_for_claim``); ``known``: that result, whose task row this
    transaction has read already."""
    if worker.disabled or worker.draining or count <= 0:
        return []
    rows, candidates, user_running = {}, [], {}
    for row in leases.candidate_rows(conn, worker.id):
        user_running[row.user_id] = user_running.get(row.user_id, 0) + (row.chunks or 0)
        candidates.append(Candidate(row.id, row.user_id, row.priority, row.submitted_at or 0.0, row.software or "",
                                    row.task_limit, row.nodes or 0, bool(row.mine),
                                    leases.pool_tags(row.pool_tags) if row.pool_tags else None))
        rows[row.id] = row
    blocked = _blocked(conn, worker.id, rows)
    claimed: list[Claimed] = []
    touched: set[int] = set()
    software = list((worker.software or {}).keys())
    tags = worker.tags or ()
    for candidate in rank(candidates, software=software, blocked=blocked, user_running=user_running, tags=tags):
        if len(claimed) >= count:
            break
        task, holding = leases.lock_for_claim(conn, candidate.task_id, rows[candidate.task_id].status,
                                              bool(candidate.limit), holding, known)
        if task is None or task.status not in RUNNABLE or task.is_deleted:
            continue
        # recount under the task row lock: another process may have just added a node
        if task.task_limit and not candidate.on_this_node and leases.nodes_on_task(conn, task.id) >= task.task_limit:
            continue
        while len(claimed) < count:
            frame = leases.take_chunk(conn, task.id, worker.id, now, lease_seconds)
            if frame is None:
                break
            claimed.append(Claimed(frame, task))
            holding = True  # a frame row is locked now: wait for no task lock after this
            if task.status != TaskStatus.RENDERING:
                touched.add(task.id)
            user_running[task.user_id] = user_running.get(task.user_id, 0) + 1
            if task.task_limit:
                break  # one chunk per task per call keeps the limit simple to honour
    for task_id in touched:
        task_store.settle(conn, task_id)
    return claimed
