"""bench.peers runs end to end (`--quick`: 16, 16 and 64 tasks) and prints one JSON line with every figure.

No timing is asserted. The Celery part runs only where Redis and Celery's venv are already there
(`redis-server` on PATH, .venv-bench-celery or BENCH_CELERY_VENV with Celery): the test never installs
them (CI does not have them, so CI runs xargs and rayfarm only). The bench's farm runs on SQLite, so
the PostgreSQL run of the suite skips it.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.peers import CELERY_VENV
from tests.support.databases import on_postgres

ROOT = Path(__file__).resolve().parents[2]


def celery_here() -> bool:
    python = CELERY_VENV / "bin" / "python"
    if shutil.which("redis-server") is None or not python.exists():
        return False
    return subprocess.run([str(python), "-c", "import celery, redis"], capture_output=True).returncode == 0


@pytest.mark.skipif(on_postgres(), reason="the bench's farm runs on SQLite: the SQLite run of the suite covers it")
def test_peers_bench_runs_end_to_end_and_reports_every_figure():
    systems = ["xargs", "rayfarm", *(["celery"] if celery_here() else [])]
    out = subprocess.run([sys.executable, "-m", "bench.peers", "--quick", "--systems", ",".join(systems)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1, out.stdout[-3000:]
    data = json.loads(lines[0])

    assert data["bench"] == "peers" and data["quick"] is True and data["slots"] == 8
    groups = {"xargs": {"xargs", "ours", "machine"}, "celery": {"workers", "redis", "client", "ours", "machine"},
              "rayfarm": {"server", "nodes", "client", "ours", "machine"}}
    for name, tasks in (("sleep_0.25", 16), ("sleep_0.05", 16), ("true", 64)):
        workload = data["workloads"][name]
        assert workload["tasks"] == tasks
        for system in systems:
            figures = workload[system]
            assert figures["wall_s"] > 0 and figures["tasks_per_s"] > 0
            assert set(figures["cpu_ms_per_task"]) == groups[system]
            if system != "xargs":
                assert figures["ratio"] > 0
                assert data["ratios"][name][system] == figures["ratio"]
            assert data["tasks_per_s"][name][system] == figures["tasks_per_s"]
        assert {"lease_span_p50_ms", "execute_p50_ms", "outside_command_p50_ms", "idle_ms_per_chunk",
                "nodes_own_cpu_ms", "nodes_children_cpu_ms"} <= set(workload["rayfarm"]["chunk"])
    assert len(data["loadavg_start"]) == 3 and data["machine"]["cores"]
    if "celery" in systems:
        assert data["versions"]["celery"] == "5.7.0"
