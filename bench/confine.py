"""Cost of confining render jobs: R x `blender -b scene -f 1` and R x `true`, unconfined and in bubblewrap; and
R x `true` in a command session (one sandbox, its launcher running run after run).

    python -m bench.confine [--runs 20] [--width 160] [--height 90] [--samples 8]

The scene is the tests' (tests/blender_scene.make_scene: cube, camera, sun; Cycles CPU, no denoiser).
Every run is started the way a node starts a render, with rayfarm.worker.process.start (its own session;
unconfined: the node's environment and the PDEATHSIG preexec hook; confined: the node's bubblewrap command
line from rayfarm.worker.confine, no hook, an empty environment), its output read to the end and its exit
reaped as the node does (process.reap: the kernel's CPU time of the run and its children). The two ways
alternate run by run, so that load from others on the machine hits both alike; one warm-up run of each
first. `true` shows the fixed cost per run alone (a command task pays it per chunk, or per frame with
{frame}); Blender shows it next to a real render's start-up. Figures per run of each way: wall time (mean,
median, fastest) and CPU time (median), and the cost = confined - unconfined. On a shared machine the
fastest and the CPU times move least with others' load. `true` in a session (`session`, `session_cost`): the
node's Session and launcher (worker/session.py, renderers/command_session.py), the run sent and its end read as a
node does; its CPU is what the sandbox's processes (bubblewrap, the launcher, `true`) spent for the run, the
third way in the same alternation.
"""

import statistics
import tempfile
import time
from pathlib import Path

from bench.cpu import CpuMeter, wait_quiet
from bench.harness import base_parser, deadline, emit, note, run
from bench.stats import ms
from rayfarm.worker import process
from rayfarm.worker.confine import Sandbox, probe
from rayfarm.worker.renderers import command_session
from rayfarm.worker.session import Session
from tests.support.blender import make_scene


def once(argv: list[str], cwd: Path, confined: bool) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run."""
    began = time.perf_counter()
    proc = process.start(argv, cwd, confined)
    assert proc.stdout is not None
    lines = proc.stdout.readlines()
    code, cpu, _ = process.reap(proc)
    if code != 0:
        raise RuntimeError(f"{argv[0]} exited with code {code}: {''.join(lines[-5:])}")
    return time.perf_counter() - began, cpu


def on_cpu(pids: list[int]) -> float:
    """Seconds the processes spent on a CPU so far, to the nanosecond (/proc/<pid>/schedstat; psutil's CPU times
    move by 10 ms ticks, more than a run in a session costs)."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/schedstat") as handle:
            total += int(handle.read().split()[0])
    return total / 1e9


def in_session(session: Session, argv: list[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run in a command session: the launcher's and bubblewrap's CPU for it, and
    what the launcher says the run's processes used."""
    assert session.proc is not None
    pids = process.tree(session.proc.pid)  # bubblewrap and the launcher, between runs
    cpu = on_cpu(pids)
    began = time.perf_counter()
    result, payload = session.render(command_session.run_command(argv, cwd), lambda line: None,
                                     command_session.verdict)
    wall = time.perf_counter() - began
    ran = command_session.ran(payload)
    if ran.code != 0:
        raise RuntimeError(f"{argv[0]} in a session: {result} {payload}")
    return wall, on_cpu(pids) - cpu + ran.cpu


def start_session(sandbox: Sandbox, folder: Path) -> Session:
    if sandbox.python is None:
        raise RuntimeError("no system Python for the launcher of command sessions on this machine")
    session = Session(1, "bench", folder, "command")
    session.start(sandbox.wrap(command_session.session_argv(sandbox.python), [], str(session.out)), True)
    return session


def figures(runs: list[tuple[float, float]]) -> dict:
    wall = [w for w, _ in runs]
    return {"mean_ms": ms(statistics.fmean(wall)), "p50_ms": ms(statistics.median(wall)),
            "min_ms": ms(min(wall)), "cpu_p50_ms": ms(statistics.median(c for _, c in runs))}


def compare(argv: list[str], confined_argv: list[str], cwd: Path, runs: int, session: Session | None = None) -> dict:
    once(argv, cwd, False)
    once(confined_argv, cwd, True)
    plain, confined, sessioned = [], [], []
    if session is not None:
        folder = session.chunk_folder("bench")
        in_session(session, argv, folder)
    for _ in range(runs):
        plain.append(once(argv, cwd, False))
        confined.append(once(confined_argv, cwd, True))
        if session is not None:
            sessioned.append(in_session(session, argv, folder))
    unconfined, boxed = figures(plain), figures(confined)
    cost = {key: round(boxed[key] - unconfined[key], 3) for key in unconfined}
    out = {"unconfined": unconfined, "confined": boxed, "cost": cost,
           "cost_share_p50": round(cost["p50_ms"] / unconfined["p50_ms"], 4)}
    if session is not None:
        out["session"] = figures(sessioned)
        out["session_cost"] = {key: round(out["session"][key] - unconfined[key], 3) for key in unconfined}
    return out


def main() -> None:
    parser = base_parser(__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--width", type=int, default=160)
    parser.add_argument("--height", type=int, default=90)
    parser.add_argument("--samples", type=int, default=8)
    args = parser.parse_args()

    with deadline(900, "confine"), tempfile.TemporaryDirectory(prefix="rayfarm-bench-confine-") as folder:
        root = Path(folder)
        sandbox = probe(root / "probe")
        scene = make_scene(root / "cache" / "scene.blend", frames=1, width=args.width, height=args.height,
                           samples=args.samples)
        out = root / "leases" / "bench" / "out"
        out.mkdir(parents=True)
        blender = ["blender", "-b", "--factory-startup", "--disable-autoexec", str(scene), "-o",
                   str(out / "frame_####"), "-F", "PNG", "-x", "1", "-f", "1"]
        quiet = wait_quiet()
        meter = CpuMeter()
        meter.start()
        note(f"{args.runs} x true, each way")
        session = start_session(sandbox, root / "sessions" / "1")
        try:
            true = compare(["true"], sandbox.wrap(["true"], [], str(out)), out, args.runs, session)
        finally:
            session.kill()
            session.wait_exit()
        note(f"{args.runs} x blender -b scene -f 1, each way")
        render = compare(blender, sandbox.wrap(blender, [str(scene)], str(out)), out, args.runs)
        cpu = meter.stop()
    emit("confine", {"runs": args.runs, "scene": f"{args.width}x{args.height}, {args.samples} samples",
                     "sandbox": sandbox.program, "true": true, "blender": render, "cpu_s": cpu, "quiet_wait_s": quiet})


if __name__ == "__main__":
    run(main)
