"""rayfarm next to its peers, same run, same machine: `xargs -P 8`, Celery (Redis) and rayfarm on the same commands.

    python -m bench.peers [--quick] [--systems xargs,celery,rayfarm] [--database sqlite|postgres] [--keep]

Workloads, each on every system, 8 slots: 400 x `sleep 0.25`, 400 x `sleep 0.05`, 2,000 x `true`
(--quick: 16, 16 and 64).
- xargs: `xargs -P 8 -I{} <command>` fed one line per run: the baseline, nothing but fork and exec.
- Celery 5.7 (bench/peers_celery.py, in its own venv .venv-bench-celery, made here with pip if missing),
  with the settings a render farm needs (task_acks_late=True, worker_prefetch_multiplier=1), one
  `celery worker --pool prefork --concurrency 8`, Redis as broker and result backend: a throwaway
  `redis-server` on a free 127.0.0.1 port, no persistence (installed with apt-get if missing).
  A task runs the command with subprocess.run (argument list, no shell). Clock: from the first send
  of the group to the last result received by the client (join_native).
- rayfarm: one `rayfarm server` and 8 `rayfarm worker` nodes of one slot (as bench.overhead), a command
  task in chunks of one frame. Clock: from the submit call to the last chunk's end as the server
  recorded it (frames.ended_at); status_seen_s is when queryTaskInfo (polled every 100 ms) saw it done;
  `chunk`: where a chunk's time goes, from the server's records (see chunk_times), and the nodes' CPU per chunk
  split into their own (nodes_own_cpu_ms: the node's Python) and their render processes' (nodes_children_cpu_ms:
  bubblewrap, a command session's launcher, and the commands; reaped, or alive in a session).
The systems run one after the other (xargs, Celery, rayfarm), each alone on the machine: Redis and
Celery are stopped before rayfarm starts. CPU per task: user + system time of each process group (with
the commands they ran and reaped) and of the whole machine (/proc/stat), over each timed run;
`others_share` is the share of the cores used by processes that are not ours (others' tests).
ratio = wall time / xargs' wall time for the same workload; per_task_overhead_ms = (wall time - xargs'
wall time) x 8 slots / tasks: what each task costs a slot beyond what xargs spends.
"""

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import psutil

from bench.cpu import CpuMeter, process_tree, self_pids, wait_quiet
from bench.harness import Bench, base_parser, deadline, emit, note, run, sdk
from bench.stats import ms, percentile
from tests.support import taskjson
from tests.support.processes import PYTHON, free_port, stop_process, wait_for

ROOT = Path(__file__).resolve().parents[1]
CELERY_PIN = "celery[redis]==5.7.0"
CELERY_VENV = Path(os.environ.get("BENCH_CELERY_VENV", ROOT / ".venv-bench-celery"))
SLOTS = 8
WORKLOADS = (("sleep_0.25", ["sleep", "0.25"], 400, 16), ("sleep_0.05", ["sleep", "0.05"], 400, 16),
             ("true", ["true"], 2000, 64))


# ---------------------------------------------------------------- what the peers need, installed on demand

def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def redis_server() -> str:
    """The redis-server program; Debian's package is installed when it is missing."""
    found = shutil.which("redis-server")
    if found:
        return found
    note("redis-server is missing: apt-get install -y redis-server")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "redis-server"]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=True)
        subprocess.run(install, env=env, capture_output=True, check=True)
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("apt-get installed redis-server but there is no redis-server program on PATH")
    return found


def celery_python() -> Path:
    """The Python of Celery's own venv (never rayfarm's); made and filled with pip when missing."""
    python = CELERY_VENV / "bin" / "python"
    version = CELERY_PIN.split("==")[1]
    probe = [str(python), "-c", f"import celery, redis; assert celery.__version__ == {version!r}"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    note(f"making {CELERY_VENV} with {CELERY_PIN}")
    if not python.exists():
        subprocess.run([PYTHON, "-m", "venv", str(CELERY_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", CELERY_PIN], check=True)
    subprocess.run(probe, check=True)
    return python


# ---------------------------------------------------------------- figures

def per_task(cpu: dict, tasks: int) -> dict:
    """CPU ms per task of every group the meter measured (and of the whole machine)."""
    skip = ("wall", "others_share")
    return {name: round(seconds * 1000.0 / tasks, 3) for name, seconds in cpu.items() if name not in skip}


def figures(wall_s: float, tasks: int, cpu: dict, quiet: float | None) -> dict:
    return {"wall_s": round(wall_s, 3), "tasks_per_s": round(tasks / wall_s, 1), "cpu_ms_per_task": per_task(cpu, tasks),
            "others_share": cpu["others_share"], "quiet_wait_s": quiet}


def settle(quick: bool) -> float | None:
    """Wait for a quiet machine before a timed run (bench/cpu.py: wait_quiet), except in a --quick smoke run."""
    return None if quick else wait_quiet()


# ---------------------------------------------------------------- the three systems

def run_xargs(workloads: list, quick: bool) -> dict:
    out = {}
    for name, argv, tasks in workloads:
        quiet = settle(quick)
        meter = CpuMeter(xargs=self_pids)  # this process, with xargs and the commands it reaps
        meter.start()
        began = time.perf_counter()
        subprocess.run(["xargs", "-P", str(SLOTS), "-I{}", *argv], input=b"x\n" * tasks, check=True, timeout=900)
        wall = time.perf_counter() - began
        out[name] = figures(wall, tasks, meter.stop(), quiet)
        note(f"xargs {name}: {wall:.3f} s")
    return out


def run_celery(bench: Bench, workloads: list, quick: bool) -> tuple[dict, dict]:
    redis_bin = redis_server()
    python = celery_python()
    port = free_port()
    redis_log = open(bench.tmp / "redis.log", "ab")
    redis = bench.popen([redis_bin, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                        cwd=bench.tmp, stdout=redis_log, stderr=subprocess.STDOUT)
    wait_for(lambda: redis.poll() is not None or port_open(port), 30, "redis-server to listen")
    if redis.poll() is not None:
        raise RuntimeError(f"redis-server exited:\n{(bench.tmp / 'redis.log').read_text(errors='replace')[-2000:]}")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BENCH_CELERY_BROKER": f"redis://127.0.0.1:{port}"}
    worker_log = open(bench.tmp / "celery-worker.log", "ab")
    worker = bench.popen([str(python), "-m", "celery", "-A", "bench.peers_celery", "worker", "--pool", "prefork",
                          "--concurrency", str(SLOTS), "--loglevel", "WARNING", "--hostname", "bench@%h"],
                         cwd=ROOT, env=env, stdout=worker_log, stderr=subprocess.STDOUT)
    client = bench.popen([str(python), "-m", "bench.peers_celery"], cwd=ROOT, env=env, text=True,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=worker_log)

    def answer() -> dict:
        line = client.stdout.readline()
        if not line:
            log = (bench.tmp / "celery-worker.log").read_text(errors="replace")
            raise RuntimeError(f"the Celery client stopped answering; worker and client log:\n{log[-3000:]}")
        return json.loads(line)

    try:
        hello = answer()
        versions = {"celery": hello["celery"], "redis": subprocess.run([redis_bin, "--version"], capture_output=True,
                                                                      text=True).stdout.strip()}
        note(f"Celery {hello['celery']} worker ready, Redis on port {port}")
        out = {}
        for name, argv, tasks in workloads:
            quiet = settle(quick)
            meter = CpuMeter(workers=lambda: process_tree(worker.pid), redis=lambda: [redis.pid],
                             client=lambda: [client.pid])
            meter.start()
            client.stdin.write(json.dumps({"argv": argv, "count": tasks}) + "\n")
            client.stdin.flush()
            result = answer()
            cpu = meter.stop()
            if result["results"] != tasks or result["failed"]:
                raise RuntimeError(f"Celery {name}: {result}")
            out[name] = {**figures(result["wall_s"], tasks, cpu, quiet), "send_s": round(result["send_s"], 3)}
            note(f"Celery {name}: {result['wall_s']:.3f} s")
        return out, versions
    finally:
        client.stdin.close()
        for process in (client, worker, redis):  # warm shutdown of the worker, then Redis: the cores are free again
            stop_process(process, timeout=20)
        redis_log.close()
        worker_log.close()


def chunk_times(bench: Bench, task_id: int, submitted_at: float) -> tuple[int, float, dict]:
    """(chunks done, the last chunk's end, where a chunk's time goes), from the server's records: frames.started_at
    (lease granted) and ended_at (result committed), time.time() on this machine, and execute_seconds (the
    command's run as the node timed it, start to reap). Per chunk: lease_span = ended - started; outside_command
    = lease_span - execute (lease answer delivery, the node's job set-up, its complete call); idle = a node's
    time without a chunk (from submit to its first lease, then between its chunks), per chunk."""
    from sqlalchemy import create_engine, text

    engine = create_engine(bench.database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT node_id, started_at, ended_at, execute_seconds FROM frames "
                                     "WHERE task_id = :t AND status = 4 ORDER BY node_id, started_at"),
                                {"t": task_id}).all()
    finally:
        engine.dispose()
    spans = [end - start for _, start, end, _ in rows]
    outside = [end - start - (execute or 0.0) for _, start, end, execute in rows]
    idle, previous = 0.0, {}
    for node, start, end, _ in rows:
        idle += max(0.0, start - previous.get(node, submitted_at))
        previous[node] = end
    split = {"lease_span_p50_ms": ms(percentile(spans, 50)),
             "execute_p50_ms": ms(percentile([r[3] or 0.0 for r in rows], 50)),
             "outside_command_p50_ms": ms(percentile(outside, 50)),
             "outside_command_p99_ms": ms(percentile(outside, 99)),
             "outside_command_mean_ms": ms(sum(outside) / len(outside)) if outside else None,
             "idle_ms_per_chunk": round(idle / max(1, len(rows)) * 1000.0, 3),
             "first_lease_ms": ms(min((r[1] for r in rows), default=submitted_at) - submitted_at)}
    return len(rows), max((r[2] for r in rows), default=submitted_at), split


def own_and_children(nodes: list) -> tuple[float, float]:
    """CPU seconds so far of the node processes themselves (their Python) and of their render processes: the children
    they reaped (bubblewrap and the commands of one-shot runs, sessions that ended) and the ones alive now (a command
    session's bubblewrap and launcher, with the commands the launcher reaped)."""
    own = children = 0.0
    for node in nodes:
        pids = process_tree(node.process.pid)
        for pid in pids:
            try:
                times = psutil.Process(pid).cpu_times()
            except psutil.Error:
                continue
            if pid == node.process.pid:
                own += times.user + times.system
                children += times.children_user + times.children_system
            else:
                children += times.user + times.system + times.children_user + times.children_system
    return own, children


def run_rayfarm(bench: Bench, workloads: list, quick: bool, server_processes: int) -> dict:
    server = bench.start_server(server_processes)
    user = bench.create_user(server)
    nodes = bench.start_workers(server, SLOTS)  # 8 nodes of one slot, as bench.overhead
    note(f"rayfarm: {len(nodes)} nodes registered")
    out = {}
    with sdk(server, user) as api:
        for name, argv, tasks in workloads:
            task_id = api.task.task_id
            api.task.upload_task_json(task_id, taskjson.text(taskjson.command(argv, f"1-{tasks}")))
            time.sleep(1.0)  # the nodes are back in their long-poll
            quiet = settle(quick)
            meter = CpuMeter(server=server.pids, client=self_pids,
                             nodes=lambda: [p for n in nodes for p in process_tree(n.process.pid)])
            meter.start()
            own, children = own_and_children(nodes)
            began_wall = time.time()
            began = time.perf_counter()
            api.task.submit_task(task_id)
            submitted = time.perf_counter()
            while True:
                item = api.query.task_info([task_id])["items"][0]
                if item["taskStatus"] == 25:
                    break
                if item["taskStatus"] not in (0, 5):
                    raise RuntimeError(f"rayfarm {name}: the task ended in status {item['taskStatus']}: {item}")
                if time.perf_counter() - began > 900:
                    raise TimeoutError(f"rayfarm {name}: not done after 900 s: {item}")
                time.sleep(0.1)
            seen = time.perf_counter() - began
            cpu = meter.stop()
            own_after, children_after = own_and_children(nodes)
            done, last_end, split = chunk_times(bench, task_id, began_wall)
            split["nodes_own_cpu_ms"] = round((own_after - own) * 1000.0 / tasks, 3)
            split["nodes_children_cpu_ms"] = round((children_after - children) * 1000.0 / tasks, 3)
            if done != tasks:
                raise RuntimeError(f"rayfarm {name}: {done} chunks done, not {tasks}")
            wall = last_end - began_wall
            out[name] = {**figures(wall, tasks, cpu, quiet), "status_seen_s": round(seen, 3),
                         "submit_call_s": round(submitted - began, 4), "chunk": split}
            note(f"rayfarm {name}: {wall:.3f} s (status seen done at {seen:.3f} s)")
    return out


def main() -> None:
    parser = base_parser(__doc__)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 16, 16 and 64 tasks, no wait for a quiet machine")
    parser.add_argument("--systems", default="xargs,celery,rayfarm", help="which of xargs, celery, rayfarm to run")
    args = parser.parse_args()
    systems = args.systems.split(",")
    unknown = set(systems) - {"xargs", "celery", "rayfarm"}
    if unknown:
        parser.error(f"unknown systems: {', '.join(sorted(unknown))}")
    workloads = [(name, argv, quick_n if args.quick else n) for name, argv, n, quick_n in WORKLOADS]

    load_start = [round(x, 2) for x in os.getloadavg()]
    results: dict[str, dict] = {}
    versions = {}
    with deadline(2400, "peers"), Bench(args.database, args.keep, "peers") as bench:
        if "xargs" in systems:
            results["xargs"] = run_xargs(workloads, args.quick)
        if "celery" in systems:
            results["celery"], versions = run_celery(bench, workloads, args.quick)
        if "rayfarm" in systems:
            results["rayfarm"] = run_rayfarm(bench, workloads, args.quick, args.server_processes)

    report, ratios = {}, {}
    for name, argv, tasks in workloads:
        entry = {"command": argv, "tasks": tasks}
        for system, by_workload in results.items():
            entry[system] = dict(by_workload[name])
            if system != "xargs" and "xargs" in results:
                extra = entry[system]["wall_s"] - results["xargs"][name]["wall_s"]
                entry[system]["ratio"] = round(entry[system]["wall_s"] / results["xargs"][name]["wall_s"], 4)
                entry[system]["per_task_overhead_ms"] = round(extra * SLOTS / tasks * 1000.0, 2)  # per slot, vs xargs
                ratios.setdefault(name, {})[system] = entry[system]["ratio"]
        report[name] = entry
    emit("peers", {
        "database": args.database, "slots": SLOTS, "quick": args.quick, "systems": systems, "ratios": ratios,
        "tasks_per_s": {name: {s: report[name][s]["tasks_per_s"] for s in results} for name in report},
        "cpu_ms_per_task": {name: {s: report[name][s]["cpu_ms_per_task"].get("ours") for s in results} for name in report},
        "workloads": report, "versions": versions,
        "celery_settings": {"task_acks_late": True, "worker_prefetch_multiplier": 1, "pool": "prefork",
                            "concurrency": SLOTS, "broker": "redis", "backend": "redis"},
        "rayfarm_nodes": f"{SLOTS} x 1 slot", "loadavg_start": load_start,
        "loadavg_end": [round(x, 2) for x in os.getloadavg()]})


if __name__ == "__main__":
    run(main)
