"""Submit and query speed: one 100,000-frame task through the SDK; queries with 10,000 tasks stored.

    python -m bench.submit [--database sqlite|postgres] [--frames 100000] [--repeat 3] [--tasks 10000]
                           [--chunks-per-task 10] [--calls 200]

1. createTask + taskJsonFile + submit of a task of --frames single-frame chunks through our SDK,
   --repeat times (each a new task); goal: <= 2 s for the three calls.
2. --tasks submitted tasks of --chunks-per-task chunks each are bulk-inserted through the store
   module into the server's database (rows as a submit writes them; statuses mixed: waiting,
   rendering, done), then sequential SDK calls are timed: queryTaskInfo of one task (a random one
   each call), getTaskList pageSize 100 page 1 and page 50, and the baseline queryUserProfile.
   ratio = p50(getTaskList page 1) / p50(queryUserProfile); each query's ratio is listed too.
"""

import random
import time

from bench.cpu import wait_quiet
from bench.harness import Bench, base_parser, deadline, emit, note, run, sdk, timed_submit
from bench.stats import summary
from tests.support import taskjson


def populate(bench: Bench, user_id: int, count: int, chunks: int) -> float:
    """Insert ``count`` submitted tasks with ``chunks`` chunks each, straight into the database."""
    from sqlalchemy import func, insert, select, update

    from rayfarm.domain.states import FrameStatus as F
    from rayfarm.domain.states import FrameType, TaskStatus
    from rayfarm.store import bulk
    from rayfarm.store.schema import tasks

    began = time.perf_counter()
    farm = bench.farm()
    now = time.time()
    kinds = [(int(TaskStatus.DONE), int(F.DONE)), (int(TaskStatus.WAITING), int(F.WAITING)),
             (int(TaskStatus.RENDERING), int(F.WAITING))]
    render = {"software": "command", "cg_version": "", "scene": "", "camera": None, "width": None, "height": None,
              "format": None, "command": ["true"], "scene_root": None}
    try:
        with farm.db.write() as conn:
            first = (conn.scalar(select(func.max(tasks.c.id))) or 0) + 1
            rows = []
            for i in range(count):
                status = kinds[i % len(kinds)][0]
                rows.append(dict(user_id=user_id, alias="", status=status, is_deleted=False, task_user_level=50,
                                 scene_name=f"shot_{i:05d}", project_name="bench", cg_id=0, software="command",
                                 frames_range=f"1-{chunks}", total_frames=chunks, per_chunk=1,
                                 pause_after_test=False, job_stop_time=0, max_attempts=3, render=render,
                                 created_at=now - count + i, submitted_at=now - count + i,
                                 completed_at=(now if status == TaskStatus.DONE else None)))
            conn.execute(insert(tasks), rows)
            ids = conn.scalars(select(tasks.c.id).where(tasks.c.id >= first, tasks.c.user_id == user_id)
                               .order_by(tasks.c.id)).all()
            conn.execute(update(tasks).where(tasks.c.id >= first).values(alias="2W" + func.cast(tasks.c.id, tasks.c.alias.type)))
            frame_rows = []
            for n, task_id in enumerate(ids):
                frame_status = kinds[n % len(kinds)][1]
                for seq in range(chunks):
                    frame_rows.append((task_id, seq, str(seq + 1), seq + 1, seq + 1, 1, int(FrameType.MAIN),
                                       frame_status))
            bulk.insert_frames(conn, frame_rows)
    finally:
        farm.db.dispose()
    return time.perf_counter() - began


def timed(call, times: int) -> list[float]:
    out = []
    for _ in range(times):
        began = time.perf_counter()
        call()
        out.append(time.perf_counter() - began)
    return out


def main() -> None:
    parser = base_parser(__doc__)
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--chunks-per-task", type=int, default=10)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()

    with deadline(900, "submit"), Bench(args.database, args.keep, "submit") as bench:
        server = bench.start_server(args.server_processes)
        user = bench.create_user(server)
        api = sdk(server, user, timeout=300)
        submits = []
        quiet = [wait_quiet()]
        for _ in range(args.repeat):
            began = time.perf_counter()
            task_id, steps = timed_submit(api, taskjson.command(["true"], f"1-{args.frames}"))
            steps["total_s"] = round(time.perf_counter() - began, 4)
            submits.append(steps)
            note(f"submit of {args.frames} frames: {steps}")
        item = api.query.task_info([task_id])["items"][0]
        if item["totalFrames"] != args.frames or item["waitingCount"] != args.frames:
            raise RuntimeError(f"the submitted task does not show {args.frames} waiting frames: {item}")

        populate_s = populate(bench, user.user_id, args.tasks, args.chunks_per_task)
        listed = api.query.get_task_list(page_num=1, page_size=100)
        if listed["total"] < args.tasks:
            raise RuntimeError(f"getTaskList sees {listed['total']} tasks, expected >= {args.tasks}")
        note(f"{args.tasks} tasks inserted in {populate_s:.1f} s; getTaskList total {listed['total']}")
        ids = [i["id"] for i in listed["items"]]
        ids += [i["id"] for i in api.query.get_task_list(page_num=50, page_size=100)["items"]]
        rng = random.Random(7)

        quiet.append(wait_quiet())
        for _ in range(20):  # warm-up: connections, caches, statement caches
            api.query.task_info([rng.choice(ids)])
            api.connect.post(api.connect.url.queryUserProfile)
        results = {
            "queryUserProfile": timed(lambda: api.connect.post(api.connect.url.queryUserProfile), args.calls),
            "queryTaskInfo": timed(lambda: api.query.task_info([rng.choice(ids)]), args.calls),
            "getTaskList_page1": timed(lambda: api.query.get_task_list(page_num=1, page_size=100), args.calls // 2),
            "getTaskList_page50": timed(lambda: api.query.get_task_list(page_num=50, page_size=100), args.calls // 2),
        }
        api.close()
        stats = {name: summary(values) for name, values in results.items()}
        base = stats["queryUserProfile"]["p50_ms"]
        for figures in stats.values():
            figures["ratio_p50"] = round(figures["p50_ms"] / base, 2)
        best_total = min(s["total_s"] for s in submits)
        first_total = submits[0]["total_s"]
        emit("submit", {
            "database": args.database, "frames": args.frames, "submit_first_s": first_total,
            "submit_best_s": best_total, "submits": submits, "tasks_in_db": listed["total"],
            "populate_s": round(populate_s, 1), "queries": stats, "quiet_wait_s": quiet,
            "ratio": stats["getTaskList_page1"]["ratio_p50"],
            "goal": "create+submit of 100,000 frames <= 2 s", "met": first_total <= 2.0})


if __name__ == "__main__":
    run(main)
