"""Persistent Blender sessions with the real Blender, confined as a node runs them (worker/confine.py).

The invariant (docs/design.md): a persistent session never leaks one chunk's settings into the next. Chunks
rendered one after the other in one session, with other cameras, resolutions and frames than the chunk
before, are written exactly as one-shot `blender -b scene -o ... -F ... -x 1 -s -e -j -a` runs write them.
"""

import os
import shutil
import signal
import subprocess
import threading
import time

import psutil
import pytest

from rayfarm.worker.client import FarmClient
from rayfarm.worker.confine import node_policy
from rayfarm.worker.renderers.blender import BlenderRenderer
from rayfarm.worker.scenes import SceneCache
from rayfarm.worker.session import SessionPool
from rayfarm.worker.session_job import SessionJob
from tests.support.blender import png_chunks

pytestmark = pytest.mark.skipif(shutil.which("blender") is None, reason="blender is not installed")


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    from tests.support.blender import make_scene

    return make_scene(tmp_path_factory.mktemp("scene") / "cube.blend", frames=6, width=80, height=45, samples=4,
                      stamps=False)


@pytest.fixture
def node(tmp_path):
    work = tmp_path / "work"
    client = FarmClient("http://farm.invalid", "t")  # never called: the scenes are on this machine
    running: set = set()
    pool = SessionPool(work / "sessions", 1, lambda: len(running))
    policy = node_policy(work, False)  # confined where bubblewrap works, as a node runs Blender

    class Node:
        sessions = pool

        @staticmethod
        def render(lease: dict):
            job = SessionJob(lease, work, SceneCache(work / "cache", client), policy, pool)
            running.add(job)
            try:
                return job, job.render()
            finally:
                running.discard(job)
    yield Node
    pool.close_all()
    client.close()


def lease(number: int, scene, start: int, end: int, step: int = 1, camera=None, width=None, height=None,
          file_format="TARGA", stop_time=0) -> dict:
    render = {"software": "blender", "scene": "/D/proj/cube.blend", "camera": camera, "width": width, "height": height,
              "format": file_format}
    return {"leaseId": f"L{number}", "taskId": 7, "start": start, "end": end, "step": step, "jobStopTime": stop_time,
            "render": render, "scene": {"path": str(scene), "url": None}}


def one_shot(item: dict, scene, folder) -> dict[str, bytes]:
    """The chunk rendered by a one-shot `blender ... -a` run, as a node without sessions runs it: {name: bytes}."""
    folder.mkdir(parents=True)
    [argv] = BlenderRenderer(item["render"]).commands(item, scene, folder)
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:]
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_a_persistent_session_never_leaks_one_chunks_settings_into_the_next(node, scene, tmp_path):
    # one task's chunks, each with other settings than the one before: camera, resolution, frames, step
    chunks = [lease(1, scene, 2, 3, camera="SideCamera", width=96, height=54),
              lease(2, scene, 1, 2),  # the scene's own camera and resolution again
              lease(3, scene, 2, 6, step=2, width=64),  # only a width: the scene's own height
              lease(4, scene, 5, 5, camera="SideCamera")]
    sessions = set()
    for item in chunks:
        job, outcome = node.render(item)
        assert outcome.result == "done", outcome.error
        sessions.add(job.output_dir.parent.parent.name)  # <work>/sessions/<n>/out/<lease>
        rendered = {path.name: path.read_bytes() for path in outcome.outputs}
        expected = one_shot(item, scene, tmp_path / "one-shot" / item["leaseId"])
        assert sorted(rendered) == sorted(expected)
        assert rendered == expected, f"chunk {item['leaseId']} differs from a one-shot run"
        job.cleanup()
    assert sessions == {"1"}  # all four in one Blender process
    confined_as_a_one_shot_render(scene, job.output_dir.parent)

    # PNG: the same bytes, but for the render times Cycles writes into every file
    item = lease(5, scene, 3, 4, camera="SideCamera", width=72, file_format="PNG")
    job, outcome = node.render(item)
    assert outcome.result == "done", outcome.error
    expected = one_shot(item, scene, tmp_path / "one-shot" / "L5")
    rendered = {path.name: path.read_bytes() for path in outcome.outputs}
    assert sorted(rendered) == sorted(expected) == ["cube_0003.png", "cube_0004.png"]
    for name, data in rendered.items():
        assert png_chunks(data) == png_chunks(expected[name]), name
    assert job.output_dir.parent.parent.name == "2"  # another format: another session (set as it starts)


def confined_as_a_one_shot_render(scene, out) -> None:
    """Where bubblewrap works, the session's sandbox shows the scene's folder read-only (as a one-shot render of a
    scene read in place) and lets it write in its `out` only."""
    wrapped = [proc.info["cmdline"] for proc in psutil.process_iter(["cmdline", "name"])
               if proc.info["name"] == "bwrap" and str(scene) in (proc.info["cmdline"] or [])]
    if not wrapped:
        assert node_policy(out.parent, False).sandbox is None, "the session runs unconfined"
        return
    [argv] = wrapped
    options = argv[:argv.index("--")]
    pairs = lambda flag: [options[i + 1] for i, arg in enumerate(options) if arg == flag]  # noqa: E731
    assert pairs("--bind") == [str(out)]
    inputs = [path for path in pairs("--ro-bind") if not path.startswith(("/usr", "/etc/", "/lib", "/bin", "/sbin"))]
    assert inputs == [str(scene.parent)]  # a scene read in place: its folder, for its relative references


def blender_processes(marker: str) -> list[psutil.Process]:
    return [proc for proc in psutil.process_iter(["cmdline", "status"])
            if marker in " ".join(proc.info["cmdline"] or []) and proc.info["status"] != psutil.STATUS_ZOMBIE]


def test_stop_kills_the_confined_session_and_the_next_chunk_starts_fresh(node, tmp_path):
    from tests.support.blender import make_scene

    heavy = make_scene(tmp_path / "heavy" / "heavy.blend", frames=2, width=320, height=180, samples=2000)
    first, outcome = node.render(lease(1, heavy, 1, 1, width=32, height=18))  # quick: the session is up
    assert outcome.result == "done", outcome.error
    procs = blender_processes(str(heavy))
    assert procs
    slow = SessionJob(lease(2, heavy, 2, 2), first.work_dir, first.scenes, first.policy, node.sessions)
    thread = threading.Thread(target=slow.render)
    thread.start()
    deadline = time.monotonic() + 60
    while slow.progress == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert slow.progress > 0
    slow.cancel("stop")
    thread.join(10)
    assert not thread.is_alive()
    _, alive = psutil.wait_procs(procs, timeout=5)
    assert not [proc for proc in alive if proc.status() != psutil.STATUS_ZOMBIE]
    job, outcome = node.render(lease(3, heavy, 1, 1, width=32, height=18))
    assert outcome.result == "done" and job.output_dir.parent.parent.name == "2"


def test_a_blender_crash_fails_the_chunk_and_the_next_chunk_starts_fresh(node, tmp_path):
    from tests.support.blender import make_scene

    heavy = make_scene(tmp_path / "crash" / "crash.blend", frames=2, width=320, height=180, samples=2000)
    first, outcome = node.render(lease(1, heavy, 1, 1, width=32, height=18))
    assert outcome.result == "done", outcome.error
    [blender] = [proc for proc in blender_processes(str(heavy)) if os.path.basename(proc.info["cmdline"][0]) == "blender"]
    done = []
    job = SessionJob(lease(2, heavy, 2, 2), first.work_dir, first.scenes, first.policy, node.sessions)
    thread = threading.Thread(target=lambda: done.append(job.render()))
    thread.start()
    deadline = time.monotonic() + 60
    while job.progress == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    blender.send_signal(signal.SIGKILL)  # Blender dies mid-chunk (from outside: its crash handler cannot run)
    thread.join(30)
    [crashed] = done
    assert crashed.result == "failed" and "(in a Blender session; the next chunk starts a fresh one)" in crashed.error
    again, outcome = node.render(lease(3, heavy, 1, 1, width=32, height=18))
    assert outcome.result == "done" and again.output_dir.parent.parent.name == "2"
