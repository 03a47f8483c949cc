"""How soon a render stops: the durations the tests no longer assert (they check that it happens, and in
which order, on 2 cores shared with other test runs).

    python -m bench.stops [--database sqlite|postgres] [--repeat 3] [--no-blender]

Each figure is measured --repeat times; p50 and max are reported against a goal, the bound a test used to
assert (the test it came from in brackets):

- ``job_cancel_s``: Job.cancel("stop") of a render whose child ignores SIGTERM, until every process of its
  group is gone: SIGTERM, then SIGKILL after KILL_GRACE (1 s). Goal 0.9-2 s (test_worker_job).
- ``job_time_limit_s``: Job.render() of a ten-minute chunk with jobStopTime 1 s, until its "timeout"
  outcome. Goal < 5 s (test_worker_job).
- ``agent_stop_s``: Agent.stop() while it renders (a fake farm on loopback), until run() returns. Goal < 3 s
  (test_worker_agent).
- ``stop_task_s``: stopTask while a real `rayfarm worker` renders a command chunk, from the answer until the
  render process is gone (the node hears it in its next heartbeat, 1 s). Goal <= 2 s (test_farm,
  test_worker_agent).
- ``stop_task_blender_s``: the same with a real Blender render (320x180, 128 samples). Goal <= 2 s (test_farm).
- ``over_time_status_s`` / ``over_time_kill_s``: setTaskOverTimeStop 2 s on a rendering task: from the chunk's
  start until the task shows 23, and until its render is gone. Goals 6 s and 9 s (test_farm).
- ``node_kill_render_s``: a node SIGKILLed mid-chunk, until its render is gone (PR_SET_PDEATHSIG).
  Goal <= 0.8 s (test_farm, test_worker_kills, test_worker_process).
- ``requeue_dead_s`` / ``requeue_restarted_s``: from that kill until the chunk leaves the dead node's lease,
  the node left dead (lease expiry, 10 s) or started again at once (it registers anew). Goal <= 15 s
  (test_farm, test_worker_kills; docs/design.md invariant 12).

ratio = the worst p50 / its goal; met = every max within its goal.
"""

import os
import shutil
import signal
import threading
import time
from functools import partial
from pathlib import Path

import httpx

from bench.cpu import CpuMeter, wait_quiet
from bench.harness import Bench, base_parser, deadline, emit, note, run, sdk
from bench.stats import percentile
from tests.support import taskjson
from tests.support.blender import make_scene
from tests.support.fake_farm import TOKEN, FakeServer
from tests.support.processes import gone, processes_with, wait_for
from tests.support.renders import Chunks, long_run, read_pids
from tests.support.tasks import frames_of, status, submit

GOALS = {"job_cancel_s": 2.0, "job_time_limit_s": 5.0, "agent_stop_s": 3.0, "stop_task_s": 2.0,
         "stop_task_blender_s": 2.0, "over_time_status_s": 6.0, "over_time_kill_s": 9.0, "node_kill_render_s": 0.8,
         "requeue_dead_s": 15.0, "requeue_restarted_s": 15.0}
TICK = 0.01  # how often a wait looks: the resolution of every figure


def since(began: float) -> float:
    return time.perf_counter() - began


def all_gone(pids: list[int]) -> bool:
    return all(gone(pid) for pid in pids)


def gone_after(began: float, pids: list[int], what: str) -> float:
    """Seconds from ``began`` (time.perf_counter()) until every one of ``pids`` is gone."""
    wait_for(partial(all_gone, pids), 60, what, interval=TICK)
    return since(began)


def has_status(api, task_id: int, wanted: int) -> bool:
    return status(api, task_id) == wanted


# ------------------------------------------------------------------ the node's own parts, no server


def job_figures(tmp: Path, repeat: int) -> dict[str, list[float]]:
    from rayfarm.worker.client import FarmClient
    from rayfarm.worker.job import Job
    from rayfarm.worker.scenes import SceneCache

    client = FarmClient("http://farm.invalid", "t", transport=httpx.MockTransport(lambda r: httpx.Response(404)))
    scenes = SceneCache(tmp / "cache", client)
    figures: dict[str, list[float]] = {"job_cancel_s": [], "job_time_limit_s": []}

    def job(name: str, pids_file: Path, stop_time: int) -> Job:
        lease = {"leaseId": name, "start": 1, "end": 1, "step": 1, "jobStopTime": stop_time, "scene": {},
                 "render": {"software": "command", "command": long_run(pids_file)}}
        return Job(lease, tmp / "jobs", scenes)

    try:
        for index in range(repeat):
            cancelled = job(f"cancel{index}", tmp / f"cancel{index}", 0)
            thread = threading.Thread(target=cancelled.render)
            thread.start()
            pids = read_pids(tmp / f"cancel{index}")
            began = time.perf_counter()
            cancelled.cancel("stop")
            figures["job_cancel_s"].append(gone_after(began, pids, "the cancelled render to be gone"))
            thread.join(60)

            limited = job(f"limit{index}", tmp / f"limit{index}", 1)
            began = time.perf_counter()
            outcome = limited.render()
            figures["job_time_limit_s"].append(since(began))
            if outcome.result != "timeout":
                raise RuntimeError(f"a chunk past its time limit ended {outcome.result}: {outcome.error}")
            gone_after(began, read_pids(tmp / f"limit{index}"), "the timed-out render to be gone")
    finally:
        client.close()
    return figures


def agent_figures(tmp: Path, repeat: int) -> dict[str, list[float]]:
    from rayfarm.worker import Agent
    from rayfarm.worker.client import FarmClient

    fake = FakeServer().start()
    figures: dict[str, list[float]] = {"agent_stop_s": []}
    try:
        for index in range(repeat):
            pids_file = tmp / f"agent{index}"
            fake.farm.add_lease(f"A{index}", {"software": "command", "command": long_run(pids_file)})
            agent = Agent(fake.url, TOKEN, name="bench-node", work_dir=tmp / "agent", lease_wait=0.3,
                          client=FarmClient(fake.url, TOKEN, max_backoff=0.3))
            thread = threading.Thread(target=agent.run, daemon=True)
            thread.start()
            pids = read_pids(pids_file)
            began = time.perf_counter()
            agent.stop()
            thread.join(60)
            figures["agent_stop_s"].append(since(began))
            gone_after(began, pids, "the stopped agent's render to be gone")
    finally:
        fake.stop()
    return figures


# ------------------------------------------------------------------ a real farm


def started_chunk(chunks: Chunks, task_id: int, count: int):
    """The record of the task's chunk that started as the ``count``-th start overall."""
    return wait_for(lambda: len(chunks.events("start")) >= count and chunks.events("start")[count - 1], 60,
                    f"chunk {count} of task {task_id} to start", interval=TICK)


def farm_figures(bench: Bench, server, api, repeat: int) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {name: [] for name in ("stop_task_s", "over_time_status_s", "over_time_kill_s",
                                                             "node_kill_render_s", "requeue_dead_s",
                                                             "requeue_restarted_s")}
    chunks = Chunks(bench.tmp / "chunks", seconds=600)  # every chunk would run ten minutes
    steady = server.start_worker("steady")
    starts = 0
    for _ in range(repeat):
        task_id = submit(api, taskjson.command(chunks.command(), "1"))
        starts += 1
        run = started_chunk(chunks, task_id, starts)
        api.task.stop_task([task_id])
        figures["stop_task_s"].append(gone_after(time.perf_counter(), [run.pid], "the stopped render to be gone"))
        api.task.abort_task([task_id])

        task_id = submit(api, taskjson.command(chunks.command(), "1"))
        starts += 1
        run = started_chunk(chunks, task_id, starts)
        api.task.set_task_overtime_top([task_id], 2)
        wait_for(partial(has_status, api, task_id, 23), 60, "the task to stop for over time", interval=TICK)
        figures["over_time_status_s"].append(time.time() - run.time)  # run.time: the chunk's start (its clock)
        gone_after(time.perf_counter(), [run.pid], "the over-time render to be gone")
        figures["over_time_kill_s"].append(time.time() - run.time)
        api.task.abort_task([task_id])
    steady.stop()

    for index in range(repeat):
        victim = server.start_worker(f"victim{index}")
        task_id = submit(api, taskjson.command(chunks.command(), "1"))
        starts += 1
        run = started_chunk(chunks, task_id, starts)
        os.kill(victim.pid, signal.SIGKILL)
        began = time.perf_counter()
        figures["node_kill_render_s"].append(gone_after(began, [run.pid], "the dead node's render to be gone"))
        restart = index % 2 == 1
        if restart:
            victim.start(wait=False)

        def requeued(name=victim.name, task_id=task_id, starts=starts):
            """The chunk left the dead lease: waiting again, or leased anew (a new run of it began)."""
            frame = frames_of(api, task_id)["1"]
            return (frame["frameStatus"], frame["nodeName"]) != (2, name) or len(chunks.events("start")) > starts

        wait_for(requeued, 120, "the dead node's chunk to be requeued", interval=0.05)
        figures["requeue_restarted_s" if restart else "requeue_dead_s"].append(since(began))
        api.task.abort_task([task_id])
        victim.stop()
        starts = len(chunks.events("start"))  # the restarted node may have begun the chunk again
    return figures


def blender_figures(bench: Bench, server, api, repeat: int) -> dict[str, list[float]]:
    scene = make_scene(bench.tmp / "scene" / "heavy.blend", frames=1, width=320, height=180, samples=128)
    api.files.upload(scene, "D:/bench/heavy.blend")
    node = server.start_worker("blender")
    figures: dict[str, list[float]] = {"stop_task_blender_s": []}
    for _ in range(repeat):
        task_id = submit(api, taskjson.blender("D:/bench/heavy.blend", "1", common={"width": "320", "height": "180"}))

        def rendering(task_id=task_id):
            found = processes_with(str(node.work_dir / "leases"), "blender")
            return found[0] if found and frames_of(api, task_id)["1"]["progress"] > 0 else None

        blender = wait_for(rendering, 120, "Blender to be rendering", interval=0.05)
        api.task.stop_task([task_id])
        figures["stop_task_blender_s"].append(gone_after(time.perf_counter(), [blender.pid], "Blender to be gone"))
        api.task.abort_task([task_id])
    node.stop()
    return figures


def summarize(figures: dict[str, list[float]]) -> dict:
    out = {}
    for name, values in figures.items():
        if not values:
            continue
        p50, worst = percentile(values, 50), max(values)
        out[name] = {"p50_s": round(p50, 3), "max_s": round(worst, 3), "goal_s": GOALS[name],
                     "met": worst <= GOALS[name], "runs": [round(v, 3) for v in values]}
    if "job_cancel_s" in out:  # SIGKILL comes after the grace, not before
        out["job_cancel_s"]["met"] = out["job_cancel_s"]["met"] and min(figures["job_cancel_s"]) >= 0.9
    return out


def main() -> None:
    parser = base_parser(__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-blender", action="store_true", help="leave out the Blender stop")
    args = parser.parse_args()
    blender = not args.no_blender and shutil.which("blender") is not None

    with deadline(600 + args.repeat * 120, "stops"), Bench(args.database, args.keep, "stops") as bench:
        quiet = wait_quiet()
        meter = CpuMeter()
        meter.start()
        figures = job_figures(bench.tmp / "job", args.repeat)
        figures.update(agent_figures(bench.tmp / "agent", args.repeat))
        note(f"the node's own parts measured: {figures}")
        server = bench.start_server(args.server_processes)
        user = bench.create_user(server)
        with sdk(server, user, timeout=300) as api:
            figures.update(farm_figures(bench, server, api, args.repeat))
            if blender:
                figures.update(blender_figures(bench, server, api, args.repeat))
        cpu = meter.stop()
    results = summarize(figures)
    ratio = max(r["p50_s"] / r["goal_s"] for r in results.values())
    emit("stops", {"database": args.database, "repeat": args.repeat, "figures": results, "ratio": round(ratio, 3),
                   "cpu_s": cpu, "quiet_wait_s": quiet, "goal": "every figure within its goal",
                   "met": all(r["met"] for r in results.values())})


if __name__ == "__main__":
    run(main)
