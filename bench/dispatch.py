"""Dispatch throughput: fake workers (real worker protocol, no rendering) leasing and completing chunks.

    python -m bench.dispatch [--database sqlite|postgres] [--concurrency 16,64] [--seconds 10] [--warmup 3]
                             [--chunks 100000] [--client httpx,raw] [--protocol separate,combined]
                             [--server-processes N]

One server; one command task of --chunks single-frame chunks submitted through the SDK. For each
client kind and concurrency C: C fake workers (asyncio, one client process, an HTTP connection each;
heartbeats every 3 s so none is declared lost) each loop, per --protocol: "separate" lease(max=1, wait=1)
then complete(done) at once (two calls a chunk); "combined" complete(done, next=1), which returns the
node's next lease in the same call and transaction (one call a chunk: what `rayfarm worker` does).
Leases granted per second are counted over --seconds after --warmup.
Baseline, same client set-up and concurrency: GET /healthz requests per second.
ratio = leases/s / healthz/s.
Goal: >= 1,500 leases/s. The best concurrency is reported, every one is listed.
"""

import asyncio
import time

from bench.clients import make_client
from bench.cpu import CpuMeter, postgres_pids, self_pids, wait_quiet
from bench.harness import Bench, base_parser, deadline, emit, note, run, sdk, timed_submit
from bench.profile import profiled
from bench.stats import timed_loop
from tests.support import taskjson
from tests.support.fake_node import AsyncNode

GOAL = 1500.0


async def measure(server, token: str, concurrency: int, seconds: float, warmup: float, meter: CpuMeter,
                  kind: str, protocol: str = "separate", profile: str | None = None) -> dict:
    clients = [make_client(kind) for _ in range(concurrency)]
    workers = [AsyncNode(clients[i], server.url, token, f"fw-{kind}-{concurrency}-{i}", retries=2)
               for i in range(concurrency)]
    try:
        for start in range(0, concurrency, 64):
            await asyncio.gather(*(w.register() for w in workers[start:start + 64]))
        last_beat = [time.monotonic()] * concurrency
        held: list[list[dict]] = [[] for _ in range(concurrency)]  # "combined": the lease the last complete gave

        async def health(index: int) -> int:
            response = await clients[index].get(server.url + "/healthz")
            response.raise_for_status()
            return 1

        async def cycle(index: int) -> int:
            worker = workers[index]
            if time.monotonic() - last_beat[index] > 3.0:  # what a real node does every heartbeatSeconds
                last_beat[index] = time.monotonic()
                await worker.heartbeat()
            if protocol == "combined":  # complete with next=1: one call per chunk once the node has one
                leases = held[index] or await worker.lease(1, wait=1.0)
                held[index] = []
                for lease in leases:
                    answer = await worker.complete(lease["leaseId"], next_count=1)
                    held[index] = answer.get("leases") or []
                    if not answer["accepted"]:
                        raise RuntimeError("a fresh lease was not accepted on complete")
                return len(leases)
            leases = await worker.lease(1, wait=1.0)
            for lease in leases:
                if not (await worker.complete(lease["leaseId"]))["accepted"]:
                    raise RuntimeError("a fresh lease was not accepted on complete")
            return len(leases)

        baseline = await timed_loop(concurrency, seconds, warmup, health, meter)
        with profiled(server, profile):
            leases = await timed_loop(concurrency, seconds, warmup, cycle, meter)
    finally:
        for client in clients:
            await client.aclose()
    return {"client": kind, "protocol": protocol, "concurrency": concurrency, "leases_per_s": leases["rate"],
            "healthz_per_s": baseline["rate"],
            "ratio": round(leases["rate"] / baseline["rate"], 4) if baseline["rate"] else None,
            "lease_cycle_p50_ms": leases["p50_ms"], "lease_cycle_p99_ms": leases["p99_ms"],
            "leases": leases["count"], "errors": leases["errors"] + baseline["errors"],
            "cpu_s_leases": leases.get("cpu_s"), "cpu_s_healthz": baseline.get("cpu_s")}


def main() -> None:
    parser = base_parser(__doc__)
    parser.add_argument("--concurrency", default="16,64")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--client", default="httpx,raw",
                        help="load generator(s): httpx (httpx.AsyncClient per fake worker) and/or raw (a minimal "
                             "HTTP/1.1 client on asyncio streams, ~10x less client CPU per request)")
    parser.add_argument("--protocol", default="separate,combined",
                        help="separate: lease then complete (two calls a chunk); combined: complete with next=1 "
                             "returns the next lease (one call a chunk, what rayfarm worker does)")
    parser.add_argument("--profile", help="py-spy the server during each lease window into PREFIX-<client>-<C>.txt")
    args = parser.parse_args()
    kinds = args.client.split(",")
    levels = [int(c) for c in args.concurrency.split(",")]

    budget = 120 + len(kinds) * len(levels) * (1 + args.protocol.count(",")) * 2 * (args.seconds + args.warmup + 80)
    with deadline(budget, "dispatch"), Bench(args.database, args.keep, "dispatch") as bench:
        server = bench.start_server(args.server_processes)
        user = bench.create_user(server)
        token = server.worker_token()
        with sdk(server, user) as api:
            task_id, steps = timed_submit(api, taskjson.command(["true"], f"1-{args.chunks}"))
        note(f"task {task_id}: {args.chunks} chunks submitted {steps}")
        groups = {"server": server.pids, "client": self_pids}
        if args.database == "postgres":
            groups["postgres"] = postgres_pids
        runs = []
        quiet = wait_quiet()
        for kind in kinds:
            for protocol in args.protocol.split(","):
                for concurrency in levels:
                    meter = CpuMeter(**groups)
                    profile = f"{args.profile}-{kind}-{protocol}-{concurrency}.txt" if args.profile else None
                    result = asyncio.run(measure(server, token, concurrency, args.seconds, args.warmup, meter, kind,
                                                 protocol, profile))
                    note(f"{kind} {protocol} C={concurrency}: {result['leases_per_s']} leases/s, "
                         f"{result['healthz_per_s']} healthz/s")
                    runs.append(result)
        with sdk(server, user) as api:
            item = api.query.task_info([task_id])["items"][0]
        best = max(runs, key=lambda r: r["leases_per_s"])
        emit("dispatch", {
            "database": args.database, "server_processes": args.server_processes, "chunks": args.chunks,
            "window_s": args.seconds, "best_client": best["client"], "best_protocol": best["protocol"],
            "best_concurrency": best["concurrency"],
            "leases_per_s": best["leases_per_s"],
            "healthz_per_s": best["healthz_per_s"], "ratio": best["ratio"], "runs": runs,
            "task_done_frames": item["doneFrames"], "task_executing_frames": item["executingFrames"],
            "quiet_wait_s": quiet, "goal": ">= 1500 leases/s", "met": best["leases_per_s"] >= GOAL})


if __name__ == "__main__":
    run(main)
