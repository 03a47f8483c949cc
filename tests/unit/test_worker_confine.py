"""Confined render jobs (worker/confine.py): the bubblewrap command line, the probe, and real confined runs."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest

from rayfarm.worker.client import FarmClient
from rayfarm.worker.confine import ENV, ConfinementError, Policy, Sandbox, probe
from rayfarm.worker.job import Job
from rayfarm.worker.scenes import SceneCache


def bubblewrap(tmp_path_factory) -> Sandbox | None:
    try:
        return probe(tmp_path_factory.mktemp("probe"))
    except ConfinementError:
        return None


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> Sandbox:
    found = bubblewrap(tmp_path_factory)
    if found is None:
        pytest.skip("bubblewrap does not work on this machine")
    return found


@pytest.fixture
def scenes(tmp_path):
    client = FarmClient("http://farm.invalid", "t")  # never called: the scenes are on this machine
    yield SceneCache(tmp_path / "work" / "cache", client)
    client.close()


def confined_job(tmp_path, scenes, sandbox, command, scene=None, lease_id="lease-1", scene_name=None):
    render = {"software": "command", "command": command, **({"scene": scene_name} if scene_name else {})}
    lease = {"leaseId": lease_id, "start": 1, "end": 1, "step": 1, "jobStopTime": 0, "render": render,
             "scene": scene or {}}
    return Job(lease, tmp_path / "work", scenes, Policy(sandbox))


def pairs(argv: list[str], option: str) -> list[tuple[str, str]]:
    return [(argv[i + 1], argv[i + 2]) for i, arg in enumerate(argv) if arg == option]


# ---- the command line ---------------------------------------------------------------------------------


def test_argv_confines_the_job_to_its_inputs_and_output():
    argv = Sandbox("/usr/bin/bwrap").wrap(["blender", "-b", "/n/cache/ab/shot.blend"], ["/n/cache/ab/shot.blend"],
                                          "/n/leases/L1/out")
    assert argv[0] == "/usr/bin/bwrap"
    end = argv.index("--")
    options, command = argv[:end], argv[end + 1:]
    assert command == ["blender", "-b", "/n/cache/ab/shot.blend"]
    for flag in ("--unshare-all", "--as-pid-1", "--die-with-parent", "--new-session", "--clearenv"):
        assert flag in options
    assert "--share-net" not in options  # no network
    assert options[options.index("--cap-drop") + 1] == "ALL"
    assert dict(pairs(options, "--setenv")) == ENV
    # read-only: the system and the scene; writable: only the output folder (also the working folder)
    writable = pairs(options, "--bind")
    assert writable == [("/n/leases/L1/out", "/n/leases/L1/out")]
    readonly = [source for source, _ in pairs(options, "--ro-bind")]
    assert "/n/cache/ab/shot.blend" in readonly
    assert all(path.startswith(("/usr", "/etc/", "/lib", "/bin", "/sbin", "/n/cache/ab/shot.blend")) for path in readonly)
    assert "/etc" not in readonly and "/" not in readonly and not any(p.startswith(("/home", "/root")) for p in readonly)
    assert options[options.index("--chdir") + 1] == "/n/leases/L1/out"
    # a fresh /proc, a minimal /dev, a private /tmp mounted before the job's folders (a node may work under /tmp)
    assert pairs(options, "--proc") and pairs(options, "--dev")
    tmp = options.index("--tmpfs")
    assert options[tmp + 1] == "/tmp"
    assert tmp < options.index("/n/cache/ab/shot.blend") and tmp < options.index("/n/leases/L1/out")


def test_probe_says_when_bubblewrap_is_missing(tmp_path):
    with pytest.raises(ConfinementError, match="no-such-bwrap-here is not installed"):
        probe(tmp_path, "no-such-bwrap-here")


def test_probe_says_when_bubblewrap_does_not_work(tmp_path):
    broken = tmp_path / "bwrap"
    broken.write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    broken.chmod(0o755)
    with pytest.raises(ConfinementError, match="does not work here .*No permissions to create new namespace"):
        probe(tmp_path / "work", str(broken))


def test_policy_offers_commands_only_confined_or_when_the_operator_says_so():
    sandbox = Sandbox("/usr/bin/bwrap")
    assert Policy(sandbox).offers("command") and Policy(sandbox).sandbox_for("command") is sandbox
    assert Policy(sandbox).sandbox_for("blender") is sandbox
    assert not Policy(None).offers("command") and Policy(None).offers("blender")
    assert Policy(None).sandbox_for("blender") is None
    unconfined = Policy(sandbox, unconfined_commands=True)
    assert unconfined.offers("command") and unconfined.sandbox_for("command") is None
    assert unconfined.sandbox_for("blender") is sandbox
    assert Policy(None, unconfined_commands=True).offers("command")


# ---- real confined runs --------------------------------------------------------------------------------

READER = """
import json, os, sys
found = {}
for path in sys.argv[2:]:
    try:
        with open(path) as handle:
            found[path] = handle.read()
    except OSError as exc:
        found[path] = type(exc).__name__
found["token"] = os.environ.get("RAYFARM_WORKER_TOKEN", "absent")
with open(os.path.join(sys.argv[1], "found.txt"), "w") as handle:
    json.dump(found, handle)
"""


def found_by(job: Job) -> dict:
    return json.loads((job.output_dir / "found.txt").read_text())


def test_a_confined_command_reads_its_scene_writes_its_output_and_nothing_else(tmp_path, scenes, sandbox,
                                                                                 monkeypatch):
    monkeypatch.setenv("RAYFARM_WORKER_TOKEN", "wt_secret")
    canary = tmp_path / "canary.txt"
    canary.write_text("private")
    cached = tmp_path / "work" / "cache" / "ab12" / "scene.txt"  # a scene the node downloaded before (its cache)
    cached.parent.mkdir(parents=True)
    cached.write_text("scene data")
    other = tmp_path / "work" / "cache" / "cd34" / "other.txt"  # another task's scene in the same cache
    other.parent.mkdir(parents=True)
    other.write_text("other task")
    command = ["python3", "-c", READER, "{output}", "{scene}", str(canary), str(other)]
    job = confined_job(tmp_path, scenes, sandbox, command, scene={"url": "/never", "sha256": "ab12"},
                       scene_name="/D/p/scene.txt")
    outcome = job.render()
    assert outcome.result == "done", outcome.error
    assert found_by(job) == {str(cached): "scene data", str(canary): "FileNotFoundError",
                             str(other): "FileNotFoundError", "token": "absent"}


def test_a_confined_run_reports_its_cpu_and_memory(tmp_path, scenes, sandbox):
    script = "import time\nx = bytearray(30_000_000)\nend = time.time() + 0.3\nwhile time.time() < end: pass\n"
    outcome = confined_job(tmp_path, scenes, sandbox, ["python3", "-c", script]).render()
    assert outcome.result == "done", outcome.error
    # the kernel's accounting of the run reaches the node through bubblewrap (no sample was taken here)
    assert outcome.avg_cpu > 10 / os.cpu_count()
    assert outcome.avg_memory > 30_000_000


def test_a_shared_scene_sees_its_shared_root_but_not_the_node(tmp_path, scenes, sandbox):
    root = tmp_path / "studio"
    scene = root / "shots" / "s010" / "shot.txt"
    texture = root / "assets" / "wood.txt"
    for path, text in ((scene, "shot"), (texture, "wood")):
        path.parent.mkdir(parents=True)
        path.write_text(text)
    outside = tmp_path / "elsewhere.txt"
    outside.write_text("outside")
    command = ["python3", "-c", READER, "{output}", "{scene}", str(texture), str(outside)]
    job = confined_job(tmp_path, scenes, sandbox, command, scene={"path": str(scene), "root": str(root)})
    assert job.render().result == "done"
    found = found_by(job)
    assert found[str(scene)] == "shot" and found[str(texture)] == "wood" and found[str(outside)] == "FileNotFoundError"

    # a "root" that holds the node's own folders is not given whole: the scene's folder only
    job = confined_job(tmp_path, scenes, sandbox, command, scene={"path": str(scene), "root": str(tmp_path)},
                       lease_id="lease-2")
    assert job.render().result == "done"
    found = found_by(job)
    assert found[str(scene)] == "shot" and found[str(texture)] == "FileNotFoundError"


def test_a_missing_program_fails_readably_when_confined(tmp_path, scenes, sandbox):
    outcome = confined_job(tmp_path, scenes, sandbox, ["no-such-renderer-xyz", "{frame}"]).render()
    assert outcome.result == "failed"
    assert "'no-such-renderer-xyz' could not be started on this node: No such file or directory" in outcome.error


def test_a_link_in_the_output_folder_is_not_an_output(tmp_path, scenes, sandbox):
    canary = tmp_path / "canary.txt"
    canary.write_text("private")
    script = "import os, sys; os.symlink(sys.argv[2], 'leak.txt'); open('frame.txt', 'w').write('x')"
    outcome = confined_job(tmp_path, scenes, sandbox, ["python3", "-c", script, "{output}", str(canary)]).render()
    assert outcome.result == "done", outcome.error
    assert [path.name for path in outcome.outputs] == ["frame.txt"]


# The render starts a child in a new session that ignores SIGTERM, then both sleep: only the namespace's end
# reaches the child (it left the render's process group).
LINGER = ("import subprocess, sys, time\n"
          "code = 'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)'\n"
          "subprocess.Popen([sys.executable, '-c', code, sys.argv[1]], start_new_session=True)\n"
          "print('started', flush=True)\n"
          "time.sleep(120)\n")


def render_processes(marker: str) -> list[psutil.Process]:
    return [proc for proc in psutil.process_iter(["cmdline", "name", "status"])
            if marker in " ".join(proc.info["cmdline"] or []) and proc.info["name"] != "bwrap"
            and proc.info["status"] != psutil.STATUS_ZOMBIE]


def test_cancel_kills_every_process_of_a_confined_job(tmp_path, scenes, sandbox):
    job = confined_job(tmp_path, scenes, sandbox, ["python3", "-c", LINGER, "{output}"])
    thread = threading.Thread(target=job.render)
    thread.start()
    marker = str(job.output_dir)
    deadline = time.monotonic() + 20
    while len(render_processes(marker)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    procs = render_processes(marker)
    try:
        assert len(procs) == 2, [p.info["cmdline"] for p in procs]
        job.cancel("stop")
        thread.join(10)
        assert not thread.is_alive()
        gone, alive = psutil.wait_procs(procs, timeout=5)
        assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]
    finally:
        for proc in render_processes(marker):
            proc.kill()


NODE = """
import sys, threading, time
from pathlib import Path
from rayfarm.worker import process
from rayfarm.worker.confine import Sandbox

def lease():
    out = Path(sys.argv[1])
    argv = Sandbox(sys.argv[2]).wrap(["python3", "-c", sys.argv[3], str(out)], [], str(out))
    proc = process.start(argv, out, confined=True)
    print(proc.pid, flush=True)
    proc.wait()

threading.Thread(target=lease, daemon=True).start()
time.sleep(60)
"""


def test_a_confined_job_dies_with_its_node(tmp_path, sandbox):
    out = tmp_path / "leases" / "L" / "out"
    out.mkdir(parents=True)
    node = subprocess.Popen([sys.executable, "-c", NODE, str(out), sandbox.program, LINGER],
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    marker = str(out)
    try:
        bwrap = int(node.stdout.readline())
        assert os.getpgid(bwrap) == bwrap  # its own group: a stop signals the whole group
        def renders() -> list[psutil.Process]:
            return [proc for proc in render_processes(marker) if proc.pid != node.pid]

        deadline = time.monotonic() + 20
        while len(renders()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        procs = renders()
        assert len(procs) == 2
        node.send_signal(signal.SIGKILL)
        node.wait(5)
        gone, alive = psutil.wait_procs(procs, timeout=5)
        assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE], "the job outlived its node"
    finally:
        node.kill()
        node.wait()
        for proc in render_processes(marker):
            if proc.pid != node.pid:
                proc.kill()
