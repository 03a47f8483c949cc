import os
import shutil
import sys
import time

import pytest

from rayfarm.worker.client import FarmClient
from rayfarm.worker.confine import Policy
from rayfarm.worker.job import Job
from rayfarm.worker.scenes import SceneCache
from tests.support.processes import gone, wait_for
from tests.support.renders import child_got_sigterm, long_run, read_pids

PY = sys.executable


@pytest.fixture
def scenes(tmp_path):
    client = FarmClient("http://farm.invalid", "t")  # never called: the scenes are on this machine
    yield SceneCache(tmp_path / "cache", client)
    client.close()


# These commands run unconfined (they use this venv's Python and the test's folder); confined runs are
# in test_worker_confine.py.
UNCONFINED = Policy(None, unconfined_commands=True)


def make_job(tmp_path, scenes, command, start=1, end=1, step=1, stop_time=0, render=None, scene=None,
             policy=UNCONFINED):
    lease = {"leaseId": "lease-1", "start": start, "end": end, "step": step, "jobStopTime": stop_time,
             "render": render or {"software": "command", "command": command}, "scene": scene or {}}
    return Job(lease, tmp_path / "work", scenes, policy)


def test_per_frame_runs_write_outputs_and_progress(tmp_path, scenes):
    script = "import sys; open(sys.argv[1], 'w').write('x'); print('frame', sys.argv[2])"
    job = make_job(tmp_path, scenes, [PY, "-c", script, "{output}/f_{frame}.txt", "{frame}"], start=1, end=5, step=2)
    outcome = job.render()
    assert outcome.result == "done", outcome.error
    assert [p.name for p in outcome.outputs] == ["f_1.txt", "f_3.txt", "f_5.txt"]
    assert job.progress == 100
    assert [line for line in job.take_log()] == ["frame 1", "frame 3", "frame 5"]
    assert outcome.execute_seconds > 0
    job.cleanup()
    assert not job.dir.exists()


def test_nonzero_exit_fails_with_last_lines(tmp_path, scenes):
    script = "print('loading'); print('ValueError: bad scene'); print('bye'); raise SystemExit(3)"
    outcome = make_job(tmp_path, scenes, [PY, "-c", script]).render()
    assert outcome.result == "failed"
    assert "exited with code 3" in outcome.error
    assert "ValueError: bad scene" in outcome.error and "bye" in outcome.error


def test_missing_program_fails_readably(tmp_path, scenes):
    outcome = make_job(tmp_path, scenes, ["no-such-renderer-xyz", "{frame}"]).render()
    assert outcome.result == "failed"
    assert "'no-such-renderer-xyz' could not be started" in outcome.error


def test_runs_in_output_dir_without_shell(tmp_path, scenes):
    script = "import os, sys; open('args.txt', 'w').write(repr(sys.argv[1:]))"
    outcome = make_job(tmp_path, scenes, [PY, "-c", script, "$HOME; echo hi", "*"]).render()
    assert outcome.result == "done"
    assert (outcome.outputs[0]).read_text() == repr(["$HOME; echo hi", "*"])


def test_shared_scene_path_is_used(tmp_path, scenes):
    scene = tmp_path / "shared" / "a.txt"
    scene.parent.mkdir()
    scene.write_text("scene data")
    script = "import shutil, sys; shutil.copy(sys.argv[1], sys.argv[2])"
    outcome = make_job(tmp_path, scenes, [PY, "-c", script, "{scene}", "{output}/copy.txt"],
                       scene={"path": str(scene), "url": "/never"}).render()
    assert outcome.result == "done", outcome.error
    assert outcome.outputs[0].read_text() == "scene data"


def test_unreadable_scene_without_url_fails(tmp_path, scenes):
    outcome = make_job(tmp_path, scenes, ["true", "{scene}"], scene={"path": "/nowhere/a.blend"}).render()
    assert outcome.result == "failed" and "/nowhere/a.blend" in outcome.error


def test_timeout_kills_the_group_and_reports_timeout(tmp_path, scenes):
    pids_file = tmp_path / "pids"
    job = make_job(tmp_path, scenes, long_run(pids_file), stop_time=1)
    outcome = job.render()  # the render would run ten minutes: only the time limit ends it
    assert outcome.result == "timeout"
    assert "time limit of 1 s" in outcome.error
    pids = read_pids(pids_file)
    wait_for(lambda: all(gone(pid) for pid in pids), 30, "the render's process group to be killed")
    assert child_got_sigterm(pids_file)  # asked first; the child ignored it, so only the SIGKILL ended it


def test_cancel_kills_the_whole_group_sigterm_first(tmp_path, scenes):
    import threading

    pids_file = tmp_path / "pids"
    job = make_job(tmp_path, scenes, long_run(pids_file))
    thread = threading.Thread(target=job.render)
    thread.start()
    pids = read_pids(pids_file)
    assert os.getpgid(pids[0]) == pids[0] != os.getpgid(0)  # its own process group
    job.cancel("stop")
    thread.join(60)
    assert not thread.is_alive()
    wait_for(lambda: all(gone(pid) for pid in pids), 30, "the render's process group to be killed")
    # the child ignores SIGTERM: it got it first, and the SIGKILL that followed ended it
    assert child_got_sigterm(pids_file)
    assert job.cancelled == "stop"


def test_log_is_given_back_when_a_heartbeat_fails(tmp_path, scenes):
    job = make_job(tmp_path, scenes, ["true"])
    for i in range(3):
        job.add_line(f"line {i}\n")
    sent = job.take_log()
    job.add_line("line 3")
    job.return_log(sent)
    assert job.take_log() == ["line 0", "line 1", "line 2", "line 3"]
    assert job.take_log() == []


def test_log_backlog_is_capped(tmp_path, scenes):
    job = make_job(tmp_path, scenes, ["true"])
    for i in range(2100):
        job.add_line(f"{i}")
    lines = job.take_log()
    assert lines[0] == "[rayfarm worker: 100 earlier lines were not sent]"
    assert lines[1] == "100" and lines[-1] == "2099"


def test_resource_samples(tmp_path, scenes):
    import threading

    script = "import time\nend = time.time() + 1.5\nwhile time.time() < end: pass\n"
    job = make_job(tmp_path, scenes, [PY, "-c", script])
    thread = threading.Thread(target=lambda: setattr(job, "outcome", job.render()))
    thread.start()
    while thread.is_alive():
        time.sleep(0.5)
        job.sample()
    thread.join()
    assert job.outcome.result == "done"
    assert job.outcome.avg_cpu > 0
    assert job.outcome.avg_memory > 1_000_000


@pytest.mark.skipif(shutil.which("blender") is None, reason="blender is not installed")
def test_blender_unreadable_scene_fails_readably(tmp_path, scenes):
    scene = tmp_path / "cube.blend"
    scene.write_bytes(b"not a blend file")
    render = {"software": "blender", "scene": "/D/cube.blend", "format": "PNG"}
    outcome = make_job(tmp_path, scenes, None, render=render, scene={"path": str(scene)}).render()
    assert outcome.result == "failed"
    assert "blender exited with code 1" in outcome.error
    assert "File format is not supported" in outcome.error, outcome.error


def test_short_run_still_gets_cpu_and_memory(tmp_path, scenes):
    script = "import time\nx = bytearray(30_000_000)\nend = time.time() + 0.3\nwhile time.time() < end: pass\n"
    outcome = make_job(tmp_path, scenes, [PY, "-c", script]).render()
    assert outcome.result == "done"
    assert outcome.avg_cpu > 10 / os.cpu_count()
    assert outcome.avg_memory > 30_000_000
