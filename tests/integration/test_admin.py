"""Farm-level routes: node list, enable/disable/drain (admins only), farm totals (docs/design.md invariant 14)."""

import pytest

from rayfarm.sdk import RayfarmAPI
from rayfarm.sdk.errors import RayfarmAPIError
from tests.support import taskjson
from tests.support.processes import UNCONFINED_COMMANDS, gone, wait_for
from tests.support.renders import Chunks
from tests.support.tasks import frames_of, info, submit


@pytest.fixture
def admin(farm):
    user = farm.create_user("boss", "--admin", "--allow-commands")
    client = RayfarmAPI(user.access_id, user.access_key, domain=farm.domain)
    yield client
    client.close()


@pytest.fixture
def artist(farm):
    user = farm.create_user("artist", "--allow-commands")
    client = RayfarmAPI(user.access_id, user.access_key, domain=farm.domain)
    yield client
    client.close()


def node(api: RayfarmAPI, name: str) -> dict:
    return next(w for w in api.query.workers() if w["name"] == name)


def test_disable_takes_the_node_out_now_and_enable_brings_it_back(farm, admin, artist, tmp_path):
    n1 = farm.start_worker("n1", UNCONFINED_COMMANDS)
    chunks = Chunks(tmp_path / "chunks", seconds=600)  # a chunk renders until something kills it
    task_id = submit(artist, taskjson.command(chunks.command(), "1-2[1]"))
    busy = wait_for(lambda: (w := node(admin, "n1"))["running"] and w, 60, "n1 to run a chunk")
    assert busy["running"][0]["taskId"] == task_id and busy["cores"] >= 1
    assert node(artist, "n1")["running"][0]["taskId"] == task_id  # the owner sees their chunk
    [render] = wait_for(lambda: chunks.events("start"), 60, "the render to start")  # its pid, from the node
    assert frames_of(artist, task_id)[render.frame]["attempts"] == 0

    # An artist may not change nodes; nothing changes.
    with pytest.raises(RayfarmAPIError) as refused:
        artist.query.set_worker_mode([busy["id"]], "disable")
    assert refused.value.code == 403
    with pytest.raises(RayfarmAPIError) as unknown:
        admin.query.set_worker_mode([busy["id"], 999999], "disable")
    assert unknown.value.code == 600
    assert not node(admin, "n1")["disabled"]

    assert admin.query.set_worker_mode([busy["id"]], "disable") == {"updated": 1}
    wait_for(lambda: not node(admin, "n1")["running"] and all(
        f["frameStatus"] == 1 for f in frames_of(artist, task_id).values()), 60, "the chunk to go back to waiting")
    assert node(admin, "n1")["disabled"]
    # the chunk waits again with its attempts unchanged, and its render is killed on the node, which lives on
    assert frames_of(artist, task_id)[render.frame]["attempts"] == 0
    wait_for(lambda: gone(render.pid), 60, f"the render {render.pid} of the disabled node to be killed",
             details=n1.log)
    assert not chunks.events("done") and n1.alive()
    summary = admin.query.farm_summary()
    assert summary["workers"]["disabled"] == 1 and summary["user"]["isAdmin"]
    assert info(artist, task_id)["taskStatus"] in (0, 5)

    admin.query.set_worker_mode([busy["id"]], "enable")
    wait_for(lambda: node(admin, "n1")["running"], 60, "n1 to take the chunk again")


def test_drain_lets_the_running_chunk_finish_then_takes_no_more(farm, admin, artist, tmp_path):
    farm.start_worker("n1", UNCONFINED_COMMANDS)
    chunks = Chunks(tmp_path / "chunks", seconds=600)  # the first chunk runs until the node drains
    task_id = submit(artist, taskjson.command(chunks.command(), "1-3[1]"))
    worker = wait_for(lambda: (w := node(admin, "n1"))["running"] and w, 60, "n1 to run a chunk")
    admin.query.set_worker_mode([worker["id"]], "drain")
    chunks.set_seconds(0.2)  # now the running chunk ends
    wait_for(lambda: len(chunks.events("done")) == 1, 60, "the running chunk to finish")
    wait_for(lambda: not node(admin, "n1")["running"], 60, "n1 to be idle")
    assert len(chunks.events("start")) == 1  # it took nothing after the drain
    assert sorted(f["frameStatus"] for f in frames_of(artist, task_id).values()) == [1, 1, 4]
    summary = artist.query.farm_summary()
    assert summary["frames"] == {"1": 2, "4": 1} and summary["workers"]["draining"] == 1
    assert summary["tasks"] == {"5": 1} or summary["tasks"] == {"0": 1}
