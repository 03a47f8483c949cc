"""Render nodes: registration, heartbeats, flags, and the farm worker token."""

import secrets
import uuid

from sqlalchemy import Connection, bindparam, func, insert, select, update

from rayfarm.domain import transitions as tr
from rayfarm.domain.nodes import StaleSession, UnknownNode
from rayfarm.domain.states import FrameStatus as F
from rayfarm.store import leases
from rayfarm.store.driver import Hot
from rayfarm.store.pools import add_tags
from rayfarm.store.schema import frames, settings, tasks, workers
from rayfarm.store.tasks import lock_tasks
from rayfarm.store.users import KeyBox


def worker_token(conn: Connection, box: KeyBox) -> str:
    """The farm's worker token, made on first use (stored encrypted like access keys)."""
    sealed = conn.scalar(select(settings.c.value).where(settings.c.key == "worker_token"))
    if sealed:
        return box.open(sealed)
    token = "wt_" + secrets.token_urlsafe(32)
    conn.execute(insert(settings).values(key="worker_token", value=box.seal(token)))
    return token


def register(conn: Connection, info: dict, now: float) -> tuple[int, str, list[int]]:
    """Register (or re-register) a node by name; returns id, new session, tasks whose leases were released."""
    session = uuid.uuid4().hex
    values = dict(hostname=info["hostname"], slots=info["slots"], cores=info["cores"], memory=info["memory"],
                  gpu=info["gpu"], software=info["software"], tags=info["tags"], version=info["version"],
                  session=session, last_seen=now, state="idle")
    row = conn.execute(select(workers.c.id).where(workers.c.name == info["name"]).with_for_update()).first()
    released: list[int] = []
    if row is None:
        worker_id = conn.execute(insert(workers).values(name=info["name"], registered_at=now, disabled=False,
                                                        draining=False, **values)).inserted_primary_key[0]
    else:
        worker_id = row.id
        conn.execute(update(workers).where(workers.c.id == worker_id).values(registered_at=now, **values))
        released = release_leases(conn, [worker_id], "node restarted")
    add_tags(conn, list(info["tags"] or []), now)  # each tag is a pool (a hardware config of the Renderbus API)
    return worker_id, session, released


def release_leases(conn: Connection, worker_ids: list[int], reason: str) -> list[int]:
    """Chunks leased by these nodes go back to waiting, not counted as failures; their task ids."""
    query = select(frames.c.id, frames.c.task_id).where(frames.c.node_id.in_(worker_ids),
                                                        frames.c.status == int(F.RENDERING))
    rows = conn.execute(query).all()
    if rows:
        lock_tasks(conn, [r.task_id for r in rows])
        leases.requeue(conn, [r.id for r in rows], tr.requeue(reason))
    return sorted({r.task_id for r in rows})


WORKER_BY_ID = Hot(select(workers).where(workers.c.id == bindparam("worker_id")))
SEEN = Hot(update(workers).where(workers.c.id == bindparam("worker_id"))
           .values(last_seen=bindparam("p_now"), cpu=bindparam("p_cpu"), mem_used=bindparam("p_mem"))
           .returning(workers.c.state))
STATE = Hot(update(workers).where(workers.c.id == bindparam("worker_id")).values(state=bindparam("p_state")))
# a lease the node still holds: extended, its progress and samples stored
EXTEND = Hot(update(frames).where(frames.c.lease_id == bindparam("p_lease"), frames.c.node_id == bindparam("worker_id"),
                                  frames.c.status == int(F.RENDERING))
             .values(lease_expires=bindparam("p_expires"), progress=bindparam("p_progress"),
                     avg_cpu=bindparam("p_cpu"), avg_memory=bindparam("p_memory"))
             .returning(frames.c.id, frames.c.task_id))


def check_session(conn: Connection, worker_id: int, session: str):
    row = WORKER_BY_ID.first(conn, {"worker_id": worker_id})
    if row is None:
        raise UnknownNode(f"Worker {worker_id} is not registered; register first.")
    if row.session != session:
        raise StaleSession("This worker session is no longer current (the node registered again); register again.")
    return row


def heartbeat(conn: Connection, worker, running: list[dict], cpu: float | None, mem_used: int | None, now: float,
              lease_seconds: float) -> tuple[list[str], list[tuple[int, int, list[str]]]]:
    """Extend valid leases, store progress; returns (leases to stop, [(task, frame, log lines)] to append)."""
    by_lease = {item["leaseId"]: item for item in running}
    # The worker row first, then frames: the same order as the sweep (mark_lost), so the two never deadlock.
    state = SEEN.scalar(conn, {"worker_id": worker.id, "p_now": now, "p_cpu": cpu, "p_mem": mem_used})
    valid, logs = set(), []
    for lease_id, item in by_lease.items():
        row = EXTEND.first(conn, {"p_lease": lease_id, "worker_id": worker.id, "p_expires": now + lease_seconds,
                                  "p_progress": max(0.0, min(100.0, float(item.get("progress") or 0.0))),
                                  "p_cpu": item.get("cpu"), "p_memory": item.get("memory")})
        if row is None:
            continue
        valid.add(lease_id)
        if item.get("log"):
            logs.append((row.task_id, row.id, item["log"]))
    if state != ("busy" if valid else "idle"):
        STATE.run(conn, {"worker_id": worker.id, "p_state": "busy" if valid else "idle"})
    return [lease for lease in by_lease if lease not in valid], logs


def mark_lost(conn: Connection, now: float, lease_seconds: float) -> list[int]:
    """Nodes silent past their lease are lost; their chunks wait again. Returns affected task ids."""
    lost = conn.scalars(select(workers.c.id).where(workers.c.last_seen < now - lease_seconds,
                                                   workers.c.state.in_(["idle", "busy"]))).all()
    if not lost:
        return []
    conn.execute(update(workers).where(workers.c.id.in_(lost)).values(state="lost"))
    return release_leases(conn, list(lost), "node lost")


def count_live(conn: Connection) -> int:
    """Nodes that are idle or busy (not lost, not offline)."""
    return int(conn.scalar(select(func.count()).select_from(workers).where(workers.c.state.in_(["idle", "busy"])))
               or 0)


def list_all(conn: Connection) -> list:
    return conn.execute(select(workers).order_by(workers.c.name)).all()


def set_flags(conn: Connection, name: str, **values) -> bool:
    return conn.execute(update(workers).where(workers.c.name == name).values(**values)).rowcount > 0


MODES = {"enable": dict(disabled=False, draining=False), "disable": dict(disabled=True, draining=False),
         "drain": dict(disabled=False, draining=True)}


def set_mode(conn: Connection, worker_ids: list[int], mode: str) -> tuple[int, list[int]]:
    """Enable, disable (running chunks go back to waiting now) or drain nodes; (rows updated, tasks touched)."""
    ids = sorted(set(worker_ids))
    if not ids:
        return 0, []
    # Worker rows first, then frames (release_leases locks tasks, then frames): the sweep's order.
    updated = conn.execute(update(workers).where(workers.c.id.in_(ids)).values(**MODES[mode])).rowcount
    touched = release_leases(conn, ids, "node disabled") if mode == "disable" else []
    return updated, touched


def list_detailed(conn: Connection, running_of_user: int | None) -> list[dict]:
    """Every node with its running chunks; only ``running_of_user``'s chunks unless it is None (admin)."""
    query = (select(frames.c.node_id, frames.c.task_id, frames.c.id, frames.c.frame_index, frames.c.progress,
                    frames.c.started_at)
             .select_from(frames.join(tasks, tasks.c.id == frames.c.task_id))
             .where(frames.c.status == int(F.RENDERING), frames.c.node_id.is_not(None)))
    if running_of_user is not None:
        query = query.where(tasks.c.user_id == running_of_user)
    running: dict[int, list[dict]] = {}
    for row in conn.execute(query.order_by(frames.c.id)):
        running.setdefault(row.node_id, []).append({
            "taskId": row.task_id, "frameId": row.id, "frameIndex": row.frame_index,
            "progress": row.progress, "startTime": row.started_at})
    return [{"id": w.id, "name": w.name, "hostname": w.hostname, "state": w.state, "disabled": bool(w.disabled),
             "draining": bool(w.draining), "slots": w.slots, "cores": w.cores, "memory": w.memory, "gpu": w.gpu,
             "memUsed": w.mem_used, "cpu": w.cpu, "software": dict(w.software or {}), "tags": list(w.tags or []),
             "version": w.version, "lastSeen": w.last_seen, "registeredAt": w.registered_at,
             "running": running.get(w.id, [])} for w in list_all(conn)]
