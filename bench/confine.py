"""Cost of confining render jobs: R x `blender -b scene -f 1` and R x `true`, unconfined and in bubblewrap.

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
fastest and the CPU times move least with others' load.
"""

import statistics
import tempfile
import time
from pathlib import Path

from bench.cpu import CpuMeter, wait_quiet
from bench.harness import base_parser, deadline, emit, note, run
from bench.stats import ms
from rayfarm.worker import process
from rayfarm.worker.confine import probe
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


def figures(runs: list[tuple[float, float]]) -> dict:
    wall = [w for w, _ in runs]
    return {"mean_ms": ms(statistics.fmean(wall)), "p50_ms": ms(statistics.median(wall)),
            "min_ms": ms(min(wall)), "cpu_p50_ms": ms(statistics.median(c for _, c in runs))}


def compare(argv: list[str], confined_argv: list[str], cwd: Path, runs: int) -> dict:
    once(argv, cwd, False)
    once(confined_argv, cwd, True)
    plain, confined = [], []
    for _ in range(runs):
        plain.append(once(argv, cwd, False))
        confined.append(once(confined_argv, cwd, True))
    unconfined, boxed = figures(plain), figures(confined)
    cost = {key: round(boxed[key] - unconfined[key], 3) for key in unconfined}
    return {"unconfined": unconfined, "confined": boxed, "cost": cost,
            "cost_share_p50": round(cost["p50_ms"] / unconfined["p50_ms"], 4)}


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
        true = compare(["true"], sandbox.wrap(["true"], [], str(out)), out, args.runs)
        note(f"{args.runs} x blender -b scene -f 1, each way")
        render = compare(blender, sandbox.wrap(blender, [str(scene)], str(out)), out, args.runs)
        cpu = meter.stop()
    emit("confine", {"runs": args.runs, "scene": f"{args.width}x{args.height}, {args.samples} samples",
                     "sandbox": sandbox.program, "true": true, "blender": render, "cpu_s": cpu, "quiet_wait_s": quiet})


if __name__ == "__main__":
    run(main)
