"""Load: many Renderbus clients and fake render nodes against one server, then every count reconciled.

    python -m bench.load [--clients 100] [--workers 50] [--seconds 60] [--database sqlite|postgres]
                         [--sdk-clients 10] [--think 0.25] [--render 0.2] [--fail-rate 0.02]
                         [--client httpx|raw] [--seed N] [--server-processes N] [--keep]

One server. Every client is a user of its own (so a per-key rate limit applies to each one
separately) and runs a script-like loop with a random pause (``--think``, mean seconds) between
operations: create + upload task.json + submit small tasks (command, Blender, and Blender with a
priority frame that pauses the task until the client asks for full speed), queryTaskInfo,
getTaskList, queryTaskFrames, queryAllFrameStats, stop then start, priority, node limit and
over-time changes, full speed, and a few aborts and deletes. At most ``--open-tasks`` unfinished
tasks per client, as a script that waits for its renders would. ``--sdk-clients`` of the clients
call through rayfarm's own SDK (``rayfarm.sdk.RayfarmAPI``, retries off so no failure is hidden) in
threads; the others sign requests with the SDK's signing over one ``httpx.AsyncClient`` each (or the
raw client of bench/clients.py with ``--client raw``). The nodes speak the real worker protocol
(register, lease with wait, heartbeats that honour ``stop``, output upload for Blender chunks,
complete); they render nothing: a chunk is a sleep of about ``--render`` s, and ``--fail-rate`` of
them report a failure. Each node keeps its own record of every result it reported.

After ``--seconds`` the clients finish what they were doing, paused tasks get full speed, the farm
drains, and the run is reconciled: the tasks the clients created against the database, the API's
queryTaskInfo / queryTaskFrames / queryAllFrameStats / getTaskList against the database (read
directly with rayfarm.store.schema), and the database's done chunks and failed attempts against the
nodes' records. One JSON line: throughput, latency per call, errors, and every check.

``errors``: every call of a client or node that failed (HTTP or transport error, any Renderbus code
but 200) — except a stop or abort answered 718 because the task finished meanwhile, which counts only
once queryTaskInfo confirms it finished — and any task still unfinished ``--drain-timeout`` s after the
load. ``server_errors``: failures the server logged. A correct run has 0 of both and every check true.
"""

from __future__ import annotations

import asyncio
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from bench.clients import make_client
from bench.cpu import CpuMeter, postgres_pids, self_pids, wait_quiet
from bench.harness import Bench, base_parser, deadline, emit, note, run
from bench.load_check import api_snapshot, reconcile, server_errors, wait_drained
from bench.load_clients import SCENE_BYTES, Client, Run, SdkCalls, SignedCalls
from bench.load_node import LoadNode, tiny_png
from bench.stats import latency, ms, percentile
from tests.support.farms import make_users
from tests.support.processes import Credentials


@dataclass
class Options:
    clients: int = 100
    workers: int = 50
    seconds: float = 60.0
    database: str = "sqlite"
    database_url: str | None = None
    sdk_clients: int = 10
    think: float = 0.25
    render: float = 0.2
    fail_rate: float = 0.02
    open_tasks: int = 2
    client: str = "httpx"
    seed: int = 1
    server_processes: int = 1
    drain_timeout: float = 120.0
    quiet_max: float | None = None
    keep: bool = False


async def drive(bench: Bench, server, token: str, users: list[Credentials], opts: Options, meter: CpuMeter) -> dict:
    run = Run()
    rng = random.Random(opts.seed)
    pool = ThreadPoolExecutor(max(1, opts.sdk_clients), thread_name_prefix="sdk")
    scene = bench.tmp / "shot.blend"
    scene.write_bytes(SCENE_BYTES)
    clients: list[Client] = []
    for index, user in enumerate(users):
        calls = (SdkCalls(run, server, user, pool, scene) if index < opts.sdk_clients
                 else SignedCalls(run, server, user, make_client(opts.client), opts.client))
        clients.append(Client(index, user, calls, run, random.Random(rng.random()), opts.think, opts.open_tasks))
    png = tiny_png()
    nodes = [LoadNode(f"load-node{i:03d}", server.url, token, (make_client(opts.client), make_client(opts.client)), run,
                  random.Random(rng.random()), opts.render, opts.fail_rate, png) for i in range(opts.workers)]
    figures: dict[str, Any] = {}
    try:
        for start in range(0, len(nodes), 25):
            await asyncio.gather(*(n.register() for n in nodes[start:start + 25]))
        node_tasks = [asyncio.create_task(n.work_loop()) for n in nodes]
        node_tasks += [asyncio.create_task(n.heartbeats()) for n in nodes]
        client_tasks = [asyncio.create_task(c.loop()) for c in clients]
        node_tasks.append(asyncio.create_task(run.watch_loop()))
        await asyncio.sleep(min(3.0, opts.seconds / 8))  # warm-up: every loop running, some tasks queued
        meter.start()
        run.measuring = True
        began = time.monotonic()
        await asyncio.sleep(opts.seconds)
        run.measuring = False
        window = time.monotonic() - began
        figures["cpu_s"] = meter.stop()
        ended = time.monotonic()
        run.stop_clients = True
        await asyncio.wait_for(asyncio.gather(*client_tasks), 120)
        await asyncio.gather(*(c.finish() for c in clients))
        drained = time.monotonic()
        stuck = await asyncio.to_thread(wait_drained, bench.database_url, clients, opts.drain_timeout)
        figures["drain_s"] = round(time.monotonic() - drained, 2)
        run.stop_nodes = True
        await asyncio.wait_for(asyncio.gather(*node_tasks), 30)
        figures["stuck_tasks"] = stuck
        api = await api_snapshot(clients, run)
    finally:
        run.stop_clients = run.stop_nodes = True
        for client in clients:
            await client.calls.aclose()
        for node in nodes:
            await node.client.aclose()
            await node.beat_client.aclose()
        pool.shutdown(wait=False)
    records = [r for n in nodes for r in n.records]
    done_in_window = [r for r in records if r["accepted"] and r["result"] == "done" and began <= r["at"] <= ended]
    user_calls = {k: v for k, v in run.counts.items() if not k.startswith("node:")}
    node_calls = {k: v for k, v in run.counts.items() if k.startswith("node:")}
    every_user_call = [s for k, v in run.latency.items() if not k.startswith("node:") for s in v]
    figures.update({
        "window_s": round(window, 3),
        "requests_per_s": round(sum(user_calls.values()) / window, 1),
        "node_requests_per_s": round(sum(node_calls.values()) / window, 1),
        "chunks_per_s": round(len(done_in_window) / window, 1),
        "frames_per_s": round(sum(r["frames"] for r in done_in_window) / window, 1),
        "p50_ms": ms(percentile(every_user_call, 50)),
        "p99_ms": ms(percentile(every_user_call, 99)),
        "calls": {name: {"n": n, "per_s": round(n / window, 1), **latency(run.latency.get(name, []))}
                  for name, n in sorted(run.counts.items())},
        "client_loop_lag_ms": {"p50": ms(percentile(run.lags, 50)),
                               "p99": ms(percentile(run.lags, 99)), "max": ms(max(run.lags or [0]))},
        "errors": run.errors, "error_examples": run.examples, "events": dict(sorted(run.events.items())),
    })
    return {"figures": figures, "clients": clients, "records": records, "api": api}


def run_load(opts: Options) -> dict:
    """One load run; the figures, the reconciliation and every error (see the module's docstring)."""
    budget = 300 + opts.seconds * 3 + opts.drain_timeout + opts.clients * 2
    with deadline(budget, "load"), Bench(opts.database, opts.keep, "load", opts.database_url) as bench:
        server = bench.start_server(opts.server_processes)
        # users made in one transaction (a CLI call each would take minutes); the worker token read on the way
        names = [f"load{i:03d}" for i in range(opts.clients)]
        users = make_users(server, *names, commands=tuple(names))
        token = server.worker_token()
        note(f"{opts.clients} users, {opts.workers} nodes; load for {opts.seconds:g} s")
        quiet = wait_quiet(opts.quiet_max) if opts.quiet_max != 0 else 0.0
        groups = {"server": server.pids, "client": self_pids}
        if opts.database == "postgres":
            groups["postgres"] = postgres_pids
        out = asyncio.run(drive(bench, server, token, users, opts, CpuMeter(**groups)))
        result = reconcile(bench, users, out["clients"], out["records"], out["api"])
        logged = server_errors(server)
    figures = out["figures"]
    errors, examples = figures.pop("errors"), figures.pop("error_examples")
    if figures["stuck_tasks"]:
        errors += 1
        examples.append(f"tasks not finished {opts.drain_timeout:g} s after the load: {figures['stuck_tasks'][:20]}")
    return {"database": opts.database, "server_processes": opts.server_processes, "clients": opts.clients,
            "sdk_clients": min(opts.sdk_clients, opts.clients), "workers": opts.workers, "client": opts.client,
            "think_s": opts.think, "render_s": opts.render, "fail_rate": opts.fail_rate, "seed": opts.seed,
            "errors": errors, "server_errors": len(logged), "error_examples": examples + logged[:5], **result,
            **figures, "quiet_wait_s": quiet}


def main() -> None:
    parser = base_parser(__doc__)
    defaults = Options()
    parser.add_argument("--clients", type=int, default=defaults.clients)
    parser.add_argument("--workers", type=int, default=defaults.workers)
    parser.add_argument("--seconds", type=float, default=defaults.seconds)
    parser.add_argument("--sdk-clients", type=int, default=defaults.sdk_clients,
                        help="clients that call through rayfarm.sdk.RayfarmAPI in threads (the rest sign their own)")
    parser.add_argument("--think", type=float, default=defaults.think, help="mean pause between a client's operations")
    parser.add_argument("--render", type=float, default=defaults.render, help="mean seconds a fake chunk takes")
    parser.add_argument("--fail-rate", type=float, default=defaults.fail_rate)
    parser.add_argument("--open-tasks", type=int, default=defaults.open_tasks,
                        help="unfinished tasks a client keeps at most")
    parser.add_argument("--client", choices=("httpx", "raw"), default=defaults.client)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--drain-timeout", type=float, default=defaults.drain_timeout)
    args = parser.parse_args()
    opts = Options(clients=args.clients, workers=args.workers, seconds=args.seconds, database=args.database,
                   sdk_clients=args.sdk_clients, think=args.think, render=args.render, fail_rate=args.fail_rate,
                   open_tasks=args.open_tasks, client=args.client, seed=args.seed,
                   server_processes=args.server_processes, drain_timeout=args.drain_timeout, keep=args.keep)
    emit("load", run_load(opts))


if __name__ == "__main__":
    run(main)
