"""A node cut off from the server mid-chunk: it keeps its chunk, or gives it up cleanly if it was reassigned.

1. Network cut (a TCP proxy between node and server stops listening and drops its connections) longer
   than the lease: the server declares the node lost, another node renders the chunk; when the cut node
   is back, the server refuses its stale result and the node drops it. One accepted result per chunk.
2. Server frozen (SIGSTOP: connections hang, nothing answers) longer than the lease while the node
   renders: the node finishes, keeps retrying, and its result is accepted when the server is back; the
   server does not blame the node for its own outage (rayfarm/store/outage.py), so nothing is rendered twice.

CI: a 4 s lease and 5 s outages; `RAYFARM_FULL=1`: the default 10 s lease and 30 s outages.
"""

import os
import signal
import time

from rayfarm.sdk import RayfarmAPI
from tests.support import FULL, taskjson
from tests.support.farms import make_users
from tests.support.node_logs import accepted_per_chunk, accepted_results, wait_reported
from tests.support.processes import UNCONFINED_COMMANDS, wait_for
from tests.support.proxy import ProxiedWorker, Proxy
from tests.support.renders import Chunks
from tests.support.tasks import frames_of, report, submit, wait_task

ENV = {} if FULL else {"RAYFARM_LEASE_SECONDS": "4"}
OUTAGE = 30.0 if FULL else 5.0  # how long the node and the server cannot talk: longer than a lease


def test_cut_node_loses_its_reassigned_chunk_cleanly(start_farm, tmp_path):
    farm = start_farm(**ENV)
    [user] = make_users(farm, "cut", commands=("cut",))
    proxy = Proxy(farm.port).start()
    try:
        far = ProxiedWorker(farm, "far", proxy)
        farm.workers.append(far)
        far.start()
        api = RayfarmAPI(user.access_id, user.access_key, domain=farm.domain)
        chunks = Chunks(tmp_path / "chunks", seconds=600)  # the far node's chunk runs until it is cut off
        task_id = submit(api, taskjson.command(chunks.command(), "1-2[1]"))
        details = lambda: report(farm, api, [task_id])  # noqa: E731
        [run] = wait_for(lambda: chunks.events("start"), 60, "the far node to start a chunk", details=details)

        proxy.cut()
        cut_at = time.monotonic()
        chunks.set_seconds(0.2)  # the far node finishes its render while nobody can hear it; later chunks are short
        near = farm.start_worker("near", UNCONFINED_COMMANDS, wait=False)
        wait_for(lambda: any(r.pid == run.pid for r in chunks.events("done")), 60,
                 "the cut node to finish its render", details=details)
        # the server declares it lost and hands the chunk to the near node
        def reassigned():
            row = frames_of(api, task_id)[run.frame]
            return row["nodeName"] == "near" and row["frameStatus"] in (2, 4)

        wait_for(reassigned, OUTAGE + 60, f"chunk {run.frame} to go to the near node", details=details)
        time.sleep(max(0.0, cut_at + OUTAGE - time.monotonic()))  # the outage lasts OUTAGE s at least
        proxy.restore()

        wait_task(farm, api, task_id, {25})
        wait_for(lambda: f"dropped for task {task_id} chunk {run.frame} " in far.log(), 60,
                 "the far node to drop its stale result", details=details)
        wait_for(lambda: "heartbeat works again" in far.log(), 60, "the far node to be heard again", details=details)

        frames = frames_of(api, task_id)
        assert all(f["frameStatus"] == 4 and f["attempts"] == 0 for f in frames.values()), details()
        assert frames[run.frame]["nodeName"] == "near"
        # rendered twice (the far render finished during the cut), accepted once: the near node's
        assert sorted(r.node for r in chunks.events("done", run.frame)) == ["far", "near"]
        wait_reported([far, near], {(task_id, "1"), (task_id, "2")} - {(task_id, run.frame)})
        per_chunk = accepted_per_chunk([far, near])
        assert per_chunk == {(task_id, "1"): 1, (task_id, "2"): 1}, per_chunk
        assert (task_id, run.frame, "far") not in accepted_results([far])
        stored = api.files.download_task(task_id, tmp_path / "out")
        content = {path.name: path.read_text().split() for path in stored}
        assert content[f"f_{run.frame}.txt"] == [run.frame, "near"], content
        assert far.alive() and far.log().count("registered as") == 1  # it came back on its own session
        api.close()
    finally:
        proxy.close()


def test_node_keeps_its_chunk_through_a_frozen_server(start_farm, tmp_path):
    farm = start_farm(**ENV)
    [user] = make_users(farm, "frozen", commands=("frozen",))
    node = farm.start_worker("steady", UNCONFINED_COMMANDS)
    api = RayfarmAPI(user.access_id, user.access_key, domain=farm.domain)
    chunks = Chunks(tmp_path / "chunks", seconds=600)  # the chunk runs until the server is frozen
    task_id = submit(api, taskjson.command(chunks.command(), "1-1[1]"))
    details = lambda: report(farm, api, [task_id])  # noqa: E731
    [run] = wait_for(lambda: chunks.events("start"), 60, "the node to start its chunk", details=details)

    os.killpg(farm.process.pid, signal.SIGSTOP)
    try:
        frozen_at = time.monotonic()
        chunks.set_seconds(0)  # the render ends while the server is frozen
        wait_for(lambda: chunks.events("done"), 60, "the render to finish during the freeze")
        time.sleep(max(0.0, frozen_at + OUTAGE - time.monotonic()))  # the freeze lasts OUTAGE s at least
    finally:
        os.killpg(farm.process.pid, signal.SIGCONT)

    wait_task(farm, api, task_id, {25})
    frame = frames_of(api, task_id)["1"]
    assert (frame["frameStatus"], frame["attempts"], frame["nodeName"]) == (4, 0, "steady"), details()
    # rendered once, reported once, accepted: the node kept its chunk
    assert [(r.event, r.pid) for r in chunks.lines()] == [("start", run.pid), ("done", run.pid)]
    wait_reported([node], {(task_id, "1")})
    assert accepted_per_chunk([node]) == {(task_id, "1"): 1}
    assert "dropped" not in node.log() and "not accepted" not in node.log()
    results = {labels: value for (name, labels), value in farm.metrics().items() if name == "rayfarm_chunk_results_total"}
    assert results.get((("accepted", "yes"), ("result", "done"))) == 1
    assert results.get((("accepted", "no"), ("result", "done")), 0) == 0
    api.close()
