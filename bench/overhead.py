"""Farm overhead on short chunks: N chunks of `sleep S` on W real local workers vs `xargs -P W` running them.

    python -m bench.overhead [--database sqlite|postgres] [--chunks 400] [--workers 8] [--sleep 0.25]

The workers are started and registered before the submit; the clock runs from the submit call to the last
chunk's result as the server recorded it (`frames.ended_at`, as bench.peers and bench.blender stop it);
queryTaskInfo is polled every --poll s only to know when the task is done (`status_seen_s`: what a client
polling at that rate sees). Baseline: the same commands through `xargs -P W -n 1 sleep`, in the same run.
`chunk`: where a chunk's time goes (bench.peers.chunk_times). Goals (issue #14): ratio <= 1.02 on 0.25 s
chunks, <= 1.08 on 0.05 s chunks (other lengths: 1.05).
"""

import subprocess
import time

from bench.cpu import CpuMeter, tree_pids, wait_quiet
from bench.harness import Bench, base_parser, deadline, emit, note, poll_until_done, run, sdk
from bench.peers import chunk_times
from tests.support import taskjson


def xargs_seconds(chunks: int, workers: int, seconds: str) -> float:
    feed = (seconds + "\n") * chunks
    began = time.perf_counter()
    subprocess.run(["xargs", "-P", str(workers), "-n", "1", "sleep"], input=feed.encode(), check=True, timeout=600)
    return time.perf_counter() - began


def main() -> None:
    parser = base_parser(__doc__)
    parser.add_argument("--chunks", type=int, default=400)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--sleep", default="0.25")
    parser.add_argument("--poll", type=float, default=0.1,
                        help="queryTaskInfo polling interval, s (only to know when the task is done: the clock stops "
                             "at the last chunk's result as the server recorded it)")
    args = parser.parse_args()

    with deadline(900, "overhead"), Bench(args.database, args.keep, "overhead") as bench:
        server = bench.start_server(args.server_processes)
        user = bench.create_user(server)
        workers = bench.start_workers(server, args.workers)
        note(f"{len(workers)} workers registered")
        api = sdk(server, user)
        task_id = api.task.task_id
        api.task.upload_task_json(task_id, taskjson.command(["sleep", args.sleep], f"1-{args.chunks}"))
        meter = CpuMeter(server=server.pids, workers=lambda: tree_pids(workers))
        time.sleep(1.0)  # let the workers settle into their long-poll
        quiet = wait_quiet()
        meter.start()
        began, began_wall = time.perf_counter(), time.time()
        api.task.submit_task(task_id)
        submitted = time.perf_counter()
        _, polls = poll_until_done(api, task_id, args.poll, 600)
        seen_s = time.perf_counter() - began
        cpu = meter.stop()
        api.close()
        done, last_end, split = chunk_times(bench, task_id, began_wall)
        if done != args.chunks:
            raise RuntimeError(f"the server records {done} done chunks, not {args.chunks}")
        farm_s = last_end - began_wall
        note(f"farm: {farm_s:.3f} s; running xargs")
        xargs_s = xargs_seconds(args.chunks, args.workers, args.sleep)
        ideal = args.chunks / args.workers * float(args.sleep)
        goal = {0.25: 1.02, 0.05: 1.08}.get(float(args.sleep), 1.05)
        emit("overhead", {
            "database": args.database, "chunks": args.chunks, "workers": args.workers, "sleep_s": float(args.sleep),
            "farm_s": round(farm_s, 3), "status_seen_s": round(seen_s, 3), "poll_s": args.poll,
            "submit_call_s": round(submitted - began, 4), "xargs_s": round(xargs_s, 3),
            "ideal_s": round(ideal, 3), "ratio": round(farm_s / xargs_s, 4),
            "per_chunk_overhead_ms": round((farm_s - xargs_s) * args.workers / args.chunks * 1000, 2),
            "status_polls": polls, "cpu_s": cpu, "chunk": split, "quiet_wait_s": quiet, "goal": f"ratio <= {goal}",
            "met": farm_s / xargs_s <= goal})


if __name__ == "__main__":
    run(main)
