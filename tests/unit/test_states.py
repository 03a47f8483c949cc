"""Which operation is allowed in which task state (spec section 4), and settling a task's status."""

from typing import NamedTuple

import pytest

from rayfarm.domain import states
from rayfarm.domain.states import FrameStatus as F
from rayfarm.domain.states import Op, TaskStatus
from rayfarm.protocol.codes import ApiError

S = TaskStatus
EVERY = frozenset(S)

# The table, written out by hand (NOT derived from states.RULES): op -> Row(states where the op does its work,
# states where it is a no-op repeat that succeeds, and where each of the two comes from). Every other state
# answers 718. SPEC: /work/shared/spec/renderbus-api.md section 4 says so (its table, or a paragraph the spec
# itself marks "rayfarm rule"); RAYFARM: the spec is silent there and the row restates rayfarm's own rule.
SPEC, RAYFARM = "spec section 4", "rayfarm rule"


class Row(NamedTuple):
    works: frozenset[TaskStatus]
    repeats: frozenset[TaskStatus]
    works_from: str
    repeats_from: str


def row(works, repeats, works_from: str, repeats_from: str) -> Row:
    return Row(frozenset(works), frozenset(repeats), works_from, repeats_from)


EXPECTED = {
    # "queues it: status 0 ... Idempotent": submit works on a never-submitted task, a repeat succeeds.
    Op.SUBMIT: row({S.CREATED}, EVERY - {S.CREATED}, SPEC, SPEC),
    # "stop_task: allowed from 0, 5, 40"; stopping a stopped task again changes nothing (the spec is silent).
    Op.STOP: row({S.WAITING, S.RENDERING, S.TEST_DONE}, {S.STOPPED, S.TIMEOUT_STOPPED, S.ARREARS_STOPPED},
                 SPEC, RAYFARM),
    # "start_task: allowed from 10, 23 (and 20)"; 40 needs full speed, 35 can never start again.
    # Starting a waiting or rendering task is a repeat (the spec is silent).
    Op.START: row({S.STOPPED, S.TIMEOUT_STOPPED, S.ARREARS_STOPPED}, {S.WAITING, S.RENDERING}, SPEC, RAYFARM),
    # "abort_task: allowed from any state that is not already done (25/30/35)"; never for unsubmitted ids (the
    # spec's paragraph on never-submitted ids). Aborting an abandoned task again succeeds, changing nothing:
    # the spec lists 35 as not allowed, rayfarm answers the repeat as a success (docs/design.md invariant 6).
    Op.ABORT: row({S.WAITING, S.RENDERING, S.PREPROCESSING, S.STOPPED, S.ARREARS_STOPPED, S.TIMEOUT_STOPPED,
                   S.TEST_DONE, S.FAILED}, {S.ABANDONED}, SPEC, RAYFARM),
    # "delete_task: allowed when nothing of the task runs or waits (not 0, 5, 8 ...)", and for never-submitted
    # ids (the spec's paragraph). A deleted task's repeat: test_deleted_tasks_refuse_everything_but_delete.
    Op.DELETE: row({S.CREATED, S.STOPPED, S.ARREARS_STOPPED, S.TIMEOUT_STOPPED, S.DONE, S.DONE_WITH_FAILURES,
                    S.ABANDONED, S.TEST_DONE, S.FAILED}, set(), SPEC, SPEC),
    # "full_speed: allowed from 0, 5 and 40 ... other states answer 718".
    Op.FULL_SPEED: row({S.WAITING, S.RENDERING, S.TEST_DONE}, set(), SPEC, SPEC),
    # labels, priority, node limit, over-time: the spec allows them before submit and names no state for the
    # rest; rayfarm allows them in every state.
    Op.SETTINGS: row(EVERY, set(), RAYFARM, RAYFARM),
    # taskJsonFile "stores a config file for a not-yet-submitted task".
    Op.UPLOAD_CONFIG: row({S.CREATED}, set(), SPEC, SPEC),
    # re-render frames (recommitTasks, recommitTaskFrames): the spec names no state; rayfarm allows any submitted
    # task that is not abandoned, pre-processing or in arrears.
    Op.RECOMMIT: row({S.WAITING, S.RENDERING, S.STOPPED, S.TIMEOUT_STOPPED, S.DONE, S.DONE_WITH_FAILURES, S.FAILED,
                      S.TEST_DONE}, set(), RAYFARM, RAYFARM),
    # stop frames (stopTaskFrames) "stops chosen waiting/running frames": rayfarm allows it only while something
    # waits or renders.
    Op.STOP_FRAMES: row({S.WAITING, S.RENDERING, S.TEST_DONE}, set(), RAYFARM, RAYFARM),
}

OPS = [Op.SUBMIT, Op.STOP, Op.START, Op.ABORT, Op.DELETE, Op.FULL_SPEED, Op.SETTINGS, Op.UPLOAD_CONFIG,
       Op.RECOMMIT, Op.STOP_FRAMES]
TASK_ID = 4711


def expected_outcome(op: str, status: TaskStatus) -> object:
    expected = EXPECTED[op]
    if status in expected.works:
        return True
    if status in expected.repeats:
        return False
    return ApiError


def test_table_covers_every_rule():
    assert set(EXPECTED) == set(states.RULES) == set(OPS)
    for expected in EXPECTED.values():
        assert not expected.works & expected.repeats


@pytest.mark.parametrize("status", list(S), ids=lambda s: s.name)
@pytest.mark.parametrize("op", OPS)
def test_check_table(op, status):
    expected = expected_outcome(op, status)
    if expected is ApiError:
        with pytest.raises(ApiError) as info:
            states.check(op, int(status), TASK_ID)
        message = info.value.message
        assert info.value.code == 718
        assert str(TASK_ID) in message
        assert message.startswith(f"Cannot {op} task {TASK_ID}: ")
        assert message.endswith(".") and message.isascii()
        if status == S.CREATED:
            assert "has not been submitted yet" in message
        else:
            assert f"(status {states.public_code(status)})" in message
            assert states.DESCRIPTIONS[status] in message
    else:
        assert states.check(op, int(status), TASK_ID) is expected


@pytest.mark.parametrize("status", list(S), ids=lambda s: s.name)
@pytest.mark.parametrize("op", OPS)
def test_deleted_tasks_refuse_everything_but_delete(op, status):
    if op == Op.DELETE:
        assert states.check(op, int(status), TASK_ID, deleted=True) is False  # a repeat: already deleted
        return
    with pytest.raises(ApiError) as info:
        states.check(op, int(status), TASK_ID, deleted=True)
    assert info.value.code == 718
    assert str(TASK_ID) in info.value.message
    assert "deleted" in info.value.message
    assert info.value.message.startswith(f"Cannot {op} task {TASK_ID}: ")


# The spec's sentences, one by one.

@pytest.mark.parametrize("status", [0, 5, 40])
def test_stop_allowed(status):
    assert states.check(Op.STOP, status, 1) is True


@pytest.mark.parametrize("status", [10, 20, 23])
def test_start_allowed(status):
    assert states.check(Op.START, status, 1) is True


@pytest.mark.parametrize("status, advice", [
    (35, "cannot be started again"),
    (40, "full speed"),
    (25, "recommitTasks"),
    (30, "recommitTasks"),
    (45, "recommitTasks"),
])
def test_start_refused(status, advice):
    with pytest.raises(ApiError) as info:
        states.check(Op.START, status, 1)
    assert info.value.code == 718
    assert advice in info.value.message


@pytest.mark.parametrize("status", [25, 30])
def test_abort_refused_when_done(status):
    with pytest.raises(ApiError) as info:
        states.check(Op.ABORT, status, 1)
    assert info.value.code == 718
    assert "finished" in info.value.message


def test_abort_abandoned_again_is_a_repeat():
    assert states.check(Op.ABORT, 35, 1) is False


@pytest.mark.parametrize("status", [0, 5, 8])
def test_delete_refused_while_running_or_waiting(status):
    with pytest.raises(ApiError) as info:
        states.check(Op.DELETE, status, 1)
    assert info.value.code == 718
    assert "stop the task first" in info.value.message


@pytest.mark.parametrize("status", [0, 5, 40])
def test_full_speed_allowed(status):
    assert states.check(Op.FULL_SPEED, status, 1) is True


@pytest.mark.parametrize("op", [Op.STOP, Op.START, Op.ABORT, Op.FULL_SPEED, Op.RECOMMIT, Op.STOP_FRAMES])
def test_unsubmitted_refuses_task_operations(op):
    with pytest.raises(ApiError) as info:
        states.check(op, S.CREATED, 99)
    assert info.value.code == 718
    assert "task 99" in info.value.message and "not been submitted yet" in info.value.message


@pytest.mark.parametrize("op", [Op.SUBMIT, Op.UPLOAD_CONFIG, Op.SETTINGS, Op.DELETE])
def test_unsubmitted_allows(op):
    assert states.check(op, S.CREATED, 99) is True


def test_check_unknown_status_is_an_error():
    with pytest.raises(ValueError):
        states.check(Op.STOP, 50, 1)


# ---------------------------------------------------------------- settle

RECOMPUTED = [S.WAITING, S.RENDERING, S.PREPROCESSING, S.DONE, S.DONE_WITH_FAILURES, S.FAILED]


@pytest.mark.parametrize("status", RECOMPUTED, ids=lambda s: s.name)
@pytest.mark.parametrize("counts, expected", [
    ({F.RENDERING: 1}, S.RENDERING),
    ({F.RENDERING: 1, F.WAITING: 3, F.DONE: 2}, S.RENDERING),
    ({F.RENDERING: 1, F.FAILED: 3, F.STOPPED: 2}, S.RENDERING),
    ({F.WAITING: 4}, S.WAITING),
    ({F.WAITING: 1, F.DONE: 3, F.FAILED: 2}, S.WAITING),
    ({F.WAITING: 1, F.STOPPED: 1}, S.WAITING),
    ({F.WAITING_PREPROCESS: 2, F.DONE: 1}, S.WAITING),
    ({F.DONE: 4}, S.DONE),
    ({F.DONE: 3, F.FAILED: 1}, S.DONE_WITH_FAILURES),
    ({F.DONE: 3, F.TIMED_OUT: 1}, S.DONE_WITH_FAILURES),
    ({F.FAILED: 2}, S.FAILED),
    ({F.TIMED_OUT: 2}, S.FAILED),
    ({F.FAILED: 1, F.TIMED_OUT: 1}, S.FAILED),
    ({F.STOPPED: 2}, S.STOPPED),
    ({F.STOPPED: 2, F.DONE: 1}, S.STOPPED),
    ({F.STOPPED: 1, F.FAILED: 1}, S.STOPPED),
    ({F.DONE: 2, F.FAILED: 0, F.TIMED_OUT: 0, F.WAITING: 0, F.RENDERING: 0, F.HELD: 0, F.STOPPED: 0}, S.DONE),
])
def test_settle_by_frames(status, counts, expected):
    if status == S.RENDERING and expected == S.WAITING:
        expected = S.RENDERING  # a task that has started keeps "rendering" while chunks wait between nodes
    assert states.settle(status, counts, priority_pending=0, pause_after_test=False) == (int(expected), False)
    assert states.settle(status, counts, priority_pending=0, pause_after_test=True) == (int(expected), False)


@pytest.mark.parametrize("status", [S.WAITING, S.RENDERING])
@pytest.mark.parametrize("counts, pending, pause, expected", [
    # priority frames still running or waiting: the rest stays held
    ({F.RENDERING: 1, F.HELD: 5}, 1, True, (5, False)),
    ({F.RENDERING: 1, F.HELD: 5}, 1, False, (5, False)),
    ({F.WAITING: 1, F.HELD: 5}, 1, True, (0, False)),
    ({F.HELD: 5}, 0, False, (0, True)),
    # priority frames done, pause requested: 40
    ({F.DONE: 1, F.HELD: 5}, 0, True, (40, False)),
    ({F.DONE: 1, F.FAILED: 1, F.HELD: 5}, 0, True, (40, False)),
    ({F.FAILED: 2, F.HELD: 5}, 0, True, (40, False)),
    # priority frames done, no pause: release the held frames, task waits for nodes
    ({F.DONE: 1, F.HELD: 5}, 0, False, (0, True)),
    ({F.DONE: 3, F.HELD: 1}, 0, False, (0, True)),
    ({F.DONE: 1, F.HELD: 5, F.RENDERING: 1}, 0, False, (5, True)),
    # pause requested but some frame (e.g. re-rendered) still renders/waits: not paused yet
    ({F.DONE: 1, F.HELD: 5, F.RENDERING: 1}, 0, True, (5, False)),
    ({F.DONE: 1, F.HELD: 5, F.WAITING: 1}, 0, True, (0, False)),
])
def test_settle_priority(status, counts, pending, pause, expected):
    if status == S.RENDERING and expected[0] == S.WAITING:
        expected = (int(S.RENDERING), expected[1])  # started tasks stay "rendering" between chunks
    assert states.settle(status, counts, priority_pending=pending, pause_after_test=pause) == expected


@pytest.mark.parametrize("status", [S.CREATED, S.STOPPED, S.ARREARS_STOPPED, S.TIMEOUT_STOPPED, S.ABANDONED,
                                    S.TEST_DONE], ids=lambda s: s.name)
@pytest.mark.parametrize("counts", [
    {F.RENDERING: 1}, {F.WAITING: 2}, {F.DONE: 3}, {F.FAILED: 1}, {F.HELD: 5, F.DONE: 1}, {},
])
def test_settle_keeps_held_states(status, counts):
    for pause in (True, False):
        assert states.settle(status, counts, priority_pending=0, pause_after_test=pause) == (int(status), False)


def test_settle_finished_task_rerendering():
    # recommit puts frames of a finished task back to waiting: the task waits again
    assert states.settle(S.DONE, {F.DONE: 3, F.WAITING: 1}, priority_pending=0, pause_after_test=False) == (0, False)
    assert states.settle(S.FAILED, {F.RENDERING: 1}, priority_pending=0, pause_after_test=False) == (5, False)


def test_settle_accepts_plain_ints():
    assert states.settle(5, {4: 2, 5: 1}, priority_pending=0, pause_after_test=False) == (30, False)


# ---------------------------------------------------------------- public codes

def test_public_code_created_is_zero():
    assert states.public_code(S.CREATED) == 0
    assert states.public_code(-1) == 0


@pytest.mark.parametrize("status", list(S), ids=lambda s: s.name)
def test_every_public_code_is_public(status):
    code = states.public_code(status)
    assert type(code) is int
    assert code in states.PUBLIC_TASK_CODES
    if status != S.CREATED:
        assert code == int(status)


def test_public_codes_are_the_eleven():
    assert states.PUBLIC_TASK_CODES == {0, 5, 8, 10, 20, 23, 25, 30, 35, 40, 45}
    assert {states.public_code(s) for s in S} == states.PUBLIC_TASK_CODES


def test_every_status_has_a_description():
    assert set(states.DESCRIPTIONS) == set(S)


def test_frame_codes_match_spec():
    assert {f.name: int(f) for f in F} == {"WAITING": 1, "RENDERING": 2, "STOPPED": 3, "DONE": 4, "FAILED": 5,
                                           "WAITING_PREPROCESS": 6, "HELD": 8, "TIMED_OUT": 11}
    assert {int(t) for t in states.FrameType} == {4, 5}
