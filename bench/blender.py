"""Real renders: F Blender frames on W local workers vs W hand-started `blender -b scene -a` processes.

    python -m bench.blender [--database sqlite|postgres] [--frames 24] [--workers 2] [--per-chunk 6]
                            [--width 480] [--height 270] [--samples 10] [--no-persistent-sessions]

The scene comes from tests/blender_scene.make_scene (cube, camera, sun; Cycles CPU, no denoiser);
at 480x270 and 10 samples one frame takes about a second with two renders sharing the 2 cores.
Farm: the scene is uploaded with the SDK (api.files.upload(path, "D:/bench/scene.blend")), W real
`rayfarm worker` processes are registered, a Blender task of F frames in chunks of --per-chunk is
submitted; the clock runs from submit to the last chunk's result as the server recorded it (frames.ended_at,
as bench.peers does), and every frame must be listed among the task's outputs. queryTaskInfo is polled every
--poll s (0.5) only to know when the task is done (status_seen_s): each poll costs the server ~5 ms of CPU, so
polling every 100 ms, as this bench did before, spent ~3 % of the 2 cores the renders need.
Baseline, same run: W `blender -b --factory-startup scene -o ... -s a
-e b -a` processes started together, F/W frames each; wall time until the last exits.
A one-frame render first warms the file cache for both. Goal: ratio <= 1.10.
Also reported: the CPU both used (cpu_ratio = the farm's processes, renders included / the hand-started
Blenders'; less sensitive to other people's load on shared cores than the wall times), others_share of each
run, and `chunk`: where a chunk's time goes on the farm (bench.peers.chunk_times).
"""

import resource
import subprocess
import time

from PIL import Image

from bench.cpu import CpuMeter, process_tree, wait_quiet
from bench.harness import Bench, base_parser, deadline, emit, note, run, sdk
from bench.peers import chunk_times
from tests.support import taskjson
from tests.support.processes import stop_process


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def same_size(farm_dir, hand_dir) -> None:
    """The farm rendered what the hand-run Blenders rendered: every PNG of both at one size (a task.json
    resolution other than the scene's would compare different work)."""
    sizes = {(where, Image.open(path).size) for where, folder in (("farm", farm_dir), ("by hand", hand_dir))
             for path in folder.rglob("*.png")}
    if len({size for _, size in sizes}) != 1:
        raise RuntimeError(f"the farm and the hand-run Blenders rendered different sizes: {sorted(sizes)}")


def by_hand(scene, out_dir, frames: int, workers: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the Blender processes)."""
    per = frames // workers
    argv = [["blender", "-b", "--factory-startup", str(scene), "-o", str(out_dir / "f_####"),
             "-s", str(1 + i * per), "-e", str((i + 1) * per if i < workers - 1 else frames), "-a"]
            for i in range(workers)]
    cpu = children_cpu()
    began = time.perf_counter()
    procs = [subprocess.Popen(a, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
             for a in argv]
    try:
        for proc in procs:
            if proc.wait(timeout=900) != 0:
                raise RuntimeError(f"blender exited with {proc.returncode}")
    finally:
        for proc in procs:
            stop_process(proc)
    seconds = time.perf_counter() - began
    saved = len(list(out_dir.glob("f_*.png")))
    if saved != frames:
        raise RuntimeError(f"blender by hand saved {saved} frames, not {frames}")
    return seconds, children_cpu() - cpu


def main() -> None:
    parser = base_parser(__doc__)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--per-chunk", type=int, default=6)
    parser.add_argument("--width", type=int, default=480)
    parser.add_argument("--height", type=int, default=270)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--poll", type=float, default=0.5,
                        help="queryTaskInfo polling interval, s (only to know when the task is done: the clock stops "
                             "at the last chunk's result as the server recorded it)")
    parser.add_argument("--no-persistent-sessions", "--no-persistent-blender", action="store_true",
                        help="nodes start Blender for every chunk (as before persistent sessions)")
    args = parser.parse_args()

    from tests.support.blender import make_scene

    with deadline(1500, "blender"), Bench(args.database, args.keep, "blender") as bench:
        scene = make_scene(bench.tmp / "scene" / "scene.blend", frames=args.frames, width=args.width,
                           height=args.height, samples=args.samples, timeout=120)
        warm = bench.tmp / "warm"
        subprocess.run(["blender", "-b", "--factory-startup", str(scene), "-o", str(warm / "w_####"), "-f", "1"],
                       capture_output=True, timeout=300, check=True)
        server = bench.start_server(args.server_processes)
        user = bench.create_user(server, commands=False)
        workers = bench.start_workers(server, args.workers,
                                      extra=("--no-persistent-sessions",) if args.no_persistent_sessions else ())
        api = sdk(server, user, timeout=300)
        api.files.upload(scene, "D:/bench/scene.blend")
        task_id = api.task.task_id
        api.task.upload_task_json(task_id, taskjson.text(taskjson.blender(
            "D:/bench/scene.blend", f"1-{args.frames}", per_chunk=args.per_chunk, cg_version="",
            common={"Render_Format": "PNG", "width": str(args.width), "height": str(args.height)})))
        quiet = wait_quiet()
        meter = CpuMeter(server=server.pids,
                         workers=lambda: [p for w in workers for p in process_tree(w.process.pid)])
        meter.start()
        began_wall = time.time()
        began = time.perf_counter()
        api.task.submit_task(task_id)
        while True:
            item = api.query.task_info([task_id])["items"][0]
            if item["taskStatus"] == 25:
                break
            if item["taskStatus"] not in (0, 5):
                raise RuntimeError(f"the task ended in status {item['taskStatus']}: {item}")
            if time.perf_counter() - began > 900:
                raise TimeoutError(f"not done after 900 s: {item}")
            time.sleep(args.poll)
        seen_s = time.perf_counter() - began
        cpu = meter.stop()
        outputs = [f for f in api.files.output_files(task_id) if any(str(v).endswith(".png") for v in f.values())]
        if len(outputs) != args.frames:
            raise RuntimeError(f"the farm lists {len(outputs)} PNG outputs, not {args.frames}")
        api.close()
        for worker in workers:  # free the cores for the baseline
            worker.stop()
        _, last_end, split = chunk_times(bench, task_id, began_wall)
        farm_s = last_end - began_wall
        note(f"farm: {farm_s:.2f} s, {len(outputs)} outputs listed; rendering by hand")
        hand_meter = CpuMeter()
        hand_meter.start()
        hand_s, hand_cpu = by_hand(scene, bench.tmp / "by-hand", args.frames, args.workers)
        hand_others = hand_meter.stop()["others_share"]
        same_size(bench.tmp / "data" / "storage", bench.tmp / "by-hand")
        ratio = farm_s / hand_s
        emit("blender", {
            "database": args.database, "frames": args.frames, "workers": args.workers, "per_chunk": args.per_chunk,
            "persistent_sessions": not args.no_persistent_sessions,
            "resolution": f"{args.width}x{args.height}", "samples": args.samples, "farm_s": round(farm_s, 3),
            "status_seen_s": round(seen_s, 3), "poll_s": args.poll,
            "by_hand_s": round(hand_s, 3), "ratio": round(ratio, 4), "outputs_listed": len(outputs),
            "done_frames": item["doneFrames"], "cpu_s": cpu, "by_hand_cpu_s": round(hand_cpu, 3),
            "cpu_ratio": round(cpu["ours"] / hand_cpu, 4) if hand_cpu else None, "by_hand_others_share": hand_others,
            "chunk": split, "quiet_wait_s": quiet,
            "goal": "ratio <= 1.10", "met": ratio <= 1.10})


if __name__ == "__main__":
    run(main)
