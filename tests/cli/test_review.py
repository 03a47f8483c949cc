"""Looking at a task's results from the command line, against the `rayfarm up` farm (real Blender, two nodes):
`task show` as a person reads it, `task outputs`, `task preview` (a real H.264 movie), `task retry --frame` with
frame numbers, "failed" meaning failed and timed out, and hints that name commands."""

import json
import subprocess

from PIL import Image

from rayfarm.sdk import RayfarmAPI

REFUSED, USAGE, TASK_FAILED = 3, 2, 5


def probe(path) -> dict:
    done = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_streams", "-of", "json", str(path)],
                          capture_output=True, text=True, check=True)
    (stream,) = json.loads(done.stdout)["streams"]
    return stream


def test_show_outputs_preview_and_retry_by_frame_numbers(farm, scene, tmp_path):
    done = farm.json("submit", scene, "--frames", "1-4[1]", "--chunk", "2", "--wait", "--interval", "0.3", "--label", "hero",
                     "--project", "film", "--chunk-timeout", "2h", "--no-assets")
    task_id = done["taskId"]
    assert done["state"] == "done", done
    raw = farm.json("task", "show", task_id)  # the raw values stay in --json
    assert (raw["taskStatus"], raw["framesRange"], raw["jobStopTime"], raw["framesPerChunk"]) == (25, "1-4[1]", 7200, 2)

    shown = farm.ok("task", "show", task_id).stdout
    lines = {line.split("  ", 1)[0]: line.split("  ", 1)[1].strip() for line in shown.splitlines() if "  " in line}
    assert lines["task"] == f"{task_id} · shot.blend" and lines["state"] == "done" and lines["range"] == "1-4"
    assert (lines["chunks"], lines["chunk time-out"], lines["labels"], lines["project"]) == \
        ("2 frames each", "2 h", "hero", "film")
    assert lines["outputs"].startswith("4 file(s), ") and f"rayfarm task outputs {task_id}" in lines["outputs"]
    for internal in (raw["taskAlias"], "(25)", "[1]", raw["outputFileName"], "jobStopTime"):
        assert internal not in shown, internal
    assert "time left" not in shown  # a finished task has none
    tries = farm.ok("task", "frames", task_id).stdout
    assert "tries" in tries and "attempts" not in tries

    listing = farm.json("task", "outputs", task_id)
    names = [f"shot_000{n}.png" for n in range(1, 5)]
    assert [(i["name"], i["frame"]) for i in listing["items"]] == list(zip(names, [1, 2, 3, 4], strict=True))
    assert listing["totalBytes"] == sum(i["size"] for i in listing["items"]) > 0
    text = farm.ok("task", "outputs", task_id)
    assert f"task {task_id}: 4 file(s)" in text.stdout and "shot_0003.png" in text.stdout

    movie = tmp_path / "review.mp4"
    made = farm.ok("task", "preview", task_id, "--out", movie)
    assert str(movie) in made.stdout
    stream = probe(movie)
    assert (stream["codec_name"], stream["pix_fmt"], stream["width"], stream["height"], stream["nb_read_frames"]) == \
        ("h264", "yuv420p", 64, 36, "4")
    sheet = tmp_path / "sheet.jpg"
    farm.ok("task", "preview", task_id, "--sheet", "--out", sheet)
    with Image.open(sheet) as image:
        assert image.format == "JPEG" and image.size == (8 + 4 * (64 + 8), 8 + 36 + 22 + 8)

    # the README's example: frames 2 to 3 are in both chunks, so both render again
    again = farm.ok("task", "retry", task_id, "--frame", "2-3")
    assert f"2 chunk(s) of task {task_id} will render again" in again.stdout
    assert farm.run("task", "watch", task_id, "--interval", "0.3").returncode == 0
    beyond = farm.run("task", "retry", task_id, "--frame", "4-6")
    assert beyond.returncode == USAGE and f"Task {task_id} has no frame 5, 6" in beyond.stderr

    # the farm's hint names the command, not the API route
    unknown = farm.run("task", "show", "999999")
    assert unknown.returncode == REFUSED and "check the id with `rayfarm task list`" in unknown.stderr
    assert "getTaskList" not in unknown.stderr


def test_failed_means_failed_and_timed_out_as_the_counts_say(farm):
    """A chunk past its time-out counts as failed in `task show`; `--state failed` lists it too."""
    script = "import sys, time; f = int(sys.argv[1]); time.sleep(60 if f == 1 else 0); sys.exit(f == 2)"
    task_json = {"software_config": {"cg_name": "command", "cg_version": "", "plugins": {}},
                 "task_info": {"frames_per_task": "1", "job_stop_time": "2", "max_attempts": "1"},
                 "scene_info": {"common": {"frames": "1-3"}},
                 "additional_info": {"command": ["python3", "-c", script, "{frame}"]}}
    with RayfarmAPI(farm.creds["accessId"], farm.creds["accessKey"], domain=f"127.0.0.1:{farm.port}") as api:
        task_id = api.task.create_task()["taskIdList"][0]
        api.task.upload_task_json(task_id, task_json)
        api.task.submit_task(task_id)
    assert farm.run("task", "watch", task_id, "--interval", "0.3").returncode == TASK_FAILED
    assert farm.json("task", "show", task_id)["failedFrames"] == 2
    failed = farm.json("task", "frames", task_id, "--state", "failed")
    assert failed["total"] == 2 and [(f["frameIndex"], f["state"]) for f in failed["items"]] == \
        [("1", "timed-out"), ("2", "failed")]
    assert "time limit of 2 s (the task's chunk time-out" in failed["items"][0]["errorMessage"]
    assert [f["frameIndex"] for f in farm.json("task", "frames", task_id, "--state", "timed-out")["items"]] == ["1"]
    assert f"task {task_id}: 2 chunk(s)" in farm.ok("task", "frames", task_id, "--state", "failed").stdout


def test_up_says_where_its_logs_are(farm):
    folder = farm.data_dir / "up-logs"
    assert f"Logs of the server and the nodes: {folder}" in farm.up_log.read_text(errors="replace").splitlines()
    assert {"server.log", "worker-1.log", "worker-2.log"} <= {p.name for p in folder.iterdir()}
