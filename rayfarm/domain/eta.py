"""How long a rendering task still needs, from the times its done chunks took (pure arithmetic).

The measure is the task's own: seconds of render per frame over its done chunks (their ``execute_seconds``
summed, divided by the frames they hold). What is left is every waiting or held frame plus the unfinished
part of the rendering ones; it renders on as many lanes as chunks render now (each node slot rendering one
of its chunks is a lane; at least one). No done chunk yet: no estimate.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Estimate:
    seconds: float  # time left, on the lanes rendering now
    per_frame: float  # measured render seconds of one frame
    lanes: int  # chunks rendering at once, the estimate's parallelism


def estimate(*, done_frames: int, done_seconds: float, waiting_frames: int, rendering_frames: int,
             rendering_progress: float, rendering_chunks: int) -> Estimate | None:
    """The time left; None while no chunk has finished with a measured time (or nothing is left)."""
    if done_frames <= 0 or done_seconds <= 0:
        return None
    left = waiting_frames + rendering_frames * (1.0 - min(max(rendering_progress, 0.0), 100.0) / 100.0)
    if left <= 0:
        return None
    per_frame = done_seconds / done_frames
    lanes = max(1, rendering_chunks)
    return Estimate(round(left * per_frame / lanes, 1), round(per_frame, 2), lanes)
