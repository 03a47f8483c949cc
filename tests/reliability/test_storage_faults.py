"""Unwritable output storage on the server: a clear error to the node, the chunk retried, the farm serving on.

The fault is made deterministic without root tricks (root ignores chmod): a regular file stands where the
task's output folder must be created, so the server's mkdir fails exactly like on a broken or full disk
(every OSError of the output path takes the same way). The server answers the upload with HTTP 507 and an
English sentence; the node reports the chunk **failed** with that sentence. Decision: it counts as an
attempt, so a farm whose storage stays broken ends the chunk failed with a readable reason instead of
looping forever, and a chunk whose storage comes back is rendered again on its next attempt.
"""

from rayfarm.domain.paths import output_name
from rayfarm.sdk import RayfarmAPI
from tests.support import taskjson
from tests.support.farms import make_users
from tests.support.processes import UNCONFINED_COMMANDS, wait_for
from tests.support.renders import Chunks
from tests.support.tasks import frames_of, report, status, submit, wait_task

STORAGE_ERROR = "could not store the output"


def blocker(farm, user, task_id: int):
    """A regular file where the task's output folder belongs: creating the folder fails."""
    path = farm.data_dir / "storage" / str(user.user_id) / "output" / output_name(task_id, "command")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("not a folder")
    return path


def test_unwritable_output_fails_the_attempt_clearly_and_the_farm_serves_on(start_farm, tmp_path):
    farm = start_farm()
    [user] = make_users(farm, "storage", commands=("storage",))
    node = farm.start_worker("disk", "--slots", "2", UNCONFINED_COMMANDS, wait=False)
    api = RayfarmAPI(user.access_id, user.access_key, domain=farm.domain)
    chunks = Chunks(tmp_path / "chunks", seconds=0.05)

    # task "broken": storage stays unwritable, 2 attempts -> failed with the server's sentence
    broken = api.task.create_task()["taskIdList"][0]
    blocker(farm, user, broken)
    submit(api, taskjson.command(chunks.command(), "1-2[1]", max_attempts="2"), broken)
    # task "healed": storage unwritable until the test repairs it; many attempts allowed
    healed = api.task.create_task()["taskIdList"][0]
    block = blocker(farm, user, healed)
    submit(api, taskjson.command(chunks.command(), "11-12[1]", max_attempts="100"), healed)
    # task "fine": nothing wrong with it; it renders next to the broken ones
    fine = submit(api, taskjson.command(chunks.command(), "21-24[1]"))
    tasks = [broken, healed, fine]

    done = wait_task(farm, api, broken, {45}, 60)
    assert done["doneFrames"] == 0 and done["failedFrames"] == 2, done
    for frame in frames_of(api, broken).values():
        assert frame["frameStatus"] == 5 and frame["attempts"] == 2, frame
        assert STORAGE_ERROR in frame["errorMessage"] and "HTTP 507" in frame["errorMessage"], frame

    # the healed task has failed attempts behind it, then its storage comes back and it renders
    def failed_once() -> bool:
        return all(f["attempts"] >= 1 for f in frames_of(api, healed).values())

    wait_for(failed_once, 60, "every chunk of the healed task to fail an attempt",
             details=lambda: report(farm, api, tasks))
    assert status(api, healed) in (0, 5)
    block.unlink()
    wait_task(farm, api, healed, {25}, 60)
    frames = frames_of(api, healed)
    assert all(f["frameStatus"] == 4 and f["attempts"] >= 1 for f in frames.values()), frames
    assert {e["fileName"] for e in api.files.output_files(healed)} == {"f_11.txt", "f_12.txt"}

    # the farm kept serving: the untouched task finished with no failed attempt, queries answer
    wait_task(farm, api, fine, {25}, 60)
    assert all(f["frameStatus"] == 4 and f["attempts"] == 0 for f in frames_of(api, fine).values())
    assert {e["fileName"] for e in api.files.output_files(fine)} == {f"f_{n}.txt" for n in range(21, 25)}
    assert len(api.query.task_info(tasks)["items"]) == 3

    # the node got the server's sentence; the server handled it without a traceback
    assert STORAGE_ERROR in node.log() and "507" in node.log()
    assert "Traceback" not in farm.log(), farm.log()[-4000:]
    api.close()

