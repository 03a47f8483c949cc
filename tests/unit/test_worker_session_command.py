"""Command sessions (worker/session_job.py, renderers/command_session.py, renderers/launcher.py) in real bubblewrap.

SEE is a chunk's command: it writes what it sees of the sandbox into {output}/seen.json (its PID namespace, the
other processes, the scratch space, the session's `out/` folder), and with "leave" it leaves everything it can
behind: a process in a session of its own that ignores SIGTERM, files in /tmp (one in a folder it made unreadable),
in HOME, in /dev/shm and next to its output folder, a POSIX message queue and a SysV shared memory segment; it
also tries to write into the sandbox's root and /dev. The next chunk of the same session must see none of it.
"""

import json
import signal
import subprocess
import threading
import time
from pathlib import Path

import psutil
import pytest

from rayfarm.worker.confine import ConfinementError, Policy, probe
from rayfarm.worker.renderers import command_session
from rayfarm.worker.session_job import SessionJob
from tests.support.session_node import SessionNode

SEE = r'''
import ctypes, json, os, subprocess, sys
output, leave = sys.argv[1], sys.argv[2:] == ["leave"]
def listing(path):
    try:
        return sorted(os.listdir(path))
    except OSError as exc:
        return type(exc).__name__
others = []
for pid in (name for name in os.listdir("/proc") if name.isdigit() and int(name) not in (1, os.getpid())):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            others.append(handle.read().replace(b"\0", b" ").decode()[:200])
    except OSError:
        pass
with open("/proc/sysvipc/shm") as handle:
    segments = handle.read().splitlines()[1:]
seen = {"ns": os.readlink("/proc/self/ns/pid"), "pid": os.getpid(), "others": others, "tmp": listing("/tmp"),
        "shm": listing("/dev/shm"), "mqueue": listing("/dev/mqueue"), "segments": segments,
        "out": listing(os.path.dirname(output)), "home": os.environ["HOME"], "written": []}
if leave:
    for path in ("/tmp/left.txt", os.path.expanduser("~/.left-rc"), "/dev/shm/left", output + "/../stray.txt",
                 "/left.txt", "/dev/left", "/etc/left"):
        try:
            with open(path, "w") as handle:
                handle.write("left")
            seen["written"].append(path)
        except OSError:
            pass
    os.makedirs("/tmp/deep/er")
    open("/tmp/deep/er/file", "w").close()
    os.chmod("/tmp/deep", 0)
    libc = ctypes.CDLL(None)
    assert libc.shmget(0x5eed, 4096, 0o1600) >= 0
    assert libc.mq_open(b"/left", os.O_CREAT | os.O_RDWR, 0o600, None) >= 0
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)"
    subprocess.Popen([sys.executable, "-c", code, "leftover-" + output], start_new_session=True)
with open(os.path.join(output, "seen.json"), "w") as handle:
    json.dump(seen, handle)
'''
BURN = "import time\nend = time.time() + 0.3\nwhile time.time() < end: pass\nopen('burnt.txt', 'w').close()\n"
SLEEP = ["python3", "-c", "import sys, time; print('started', sys.argv[1], flush=True); time.sleep(120)", "{output}"]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    try:
        found = probe(tmp_path_factory.mktemp("probe"))
    except ConfinementError:
        pytest.skip("bubblewrap does not work on this machine")
    if found.python is None:
        pytest.skip("no system Python for the launcher on this machine")
    return found


class Node(SessionNode):
    """Confining commands."""

    def __init__(self, tmp_path: Path, sandbox, slots: int = 1, unconfined: bool = False) -> None:
        super().__init__(tmp_path / "work", Policy(sandbox, unconfined_commands=unconfined), slots)

    def job(self, number: int, command: list[str], task: int = 1, start: int = 1, end: int = 1, stop_time: int = 0,
            stall: int = 0, persistent: bool = True) -> SessionJob:
        render = {"software": "command", "command": command, "scene": "", "persistent_session": persistent}
        return self.lease_job(number, render, {"url": None}, task, start, end, stop_time, stall)


@pytest.fixture
def node(tmp_path, sandbox):
    made = []

    def make(**options) -> Node:
        made.append(Node(tmp_path / str(len(made)), sandbox, **options))
        return made[-1]
    yield make
    for each in made:
        each.close()


def seen(job: SessionJob) -> dict:
    return json.loads((job.output_dir / "seen.json").read_text())


def session_of(job: SessionJob) -> str:
    """The number of the session a chunk ran in (its output folder is sessions/<n>/out/<lease>)."""
    assert job.output_dir.parent.name == "out", job.output_dir
    return job.output_dir.parent.parent.name


def processes_naming(text: str) -> list[psutil.Process]:
    return [proc for proc in psutil.process_iter(["cmdline", "name", "status"])
            if text in " ".join(proc.info["cmdline"] or []) and proc.info["name"] != "bwrap"
            and proc.info["status"] != psutil.STATUS_ZOMBIE]


def see(farm: Node, number: int, task: int = 1, leave: bool = False):
    job = farm.job(number, ["python3", "-c", SEE, "{output}", *(["leave"] if leave else [])], task=task)
    outcome = farm.render(job)
    assert outcome.result == "done", outcome.error
    return job, seen(job)


def test_chunks_run_in_one_sandbox_and_none_sees_what_the_one_before_left(node):
    farm = node()
    first, before = see(farm, 1, leave=True)
    assert not processes_naming(f"leftover-{first.output_dir}"), "the chunk's leftover process outlived its chunk"
    second, after = see(farm, 2)
    third, again = see(farm, 3)
    assert session_of(first) == session_of(second) == session_of(third) == "1"
    assert before["ns"] == after["ns"] == again["ns"]  # one sandbox: its PID namespace
    # what the first chunk left is gone: processes, scratch files, IPC, strays next to its output folder
    assert before["written"] == ["/tmp/left.txt", "/tmp/.left-rc", "/dev/shm/left", f"{first.output_dir}/../stray.txt"]
    assert after["others"] == [] and after["shm"] == [] and after["mqueue"] == [] and after["segments"] == []
    assert after["tmp"] == before["tmp"]  # only the way to the node's folders, when they are under /tmp
    assert after["out"] == ["L1", "L2"]  # its own folder and the first chunk's (not reported yet here): no stray
    first.cleanup()
    assert again["out"] == ["L2", "L3"] or again["out"] == ["L1", "L2", "L3"]
    assert [path.name for path in first.output_dir.parent.iterdir()] != []  # the session's out/ is still there


def test_a_run_reports_its_cpu_and_a_failed_or_missing_program_keeps_the_session(node):
    farm = node()
    burnt = farm.render(farm.job(1, ["python3", "-c", BURN]))
    assert burnt.result == "done" and [path.name for path in burnt.outputs] == ["burnt.txt"], burnt.error
    assert burnt.avg_cpu > 0  # the launcher's account of the run's CPU reaches the node
    failed = farm.render(farm.job(2, ["sh", "-c", "echo trying; exit 3"]))
    assert failed.result == "failed" and "sh exited with code 3. Last log lines: trying" in failed.error
    missing = farm.render(farm.job(3, ["no-such-renderer-xyz"]))
    assert missing.result == "failed"
    assert ("'no-such-renderer-xyz' could not be started on this node: No such file or directory. Confined render "
            "jobs find programs in") in missing.error
    job, _ = see(farm, 4)
    assert session_of(job) == "1" and farm.pool.count() == 1


def test_each_frame_runs_in_the_session_with_a_clean_sandbox(node):
    farm = node()
    command = ["sh", "-c", 'ls /tmp > "$1/f_$0.txt"; touch /tmp/frame-$0', "{frame}", "{output}"]
    job = farm.job(1, command, start=1, end=3)
    outcome = farm.render(job)
    assert outcome.result == "done" and [p.name for p in outcome.outputs] == ["f_1.txt", "f_2.txt", "f_3.txt"]
    assert len({path.read_text() for path in outcome.outputs}) == 1  # no frame saw the one before's file
    assert job.progress == 100 and session_of(job) == "1"


def test_a_chunk_of_another_task_never_runs_in_the_sandbox(node):
    farm = node(slots=1)
    one, seen_one = see(farm, 1, task=1)
    two, seen_two = see(farm, 2, task=2)
    back, seen_back = see(farm, 3, task=1)
    assert [session_of(job) for job in (one, two, back)] == ["1", "2", "3"]
    assert seen_one["ns"] != seen_two["ns"] and seen_back["ns"] != seen_two["ns"]

    farm = node(slots=2)
    jobs = [see(farm, n, task=task)[0] for n, task in ((1, 1), (2, 2), (3, 1), (4, 2))]
    assert [session_of(job) for job in jobs] == ["1", "2", "1", "2"]


def stop_while_running(farm: Node, job: SessionJob, how):
    """The chunk's outcome, once `how` ended it while it ran; every process it had is gone."""
    outcomes = []
    thread = threading.Thread(target=lambda: outcomes.append(farm.render(job)))
    thread.start()
    deadline = time.monotonic() + 30
    while not processes_naming(str(job.output_dir)) and time.monotonic() < deadline:
        time.sleep(0.05)
    procs = processes_naming(str(job.output_dir))
    assert procs, "the chunk did not start"
    how()
    thread.join(30)
    assert not thread.is_alive()
    gone, alive = psutil.wait_procs(procs, timeout=10)
    assert not [proc for proc in alive if proc.status() != psutil.STATUS_ZOMBIE]
    return outcomes[0]


def test_stop_kills_the_session_and_the_next_chunk_starts_a_fresh_one(node):
    farm = node()
    see(farm, 1)
    slow = farm.job(2, SLEEP)
    stop_while_running(farm, slow, lambda: slow.cancel("stop"))
    assert slow.cancelled == "stop" and farm.pool.count() == 0
    job, _ = see(farm, 3)
    assert session_of(job) == "2"


def test_time_limit_and_stuck_chunk_kill_the_session(node):
    farm = node()
    timed_out = farm.render(farm.job(1, SLEEP, stop_time=1))
    assert timed_out.result == "timeout" and "chunk time-out" in timed_out.error
    stuck = farm.render(farm.job(2, SLEEP, stall=1))
    assert stuck.result == "failed" and "stuck" in stuck.error and "stall_timeout" in stuck.error
    job, _ = see(farm, 3)
    assert session_of(job) == "3"


def test_a_launcher_that_dies_fails_its_chunk_and_the_next_chunk_starts_fresh(node):
    farm = node()
    see(farm, 1)
    [session] = farm.pool.idle()
    slow = farm.job(2, SLEEP)

    def kill_the_launcher() -> None:
        [launcher] = psutil.Process(session.proc.pid).children()
        launcher.send_signal(signal.SIGKILL)
    outcome = stop_while_running(farm, slow, kill_the_launcher)
    assert outcome.result == "failed" and slow.cancelled is None
    assert "the command session ended while it ran python3 (exited with code 137" in outcome.error, outcome.error
    assert "Last log lines: started" in outcome.error
    job, _ = see(farm, 3)
    assert session_of(job) == "2"


def test_tasks_that_opt_out_and_unconfined_nodes_run_a_sandbox_or_process_per_chunk(node):
    farm = node()
    outcome = farm.render(farm.job(1, ["sh", "-c", 'touch "$0/x"', "{output}"], persistent=False))
    assert outcome.result == "done" and outcome.outputs[0].parent.parent.parent.name == "leases"
    farm = node(unconfined=True)
    outcome = farm.render(farm.job(1, ["sh", "-c", 'touch "$0/x"', "{output}"]))
    assert outcome.result == "done" and outcome.outputs[0].parent.parent.parent.name == "leases"
    assert farm.pool.count() == 0


def test_the_launcher_refuses_to_run_unless_it_is_pid_1_of_its_sandbox(tmp_path, sandbox):
    # in a sandbox of its own (so that a launcher that did not refuse could only reach that sandbox), as pid 2
    run = command_session.run_command(["true"], str(tmp_path))
    argv = sandbox.wrap(["sh", "-c", '"$@"; echo "launcher exit $?"', "sh",
                         *command_session.session_argv(sandbox.python)], [], str(tmp_path))
    done = subprocess.run(argv, env={}, input=json.dumps(run) + "\n", capture_output=True, text=True, timeout=30)
    assert "not pid 1 of a sandbox; refusing to run" in done.stderr
    assert "launcher exit 1" in done.stdout and run["marker"] not in done.stdout
