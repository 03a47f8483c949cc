"""What each operation does to a task and its frames (domain/transitions.py), against the spec, by hand.

The expected moves are written out here from renderbus-api.md section 4 and docs/design.md ("Time limits",
invariants 3, 12, 13), not derived from the code. Together with test_states.py (when an operation is
allowed) this covers every transition of a task and of its frames.
"""

import pytest

from rayfarm.domain import states
from rayfarm.domain import transitions as tr
from rayfarm.domain.states import FrameStatus as F
from rayfarm.domain.states import Op
from rayfarm.domain.states import TaskStatus as S


def moves(change: tr.TaskChange) -> set[tuple[frozenset, F, str | None]]:
    return {(frozenset(m.before), m.after, m.reason) for m in change.frames}


def allowed(op: str) -> list[S]:
    return sorted(states.RULES[op][0])


# ---------------------------------------------------------------- user operations, every state they run in

@pytest.mark.parametrize("status", allowed(Op.STOP))
def test_stop_stops_waiting_and_rendering_frames_and_the_task(status):
    change = tr.stop(status)
    assert change.status == S.STOPPED and change.pre_status == states.public_code(status)
    assert change.stop_type == "user" and not change.settle
    assert moves(change) == {(frozenset({F.WAITING, F.RENDERING}), F.STOPPED, "user")}  # held frames stay held


@pytest.mark.parametrize("status", allowed(Op.START))
def test_start_makes_stopped_frames_and_the_over_time_frame_wait_again(status):
    change = tr.start(status)
    assert change.status == S.WAITING and change.pre_status == states.public_code(status)
    assert change.stop_type is None and change.completed is None and change.settle
    assert moves(change) == {(frozenset({F.STOPPED}), F.WAITING, None), (frozenset({F.TIMED_OUT}), F.WAITING, None)}
    timed_out = next(m for m in change.frames if F.TIMED_OUT in m.before)
    assert timed_out.only_reason == "overtime"  # frames that timed out on job_stop_time stay failed


@pytest.mark.parametrize("status", allowed(Op.ABORT))
def test_abort_stops_every_unfinished_frame_for_good(status):
    change = tr.abort(status)
    assert change.status == S.ABANDONED and change.pre_status == states.public_code(status)
    assert change.stop_type == "abort" and change.completed == "now"
    assert moves(change) == {(frozenset({F.WAITING, F.RENDERING, F.HELD}), F.STOPPED, "abort")}  # done frames stay


@pytest.mark.parametrize("status", allowed(Op.FULL_SPEED))
def test_full_speed_releases_held_frames_and_resumes_a_paused_task(status):
    change = tr.full_speed(status)
    assert moves(change) == {(frozenset({F.HELD}), F.WAITING, None)} and change.settle
    assert change.values == {"pause_after_test": False}  # a pending pause after the priority frames is cancelled
    if status == S.TEST_DONE:
        assert change.status == S.WAITING and change.pre_status == 40
    else:
        assert change.status is None  # a waiting or rendering task keeps its status; settle decides


@pytest.mark.parametrize("status", allowed(Op.RECOMMIT))
def test_rerender_makes_chosen_frames_wait_with_fresh_attempts(status):
    change = tr.rerender(status, frozenset({F.FAILED, F.TIMED_OUT}))
    assert moves(change) == {(frozenset({F.FAILED, F.TIMED_OUT}), F.WAITING, None)}
    assert all(m.rerender for m in change.frames) and change.settle
    if status in (S.DONE, S.DONE_WITH_FAILURES, S.FAILED, S.TEST_DONE):
        assert change.status == S.WAITING and change.completed is None
        assert change.pre_status == states.public_code(status)
    else:
        assert change.status is None


def test_stop_frames_only_stops_frames_that_wait_render_or_are_held():
    change = tr.stop_frames(frozenset({F.WAITING, F.RENDERING, F.HELD, F.DONE}))
    assert moves(change) == {(frozenset({F.WAITING, F.RENDERING, F.HELD}), F.STOPPED, "user")} and change.settle
    assert change.status is None


@pytest.mark.parametrize("status", [S.WAITING, S.RENDERING])
def test_over_time_stop_times_out_the_runaway_frame_and_stops_the_task(status):
    change = tr.over_time_stop(status)
    assert change.status == S.TIMEOUT_STOPPED and change.pre_status == int(status) and change.stop_type == "overtime"
    assert moves(change) == {(frozenset({F.WAITING, F.RENDERING}), F.STOPPED, "overtime")}
    assert (tr.OVER_TIME_FRAME.before, tr.OVER_TIME_FRAME.after) == ({F.RENDERING}, F.TIMED_OUT)


def test_pre_status_is_always_the_public_code():
    for op, change in ((Op.STOP, tr.stop), (Op.ABORT, tr.abort), (Op.START, tr.start)):
        for status in allowed(op):
            assert change(status).pre_status in states.PUBLIC_TASK_CODES


# ---------------------------------------------------------------- a leased chunk's life

def test_a_lease_takes_a_waiting_chunk_and_a_result_finishes_a_rendering_one():
    assert (tr.LEASE.before, tr.LEASE.after) == ({F.WAITING}, F.RENDERING)
    assert (tr.DONE.before, tr.DONE.after) == ({F.RENDERING}, F.DONE)
    assert (tr.RELEASE_HELD.before, tr.RELEASE_HELD.after) == ({F.HELD}, F.WAITING)


@pytest.mark.parametrize("reason", ["node lost", "node restarted", "node disabled", "lease expired"])
def test_a_chunk_whose_node_went_away_waits_again_without_an_attempt(reason):
    move = tr.requeue(reason)
    assert (move.before, move.after, move.reason) == ({F.RENDERING}, F.WAITING, reason)
    assert not move.rerender


@pytest.mark.parametrize("timed_out, final, reason", [(False, F.FAILED, "error"), (True, F.TIMED_OUT, "timeout")])
def test_failures_count_attempts_until_the_limit(timed_out, final, reason):
    assert tr.after_failure(0, 3, timed_out=timed_out) == (F.WAITING, 1, reason)
    assert tr.after_failure(1, 3, timed_out=timed_out) == (F.WAITING, 2, reason)
    assert tr.after_failure(2, 3, timed_out=timed_out) == (final, 3, reason)
    assert tr.after_failure(0, 1, timed_out=timed_out) == (final, 1, reason)
    assert tr.after_failure(0, 0, timed_out=timed_out) == (final, 1, reason)  # at least one attempt
