import pytest

from tests.support.farms import make_users, running_farm
from tests.support.routes import ENV
from tests.support.signed import Raw
from tests.support.taskjson import SCENE


@pytest.fixture(scope="package")
def farm(tmp_path_factory):
    """One farm (default settings, rate limit included) shared by the security modules that do not start their
    own (with other settings): each module makes users of its own (the matrix modules share ``world``'s)."""
    yield from running_farm(tmp_path_factory, "security")


@pytest.fixture(scope="package")
def world(farm):
    """Users and tasks on the shared farm that the route matrix aims its requests at (tests/support/routes.py)."""
    alice, bob, dave = make_users(farm, "alice", "bob", "dave", disabled=("dave",), commands=("alice",))
    farm.input_file(alice, SCENE)
    raw_alice, raw_bob, raw_dave = Raw(farm, alice), Raw(farm, bob), Raw(farm, dave)
    waiting = raw_alice.submit()
    created = raw_alice.ok("/api/render/submit/createTask", {"count": 1})["taskIdList"][0]
    raw_alice.ok("/api/render/submit/taskJsonFile", {"taskId": created, "fileName": "task.json", "content": "{}"})
    raw_alice.ok("/api/render/handle/addTaskLabel", {"taskIds": [waiting], "label": "keep"})
    raw_alice.ok("/api/render/project/add", {"newName": "alpha"})
    frame = raw_alice.ok("/api/render/handle/queryTaskFrames", {"taskId": waiting})["items"][0]["id"]
    raw_alice.ok("/api/render/plugin/addUserPluginConfig", {**ENV, "editName": "studio"})
    yield {"alice": alice, "bob": bob, "raw": raw_alice, "raw_bob": raw_bob, "raw_dave": raw_dave,
           "waiting": waiting, "created": created, "frame": frame}
    for client in (raw_alice, raw_bob, raw_dave):
        client.close()
