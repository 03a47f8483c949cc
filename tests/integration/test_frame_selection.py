"""Chosen frames of a task against a real server and a real render node: queryTaskFrames filtered by frame
status, and the SDK's recommit_task_frames (recommitTaskFrames) and stop_task_frames (stopTaskFrames)."""

import pytest

from rayfarm.sdk import RayfarmAPI, RayfarmAPIError
from tests.support import taskjson
from tests.support.farms import running_farm
from tests.support.processes import PYTHON, UNCONFINED_COMMANDS, gone, wait_for
from tests.support.signed import FRAMES, Raw, check_envelope
from tests.support.tasks import FINISHED, report, submit
from tests.support.tasks import status as task_status

# one frame that renders for a long time; it writes its pid to <dir>/pid-<frame> first
SLOW = "import os, sys, time; open(os.path.join(sys.argv[1], 'pid-' + sys.argv[2]), 'w').write(str(os.getpid())); " \
       "time.sleep(600)"
# one frame that fails (exit 3) while the file <dir>/fail-<frame> exists, and succeeds at once otherwise
FAIL_IF_MARKED = "import os, sys; sys.exit(3 if os.path.exists(os.path.join(sys.argv[1], 'fail-' + sys.argv[2])) else 0)"


@pytest.fixture(scope="module")
def farm(tmp_path_factory):
    yield from running_farm(tmp_path_factory, "frame-selection")


@pytest.fixture(scope="module")
def user(farm):
    return farm.create_user("carol", "--allow-commands")


@pytest.fixture(scope="module")
def api(farm, user):
    client = RayfarmAPI(user.access_id, user.access_key, domain=farm.domain)
    yield client
    client.close()


@pytest.fixture(scope="module")
def node(farm):
    """One render node with one slot: it renders one frame at a time (stopped with the farm)."""
    return farm.start_worker("n1", UNCONFINED_COMMANDS)


def command_task(api: RayfarmAPI, command: list[str], frames: str) -> int:
    """A submitted command task, one frame per chunk, no retry of a failed frame."""
    return submit(api, taskjson.command(command, frames, max_attempts="1"))


def by_index(api: RayfarmAPI, task_id: int) -> dict[str, dict]:
    return {f["frameIndex"]: f for f in api.query.task_frames(task_id, page_size=1000)["items"]}


def indexes(page: dict) -> list[str]:
    return [f["frameIndex"] for f in page["items"]]


def test_failed_frames_are_found_by_status_and_render_again_when_recommitted(farm, api, node, tmp_path):
    for frame in ("2", "4"):
        (tmp_path / f"fail-{frame}").touch()
    task_id = command_task(api, [PYTHON, "-c", FAIL_IF_MARKED, str(tmp_path), "{frame}"], "1-5[1]")
    wait_for(lambda: task_status(api, task_id) in FINISHED, 60, "the task to finish", interval=0.2,
             details=lambda: report(farm, api, [task_id]))
    assert task_status(api, task_id) == 30, report(farm, api, [task_id])

    # the farm filters by frame status: total counts only the chosen frames, pages page through them
    failed = api.query.task_frames(task_id, status=[5])
    assert indexes(failed) == ["2", "4"] and failed["total"] == 2 and failed["pageCount"] == 1, failed
    done = api.query.task_frames(task_id, page_size=2, status=[4])
    assert indexes(done) == ["1", "3"] and done["total"] == 3 and done["pageCount"] == 2, done
    assert indexes(api.query.task_frames(task_id, page_num=2, page_size=2, status=[4])) == ["5"]
    assert indexes(api.query.task_frames(task_id, status=[5, 4])) == ["1", "2", "3", "4", "5"]
    assert api.query.task_frames(task_id, search_keyword="4", status=[5])["total"] == 1  # both filters apply
    assert api.query.task_frames(task_id, search_keyword="4", status=[4])["total"] == 0
    waiting = api.query.task_frames(task_id, status=[1, 2])
    assert waiting["items"] == [] and waiting["total"] == 0

    # one chosen failed frame renders again (now it can): its recommitFlag goes up, the other stays failed
    (tmp_path / "fail-2").unlink()
    frame_2, frame_4 = failed["items"]
    assert api.task.recommit_task_frames(task_id, [frame_2["id"]]) == {"count": 1}
    now = by_index(api, task_id)
    assert now["2"]["recommitFlag"] == 1 and now["2"]["frameStatus"] in (1, 2, 4), now["2"]  # the node may be quick
    assert now["4"]["frameStatus"] == 5 and now["4"]["recommitFlag"] == 0
    assert all(now[i]["recommitFlag"] == 0 for i in ("1", "3", "5"))
    wait_for(lambda: task_status(api, task_id) in FINISHED and by_index(api, task_id)["2"]["frameStatus"] == 4, 60,
             "the recommitted frame to render", interval=0.2, details=lambda: report(farm, api, [task_id]))
    assert task_status(api, task_id) == 30  # frame 4 still failed

    # every failed frame (select all, status failed): only frame 4; then the task is done
    (tmp_path / "fail-4").unlink()
    assert api.task.recommit_task_frames(task_id, select_all=True, status=[5]) == {"count": 1}
    wait_for(lambda: task_status(api, task_id) in FINISHED, 60, "the task to finish again", interval=0.2,
             details=lambda: report(farm, api, [task_id]))
    assert task_status(api, task_id) == 25, report(farm, api, [task_id])
    final = by_index(api, task_id)
    assert {i: (f["frameStatus"], f["recommitFlag"]) for i, f in final.items()} == {
        "1": (4, 0), "2": (4, 1), "3": (4, 0), "4": (4, 1), "5": (4, 0)}

    # frames of another task, and no frames at all, are refused and change nothing
    other = command_task(api, [PYTHON, "-c", "pass"], "1")
    foreign = by_index(api, other)["1"]["id"]
    with pytest.raises(RayfarmAPIError) as caught:
        api.task.recommit_task_frames(task_id, [frame_2["id"], foreign])
    assert caught.value.code == 404 and str(foreign) in caught.value.message
    with pytest.raises(RayfarmAPIError) as caught:
        api.task.recommit_task_frames(task_id)
    assert caught.value.code == 601 and "selectAll" in caught.value.message
    assert by_index(api, task_id) == final


def test_chosen_frames_stop_wait_again_and_are_filtered_while_the_node_renders(farm, api, node, tmp_path):
    task_id = command_task(api, [PYTHON, "-c", SLOW, str(tmp_path), "{frame}"], "1-3[1]")

    def one_rendering():
        frames = by_index(api, task_id)
        return frames if [f["frameStatus"] for f in frames.values()].count(2) == 1 else None

    frames = wait_for(one_rendering, 60, "one frame to render", interval=0.2,
                      details=lambda: report(farm, api, [task_id]))
    [rendering] = [i for i, f in frames.items() if f["frameStatus"] == 2]
    first_waiting, last_waiting = sorted((i for i, f in frames.items() if f["frameStatus"] == 1), key=int)

    # stop one waiting frame
    assert api.task.stop_task_frames(task_id, [frames[last_waiting]["id"]]) == {"count": 1}
    stopped = api.query.task_frames(task_id, status=[3])
    assert indexes(stopped) == [last_waiting] and stopped["total"] == 1
    assert stopped["items"][0]["frameStatus"] == 3
    busy = api.query.task_frames(task_id, status=[2, 1])
    assert indexes(busy) == sorted([rendering, first_waiting], key=int) and busy["total"] == 2
    second = api.query.task_frames(task_id, page_num=2, page_size=1, status=[1, 2])
    assert len(second["items"]) == 1 and second["total"] == 2
    assert api.query.task_frames(task_id, status=[4, 5, 11])["total"] == 0
    assert task_status(api, task_id) == 5

    # the stopped frame renders again: it waits (the node's one slot is busy), its recommitFlag goes up
    assert api.task.recommit_task_frames(task_id, [frames[last_waiting]["id"]], status=[3]) == {"count": 1}
    again = by_index(api, task_id)
    assert again[last_waiting]["frameStatus"] == 1 and again[last_waiting]["recommitFlag"] == 1, again
    assert again[rendering]["frameStatus"] == 2 and again[rendering]["recommitFlag"] == 0
    assert indexes(api.query.task_frames(task_id, status=[1])) == sorted([first_waiting, last_waiting], key=int)
    # the farm's default choice (done, failed, timed out) finds none of these frames: nothing changes
    assert api.task.recommit_task_frames(task_id, select_all=True) == {"count": 0}
    # stop only the waiting frames; waiting frames cannot be chosen for a re-render
    assert api.task.stop_task_frames(task_id, select_all=True, status=[1]) == {"count": 2}
    assert indexes(api.query.task_frames(task_id, status=[3])) == sorted([first_waiting, last_waiting], key=int)
    with pytest.raises(RayfarmAPIError) as caught:
        api.task.recommit_task_frames(task_id, select_all=True, status=[1])
    assert caught.value.code == 600 and "Frame status [1]" in caught.value.message

    # stop everything: the running render is killed on its node and the task is stopped
    pid = int((tmp_path / f"pid-{rendering}").read_text())
    assert api.task.stop_task_frames(task_id, select_all=True) == {"count": 1}
    assert {f["frameStatus"] for f in by_index(api, task_id).values()} == {3}
    assert task_status(api, task_id) == 10
    wait_for(lambda: gone(pid), 60, "the stopped frame's render to be killed", interval=0.2,
             details=lambda: report(farm, api, [task_id]))
    with pytest.raises(RayfarmAPIError) as caught:  # a stopped task has nothing left to stop
        api.task.stop_task_frames(task_id, select_all=True)
    assert caught.value.code == 718
    api.task.abort_task([task_id])


@pytest.mark.parametrize("status", [[0], [7], [1, 99], [2**70], [-1], ["waiting"], [True], [None], 5,
                                    [1] * 21],
                         ids=["0", "7", "99", "huge", "negative", "name", "bool", "null", "not-a-list", "too-many"])
def test_unknown_frame_status_filter_is_refused_with_a_sentence(farm, user, api, status):
    task_id = api.task.create_task()["taskIdList"][0]
    raw = Raw(farm, user)
    try:
        answer = check_envelope(raw.send(FRAMES, {"taskId": task_id, "status": status}))
    finally:
        raw.close()
    assert answer["code"] == 600, answer
    assert "'status" in answer["message"] and answer["data"] is None, answer
    if status in ([0], [7], [1, 99], [-1]):
        assert "is not a frame status; use one of 1, 2, 3, 4, 5, 6, 8, 11" in answer["message"], answer


def test_sdk_task_frames_sends_status_only_when_given(farm, user, api):
    task_id = api.task.create_task()["taskIdList"][0]
    with pytest.raises(RayfarmAPIError) as caught:
        api.query.task_frames(task_id, status=[12])
    assert caught.value.code == 600 and "status[0]" in caught.value.message
    assert api.query.task_frames(task_id, status=[])["total"] == 0  # empty: no filter sent
    assert api.query.task_frames(task_id, status=None)["total"] == 0
    raw = Raw(farm, user)
    try:
        assert check_envelope(raw.send(FRAMES, {"taskId": task_id, "status": None}))["code"] == 200
        assert check_envelope(raw.send(FRAMES, {"taskId": task_id, "status": []}))["code"] == 200
    finally:
        raw.close()


def test_the_official_sdk_frame_calls_by_their_official_names(farm, api, node, tmp_path):
    """restart_failed_frames, restart_frame, stop_frame, get_all_frames, get_custome_frames and
    get_frame_thumbnall: the official QueryOperator's names, signatures and requests."""
    for frame in ("2", "3"):
        (tmp_path / f"fail-{frame}").touch()
    task_id = command_task(api, [PYTHON, "-c", FAIL_IF_MARKED, str(tmp_path), "{frame}"], "1-4[1]")
    wait_for(lambda: task_status(api, task_id) in FINISHED, 60, "the task to finish", interval=0.2,
             details=lambda: report(farm, api, [task_id]))
    everything = api.query.get_all_frames(task_id, page_size=1)  # four pages of one, then an empty page
    assert sorted(everything) == ["1", "2", "3", "4"] and everything["2"]["frameStatus"] == 5
    assert api.query.get_all_frames(task_id, start_page=2, end_page=3, page_size=1).keys() == {"2", "3"}
    assert api.query.get_frame_thumbnall(everything["1"]["id"]) == []  # a command renders no image

    (tmp_path / "fail-2").unlink()
    assert api.query.get_custome_frames(task_id, ["2"]) == {"count": 1}  # by frame index
    wait_for(lambda: task_status(api, task_id) in FINISHED, 60, "frame 2 to render again", interval=0.2,
             details=lambda: report(farm, api, [task_id]))
    assert by_index(api, task_id)["2"]["frameStatus"] == 4 and by_index(api, task_id)["3"]["frameStatus"] == 5
    (tmp_path / "fail-3").unlink()
    assert api.query.restart_failed_frames([task_id]) == {"count": 1}
    wait_for(lambda: task_status(api, task_id) == 25, 60, "the task to be done", interval=0.2,
             details=lambda: report(farm, api, [task_id]))
    assert {i: f["recommitFlag"] for i, f in by_index(api, task_id).items()} == {"1": 0, "2": 1, "3": 1, "4": 0}
    assert api.query.restart_frame(task_id, select_all=0, ids_list=[everything["4"]["id"]]) == {"count": 1}
    assert by_index(api, task_id)["4"]["recommitFlag"] == 1
    with pytest.raises(AttributeError):  # as the official SDK: ids are required without select_all
        api.query.restart_frame(task_id, select_all=0)

    slow = command_task(api, [PYTHON, "-c", SLOW, str(tmp_path), "{frame}"], "1-2[1]")
    wait_for(lambda: 2 in {f["frameStatus"] for f in by_index(api, slow).values()}, 60, "a frame to render",
             interval=0.2, details=lambda: report(farm, api, [slow]))
    assert api.query.stop_frame(slow, select_all=1) == {"count": 2}
    assert {f["frameStatus"] for f in by_index(api, slow).values()} == {3}
    api.task.abort_task([slow])
