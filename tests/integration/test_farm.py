"""The whole farm end to end: a real server, real `rayfarm worker` processes, real Blender renders.

Every process runs on 127.0.0.1 in its own session. Command tasks run tests/support/renders.py's CHUNK,
which appends a line to a record file when it starts and when it completes a frame, so the tests can see
what the nodes really ran, independently of what the server says. How fast a stop or a dead node's
render is killed is measured by bench/stops.py; here only that it happens, and in which order.
"""

import json
import os
import re
import signal
import socket
import subprocess
from pathlib import Path

import psutil
import pytest
from PIL import Image

from rayfarm.sdk import RayfarmAPI
from tests.support import taskjson
from tests.support.blender import make_scene
from tests.support.processes import UNCONFINED_COMMANDS, UpFarm, gone, processes_with, rayfarm, wait_for
from tests.support.renders import Chunks
from tests.support.tasks import FINISHED, frames_of, info, report, submit, wait_task

FLOW = Path(__file__).with_name("official_sdk_flow.py")


@pytest.fixture
def user(farm):
    return farm.create_user("artist", "--allow-commands")


@pytest.fixture
def api(farm, user):
    client = RayfarmAPI(user.access_id, user.access_key, domain=farm.domain)
    yield client
    client.close()


def by_index(frames: list[dict]) -> dict[str, dict]:
    return {f["frameIndex"]: f for f in frames}


def overlaps(a: dict, b: dict) -> bool:
    return a["startTime"] < b["endTime"] and b["startTime"] < a["endTime"]


# ------------------------------------------------------------------ 1. Blender through the official SDK


def run_official_render(python: Path, farm, user, task_json: dict) -> dict:
    env = {**os.environ, "RAYFARM_DOMAIN": farm.domain, "RAYFARM_USER1_ID": user.access_id,
           "RAYFARM_USER1_KEY": user.access_key, "RAYFARM_TASK_JSON": json.dumps(task_json),
           "RAYFARM_DEADLINE": "120", "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTHONPATH", None)
    done = subprocess.run([str(python), str(FLOW), "render"], capture_output=True, text=True, env=env, timeout=300,
                          cwd=str(FLOW.parent))
    assert done.returncode == 0, f"official SDK render flow failed:\n{done.stderr[-4000:]}\n{report(farm)}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_blender_task_through_the_official_sdk_renders_real_images(rayvision_python, farm, user, api, tmp_path):
    nodes = [farm.start_worker(name, wait=False) for name in ("node-a", "node-b")]
    scene = make_scene(tmp_path / "scene" / "shot.blend", frames=6, width=160, height=90, samples=8)
    assert api.files.upload(scene, "D:/proj/shot.blend") == "/D/proj/shot.blend"
    for node in nodes:
        node.wait_registered()
    task_json = taskjson.blender("D:/proj/shot.blend", "1-6[1]", per_chunk=2, cg_version="3.4", pre_frames="100",
                                 stop_after_test="1", common={"width": "160", "height": "90"})

    out = run_official_render(rayvision_python, farm, user, task_json)
    task_id = out["task_id"]

    # paused at 40 after the priority frame: only frame 1 rendered, the rest held back
    assert out["at_test_done"]["taskStatus"] == 40, (out["statuses"], report(farm, api, [task_id]))
    held = by_index(out["frames_at_test_done"])
    assert list(held) == ["1", "2-3", "4-5", "6"]
    assert held["1"]["frameType"] == 4 and held["1"]["frameStatus"] == 4
    assert all(held[i]["frameType"] == 5 and held[i]["frameStatus"] == 8 and held[i]["startTime"] == 0
               for i in ("2-3", "4-5", "6")), held
    assert out["full_speed"] == "success"

    # full speed released the rest; the task ends 25
    assert out["at_end"]["taskStatus"] == 25, (out["statuses"], report(farm, api, [task_id]))
    assert out["statuses"][-1] == 25 and 40 in out["statuses"]
    assert out["at_end"]["doneFrames"] == 6 and out["at_end"]["failedFrames"] == 0

    # six PNGs listed by getOutputUserDirFile (official SDK), downloaded with our SDK, real 160x90 images
    names = sorted(entry["fileName"] for entry in out["outputs"] if not entry["directory"])
    assert names == [f"shot_{n:04d}.png" for n in range(1, 7)], out["outputs"]
    written = api.files.download_task(task_id, tmp_path / "download")
    assert sorted(p.name for p in written) == names
    for path in written:
        with Image.open(path) as image:
            assert image.format == "PNG" and image.size == (160, 90), (path, image.format, image.size)
            rgb = image.convert("RGB")
            extrema = rgb.getextrema()
            assert any(high - low > 20 for low, high in extrema), (path, extrema)  # not blank
            assert len(rgb.getcolors(160 * 90)) > 20, path

    # queryTaskFrames (official SDK): nodes, times, execute time and usage of every chunk
    frames = by_index(out["frames"])
    assert set(frames) == {"1", "2-3", "4-5", "6"}
    for frame in frames.values():
        assert frame["frameStatus"] == 4, frame
        assert frame["nodeName"] in ("node-a", "node-b"), frame
        assert 0 < frame["startTime"] <= frame["endTime"], frame
        # whole seconds: a chunk rendered in a running Blender session may take less than half of one
        assert 0 <= frame["frameExecuteTime"] <= (frame["endTime"] - frame["startTime"]) / 1000 + 1, json.dumps(frame)
        assert frame["averageCpu"] is not None and frame["averageCpu"] > 0, json.dumps(frame)
        assert frame["averageMemory"] is not None and frame["averageMemory"] > 0, json.dumps(frame)
    assert {f["nodeName"] for f in frames.values()} == {"node-a", "node-b"}, "both nodes should have rendered"
    assert frames["1"]["endTime"] <= min(frames[i]["startTime"] for i in ("2-3", "4-5", "6"))

    # a done frame has a thumbnail, and it is a real image
    thumbs = api.files.thumbnails(frames["2-3"]["id"])
    assert thumbs, "a done frame has thumbnails"
    thumb = api.files.download_file(thumbs[0], tmp_path / "thumb.jpg", area="thumbnails")
    with Image.open(thumb) as image:
        assert image.format == "JPEG" and image.size[0] > 0


# ------------------------------------------------------------------ 2. priority


def test_higher_level_task_renders_first_on_one_node(farm, api, tmp_path):
    low_chunks, high_chunks = Chunks(tmp_path / "low", seconds=0.2), Chunks(tmp_path / "high", seconds=0.2)
    low = submit(api, taskjson.command(low_chunks.command(), "1-3[1]"), task_user_level=50)
    high = submit(api, taskjson.command(high_chunks.command(), "1-3[1]"), task_user_level=80)
    farm.start_worker("solo", UNCONFINED_COMMANDS)
    assert wait_task(farm, api, low, FINISHED)["taskStatus"] == 25
    assert wait_task(farm, api, high, FINISHED)["taskStatus"] == 25
    low_frames, high_frames = list(frames_of(api, low).values()), list(frames_of(api, high).values())
    assert max(f["startTime"] for f in high_frames) < min(f["startTime"] for f in low_frames), (high_frames, low_frames)
    # every render of the high task was over before the low task's first began (the node's own record; a chunk's
    # result may be recorded after its slot's next chunk started: its outputs upload meanwhile)
    assert max(r.time for r in high_chunks.events("done")) <= min(r.time for r in low_chunks.events("start"))
    assert {f["nodeName"] for f in low_frames + high_frames} == {"solo"}


# ------------------------------------------------------------------ 3. task limit


def test_task_limit_one_never_runs_on_two_nodes_at_once(farm, api, tmp_path):
    chunks = Chunks(tmp_path / "chunks", seconds=0.4)
    for name in ("n1", "n2", "n3"):
        farm.start_worker(name, UNCONFINED_COMMANDS, wait=False)
    for worker in farm.workers:
        worker.wait_registered()
    task_id = api.task.create_task()["taskIdList"][0]
    api.task.update_task_limit(task_id, 1)
    submit(api, taskjson.command(chunks.command(), "1-6[1]"), task_id)
    done = wait_task(farm, api, task_id, FINISHED)
    assert done["taskStatus"] == 25 and done["taskLimit"] == 1

    frames = list(frames_of(api, task_id).values())
    assert len(frames) == 6 and all(f["frameStatus"] == 4 and f["endTime"] > f["startTime"] > 0 for f in frames)
    for i, a in enumerate(frames):
        for b in frames[i + 1:]:
            if a["nodeId"] != b["nodeId"]:
                assert not overlaps(a, b), f"chunks {a['frameIndex']} and {b['frameIndex']} ran at once on two nodes"
    # the worker-side record agrees: a frame never started before the previous one was done
    runs = sorted(chunks.lines(), key=lambda r: r.time)
    assert [r.event for r in runs] == ["start", "done"] * 6, runs
    assert len(chunks.events("done")) == 6


# ------------------------------------------------------------------ 4. a node dies


def test_chunk_of_a_killed_node_is_rendered_elsewhere_exactly_once(farm, api, tmp_path):
    chunks = Chunks(tmp_path / "chunks", seconds=600)  # runs until the test lets it end
    victim = farm.start_worker("a", UNCONFINED_COMMANDS)
    task_id = submit(api, taskjson.command(chunks.command(), "1-6[1]"))

    # node a renders one chunk (it would render ten minutes); kill node a with SIGKILL in the middle of it
    started = wait_for(lambda: chunks.events("start"), 60, "node a to start a chunk",
                       details=lambda: report(farm, api, [task_id]))[0]
    frame = started.frame
    os.kill(victim.pid, signal.SIGKILL)
    victim.process.wait(60)

    # the render of the dead node dies with it: long before its ten minutes (how soon: bench/stops.py)
    wait_for(lambda: gone(started.pid), 60, f"the render process {started.pid} of the killed node to die",
             interval=0.05)
    chunks.set_seconds(0.2)  # from now on chunks are short
    survivor = farm.start_worker("b", UNCONFINED_COMMANDS)

    # the chunk goes back to waiting (the server hears nothing from node a), then node b renders it
    def requeued():
        row = frames_of(api, task_id)[frame]
        return row if (row["frameStatus"], row["nodeName"]) != (2, "a") else None

    row = wait_for(requeued, 120, f"frame {frame} of the killed node to be requeued", interval=0.2,
                   details=lambda: report(farm, api, [task_id]))
    assert row["frameStatus"] in (1, 2, 4), row

    done = wait_task(farm, api, task_id, FINISHED)
    assert done["taskStatus"] == 25 and done["doneFrames"] == 6 and done["totalFrames"] == 6

    # every frame done exactly once: the frames API, the output files, and the nodes' own record
    frames = frames_of(api, task_id)
    assert sorted(frames, key=int) == [str(n) for n in range(1, 7)]
    assert all(f["frameStatus"] == 4 and f["attempts"] == 0 for f in frames.values()), frames
    assert frames[frame]["nodeName"] == survivor.name
    outputs = {e["fileName"]: e for e in api.files.output_files(task_id)}
    assert sorted(outputs) == [f"f_{n}.txt" for n in range(1, 7)]
    downloaded = {p.name: p.read_text().split() for p in api.files.download_task(task_id, tmp_path / "out")}
    for n in range(1, 7):
        assert downloaded[f"f_{n}.txt"] == [str(n), frames[str(n)]["nodeName"]]
    for n in range(1, 7):
        completed = chunks.events("done", str(n))
        assert len(completed) == 1, f"frame {n} completed {len(completed)} times: {completed}"
    assert [r.node for r in chunks.events("done", frame)] == ["b"]
    assert [r.node for r in chunks.events("start", frame)] == ["a", "b"]
    assert started.pid not in {r.pid for r in chunks.events("done")}


# ------------------------------------------------------------------ 5. stop and start during a Blender render


def test_stop_task_kills_blender_and_start_resumes(farm, api, tmp_path):
    node = farm.start_worker("render-1", wait=False)
    scene = make_scene(tmp_path / "scene" / "heavy.blend", frames=1, width=320, height=180, samples=1000)
    api.files.upload(scene, "D:/proj/heavy.blend")
    node.wait_registered()
    task_id = submit(api, taskjson.blender("D:/proj/heavy.blend", "1-1[1]", cg_version="3.4",  # the node's (no node has 4.2)
                                      common={"width": "320", "height": "180"}))

    def rendering():
        frame = frames_of(api, task_id)["1"]
        blender = processes_with(str(node.work_dir), "blender")
        return blender[0] if frame["frameStatus"] == 2 and frame["progress"] > 0 and blender else None

    # Blender runs (its scene, in the node's folder, is in its command line) and has reported progress
    blender = wait_for(rendering, 60, "Blender to be rendering", interval=0.2,
                       details=lambda: report(farm, api, [task_id]))
    assert "heavy" in " ".join(blender.info["cmdline"])
    api.task.stop_task([task_id])
    assert info(api, task_id)["taskStatus"] == 10
    assert frames_of(api, task_id)["1"]["frameStatus"] == 3
    # the node kills the render it was told to stop (how soon: bench/stops.py), reports nothing, and is idle
    wait_for(lambda: gone(blender.pid), 60, "the Blender process to be killed after stop_task", interval=0.05,
             details=lambda: report(farm, api, [task_id]))
    wait_for(lambda: "render killed (stop); nothing reported" in node.log(), 60, "the node to drop the render",
             details=node.log)
    # killed while it ran, not ended by itself (a one-shot render's process group or the task's Blender session)
    assert re.search(r"killing (render process group|Blender session)", node.log()), node.log()[-3000:]
    wait_for(lambda: not next(w for w in api.query.workers() if w["name"] == "render-1")["running"], 60,
             "the node to be idle")
    assert not processes_with(str(node.work_dir), "blender")  # nothing renders while stopped
    assert api.files.output_files(task_id) == []
    assert frames_of(api, task_id)["1"]["frameStatus"] == 3

    api.task.start_task([task_id])
    done = wait_task(farm, api, task_id, FINISHED)
    assert done["taskStatus"] == 25
    written = api.files.download_task(task_id, tmp_path / "out")
    assert [p.name for p in written] == ["heavy_0001.png"]
    with Image.open(written[0]) as image:
        assert image.size == (320, 180)


# ------------------------------------------------------------------ 6. over-time stop


def test_over_time_stop_stops_the_task_and_kills_the_render(farm, api, tmp_path):
    chunks = Chunks(tmp_path / "chunks", seconds=600)  # far longer than any wait below
    farm.start_worker("slow", UNCONFINED_COMMANDS)
    task_id = submit(api, taskjson.command(chunks.command(), "1-2[1]"))
    started = wait_for(lambda: chunks.events("start"), 60, "the first chunk to start",
                       details=lambda: report(farm, api, [task_id]))[0]
    assert api.task.set_task_overtime_top([task_id], 2) == "SUCCESS"
    item = wait_task(farm, api, task_id, {23} | FINISHED)
    assert item["taskStatus"] == 23
    wait_for(lambda: gone(started.pid), 60, "the over-time render process to be killed",
             details=lambda: report(farm, api, [task_id]))
    frames = frames_of(api, task_id)
    assert frames[started.frame]["frameStatus"] == 11
    assert all(f["frameStatus"] == 3 for i, f in frames.items() if i != started.frame), frames
    assert not chunks.events("done")  # killed, not ended by itself
    assert info(api, task_id)["taskStatus"] == 23


# ------------------------------------------------------------------ 7. failures and retries


def test_failing_chunk_is_retried_then_failed_and_its_log_is_readable(farm, user, api, tmp_path):
    chunks = Chunks(tmp_path / "chunks", seconds=0.2)
    farm.start_worker("f1", UNCONFINED_COMMANDS, wait=False)
    farm.start_worker("f2", UNCONFINED_COMMANDS, wait=False)
    for worker in farm.workers:
        worker.wait_registered()
    task_id = submit(api, taskjson.command(chunks.command(failing="2"), "1-2[1]"))
    done = wait_task(farm, api, task_id, FINISHED)
    assert done["taskStatus"] == 30, report(farm, api, [task_id])
    frames = frames_of(api, task_id)
    assert frames["1"]["frameStatus"] == 4 and frames["1"]["attempts"] == 0
    assert frames["2"]["frameStatus"] == 5 and frames["2"]["attempts"] == 3, frames["2"]
    assert "exited with code 3" in frames["2"]["errorMessage"]
    assert len(chunks.events("start", "2")) == 3 and not chunks.events("done", "2")
    assert len(chunks.events("done", "1")) == 1

    shown = rayfarm("task", "log", str(task_id), "2", "--server", farm.url, "--access-id", user.access_id,
                    "--access-key", user.access_key)
    lines = shown.stdout.splitlines()
    assert sum(line.startswith("rendering frame 2 on node f") for line in lines) == 3, shown.stdout
    assert sum(line.startswith("=== attempt ") for line in lines) == 3, shown.stdout
    failures = [line for line in lines if line.startswith("=== failed: ")]
    assert len(failures) == 3, shown.stdout
    assert all("exited with code 3" in line and "RenderError: frame 2 cannot be rendered" in line
               for line in failures), failures  # each on one line, as logged


# ------------------------------------------------------------------ 8. rayfarm up


def test_rayfarm_up_renders_and_stops_everything_on_ctrl_c(tmp_path):
    up = UpFarm(tmp_path / "up")
    try:
        up.start(workers=1)
        assert (up.data_dir / "credentials.json").stat().st_mode & 0o777 == 0o600
        children = psutil.Process(up.process.pid).children(recursive=True)
        assert len(children) >= 2, children

        # `rayfarm up` nodes confine their jobs: the command writes only into its own output folder
        command = ["sh", "-c", 'echo "$0" > "$1/f_$0.txt"', "{frame}", "{output}"]
        with RayfarmAPI(up.creds["accessId"], up.creds["accessKey"], domain=f"127.0.0.1:{up.port}") as api:
            task_id = submit(api, taskjson.command(command, "1-2[1]"))

            def finished():
                item = info(api, task_id)
                return item if item["taskStatus"] in FINISHED else None

            item = wait_for(finished, 120, "the task to finish on the `rayfarm up` farm", interval=0.2,
                            details=up.logs)
            assert item["taskStatus"] == 25
            assert sorted(e["fileName"] for e in api.files.output_files(task_id)) == ["f_1.txt", "f_2.txt"]
        assert "render jobs run confined" in (up.data_dir / "up-logs" / "worker-1.log").read_text(), up.logs()

        os.killpg(up.process.pid, signal.SIGINT)  # Ctrl-C in the terminal
        assert up.process.wait(60) == 0, up.logs()
        wait_for(lambda: all(gone(child.pid) for child in children), 60, "the server and node processes to stop",
                 details=up.logs)
        assert not processes_with(str(up.data_dir)), [p.cmdline() for p in processes_with(str(up.data_dir))]
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", up.port)) != 0, "the server still listens"
    finally:
        up.stop(signal.SIGTERM)
        for proc in processes_with(str(up.data_dir)):
            proc.kill()
