"""Render nodes SIGKILLed mid-chunk, again and again, on one running task: nothing lost, nothing counted twice.

Three nodes render a command task whose chunks append "start"/"done" lines to a record file (the nodes'
own account, independent of the server). Each round kills a node half-way through a chunk, checks that
its render dies and the chunk goes back to the queue, and brings the node back: every other round at once
(re-registering releases the dead session's chunks), otherwise only after the server noticed the silence
itself (lease expiry). CI: 3 kills on a 5 s lease; `RAYFARM_FULL=1`: 10 kills on the default 10 s lease.
How soon a killed node's render dies and its chunk is requeued is measured by bench/stops.py.
"""

import os
import signal
import time

from rayfarm.sdk import RayfarmAPI
from tests.support import FULL, taskjson
from tests.support.farms import make_users
from tests.support.node_logs import accepted_per_chunk, wait_reported
from tests.support.processes import UNCONFINED_COMMANDS, gone, wait_for
from tests.support.renders import Chunks
from tests.support.tasks import frames_of, report, status, submit, wait_task

KILLS = 10 if FULL else 3
NODES = 3
CHUNK_SECONDS = 2.0
FRAMES = 220 if FULL else 40
# CI: a 5 s lease makes the left-dead rounds quicker; the full run uses the default 10 s lease
ENV = {} if FULL else {"RAYFARM_LEASE_SECONDS": "5"}


def test_sigkilled_nodes_lose_no_chunk_and_count_none_twice(start_farm, tmp_path):
    farm = start_farm(**ENV)
    [user] = make_users(farm, "kills", commands=("kills",))
    began = {f"node{n}": time.time() for n in range(NODES)}  # when each node's current process started
    nodes = [farm.start_worker(f"node{n}", UNCONFINED_COMMANDS, wait=False) for n in range(NODES)]
    api = RayfarmAPI(user.access_id, user.access_key, domain=farm.domain)
    chunks = Chunks(tmp_path / "chunks", seconds=CHUNK_SECONDS)
    task_id = submit(api, taskjson.command(chunks.command(), f"1-{FRAMES}[1]"))
    by_name = {node.name: node for node in nodes}
    details = lambda: report(farm, api, [task_id])  # noqa: E731
    killed = []  # (frame, node, pid of the killed render)

    for round_number in range(KILLS):
        # a live node half-way through a chunk of its current process: started at least 0.3 s ago, at least
        # 1 s of work left (a killed run never writes "done": it must not be taken for a running one)
        def victim():
            now = time.time()
            for run in chunks.running():
                node = by_name[run.node]
                if node.alive() and run.time > began[run.node] and 0.3 <= now - run.time <= CHUNK_SECONDS - 1.0:
                    return run
            return None

        run = wait_for(victim, 60, f"a node in the middle of a chunk (round {round_number + 1})", interval=0.05,
                       details=details)
        node = by_name[run.node]
        os.kill(node.pid, signal.SIGKILL)
        node.process.wait(60)
        killed.append((run.frame, run.node, run.pid))
        # the render dies with its node: it never writes "done" (checked at the end)
        wait_for(lambda pid=run.pid: gone(pid), 60, f"the render {run.pid} of the killed node to die", interval=0.05)
        restart_now = round_number % 2 == 0
        if restart_now:
            began[node.name] = time.time()
            node.start(wait=False)

        # requeued: the chunk left the dead lease (waiting again, or leased/rendered by a new run)
        def requeued(frame=run.frame, killed_run=run, name=run.node):
            row = frames_of(api, task_id)[frame]
            if row["frameStatus"] != 2 or row["nodeName"] != name:
                return True
            return any(r.time > killed_run.time for r in chunks.events("start", frame))  # a new run began

        wait_for(requeued, 120, f"frame {run.frame} of the killed node {run.node} to be requeued",
                 interval=0.2, details=details)
        if not restart_now:
            began[node.name] = time.time()
            node.start(wait=False)
        assert status(api, task_id) in (0, 5), "the task ran out of chunks before the kills were over"

    chunks.set_seconds(0.02)  # the rest of the task goes fast
    done = wait_task(farm, api, task_id, {25, 30, 45}, 240)
    assert done["taskStatus"] == 25 and done["doneFrames"] == FRAMES, details()

    # the server's account: every chunk done once, and a lost node cost no attempt
    frames = frames_of(api, task_id)
    assert sorted(frames, key=int) == [str(n) for n in range(1, FRAMES + 1)]
    assert all(f["frameStatus"] == 4 and f["attempts"] == 0 for f in frames.values()), details()
    outputs = {entry["fileName"] for entry in api.files.output_files(task_id)}
    assert outputs == {f"f_{n}.txt" for n in range(1, FRAMES + 1)}

    # the nodes' account: every frame completed exactly once; the killed runs never completed
    done_counts = chunks.done_counts()
    assert set(done_counts) == {str(n) for n in range(1, FRAMES + 1)}
    assert max(done_counts.values()) == 1, {f: n for f, n in done_counts.items() if n > 1}
    finished_pids = {r.pid for r in chunks.events("done")}
    assert len({pid for _, _, pid in killed}) == KILLS  # every round killed a different render
    for frame, name, pid in killed:
        assert pid not in finished_pids, f"the killed render of frame {frame} on {name} finished anyway"
        assert len(chunks.events("start", frame)) >= 2  # it really ran again
    # and the server accepted exactly one result per chunk, as the nodes saw it
    wait_reported(nodes, {(task_id, str(n)) for n in range(1, FRAMES + 1)})
    accepted = accepted_per_chunk(nodes)
    assert set(accepted) == {(task_id, str(n)) for n in range(1, FRAMES + 1)}, details()
    assert max(accepted.values()) == 1, {k: n for k, n in accepted.items() if n > 1}
    api.close()

