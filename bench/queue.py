"""Lease latency against the size of the queue: 10^3 .. 10^6 waiting chunks.

    python -m bench.queue [--database sqlite|postgres] [--max 1000000] [--cycles 1000] [--tasks 1]
                          [--client raw|httpx]

For each size N (powers of ten from 10^3 to --max): a fresh data dir / database and server,
N + cycles + warm-up single-frame chunks submitted through the SDK (split over --tasks tasks, or
more where a task would exceed 10^6 frames; so at least N wait during the whole measurement), then ONE fake worker
(real worker protocol) doing lease(max=1, wait=0) + complete sequentially: --cycles measured
cycles after 100 warm-up cycles. Reported: p50/p99 of the lease call (client-side wall time), of
complete, and the submit time. ratio = p99(largest N) / p99(10^3).
Goal: ratio <= 1.5 and p99 <= 10 ms at every size.
"""

import asyncio
import time

from bench.clients import make_client
from bench.cpu import CpuMeter, postgres_pids, wait_quiet
from bench.harness import Bench, base_parser, deadline, emit, note, run, sdk, timed_submit
from bench.profile import profiled
from bench.stats import summary
from tests.support import taskjson
from tests.support.fake_node import AsyncNode

WARMUP = 100
MAX_TASK_FRAMES = 1_000_000  # rayfarm.domain.frames.MAX_FRAMES


async def cycles(server, token: str, count: int, warmup: int, kind: str) -> dict:
    lease_times, complete_times = [], []
    async with make_client(kind) as client:
        worker = AsyncNode(client, server.url, token, "queue-node", retries=2)
        await worker.register()
        last_beat = time.monotonic()
        for index in range(warmup + count):
            if time.monotonic() - last_beat > 3.0:
                last_beat = time.monotonic()
                await worker.heartbeat()
            began = time.perf_counter()
            leases = await worker.lease(1, wait=0)
            leased = time.perf_counter()
            if not leases:
                raise RuntimeError("the queue ran dry")
            if not (await worker.complete(leases[0]["leaseId"]))["accepted"]:
                raise RuntimeError("a fresh lease was not accepted")
            done = time.perf_counter()
            if index >= warmup:
                lease_times.append(leased - began)
                complete_times.append(done - leased)
    return {"lease": summary(lease_times), "complete": summary(complete_times)}


def one_size(args, size: int) -> dict:
    with Bench(args.database, args.keep, f"queue{size}") as bench:
        server = bench.start_server(args.server_processes)
        user = bench.create_user(server)
        token = server.worker_token()
        # the measured cycles take chunks away: submit that many more so that >= size wait throughout
        total = size + args.cycles + WARMUP
        task_count = max(args.tasks, -(-total // MAX_TASK_FRAMES))  # a task holds at most 10^6 frames
        per_task = -(-total // task_count)
        began = time.perf_counter()
        with sdk(server, user, timeout=600) as api:
            for _ in range(task_count):
                timed_submit(api, taskjson.command(["true"], f"1-{per_task}"))
        submit_s = time.perf_counter() - began
        note(f"N={size}: submitted in {submit_s:.2f} s")
        time.sleep(1.5)  # let the server's first sweep and any post-submit work pass
        quiet = wait_quiet()
        meter = CpuMeter(server=server.pids, **({"postgres": postgres_pids} if args.database == "postgres" else {}))
        meter.start()
        with profiled(server, f"{args.profile}-{size}.txt" if args.profile else None):
            result = asyncio.run(cycles(server, token, args.cycles, WARMUP, args.client))
        cpu = meter.stop()
        result["server_cpu_ms_per_cycle"] = round(1000 * cpu["server"] / (args.cycles + WARMUP), 3)
        if "postgres" in cpu:
            result["postgres_cpu_ms_per_cycle"] = round(1000 * cpu["postgres"] / (args.cycles + WARMUP), 3)
        result["others_share"] = cpu["others_share"]
        result["quiet_wait_s"] = quiet
    note(f"N={size}: lease p50 {result['lease']['p50_ms']} ms p99 {result['lease']['p99_ms']} ms")
    return {"waiting": size, "submitted": per_task * task_count, "tasks": task_count, "submit_s": round(submit_s, 2), **result}


def main() -> None:
    parser = base_parser(__doc__)
    parser.add_argument("--max", type=int, default=1_000_000)
    parser.add_argument("--min", type=int, default=1_000)
    parser.add_argument("--cycles", type=int, default=1000)
    parser.add_argument("--tasks", type=int, default=1, help="split the chunks over this many tasks")
    parser.add_argument("--client", choices=("raw", "httpx"), default="raw",
                        help="raw: a minimal HTTP/1.1 client (default, least client overhead); httpx")
    parser.add_argument("--profile", help="py-spy the server during each size's cycles into PREFIX-<N>.txt")
    args = parser.parse_args()
    sizes, size = [], args.min
    while size <= args.max:
        sizes.append(size)
        size *= 10
    with deadline(300 + 240 * len(sizes), "queue"):
        runs = [one_size(args, n) for n in sizes]
    first, last = runs[0]["lease"]["p99_ms"], runs[-1]["lease"]["p99_ms"]
    worst = max(r["lease"]["p99_ms"] for r in runs)
    ratio = round(last / first, 3)
    emit("queue", {"database": args.database, "client": args.client, "cycles": args.cycles,
                   "sizes": sizes, "lease_p50_ms": [r["lease"]["p50_ms"] for r in runs],
                   "lease_p99_ms": [r["lease"]["p99_ms"] for r in runs], "ratio": ratio, "runs": runs,
                   "goal": "p99(max)/p99(10^3) <= 1.5 and p99 <= 10 ms", "met": ratio <= 1.5 and worst <= 10.0})


if __name__ == "__main__":
    run(main)
