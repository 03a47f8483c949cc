"""Persistent sessions (worker/session.py, worker/session_job.py) with a stand-in Blender that speaks LOOP's protocol.

FAKE reads one JSON command per line as LOOP does and writes one file per frame (named as Blender names them)
holding its pid and the chunk's settings, so the tests see which process rendered what. The task's camera name
asks it to misbehave: "crash" (SIGSEGV mid-chunk), "missing" (the chunk fails, as LOOP reports a missing camera),
"silent" (hangs without a word), "slow" (prints forever), "nothing" (ends the chunk without writing a file).
Run with `-a` it renders one chunk from its command line, as a one-shot Blender does. Real Blender:
test_worker_session_blender.py.
"""

import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from rayfarm.worker.confine import Policy
from rayfarm.worker.renderers.blender import BlenderRenderer
from rayfarm.worker.session_job import SessionJob
from tests.support.session_node import SessionNode

FAKE = f"""#!{sys.executable}
import json, os, signal, sys, time
args = sys.argv[1:]
print("Blender 3.4.1 (stand-in)", flush=True)
print(f"Read blend: {{args[3]}}", flush=True)

def chunk(start, end, step, output, camera, width, height):
    if camera == "crash":
        print(f"Fra:{{start}} Mem:1M | crashing", flush=True)
        os.kill(os.getpid(), signal.SIGSEGV)
    if camera == "silent":
        time.sleep(3600)
    while camera == "slow":
        print(f"Fra:{{start}} Mem:1M | Sample 1/1000", flush=True)
        time.sleep(0.1)
    if camera == "missing":
        return "LookupError: the scene has no camera object named 'missing'"
    if camera == "nothing":
        return None
    for frame in range(start, end + 1, step):
        print(f"Fra:{{frame}} Mem:1M | Sample 1/2", flush=True)
        path = output.replace("####", f"{{frame:04d}}") + ".png"
        with open(path, "w") as handle:
            handle.write(f"{{os.getpid()}} {{camera}} {{width}}x{{height}}")
        print(f"Saved: '{{path}}'", flush=True)
    return None

if "-a" in args:
    value = lambda flag: args[args.index(flag) + 1]
    if "-o" in args:
        output = value("-o")
    else:  # the scene's own naming, run inside Blender: here the scene names no output, so the fallback
        expr = value("--python-expr").splitlines()
        fallback = [x for x in expr if x.startswith("name = ")][0].rsplit(" or ", 1)[1]
        folder = [x for x in expr if x.startswith("scene.render.filepath = ")][0].split(" = ", 1)[1]
        output = eval(folder.rsplit(" + name", 1)[0]) + eval(fallback)
    chunk(int(value("-s")), int(value("-e")), int(value("-j")), output, None, None, None)
    sys.exit(0)
for line in sys.stdin:
    command = json.loads(line)
    output = command["output"] or command["folder"] + command["fallback"]  # the scene names no output here
    failure = chunk(command["start"], command["end"], command["step"], output, command["camera"],
                    command["width"], command["height"])
    verdict = "done" if failure is None else "failed " + json.dumps(failure)
    print(command["marker"] + " " + verdict, flush=True)
"""


class Node(SessionNode):
    """Unconfined: the stand-in Blender lives in tmp_path."""

    def __init__(self, tmp_path: Path, slots: int = 1, idle: float = 60.0, memory: int | None = None) -> None:
        super().__init__(tmp_path / "work", Policy(None), slots, idle, memory)
        self.scene = tmp_path / "shot.blend"
        self.scene.write_bytes(b"a scene")

    def job(self, number: int, task: int = 1, camera: str | None = None, start: int = 1, end: int = 2,
            stop_time: int = 0, stall: int = 0, persistent: bool = True, file_format: str = "PNG") -> SessionJob:
        render = {"software": "blender", "scene": "/D/p/shot.blend", "camera": camera, "width": 64, "height": 36,
                  "format": file_format, "persistent_session": persistent}
        return self.lease_job(number, render, {"path": str(self.scene), "url": None}, task, start, end, stop_time,
                              stall)


@pytest.fixture
def fake_blender(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "blender"
    path.write_text(FAKE)
    path.chmod(0o755)
    monkeypatch.setattr(BlenderRenderer, "executable", str(path))
    return path


@pytest.fixture
def node(tmp_path, fake_blender):
    made = []

    def make(**options) -> Node:
        made.append(Node(tmp_path, **options))
        return made[-1]
    yield make
    for each in made:
        each.close()


def renderer_pids(outcome) -> set[int]:
    return {int(path.read_text().split()[0]) for path in outcome.outputs}


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_gone(pids, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not all(gone(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_chunks_render_one_after_the_other_in_one_process_each_with_its_own_log(node):
    farm = node()
    first, second, third = farm.job(1, start=1, end=2), farm.job(2, start=3, end=4), farm.job(3, start=5, end=5)
    outcomes = [farm.render(job) for job in (first, second, third)]
    assert [o.result for o in outcomes] == ["done"] * 3, [o.error for o in outcomes]
    assert [[p.name for p in o.outputs] for o in outcomes] == [["shot_0001.png", "shot_0002.png"],
                                                              ["shot_0003.png", "shot_0004.png"], ["shot_0005.png"]]
    assert len(set.union(*map(renderer_pids, outcomes))) == 1  # one process rendered every chunk
    logs = [job.take_log() for job in (first, second, third)]
    assert logs[0][:2] == ["Blender 3.4.1 (stand-in)", f"Read blend: {farm.scene}"]  # the start: the first chunk's
    assert [line for line in logs[1] if line.startswith("Fra:")] == ["Fra:3 Mem:1M | Sample 1/2",
                                                                     "Fra:4 Mem:1M | Sample 1/2"]
    assert logs[1][0].startswith("[rayfarm worker: rendered in Blender session 1 of this node, its chunk 2")
    assert not any("RAYFARM-CHUNK" in line for log in logs for line in log)  # the end-of-chunk lines are not logged
    assert all(job.progress == 100 for job in (first, second, third))
    # a chunk's outputs sit in their own folder of the session's until the chunk is reported
    assert first.output_dir == farm.work / "sessions" / "1" / "out" / "L1"
    first.cleanup()
    assert not first.output_dir.exists() and second.output_dir.exists()


def test_a_slot_that_takes_another_task_ends_its_session_and_two_slots_keep_two(node):
    farm = node(slots=1)
    one = farm.render(farm.job(1, task=1))
    two = farm.render(farm.job(2, task=2))
    assert renderer_pids(one) != renderer_pids(two)
    assert wait_gone(renderer_pids(one)), "task 1's session outlived its slot's move to task 2"

    farm = node(slots=2)
    one = farm.render(farm.job(3, task=1))
    two = farm.render(farm.job(4, task=2))
    again = farm.render(farm.job(5, task=1))
    assert renderer_pids(one) == renderer_pids(again) != renderer_pids(two)
    assert len(farm.pool.idle()) == 2


def test_a_crash_fails_the_chunk_and_the_next_chunk_starts_a_fresh_process(node):
    farm = node()
    before = farm.render(farm.job(1))
    crashed = farm.render(farm.job(2, camera="crash"))
    assert crashed.result == "failed"
    assert "blender was killed by signal 11 (in a Blender session" in crashed.error, crashed.error
    assert "Fra:1 Mem:1M | crashing" in crashed.error
    after = farm.render(farm.job(3))
    assert after.result == "done" and renderer_pids(after) != renderer_pids(before)


def test_a_failed_chunk_ends_its_session(node):
    farm = node()
    before = farm.render(farm.job(1))
    failed = farm.render(farm.job(2, camera="missing"))
    assert failed.result == "failed" and "no camera object named 'missing'" in failed.error, failed.error
    empty = farm.render(farm.job(3, camera="nothing"))
    assert empty.result == "failed" and "wrote no output file" in empty.error
    after = farm.render(farm.job(4))
    assert after.result == "done"
    assert wait_gone(renderer_pids(before))
    assert renderer_pids(after) != renderer_pids(before)


def test_an_idle_session_is_closed_after_the_idle_time(node):
    farm = node(idle=0.0)
    job = farm.job(1)
    outcome = farm.render(job)
    [session] = farm.pool.idle()
    assert session.alive()
    farm.pool.expire()
    assert farm.pool.idle() == [] and wait_gone(renderer_pids(outcome))
    session.wait_exit()
    assert job.output_dir.is_dir()  # the chunk's outputs stay until it is reported
    job.cleanup()
    assert not session.folder.exists()  # the ended session's folder goes with its last chunk's


def test_a_session_over_the_memory_bound_is_closed_after_its_chunk(node):
    farm = node(memory=1)  # one byte: every session is over it
    first = farm.render(farm.job(1))
    assert first.result == "done"  # the chunk's result stands
    assert farm.pool.idle() == [] and wait_gone(renderer_pids(first))
    second = farm.render(farm.job(2))
    assert second.result == "done" and renderer_pids(second) != renderer_pids(first)


def test_stop_kills_the_session_and_the_next_chunk_starts_fresh(node):
    farm = node()
    before = farm.render(farm.job(1))
    slow = farm.job(2, camera="slow")
    done = []
    thread = threading.Thread(target=lambda: done.append(farm.render(slow)))
    thread.start()
    deadline = time.monotonic() + 10
    while slow.progress == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    slow.cancel("stop")
    thread.join(10)
    assert not thread.is_alive() and slow.cancelled == "stop"
    assert wait_gone(renderer_pids(before))
    after = farm.render(farm.job(3))
    assert after.result == "done" and renderer_pids(after) != renderer_pids(before)


def test_time_limit_and_stuck_render_kill_the_session(node):
    farm = node()
    timed_out = farm.render(farm.job(1, camera="slow", stop_time=1))
    assert timed_out.result == "timeout" and "chunk time-out" in timed_out.error
    stuck = farm.render(farm.job(2, camera="silent", stall=1))
    assert stuck.result == "failed" and "stuck" in stuck.error and "stall_timeout" in stuck.error
    assert farm.render(farm.job(3)).result == "done"


def test_a_task_that_opts_out_runs_blender_for_every_chunk(node):
    farm = node()
    outcomes = [farm.render(farm.job(n, persistent=False, start=n, end=n)) for n in (1, 2)]
    assert [o.result for o in outcomes] == ["done", "done"], [o.error for o in outcomes]
    assert renderer_pids(outcomes[0]) != renderer_pids(outcomes[1])
    assert farm.pool.idle() == [] and not (farm.work / "sessions").exists()


def test_a_stop_that_comes_while_the_outputs_upload_ends_the_idle_session_of_its_task(node):
    farm = node()
    job = farm.job(1)
    outcome = farm.render(job)
    assert len(farm.pool.idle()) == 1
    job.cancel("stop")  # the render is over; its outputs were uploading when the server said stop
    assert farm.pool.idle() == [] and wait_gone(renderer_pids(outcome))


def test_a_format_blender_does_not_know_fails_the_chunk_and_leaves_no_session(node):
    farm = node()
    outcome = farm.render(farm.job(1, file_format="NOPE"))
    assert outcome.result == "failed" and "the output format 'NOPE' is not known to Blender" in outcome.error
    assert farm.pool.count() == 0
    assert farm.render(farm.job(2)).result == "done"


NODE = """
import sys, threading, time
from pathlib import Path
from rayfarm.worker.session import Session

session = Session(1, "task", Path(sys.argv[2]))
starter = threading.Thread(target=session.start, args=([sys.argv[1], "-b", "-", "-", "scene"], False))
starter.start()
starter.join()  # the thread that asked for the session ends, as a chunk's thread does
time.sleep(0.5)
print(session.proc.pid if session.alive() else "gone", flush=True)
time.sleep(60)
"""


def test_a_session_outlives_the_chunk_thread_that_started_it_and_dies_with_its_node(tmp_path, fake_blender):
    import os
    import signal
    import subprocess

    node = subprocess.Popen([sys.executable, "-c", NODE, str(fake_blender), str(tmp_path / "session")],
                            stdout=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    try:
        answer = node.stdout.readline().strip()
        assert answer.isdigit(), f"the session ended with the thread that started it ({answer!r})"
        session = int(answer)
        node.send_signal(signal.SIGKILL)
        node.wait(5)
        assert wait_gone([session]), "the session outlived its node"
    finally:
        node.kill()
        node.wait()
