"""Renderbus API throughput: queryTaskInfo requests/s against a no-op endpoint's, same server and load.

    python -m bench.api [--database sqlite|postgres] [--concurrency 16] [--seconds 8] [--warmup 2]
                        [--client httpx,raw]

One server, one user, 20 submitted command tasks of 100 chunks (a few chunks of each done through
the worker protocol so the frame counts vary). Load: C concurrent loops (asyncio, an HTTP
connection each), every request signed with the SDK's Connect.signed_headers (fresh nonce, so
each one is checked and remembered by the server exactly as in real use). Measured for
--seconds after --warmup: queryTaskInfo (one task id per call, rotating), the no-op
queryUserProfile (signed and authenticated like any call, no database query of its own), and
GET /healthz (unauthenticated).
ratio = queryTaskInfo/s / queryUserProfile/s.
"""

import asyncio

from bench.clients import SignedAsync, make_client
from bench.cpu import CpuMeter, postgres_pids, self_pids, wait_quiet
from bench.harness import Bench, base_parser, deadline, emit, note, run, sdk, timed_submit
from bench.stats import timed_loop
from tests.support import taskjson
from tests.support.fake_node import AsyncNode

PROFILE = "/api/render/setUp/queryUserProfile"
TASK_INFO = "/api/render/handle/queryTaskInfo/v2"


async def prepare(server, token: str, user, count: int) -> list[int]:
    with sdk(server, user) as api:
        ids = [timed_submit(api, taskjson.command(["true"], "1-100"))[0] for _ in range(count)]
    async with make_client("raw") as client:
        worker = AsyncNode(client, server.url, token, "api-node", retries=2)
        await worker.register()
        for _ in range(count * 3):
            for lease in await worker.lease(1, 0):
                await worker.complete(lease["leaseId"])
    return ids


async def measure(server, user, ids: list[int], kind: str, concurrency: int, seconds: float, warmup: float,
                  groups: dict) -> dict:
    clients = [make_client(kind) for _ in range(concurrency)]
    signers = [SignedAsync(server, user, c) for c in clients]
    counters = [0] * concurrency
    try:
        async def info(index: int) -> int:
            counters[index] += 1
            data = await signers[index].post(TASK_INFO, {"taskIds": [ids[(index + counters[index]) % len(ids)]]})
            if not data["items"]:
                raise RuntimeError("queryTaskInfo answered no item")
            return 1

        async def profile(index: int) -> int:
            await signers[index].post(PROFILE, {})
            return 1

        async def health(index: int) -> int:
            (await clients[index].get(server.url + "/healthz")).raise_for_status()
            return 1

        out = {}
        for name, step in (("healthz", health), ("queryUserProfile", profile), ("queryTaskInfo", info)):
            result = await timed_loop(concurrency, seconds, warmup, step, CpuMeter(**groups))
            out[name] = result
    finally:
        for client in clients:
            await client.aclose()
    rate = {name: r["rate"] for name, r in out.items()}
    return {"client": kind, "concurrency": concurrency, "per_s": rate,
            "ratio": round(rate["queryTaskInfo"] / rate["queryUserProfile"], 4),
            "ratio_vs_healthz": round(rate["queryTaskInfo"] / rate["healthz"], 4),
            "p50_ms": {n: r["p50_ms"] for n, r in out.items()}, "p99_ms": {n: r["p99_ms"] for n, r in out.items()},
            "errors": sum(r["errors"] for r in out.values()),
            "server_cpu_ms_per_request": {n: round(1000 * r["cpu_s"]["server"] / max(1, r["count"]), 3)
                                          for n, r in out.items()},
            "others_share": max(r["cpu_s"]["others_share"] for r in out.values())}


def main() -> None:
    parser = base_parser(__doc__)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--client", default="httpx,raw")
    args = parser.parse_args()
    kinds = args.client.split(",")

    with deadline(200 + len(kinds) * 3 * (args.seconds + args.warmup + 60), "api"), \
            Bench(args.database, args.keep, "api") as bench:
        server = bench.start_server(args.server_processes)
        user = bench.create_user(server)
        ids = asyncio.run(prepare(server, server.worker_token(), user, 20))
        groups = {"server": server.pids, "client": self_pids}
        if args.database == "postgres":
            groups["postgres"] = postgres_pids
        quiet = wait_quiet()
        runs = []
        for kind in kinds:
            result = asyncio.run(measure(server, user, ids, kind, args.concurrency, args.seconds, args.warmup, groups))
            note(f"{kind}: {result['per_s']}")
            runs.append(result)
        main_run = runs[0]
        emit("api", {"database": args.database, "noop": "queryUserProfile (signed; also /healthz listed)",
                     "concurrency": args.concurrency, "window_s": args.seconds,
                     "queryTaskInfo_per_s": main_run["per_s"]["queryTaskInfo"],
                     "queryUserProfile_per_s": main_run["per_s"]["queryUserProfile"],
                     "ratio": main_run["ratio"], "client": main_run["client"], "runs": runs,
                     "quiet_wait_s": quiet})


if __name__ == "__main__":
    run(main)
