"""The end of a bench/load.py run: wait for the farm to drain, read the API back, and reconcile everything
(the tasks the clients created, the API's answers and the nodes' own records) against the database."""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict

from bench.harness import Bench
from bench.load_clients import ABANDONED, FINISHED, Client, Run
from tests.support.processes import Credentials


def wait_drained(url: str, clients: list[Client], timeout: float) -> list[int]:
    """Wait until every task the clients submitted is finished or abandoned; the ids still unfinished."""
    from sqlalchemy import create_engine, select

    from rayfarm.store.schema import tasks

    ids = [t for c in clients for t in c.tasks]
    engine = create_engine(url)
    try:
        deadline = time.monotonic() + timeout
        while True:
            with engine.connect() as conn:
                rows = conn.execute(select(tasks.c.id, tasks.c.status).where(tasks.c.id.in_(ids))).all() if ids else []
            open_ids = sorted(i for i, status in rows if status not in FINISHED | {ABANDONED})
            if not open_ids or time.monotonic() > deadline:
                return open_ids
            time.sleep(0.25)
    finally:
        engine.dispose()


async def api_snapshot(clients: list[Client], run: Run) -> dict[int, dict | None]:
    """What the API says, per client: task info, every frame of every task, frame totals, task lists."""
    async def one(client: Client) -> dict | None:
        try:
            return await read(client)
        except Exception as exc:
            run.error(f"client {client.index} reading back: {exc!r}")
            return None

    async def read(client: Client) -> dict:
        calls = client.calls
        await calls.reconnect()  # idle through the drain
        ids = list(client.tasks)
        info = {}
        for start in range(0, len(ids), 500):
            for item in (await calls.call("queryTaskInfo", ids[start:start + 500]))["items"]:
                info[item["id"]] = item
        frames = {}
        for task_id in ids:
            frames[task_id], page = [], 1
            while items := (await calls.call("queryTaskFrames", task_id, page, 1000))["items"]:
                frames[task_id] += items
                page += 1
        listed = {}
        for recycle in (0, 1):
            found, page = [], 1
            while items := (await calls.call("getTaskList", page, 1000, recycle))["items"]:
                found += [item["id"] for item in items]
                page += 1
            listed[recycle] = found
        stats = await calls.call("queryAllFrameStats")
        return {"info": info, "frames": frames, "listed": listed[0], "recycled": listed[1], "stats": stats}

    results = []
    for start in range(0, len(clients), 25):
        results += await asyncio.gather(*(one(c) for c in clients[start:start + 25]))
    return {c.index: r for c, r in zip(clients, results, strict=True)}


# ---------------------------------------------------------------- reconciliation

def db_snapshot(url: str, user_ids: list[int]) -> dict:
    from sqlalchemy import create_engine, select

    from rayfarm.store.schema import frames, tasks

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            task_rows = conn.execute(select(tasks).where(tasks.c.user_id.in_(user_ids))).all()
            frame_rows = conn.execute(select(frames).where(frames.c.task_id.in_([t.id for t in task_rows]))).all()
    finally:
        engine.dispose()
    return {"tasks": {t.id: t for t in task_rows}, "frames": frame_rows}


class Checks:
    def __init__(self):
        self.results: dict[str, bool] = {}
        self.mismatches: list[str] = []

    def check(self, name: str, problems: list[str]) -> None:
        self.results[name] = not problems
        self.mismatches += [f"{name}: {p}" for p in problems[:10]]


def frame_counts(rows) -> dict[str, int]:
    """Frames (not chunks) by the API's buckets."""
    n: Counter = Counter()
    for f in rows:
        count = (f.end_frame - f.start_frame) // f.step + 1
        bucket = {2: "executingFrames", 4: "doneFrames", 5: "failedFrames", 11: "failedFrames",
                  3: "abortFrames"}.get(f.status, "waitingCount")
        n[bucket] += count
        n["totalFrames"] += count
    return n


def reconcile(bench: Bench, users: list[Credentials], clients: list[Client], records: list[dict],
              api: dict[int, dict]) -> dict:
    from rayfarm.domain.paths import output_name

    db = db_snapshot(bench.database_url, [u.user_id for u in users])
    checks = Checks()
    by_task: dict[int, list] = defaultdict(list)
    for f in db["frames"]:
        by_task[f.task_id].append(f)

    # every task a client created is in the database, none more, each submitted and in its expected end state
    created = {t for c in clients for t in c.created}
    problems = [f"task {t} in the database, not created by any client" for t in set(db["tasks"]) - created]
    problems += [f"task {t} created but not in the database" for t in created - set(db["tasks"])]
    for c in clients:
        problems += [f"task {t} created but not submitted" for t in c.created if t not in c.tasks]
        for task in c.tasks.values():
            row = db["tasks"].get(task.id)
            if row is None:
                continue
            if task.aborted and row.status != ABANDONED:
                problems.append(f"task {task.id} aborted but status {row.status}")
            if not task.aborted and row.status not in FINISHED:
                problems.append(f"task {task.id} ended in status {row.status}")
            if bool(row.is_deleted) != task.deleted:
                problems.append(f"task {task.id} deleted {task.deleted} but is_deleted {row.is_deleted}")
    checks.check("tasks_accounted", problems)

    # the API's view equals the database's
    info_problems, frame_problems, stats_problems, list_problems = [], [], [], []
    for c in clients:
        snap = api[c.index]
        if snap is None:
            info_problems.append(f"user {c.user.name}: the API could not be read back")
            continue
        for task_id in c.tasks:
            row, item = db["tasks"][task_id], snap["info"].get(task_id)
            want = frame_counts(by_task[task_id])
            got = {k: item[k] for k in ("executingFrames", "doneFrames", "failedFrames", "abortFrames", "waitingCount",
                                        "totalFrames")} if item else None
            if got is None or got != {k: want.get(k, 0) for k in got} or item["taskStatus"] != row.status \
                    or row.total_frames != want["totalFrames"]:
                info_problems.append(f"task {task_id}: API {got} status {item and item['taskStatus']}, "
                                     f"database {dict(want)} status {row.status} total {row.total_frames}")
            api_frames = {f["id"]: (f["frameStatus"], f["attempts"], f["nodeId"]) for f in snap["frames"][task_id]}
            db_frames = {f.id: (f.status, f.attempts, f.node_id) for f in by_task[task_id]}
            if api_frames != db_frames:
                frame_problems.append(f"task {task_id}: API {api_frames} database {db_frames}")
        live = [f for t in c.tasks for f in by_task[t] if not db["tasks"][t].is_deleted]
        want = frame_counts(live)
        want_stats = {"executingFramesTotal": want["executingFrames"], "doneFramesTotal": want["doneFrames"],
                      "failedFramesTotal": want["failedFrames"], "waitingFramesTotal": want["waitingCount"],
                      "abandonFramesTotal": want["abortFrames"], "totalFrames": want["totalFrames"]}
        if snap["stats"] != want_stats:
            stats_problems.append(f"user {c.user.name}: API {snap['stats']} database {want_stats}")
        kept = sorted(t.id for t in c.tasks.values() if not t.deleted)
        gone = sorted(t.id for t in c.tasks.values() if t.deleted)
        if sorted(snap["listed"]) != kept or sorted(snap["recycled"]) != gone:
            list_problems.append(f"user {c.user.name}: listed {sorted(snap['listed'])} recycled "
                                 f"{sorted(snap['recycled'])}, expected {kept} and {gone}")
    checks.check("api_task_info", info_problems)
    checks.check("api_task_frames", frame_problems)
    checks.check("api_frame_stats", stats_problems)
    checks.check("api_task_list", list_problems)

    # the nodes' own records against the database: one accepted result per done chunk, from the node that has it
    accepted_done = [r for r in records if r["accepted"] and r["result"] == "done"]
    per_frame = Counter(r["frame"] for r in accepted_done)
    problems = [f"frame {f} reported done and accepted {n} times" for f, n in per_frame.items() if n > 1]
    node_done = {(r["frame"], r["node"]) for r in accepted_done}
    db_done = {(f.id, f.node_id) for f in db["frames"] if f.status == 4}
    problems += [f"frame {f} done by node {n} in the database, no node reported it" for f, n in db_done - node_done]
    problems += [f"frame {f} reported done by node {n}, not so in the database" for f, n in node_done - db_done]
    failures = sum(1 for r in records if r["accepted"] and r["result"] == "failed")
    attempts = sum(f.attempts for f in db["frames"])
    if failures != attempts:
        problems.append(f"nodes reported {failures} accepted failures, the database counts {attempts} attempts")
    checks.check("nodes_vs_database", problems)

    done_frames = {"nodes": sum(r["frames"] for r in accepted_done),
                   "database": frame_counts([f for f in db["frames"] if f.status == 4])["doneFrames"],
                   "api": sum(item["doneFrames"] for snap in api.values() if snap for item in snap["info"].values())}
    checks.check("done_frames_equal", [] if len(set(done_frames.values())) == 1 else [str(done_frames)])

    # every done Blender chunk's output is in the user's output storage
    storage = bench.data_dir / "storage"
    problems = []
    for f in db["frames"]:
        row = db["tasks"][f.task_id]
        if f.status == 4 and row.software == "blender":
            folder = storage / str(row.user_id) / "output" / output_name(row.id, row.scene_name or "scene")
            path = folder / f"shot_{f.start_frame:04d}.png"
            if not path.is_file():
                problems.append(f"frame {f.id}: no {path.name}")
    checks.check("outputs_stored", problems)

    statuses = Counter(t.status for t in db["tasks"].values())
    return {
        "reconciled": all(checks.results.values()), "checks": checks.results, "mismatches": checks.mismatches[:30],
        "tasks": {"created": len(created), "done": statuses[25], "done_with_failures": statuses[30],
                  "failed": statuses[45], "aborted": statuses[ABANDONED],
                  "deleted": sum(1 for t in db["tasks"].values() if t.is_deleted),
                  "by_kind": dict(Counter(t.kind for c in clients for t in c.tasks.values()))},
        "chunks": {"done": len(db_done), "failed_results": failures,
                   "rejected_results": sum(1 for r in records if not r["accepted"]),
                   "frames_done": done_frames["database"]},
    }


def server_errors(server) -> list[str]:
    """Failures the server logged (one ERROR line each), or the tracebacks of anything it printed unlogged."""
    lines = server.log().splitlines()
    return [line for line in lines if " ERROR " in line] or [line for line in lines if line.startswith("Traceback")]
