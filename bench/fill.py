"""Fill a farm: N fake workers register at once and each takes a chunk; how long until all are busy?

    python -m bench.fill [--database sqlite|postgres] [--workers 1000] [--chunks 2000] [--inflight 1000]
                         [--client httpx|raw]

One server, one command task of --chunks waiting chunks (submitted through the SDK). Then N fake
workers (one asyncio process, an HTTP connection each, at most --inflight of them connecting and
calling at once) each register and lease(max=1, wait=2) until they hold one lease, heartbeating as
a node does (every heartbeatSeconds while idle, every busyHeartbeatSeconds = 1 s with its lease once
busy, until all are busy). Figure: seconds from the start until the last worker holds
its lease, checked afterwards with queryTaskInfo (executingFrames == N).
Baseline: the same N fresh clients, same --inflight, each GET /healthz once.
Goal: <= 5 s.
"""

import asyncio
import contextlib
import time

from bench.clients import make_client
from bench.cpu import CpuMeter, postgres_pids, self_pids, wait_quiet
from bench.harness import Bench, base_parser, deadline, emit, note, run, sdk, timed_submit
from tests.support import taskjson
from tests.support.fake_node import AsyncNode, NodeError


async def baseline(server, count: int, inflight: int, kind: str) -> float:
    gate = asyncio.Semaphore(inflight)
    clients = [make_client(kind) for _ in range(count)]

    async def one(client) -> None:
        async with gate:
            response = await client.get(server.url + "/healthz")
            response.raise_for_status()

    try:
        began = time.perf_counter()
        await asyncio.gather(*(one(c) for c in clients))
        return time.perf_counter() - began
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))


async def fill(server, token: str, count: int, inflight: int, kind: str, heartbeats: bool) -> dict:
    gate = asyncio.Semaphore(inflight)
    clients = [make_client(kind) for _ in range(count)]
    workers = [AsyncNode(clients[i], server.url, token, f"fill-{i:05d}", retries=2) for i in range(count)]
    registered_at, busy_at, attempts = [0.0] * count, [0.0] * count, [0] * count
    all_busy = asyncio.Event()
    remaining = [count]
    beats = [0]

    failed_beats: list[str] = []

    async def beat(worker: AsyncNode, running: list[str]) -> None:
        """A failed heartbeat is logged and rendering goes on, as on a real node."""
        beats[0] += 1
        try:
            await worker.heartbeat(running)
        except NodeError as exc:
            failed_beats.append(str(exc)[:160])

    async def one(index: int) -> None:
        worker = workers[index]
        async with gate:
            await worker.register()
            registered_at[index] = time.perf_counter()
            last_beat = time.monotonic()
            while True:
                attempts[index] += 1
                leases = await worker.lease(1, wait=2.0)
                if leases:
                    busy_at[index] = time.perf_counter()
                    break
                if time.monotonic() - last_beat > worker.heartbeat_seconds:
                    last_beat = time.monotonic()
                    await beat(worker, [])
        remaining[0] -= 1
        if remaining[0] == 0:
            all_busy.set()
        # a rendering node reports every busyHeartbeatSeconds; without it the server declares it lost
        while not all_busy.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(all_busy.wait(), worker.busy_heartbeat_seconds)
            if not all_busy.is_set() and heartbeats:
                async with gate:
                    await beat(worker, [leases[0]["leaseId"]])

    try:
        began = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(count))), 120)
        total = max(busy_at) - began
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    registered = sorted(t - began for t in registered_at)
    busy = sorted(t - began for t in busy_at)
    return {"all_busy_s": round(total, 3), "all_registered_s": round(registered[-1], 3),
            "half_busy_s": round(busy[len(busy) // 2], 3), "lease_calls": sum(attempts), "heartbeats": beats[0],
            "transport_retries": sum(w.retried for w in workers), "failed_heartbeats": len(failed_beats),
            "failed_heartbeat_example": failed_beats[0] if failed_beats else None}


def main() -> None:
    parser = base_parser(__doc__)
    parser.add_argument("--workers", type=int, default=1000)
    parser.add_argument("--chunks", type=int, default=2000)
    parser.add_argument("--inflight", type=int, default=1000, help="most workers connecting/calling at once")
    parser.add_argument("--client", choices=("httpx", "raw"), default="httpx")
    parser.add_argument("--no-heartbeats", action="store_true",
                        help="busy workers send no heartbeat while the others fill (a real node sends one every "
                             "busyHeartbeatSeconds); the final check may then find workers declared lost")
    args = parser.parse_args()
    if args.chunks < args.workers:
        parser.error("--chunks must be at least --workers")

    with deadline(600, "fill"), Bench(args.database, args.keep, "fill") as bench:
        server = bench.start_server(args.server_processes)
        user = bench.create_user(server)
        token = server.worker_token()
        with sdk(server, user) as api:
            task_id, _ = timed_submit(api, taskjson.command(["true"], f"1-{args.chunks}"))
            quiet = wait_quiet()
            base_s = asyncio.run(baseline(server, args.workers, args.inflight, args.client))
            note(f"baseline: {args.workers} x GET /healthz in {base_s:.3f} s")
            meter = CpuMeter(server=server.pids, client=self_pids,
                             **({"postgres": postgres_pids} if args.database == "postgres" else {}))
            meter.start()
            result = asyncio.run(fill(server, token, args.workers, args.inflight, args.client,
                                      not args.no_heartbeats))
            cpu = meter.stop()
            item = api.query.task_info([task_id])["items"][0]
        note(f"fill: {result}")
        held = item["executingFrames"] == args.workers  # else some nodes were declared lost meanwhile
        emit("fill", {
            "database": args.database, "client": args.client, "workers": args.workers, "chunks": args.chunks,
            "inflight": args.inflight, **result, "healthz_once_each_s": round(base_s, 3),
            "ratio": round(result["all_busy_s"] / base_s, 2), "executing_frames": item["executingFrames"],
            "cpu_s": cpu, "quiet_wait_s": quiet, "all_leases_held_at_end": held, "goal": "all 1000 busy <= 5 s",
            "met": held and result["all_busy_s"] <= 5.0})


if __name__ == "__main__":
    run(main)
