"""No double booking with several API processes on one database, checked from the workers' side.

On PostgreSQL: 3 server processes on one database, 12 render nodes spread over them, 2,000 short
command chunks. On SQLite the same shape, smaller (2 servers, 6 nodes, 300 chunks): several
processes may share one SQLite file too.
"""

import collections

import pytest

from rayfarm.sdk import RayfarmAPI
from tests.support import taskjson
from tests.support.databases import fresh_database_url, on_postgres
from tests.support.processes import UNCONFINED_COMMANDS, FarmServer, free_port
from tests.support.tasks import frames_of, submit, wait_task

SERVERS, NODES, CHUNKS = (3, 12, 2000) if on_postgres() else (2, 6, 300)


@pytest.fixture
def servers(tmp_path):
    data = tmp_path / "farm"
    url = fresh_database_url()
    env = {"RAYFARM_DATABASE_URL": url} if url else {}
    started = []
    try:
        for _ in range(SERVERS):
            started.append(FarmServer(data, free_port(), env=dict(env)).start())
        yield started
    finally:
        for server in started:
            server.stop()


def test_every_chunk_is_done_exactly_once(servers, tmp_path):
    user = servers[0].create_user("scale", "--allow-commands")
    for index in range(NODES):
        servers[index % SERVERS].start_worker(f"node{index}", UNCONFINED_COMMANDS, wait=False)
    for server in servers:
        for worker in server.workers:
            worker.wait_registered()
    records = tmp_path / "records"
    records.mkdir()
    # Worker-side record: every run of a chunk appends its frame and node folder to a file of its own.
    command = ["sh", "-c", 'echo "$0 $PWD" >> "$1/$0.txt"', "{frame}", str(records)]
    api = RayfarmAPI(user.access_id, user.access_key, domain=servers[1].domain)
    task_id = submit(api, taskjson.command(command, f"1-{CHUNKS}", job_stop_time="600"))
    info = wait_task(servers[0], api, task_id, {25, 30, 45}, 600)
    assert info["taskStatus"] == 25 and info["doneFrames"] == CHUNKS

    runs = collections.Counter()
    for path in records.iterdir():
        for line in path.read_text().splitlines():
            runs[int(line.split(" ", 1)[0])] += 1
    assert set(runs) == set(range(1, CHUNKS + 1))
    assert max(runs.values()) == 1, [f for f, n in runs.items() if n > 1][:20]

    frames = list(frames_of(api, task_id).values())
    assert len(frames) == CHUNKS
    assert all(f["frameStatus"] == 4 and f["attempts"] == 0 and f["recommitFlag"] == 0 for f in frames)
    used = {f["nodeName"] for f in frames}
    assert len(used) >= NODES // 2, used  # the work really was spread over the nodes
