"""Which operation is allowed in which task state (spec section 4), and settling a task's status."""

import pytest

from rayfarm.domain import states
from rayfarm.domain.states import FrameStatus as F
from rayfarm.domain.states import Op, TaskStatus
from rayfarm.protocol.codes import ApiError

S = TaskStatus
EVERY = frozenset(S)

# The spec's table, written out by hand (NOT derived from states.RULES):
# op -> (states where the op does its work, states where it is a no-op repeat that succeeds).
# Every other state answers 718.
EXPECTED = {
    # submit only works on a task that was never submitted; submitting again is an idempotent success.
    Op.SUBMIT: ({S.CREATED}, EVERY - {S.CREATED}),
    # "stop_task: allowed from 0, 5, 40"; stopping a stopped task again changes nothing.
    Op.STOP: ({S.WAITING, S.RENDERING, S.TEST_DONE}, {S.STOPPED, S.TIMEOUT_STOPPED, S.ARREARS_STOPPED}),
    # "start_task: allowed from 10, 23 (and 20)"; 40 needs full speed, 35 can never start again.
    Op.START: ({S.STOPPED, S.TIMEOUT_STOPPED, S.ARREARS_STOPPED}, {S.WAITING, S.RENDERING}),
    # "abort_task: allowed from any state that is not already done (25/30/35)"; never for unsubmitted ids.
    Op.ABORT: ({S.WAITING, S.RENDERING, S.PREPROCESSING, S.STOPPED, S.ARREARS_STOPPED, S.TIMEOUT_STOPPED,
                S.TEST_DONE, S.FAILED}, {S.ABANDONED}),
    # "delete_task: allowed when nothing of the task runs or waits (not 0, 5, 8 ...)".
    Op.DELETE: ({S.CREATED, S.STOPPED, S.ARREARS_STOPPED, S.TIMEOUT_STOPPED, S.DONE, S.DONE_WITH_FAILURES,
                 S.ABANDONED, S.TEST_DONE, S.FAILED}, set()),
    # "full_speed: allowed from 0, 5 and 40 ... other states answer 718".
    Op.FULL_SPEED: ({S.WAITING, S.RENDERING, S.TEST_DONE}, set()),
    # labels, priority, node limit, over-time: allowed even before submit.
    Op.SETTINGS: (set(EVERY), set()),
    # taskJsonFile "stores a config file for a not-yet-submitted task".
    Op.UPLOAD_CONFIG: ({S.CREATED}, set()),
    # re-render frames: any submitted task that is not abandoned, pre-processing or in arrears.
    Op.RECOMMIT: ({S.WAITING, S.RENDERING, S.STOPPED, S.TIMEOUT_STOPPED, S.DONE, S.DONE_WITH_FAILURES, S.FAILED,
                   S.TEST_DONE}, set()),
    # stop frames: only while something waits or renders.
    Op.STOP_FRAMES: ({S.WAITING, S.RENDERING, S.TEST_DONE}, set()),
}

OPS = [Op.SUBMIT, Op.STOP, Op.START, Op.ABORT, Op.DELETE, Op.FULL_SPEED, Op.SETTINGS, Op.UPLOAD_CONFIG,
       Op.RECOMMIT, Op.STOP_FRAMES]
TASK_ID = 4711


def expected_outcome(op: str, status: TaskStatus) -> object:
    active, repeat = EXPECTED[op]
    if status in active:
        return True
    if status in repeat:
        return False
    return ApiError


def test_table_covers_every_rule():
    assert set(EXPECTED) == set(states.RULES) == set(OPS)
    for active, repeat in EXPECTED.values():
        assert not set(active) & set(repeat)


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
