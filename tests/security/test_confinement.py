"""Render jobs run confined (bubblewrap): a command task reaches its own inputs and output folder, nothing else.

A real `rayfarm server` and a real `rayfarm worker` on 127.0.0.1 (the node shares the machine with the
server, as every `rayfarm up` node does). The user is allowed to run commands. Their task's "scene" is
PROBE, a Python script that tries to read the farm's secret key and database, the worker token (its
environment, the node's /proc entries and files), another task's folder and cached scene on the node, and
the node user's home; it also tries to connect to the server and lists every file it can see. It writes
what it found into its output folder, and the test reads that report from the farm like any user would.

Each test runs both ways a node runs command chunks: in the task's command session (one sandbox per task and
slot, the default: the job's folder is `sessions/<n>/`, each chunk's output folder `sessions/<n>/out/<lease>/`)
and one-shot (`persistent_session: "0"`: a sandbox per run, the job's folder `leases/<lease>/`). SEE checks what
a session's chunks share: nothing a chunk leaves (processes, files in /tmp) reaches the next, and no chunk of
another task runs in the sandbox.
"""

import json
import os
import signal
from pathlib import Path
from urllib.parse import urlparse

import psutil
import pytest

from rayfarm.sdk import RayfarmAPI
from tests.support.farms import farm_at
from tests.support.processes import FarmServer, free_port, wait_for

FINISHED = {23, 25, 30, 35, 45}
INPUT_TEXT = "the probe's own input asset\n"
OTHER_TEXT = "another task's scene: never readable by the probe\n"
HOME_TEXT = "a file in the node user's home\n"

PROBE = r'''
import json, os, socket, sys
output, plan = sys.argv[1], json.loads(sys.argv[2])

def attempt(path):
    try:
        if os.path.isdir(path):
            return {"ok": True, "data": sorted(os.listdir(path))}
        with open(path, "rb") as handle:
            return {"ok": True, "data": handle.read(4096).decode("latin-1")}
    except OSError as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}

report = {"job": os.path.dirname(output), "environ": dict(os.environ), "reads": {}, "processes": {},
          "connects": {}, "visible": []}
with open(os.path.join(os.path.dirname(os.path.abspath(sys.argv[0])), "data", "input.txt")) as handle:
    report["input"] = handle.read()
for path in plan["read"]:
    report["reads"][path] = attempt(path)
for pid in (name for name in os.listdir("/proc") if name.isdigit()):
    for part in ("cmdline", "environ"):
        found = attempt(f"/proc/{pid}/{part}")
        if found["ok"]:
            report["processes"][f"{pid}/{part}"] = found["data"]
for host, port in plan["connect"]:
    try:
        socket.create_connection((host, port), timeout=3).close()
        report["connects"][f"{host}:{port}"] = "connected"
    except OSError as exc:
        report["connects"][f"{host}:{port}"] = f"{type(exc).__name__}: {exc}"
for folder, dirs, files in os.walk("/"):
    if folder == "/":
        dirs[:] = [d for d in dirs if d not in ("usr", "proc", "sys", "dev")]
    report["visible"] += [os.path.join(folder, name) for name in files]
    if len(report["visible"]) > 3000:
        break
with open(os.path.join(output, "report.txt"), "w") as handle:
    json.dump(report, handle)
print("probe done", flush=True)
'''

# Command tasks of their own: one keeps running with a file in its folder; one leaves its processes behind.
HOLD = ["sh", "-c", 'cat "$0" > "$1/copy.txt"; echo holding; exec sleep 300', "{scene}", "{output}"]
# The render starts a child in a new session that ignores SIGTERM (it leaves the render's process group),
# and both sleep; each names its output folder in its command line, so the test can find them.
LINGER = ["python3", "-c", (
    "import subprocess, sys, time\n"
    "code = 'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)'\n"
    "subprocess.Popen([sys.executable, '-c', code, sys.argv[1]], start_new_session=True)\n"
    "print('lingering', flush=True)\n"
    "time.sleep(300)\n"), "{output}"]


# A chunk writes what it sees of its sandbox to {output}/seen_<frame>.json: its PID namespace, the other processes
# there, /tmp, its output folder; with "leave" it then leaves a process (in a session of its own, ignoring SIGTERM)
# and files in /tmp and its HOME behind.
SEE = ["python3", "-c", r"""
import json, os, subprocess, sys
frame, output, leave = sys.argv[1], sys.argv[2], sys.argv[3:] == ["leave"]
others = []
for pid in (name for name in os.listdir("/proc") if name.isdigit() and int(name) not in (1, os.getpid())):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            others.append(handle.read().replace(b"\0", b" ").decode())
    except OSError:
        pass
seen = {"ns": os.readlink("/proc/self/ns/pid"), "others": others, "tmp": sorted(os.listdir("/tmp")),
        "home": sorted(os.listdir(os.environ["HOME"])), "output": output}
with open(os.path.join(output, f"seen_{frame}.json"), "w") as handle:
    json.dump(seen, handle)
if leave:
    for path in ("/tmp/left-behind.txt", os.path.expanduser("~/.left-behind-rc")):
        with open(path, "w") as handle:
            handle.write("left behind")
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)"
    subprocess.Popen([sys.executable, "-c", code, "left-behind"], start_new_session=True)
"""]
WAYS = pytest.mark.parametrize("persistent", ["1", "0"], ids=["session", "one-shot"])


def task_json(command: list[str], scene: str = "", persistent: str = "1", frames: str = "1") -> dict:
    return {"software_config": {"cg_name": "command", "cg_version": "", "plugins": {}},
            "task_info": {"input_cg_file": scene, "frames_per_task": "1", "pre_frames": "000",
                          "stop_after_test": "2", "job_stop_time": "600", "persistent_session": persistent},
            "scene_info": {"common": {"frames": frames}},
            "additional_info": {"command": command}}


def submit(api: RayfarmAPI, content: dict, upload_json: dict | None = None) -> int:
    task_id = api.task.create_task()["taskIdList"][0]
    api.task.upload_task_json(task_id, content)
    if upload_json:
        api.task.upload_task_json(task_id, upload_json, file_name="upload.json")
    api.task.submit_task(task_id)
    return task_id


def status(api: RayfarmAPI, task_id: int) -> int:
    return api.query.task_info([task_id])["items"][0]["taskStatus"]


def details(farm, api: RayfarmAPI, task_id: int):
    def show() -> str:
        frames = api.query.task_frames(task_id)["items"]
        logs = "\n".join(f"worker {w.name} log:\n{w.log()[-3000:]}" for w in farm.workers)
        return f"frames: {json.dumps(frames)}\nserver log:\n{farm.log()[-2000:]}\n{logs}"
    return show


def job_folders(node) -> tuple[Path, Path]:
    """Where a node's jobs live: one-shot runs under leases/, sessions (and their chunks) under sessions/."""
    return node.work_dir / "leases", node.work_dir / "sessions"


def job_folder(node, path: Path) -> Path:
    """The job's own folder that holds ``path``: leases/<lease>, or sessions/<n> (its scene tree and out/)."""
    return next(folder for folder in (path, *path.parents) if folder.parent in job_folders(node))


def render_processes(node) -> list[psutil.Process]:
    """Live processes (not bubblewrap itself) whose command line names a folder under the node's job folders."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status", "name"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if any(str(folder) in cmdline for folder in job_folders(node)) and \
                proc.info["status"] != psutil.STATUS_ZOMBIE and proc.info["name"] != "bwrap":
            found.append(proc)
    return found


def reached_into(path: Path, found: dict, job: Path) -> bool:
    """Whether a read showed something: a file's bytes, or a folder listing more than the way to the job's own
    folder (the job sees its folders at their real paths, so their parents exist for it, holding nothing else)."""
    if not found["ok"]:
        return False
    if isinstance(found["data"], list) and path in job.parents:
        return found["data"] != [job.relative_to(path).parts[0]]
    return True


def gone(procs: list[psutil.Process]) -> bool:
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            continue
    return True


@pytest.fixture
def farm(tmp_path):
    """A farm of each test's own (not the security package's shared one): the tests set its nodes' environment."""
    yield from farm_at(tmp_path / "farm")


@pytest.fixture
def jailed(farm, tmp_path):
    """A user allowed to run commands, their SDK client, and the node user's home (with a file in it)."""
    home = tmp_path / "node-home"
    home.mkdir()
    (home / "notes.txt").write_text(HOME_TEXT)
    # the node's own environment carries the worker token and its home, as an operator's shell may
    farm.env.update(HOME=str(home), RAYFARM_WORKER_TOKEN=farm.worker_token())
    user = farm.create_user("jailed", "--allow-commands")
    api = RayfarmAPI(user.access_id, user.access_key, domain=farm.domain)
    yield api, home
    api.close()


@WAYS
def test_a_command_reads_only_its_inputs_and_writes_only_its_output(farm, jailed, tmp_path, persistent):
    api, home = jailed
    files = tmp_path / "files"
    files.mkdir()
    (files / "probe.py").write_text(PROBE)
    (files / "input.txt").write_text(INPUT_TEXT)
    (files / "other.txt").write_text(OTHER_TEXT)
    api.files.upload(files / "probe.py", "D:/probe/probe.py")
    api.files.upload(files / "input.txt", "D:/probe/data/input.txt")
    api.files.upload(files / "other.txt", "D:/other/other.txt")
    node = farm.start_worker("jail", "--slots", "2")

    # another task runs on the node meanwhile: its folder holds a copy of its scene (read from the node's cache)
    other = submit(api, task_json(HOLD, "D:/other/other.txt", persistent))
    leases, sessions = job_folders(node)
    copy = wait_for(lambda: next(iter([*leases.glob("*/out/copy.txt"), *sessions.glob("*/out/*/copy.txt")]), None),
                    30, "the other task to be running", details=details(farm, api, other))
    wait_for(lambda: copy.read_text() == OTHER_TEXT, 10, "the other task to copy its scene")
    cached = next((node.work_dir / "cache").glob("*/other.txt"))
    others = job_folder(node, copy)
    assert others.parent == (sessions if persistent == "1" else leases)

    data = farm.data_dir
    reads = [data / "secret.key", data, node.work_dir, node.work_dir / "cache", cached, leases, sessions, others,
             copy.parent.parent, copy, home, home / "notes.txt", Path(f"/proc/{node.pid}/cmdline"),
             Path(f"/proc/{node.pid}/environ"), farm.log_path, node.log_path]
    connects = [["127.0.0.1", farm.port]]
    db_url = farm.database_url
    if db_url.startswith("sqlite"):
        reads.append(data / "rayfarm.db")
    else:
        parsed = urlparse(db_url)
        connects.append([parsed.hostname or "127.0.0.1", parsed.port or 5432])
    plan = {"read": [str(path) for path in reads], "connect": connects}
    upload = {"asset": [{"local": "D:/probe/probe.py", "server": "/D/probe/probe.py"},
                        {"local": "D:/probe/data/input.txt", "server": "/D/probe/data/input.txt"}]}
    probe = submit(api, task_json(["python3", "{scene}", "{output}", json.dumps(plan)], "D:/probe/probe.py",
                                  persistent), upload)
    wait_for(lambda: status(api, probe) in FINISHED, 60, "the probe task to finish", interval=0.2,
             details=details(farm, api, probe))
    assert status(api, probe) == 25, details(farm, api, probe)()
    [path] = api.files.download_task(probe, tmp_path / "report")
    report = json.loads(path.read_text())
    api.task.stop_task([other])

    # its own input was readable, its output arrived on the server
    assert report["input"] == INPUT_TEXT
    job = job_folder(node, Path(report["job"]))
    assert job.parent == others.parent and job != others
    if persistent == "1":
        assert "starting command session" in node.log()
    # every attempt outside failed
    reached = sorted(path for path, found in report["reads"].items() if reached_into(Path(path), found, job))
    assert not reached, f"the confined command could read {reached}"
    assert all(answer != "connected" for answer in report["connects"].values()), report["connects"]
    # no farm secret anywhere in what it saw: environment, processes, files
    text = json.dumps(report)
    secrets = {"worker token": farm.worker_token(), "farm secret": (data / "secret.key").read_text().strip(),
               "other task's scene": OTHER_TEXT.strip(), "home file": HOME_TEXT.strip()}
    leaked = [name for name, secret in secrets.items() if secret in text]
    assert not leaked, f"the confined command saw: {leaked}"
    assert not [key for key in report["environ"] if key.startswith("RAYFARM")], sorted(report["environ"])
    assert report["environ"]["HOME"] != str(home)
    # the only files it can see are its own job's, its private /tmp and the system's /etc
    outside = [p for p in report["visible"] if not p.startswith((f"{job}/", "/tmp/", "/etc/"))]
    assert not outside, f"the confined command could see {len(outside)} other files, e.g. {outside[:5]}"


def lingering(farm, api: RayfarmAPI, node, persistent: bool) -> tuple[int, list[psutil.Process]]:
    """A LINGER task submitted, once its command and the child it started run on ``node``: (task id, processes)."""
    task_id = submit(api, task_json(LINGER, persistent=persistent))
    procs = wait_for(lambda: (lambda found: found if len(found) >= 2 else None)(render_processes(node)), 30,
                     "the command and its child to run", details=details(farm, api, task_id))
    return task_id, procs


@WAYS
def test_stop_kills_a_confined_command_and_everything_it_started(farm, jailed, persistent):
    api, _ = jailed
    node = farm.start_worker("stopper")
    task_id, procs = lingering(farm, api, node, persistent)
    api.task.stop_task([task_id])
    try:
        wait_for(lambda: gone(procs), 10, "every process of the stopped command to be gone",
                 details=details(farm, api, task_id))
    finally:
        for proc in render_processes(node):  # never leave them running when the test fails
            proc.kill()
    assert node.alive()


@WAYS
def test_a_killed_node_leaves_no_confined_process_behind(farm, jailed, persistent):
    api, _ = jailed
    node = farm.start_worker("doomed")
    task_id, procs = lingering(farm, api, node, persistent)
    os.kill(node.pid, signal.SIGKILL)
    node.process.wait(10)
    try:
        wait_for(lambda: gone(procs), 10, "every process of the dead node's command to be gone")
    finally:
        for proc in render_processes(node):  # never leave them running when the test fails
            proc.kill()


def test_a_scene_on_a_shared_root_is_read_in_place_with_the_rest_of_its_root(tmp_path):
    root = tmp_path / "studio"
    scene, texture = root / "shots" / "s010" / "shot.txt", root / "assets" / "wood.txt"
    for path, text in ((scene, "shot\n"), (texture, "wood\n")):
        path.parent.mkdir(parents=True)
        path.write_text(text)
    farm = FarmServer(tmp_path / "farm", free_port(), extra_args=["--shared-root", str(root)])
    farm.data_dir.mkdir()
    farm.start()
    try:
        user = farm.create_user("studio", "--allow-commands")
        with RayfarmAPI(user.access_id, user.access_key, domain=farm.domain) as api:
            farm.start_worker("shared")
            # the scene's reference goes up and across its root, as studio projects do (//../../assets/...)
            command = ["sh", "-c", 'cat "$0" "$(dirname "$0")/../../assets/wood.txt" > "$1/seen.txt"', "{scene}",
                       "{output}"]
            task_id = submit(api, task_json(command, str(scene)))
            wait_for(lambda: status(api, task_id) in FINISHED, 60, "the task to finish", interval=0.2,
                     details=details(farm, api, task_id))
            assert status(api, task_id) == 25, details(farm, api, task_id)()
            [path] = api.files.download_task(task_id, tmp_path / "out")
            assert path.read_text() == "shot\nwood\n"
        assert "starting command session 1 (confined)" in farm.workers[0].log()
    finally:
        farm.stop()


def seen_by_chunks(api: RayfarmAPI, task_id: int, folder: Path) -> dict[str, dict]:
    """What each chunk of a SEE task saw, by frame."""
    return {path.stem.removeprefix("seen_"): json.loads(path.read_text())
            for path in api.files.download_task(task_id, folder)}


def session_number(node, seen: dict) -> str:
    """The command session a chunk ran in (its output folder is sessions/<n>/out/<lease>)."""
    return job_folder(node, Path(seen["output"])).relative_to(node.work_dir / "sessions").parts[0]


def test_a_chunk_leaves_nothing_for_the_next_chunk_in_its_session(farm, jailed, tmp_path):
    api, _ = jailed
    node = farm.start_worker("keeper")  # one slot: the task's chunks run one after the other, in one session
    task_id = submit(api, task_json([*SEE, "{frame}", "{output}", "leave"], frames="1-3"))
    wait_for(lambda: status(api, task_id) in FINISHED, 60, "the task to finish", interval=0.2,
             details=details(farm, api, task_id))
    assert status(api, task_id) == 25, details(farm, api, task_id)()
    seen = seen_by_chunks(api, task_id, tmp_path / "seen")
    assert sorted(seen) == ["1", "2", "3"]
    # one sandbox for the three chunks...
    assert len({session_number(node, each) for each in seen.values()}) == 1
    assert len({each["ns"] for each in seen.values()}) == 1
    # ...and each left a process and files behind, which the next one did not see
    for frame in ("2", "3"):
        assert seen[frame]["others"] == [], seen[frame]["others"]
        assert seen[frame]["tmp"] == seen["1"]["tmp"] and "left-behind.txt" not in seen[frame]["tmp"]
        assert seen[frame]["home"] == seen["1"]["home"] and ".left-behind-rc" not in seen[frame]["home"]
    assert not [p for p in psutil.process_iter(["cmdline"]) if "left-behind" in (p.info["cmdline"] or [])]


def test_a_chunk_of_another_task_never_runs_in_a_tasks_sandbox(farm, jailed, tmp_path):
    api, _ = jailed
    node = farm.start_worker("mover")  # one slot, for the first task's two chunks, then for the other task
    first = submit(api, task_json([*SEE, "{frame}", "{output}"], frames="1-2"))
    second = submit(api, task_json([*SEE, "{frame}", "{output}"], frames="1"))  # the same command, another task
    for task_id in (first, second):
        wait_for(lambda task_id=task_id: status(api, task_id) in FINISHED, 60, "the tasks to finish", interval=0.2,
                 details=details(farm, api, task_id))
        assert status(api, task_id) == 25, details(farm, api, task_id)()
    mine = seen_by_chunks(api, first, tmp_path / "first")
    theirs = seen_by_chunks(api, second, tmp_path / "second")["1"]
    assert session_number(node, mine["1"]) == session_number(node, mine["2"]) != session_number(node, theirs)
    assert mine["1"]["ns"] == mine["2"]["ns"] != theirs["ns"]
    assert theirs["others"] == []
