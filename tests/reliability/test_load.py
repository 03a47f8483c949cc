"""Load (issue #5): concurrent Renderbus clients and fake render nodes against one server lose nothing.

bench/load.py runs the load and reconciles it: every task a client created is in the database and
in its expected end state; queryTaskInfo, queryTaskFrames, queryAllFrameStats and getTaskList agree
with the database read directly; the database's done chunks and failed attempts agree with what the
nodes themselves reported (one accepted result per chunk); every done Blender chunk's output is
stored. Reduced here (20 clients, 4 of them through rayfarm.sdk in threads, 10 nodes, 8 s); the full
size of the issue (100 clients, 50 nodes, 60 s) with RAYFARM_FULL=1. No timing is asserted.
"""


from bench.load import Options, run_load
from tests.support import FULL
from tests.support.databases import fresh_database_url, on_postgres

CHECKS = {"tasks_accounted", "api_task_info", "api_task_frames", "api_frame_stats", "api_task_list",
          "nodes_vs_database", "done_frames_equal", "outputs_stored"}


def test_load_loses_nothing_and_every_count_reconciles():
    options = Options(clients=100 if FULL else 20, workers=50 if FULL else 10, seconds=60 if FULL else 8,
                      sdk_clients=10 if FULL else 4, database="postgres" if on_postgres() else "sqlite",
                      database_url=fresh_database_url(), quiet_max=0, drain_timeout=120 if FULL else 60)
    result = run_load(options)

    assert result["errors"] == 0 and result["server_errors"] == 0, result["error_examples"]
    assert result["stuck_tasks"] == []
    assert set(result["checks"]) == CHECKS
    assert all(result["checks"].values()), result["mismatches"]
    # the load really did the work it reconciles: tasks of every kind submitted and rendered, through both clients
    assert result["tasks"]["done"] > 0 and result["chunks"]["done"] > 0
    assert set(result["tasks"]["by_kind"]) == {"command", "blender", "test"}
    assert result["events"]["sdk_calls"] > 0 and result["events"]["signed_calls"] > 0
    for name in ("createTask", "taskJsonFile", "submitTask", "queryTaskInfo", "getTaskList", "queryTaskFrames",
                 "node:lease", "node:complete", "node:heartbeat", "node:output"):
        assert result["calls"][name]["n"] > 0, name
