"""No double booking with several API processes on one database, checked from the workers' side.

On PostgreSQL: 3 server processes on one database, 12 render nodes spread over them, 2,000 short
command chunks. On SQLite the same shape, smaller (2 servers, 6 nodes, 300 chunks): several
processes may share one SQLite file too.
"""

import collections
import json

import pytest

from rayfarm.sdk import RayfarmAPI
from tests.dbs import fresh_database_url, on_postgres
from tests.farmproc import UNCONFINED_COMMANDS, FarmServer, free_port, wait_for

SERVERS, NODES, CHUNKS = (3, 12, 2000) if on_postgres() else (2, 6, 300)


@pytest.fixture
def servers(tmp_path):
    data = tmp_path / "farm"
    data.mkdir()
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
    task_json = {"software_config": {"cg_name": "command"},
                 "task_info": {"frames_per_task": "1", "job_stop_time": "600"},
                 "scene_info_render": {"common": {"frames": f"1-{CHUNKS}"}},
                 "additional_info": {"command": command}}
    api = RayfarmAPI(user.access_id, user.access_key, domain=servers[1].domain)
    task_id = api.task.task_id
    api.task.upload_task_json(task_id, json.dumps(task_json))
    api.task.submit_task(task_id)

    def finished() -> bool:
        return api.query.task_info([task_id])["items"][0]["taskStatus"] in (25, 30, 45)

    wait_for(finished, 600, "the task to finish", interval=1.0)
    info = api.query.task_info([task_id])["items"][0]
    assert info["taskStatus"] == 25 and info["doneFrames"] == CHUNKS

    runs = collections.Counter()
    for path in records.iterdir():
        for line in path.read_text().splitlines():
            runs[int(line.split(" ", 1)[0])] += 1
    assert set(runs) == set(range(1, CHUNKS + 1))
    assert max(runs.values()) == 1, [f for f, n in runs.items() if n > 1][:20]

    frames = []
    page = 1
    while items := api.query.task_frames(task_id, page_num=page, page_size=1000)["items"]:
        frames += items
        page += 1
    assert len(frames) == CHUNKS
    assert all(f["frameStatus"] == 4 and f["attempts"] == 0 and f["recommitFlag"] == 0 for f in frames)
    used = {f["nodeName"] for f in frames}
    assert len(used) >= NODES // 2, used  # the work really was spread over the nodes
