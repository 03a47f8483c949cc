"""The time left of a rendering task, from its done chunks' times (rayfarm/domain/eta.py)."""

from rayfarm.domain.eta import estimate


def left(**counts):
    base = {"done_frames": 0, "done_seconds": 0.0, "waiting_frames": 0, "rendering_frames": 0,
            "rendering_progress": 0.0, "rendering_chunks": 0}
    return estimate(**{**base, **counts})


def test_no_estimate_before_a_chunk_is_done_or_when_nothing_is_left():
    assert left(waiting_frames=10, rendering_frames=2, rendering_chunks=2) is None
    assert left(done_frames=4, done_seconds=0.0, waiting_frames=3) is None  # done, but no time measured
    assert left(done_frames=4, done_seconds=40.0) is None  # nothing left


def test_frames_left_times_the_measured_frame_over_the_chunks_rendering_now():
    # 10 s a frame; 6 waiting + 2 rendering half done = 7 frames; 2 lanes
    found = left(done_frames=4, done_seconds=40.0, waiting_frames=6, rendering_frames=2, rendering_progress=50.0,
                 rendering_chunks=2)
    assert (found.seconds, found.per_frame, found.lanes) == (35.0, 10.0, 2)
    # nothing rendering this moment (between two chunks): one lane, not none
    assert left(done_frames=2, done_seconds=10.0, waiting_frames=4).seconds == 20.0
    # more nodes, sooner
    assert left(done_frames=2, done_seconds=10.0, waiting_frames=8, rendering_frames=4, rendering_chunks=4).seconds == 15.0
