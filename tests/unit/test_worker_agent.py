"""The render node against a tiny fake farm on loopback (tests/support/fake_farm.py)."""

import sys
import threading
from collections.abc import Callable

import pytest

import rayfarm
from rayfarm.worker import Agent, WorkerError
from rayfarm.worker.client import FarmClient
from tests.support.fake_farm import TOKEN, FakeServer
from tests.support.processes import alive, wait_for
from tests.support.renders import child_got_sigterm, long_run, read_pids

PY = sys.executable


def wait_until(check: Callable[[], object], timeout: float = 30.0, what: str = "condition") -> object:
    return wait_for(check, timeout, what, interval=0.02)


@pytest.fixture
def fake():
    server = FakeServer().start()
    yield server
    server.stop()


@pytest.fixture
def node(fake, tmp_path):
    agents = []

    # The commands of these tests use this venv's Python and the test's folder: unconfined (Blender stays
    # confined where bubblewrap works). Confinement itself: test_worker_confine.py, tests/security/test_confinement.py.
    def start(token: str = TOKEN, slots: int = 1, unconfined_commands: bool = True) -> Agent:
        client = FarmClient(fake.url, token, max_backoff=0.3)
        agent = Agent(fake.url, token, name="node-a", slots=slots, tags=("gpu-less", "test"),
                      work_dir=tmp_path / "work", lease_wait=0.3, client=client,
                      unconfined_commands=unconfined_commands)
        errors: list[BaseException] = []

        def run() -> None:
            try:
                agent.run()
            except BaseException as exc:  # noqa: BLE001 - handed to the test
                errors.append(exc)
        agent.thread = threading.Thread(target=run, daemon=True)
        agent.errors = errors
        agent.thread.start()
        agents.append(agent)
        return agent
    yield start
    for agent in agents:
        agent.stop()
        agent.thread.join(10)


def long_command(tmp_path, name="pids"):
    pids = tmp_path / name
    return pids, {"software": "command", "command": long_run(pids)}


def long_render(fake, node, tmp_path, lease_id: str, **lease):
    """A node rendering a LONG_RUN chunk of lease ``lease_id``: (the agent, the pids file, the render's pids)."""
    pids_file, render = long_command(tmp_path)
    fake.farm.add_lease(lease_id, render, **lease)
    agent = node()
    return agent, pids_file, read_pids(pids_file)


def test_register_lease_upload_complete(fake, node, tmp_path):
    farm = fake.farm
    scene = farm.add_scene("f1", b"scene-bytes")
    script = "import shutil, sys; shutil.copy(sys.argv[1], sys.argv[2]); print('frame', sys.argv[3])"
    farm.add_lease("L1", {"software": "command", "command": [PY, "-c", script, "{scene}", "{output}/out_{frame}.txt",
                                                             "{frame}"]}, start=1, end=3, scene=scene)
    agent = node()
    wait_until(lambda: farm.completes, what="complete")
    register = farm.registers[0]
    assert register["name"] == "node-a" and register["slots"] == 1 and register["tags"] == ["gpu-less", "test"]
    assert register["cores"] >= 1 and register["memory"] > 0 and register["gpu"] == ""
    assert register["software"]["command"] == "" and register["version"] == rayfarm.__version__
    done = farm.completes[0]
    assert done["leaseId"] == "L1" and done["result"] == "done" and done["error"] == ""
    assert done["workerId"] == 1 and done["session"] == "s1"
    assert done["outputs"] == ["out_1.txt", "out_2.txt", "out_3.txt"]
    assert farm.uploads["L1"] == {f"out_{f}.txt": b"scene-bytes" for f in (1, 2, 3)}
    assert done["executeSeconds"] > 0
    sent = [line for beat in farm.heartbeats for item in beat["running"] for line in item["log"]] + done["log"]
    assert sent == ["frame 1", "frame 2", "frame 3"]
    wait_until(lambda: not agent.jobs, what="slot freed")
    assert not (tmp_path / "work" / "leases" / "L1").exists()


def test_outputs_upload_while_the_slots_next_chunk_renders_and_before_the_result(fake, node):
    farm = fake.farm
    for number in (1, 2):
        farm.add_lease(f"O{number}", {"software": "command", "command": [PY, "-c", "open('out.txt', 'w').write('x')"]})
    farm.hold_outputs = 2  # an upload waits until the node leased the second chunk: it must not wait for a result
    node()
    wait_until(lambda: len(farm.completes) == 2, what="both results")
    events = farm.events
    for lease_id in ("O1", "O2"):  # a chunk's outputs are stored before its result is sent
        assert events.index(("upload", lease_id)) < events.index(("complete", lease_id)), events
    # the slot took its next chunk as the first one's render ended, before that one's upload and result
    assert events.index(("lease", "O2")) < events.index(("upload", "O1")) < events.index(("complete", "O1")), events
    assert farm.uploads["O1"] == farm.uploads["O2"] == {"out.txt": b"x"}


def test_heartbeat_stop_kills_the_process_group(fake, node, tmp_path):
    farm = fake.farm
    agent, pids_file, pids = long_render(fake, node, tmp_path, "L2")
    wait_until(lambda: any("L2" in ids for ids in farm.running_ids()), what="heartbeat with the lease")
    beat = next(b for b in farm.heartbeats if b["running"])
    assert {"cpu", "memUsed"} <= beat.keys() and 0 <= beat["running"][0]["progress"] <= 100
    farm.stop.add("L2")  # how soon it dies: bench/stops.py
    wait_until(lambda: not any(alive(pid) for pid in pids), what="process group killed")
    assert child_got_sigterm(pids_file)
    wait_until(lambda: not agent.jobs, what="slot freed")
    assert farm.completes == [] and "L2" not in farm.uploads


def test_local_timeout_reports_timeout(fake, node, tmp_path):
    farm = fake.farm
    _, _, pids = long_render(fake, node, tmp_path, "L3", job_stop_time=1)
    done = wait_until(lambda: farm.completes, what="complete")[0]
    assert done["result"] == "timeout" and "chunk time-out" in done["error"]
    wait_until(lambda: not any(alive(pid) for pid in pids), what="render processes gone")


def test_failed_render_reports_error(fake, node):
    farm = fake.farm
    farm.add_lease("L4", {"software": "command", "command": [PY, "-c", "print('oops'); raise SystemExit(2)"]})
    node()
    done = wait_until(lambda: farm.completes, what="complete")[0]
    assert done["result"] == "failed" and "exited with code 2" in done["error"] and "oops" in done["error"]


def test_conflict_reregisters_and_drops_running_chunks(fake, node, tmp_path):
    farm = fake.farm
    _, _, pids = long_render(fake, node, tmp_path, "L5")
    farm.conflicts = 1
    wait_until(lambda: len(farm.registers) == 2, what="second register")
    wait_until(lambda: not any(alive(pid) for pid in pids), what="render killed")
    farm.add_lease("L6", {"software": "command", "command": [PY, "-c", "open('x.txt', 'w')"]})
    done = wait_until(lambda: farm.completes, what="complete of the next lease")
    assert [c["leaseId"] for c in done] == ["L6"] and done[0]["session"] == "s2"


def test_rejected_upload_drops_the_result(fake, node):
    farm = fake.farm
    farm.reject.add("L7")  # the server answers the upload with accepted: false
    farm.add_lease("L7", {"software": "command", "command": [PY, "-c", "open('x.txt', 'w').write('x')"]})
    agent = node()
    wait_until(lambda: farm.refused, what="upload refused")
    wait_until(lambda: not agent.jobs, what="job finished")
    assert farm.refused == [("L7", "x.txt")]
    assert farm.completes == [] and "L7" in farm.valid  # never completed


def test_server_down_then_back_gets_the_result(fake, node, tmp_path):
    farm = fake.farm
    # the render waits for the test's go, writes its output, then notes that it is done
    go, rendered = tmp_path / "go", tmp_path / "rendered"
    script = ("import os, sys, time\nwhile not os.path.exists(sys.argv[1]): time.sleep(0.02)\n"
              "open('late.txt', 'w').write('x')\nopen(sys.argv[2], 'w').close()\n")
    farm.add_lease("L8", {"software": "command", "command": [PY, "-c", script, str(go), str(rendered)]})
    agent = node()
    wait_until(lambda: agent.jobs, what="lease taken")
    fake.stop()
    go.touch()  # the render finishes while the server is away
    wait_until(lambda: "L8" in agent.jobs and agent.jobs["L8"].rendered.is_set(), what="the node to see it end")
    assert rendered.exists() and farm.completes == []  # the result is held, its complete retried
    fake.start()
    done = wait_until(lambda: farm.completes, what="complete after the server is back")[0]
    assert done["result"] == "done" and farm.uploads["L8"] == {"late.txt": b"x"}


def test_stop_kills_running_renders_and_returns(fake, node, tmp_path):
    farm = fake.farm
    agent, _, pids = long_render(fake, node, tmp_path, "L9")
    agent.stop()  # how soon it returns: bench/stops.py
    agent.thread.join(60)
    assert not agent.thread.is_alive()
    wait_until(lambda: not any(alive(pid) for pid in pids), what="render processes gone")
    assert farm.completes == [] and agent.errors == []


def test_bad_token_is_fatal(fake, node):
    agent = node(token="wrong")
    agent.thread.join(60)
    assert not agent.thread.is_alive()
    assert isinstance(agent.errors[0], WorkerError) and "401" in str(agent.errors[0])


def test_run_worker_stops_on_sigterm(fake, tmp_path):
    import os
    import signal
    import subprocess

    farm = fake.farm
    pids_file, render = long_command(tmp_path)
    farm.add_lease("L10", render)
    code = ("import logging, sys; logging.basicConfig(level='INFO'); from rayfarm.worker import run_worker; "
            "run_worker(sys.argv[1], sys.argv[2], name='sig-node', work_dir=sys.argv[3], unconfined_commands=True)")
    proc = subprocess.Popen([PY, "-c", code, fake.url, TOKEN, str(tmp_path / "work")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        pids = read_pids(pids_file)
        os.kill(proc.pid, signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, output
    assert "received SIGTERM" in output
    wait_until(lambda: not any(alive(pid) for pid in pids), what="render processes gone")
    assert farm.completes == []


@pytest.mark.skipif(__import__("shutil").which("blender") is None, reason="blender is not installed")
def test_blender_chunk_end_to_end(fake, node, tmp_path):
    from tests.support.blender import make_scene

    farm = fake.farm
    scene = farm.add_scene("fb", make_scene(tmp_path / "cube.blend", frames=4).read_bytes())
    render = {"software": "blender", "scene": "/D/proj/cube.blend", "scene_root": "/D/proj", "camera": "Camera",
              "width": 64, "height": 36, "format": "PNG", "command": None, "cg_version": "3.4"}
    farm.add_lease("LB", render, start=3, end=4, scene=scene)
    farm.add_lease("LB2", render, start=1, end=1, scene=scene)
    node()
    wait_until(lambda: len(farm.completes) == 2, timeout=120, what="blender completes")
    # by lease: the first chunk's uploads overlap the second chunk's render, so either result may come first
    done, second = (next(c for c in farm.completes if c["leaseId"] == lease) for lease in ("LB", "LB2"))
    assert done["result"] == "done", done["error"]
    assert done["outputs"] == ["cube_0003.png", "cube_0004.png"]
    assert second["result"] == "done" and second["outputs"] == ["cube_0001.png"], second["error"]
    assert all(data.startswith(b"\x89PNG") for data in farm.uploads["LB"].values())
    assert farm.registers[0]["software"]["blender"].startswith("3.")

    def sent(lease_id: str) -> list[str]:
        beats = [line for beat in farm.heartbeats for item in beat["running"] if item["leaseId"] == lease_id
                 for line in item["log"]]
        return beats + next(c["log"] for c in farm.completes if c["leaseId"] == lease_id)
    assert any(line.startswith("Saved: ") and "cube_0003.png" in line for line in sent("LB"))
    # the second chunk rendered in the session the first one started (the scene loaded once), with its own lines
    assert any(line.startswith("[rayfarm worker: rendered in Blender session 1") for line in sent("LB2"))
    assert not any("cube_0003.png" in line for line in sent("LB2"))
    assert not any("Read blend" in line for line in sent("LB2"))


def test_a_node_without_bubblewrap_does_not_offer_commands_and_refuses_them(fake, node, monkeypatch, caplog):
    from rayfarm.worker import confine

    caplog.set_level("INFO")
    monkeypatch.setattr(confine, "PROGRAM", "no-such-bwrap-here")
    farm = fake.farm
    farm.add_lease("LC", {"software": "command", "command": ["true"]})  # as if the server sent one all the same
    node(unconfined_commands=False)
    done = wait_until(lambda: farm.completes, what="complete")[0]
    assert "command" not in farm.registers[0]["software"]
    assert done["result"] == "failed" and "does not run command tasks" in done["error"], done["error"]
    assert "no-such-bwrap-here is not installed" in caplog.text
    assert "does not offer command tasks" in caplog.text


def test_unconfined_commands_are_offered_with_a_warning(fake, node, monkeypatch, caplog):
    from rayfarm.worker import confine

    caplog.set_level("INFO")
    monkeypatch.setattr(confine, "PROGRAM", "no-such-bwrap-here")
    node(unconfined_commands=True)
    register = wait_until(lambda: fake.farm.registers, what="register")[0]
    assert register["software"]["command"] == ""
    assert "--unconfined-commands: command tasks run unconfined" in caplog.text
