"""py-spy profiles of the server while a benchmark measures (``--profile`` of bench.dispatch and bench.queue).

    python -m bench.profile PROFILE.txt [--limit 25] [--contains rayfarm]   # rank the functions of a profile

py-spy must be installed in the venv (`pip install py-spy`). BENCH_PROFILE_GIL=1 samples only the thread
holding the GIL (where the Python CPU goes); BENCH_PROFILE_RATE sets the samples per second (100).
"""

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from tests.support.processes import PYTHON, stop_process


@contextlib.contextmanager
def profiled(server, output: str | None) -> Iterator[None]:
    """py-spy the server process (and its children) while the block runs, if ``output`` is given.

    Writes collapsed stacks (flamegraph input) to ``output``; :func:`top_functions` ranks them."""
    if not output:
        yield
        return
    spy = shutil.which("py-spy") or str(Path(PYTHON).with_name("py-spy"))
    rate = os.environ.get("BENCH_PROFILE_RATE", "100")
    child = subprocess.Popen([spy, "record", "--pid", str(server.process.pid), "--format", "raw", "--rate", rate,
                              "--output", output, "--subprocesses",
                              *(["--gil"] if os.environ.get("BENCH_PROFILE_GIL") else [])],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    time.sleep(0.5)  # attach before the measured work starts
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.pid, signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            stop_process(child)


def top_functions(collapsed: str, limit: int = 25, contains: str = "") -> list[tuple[str, float]]:
    """Inclusive share of samples per function in a py-spy collapsed-stack file (each frame once per stack)."""
    totals: dict[str, int] = {}
    samples = 0
    for line in Path(collapsed).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or contains not in stack:
            continue
        n = int(count)
        samples += n
        for frame in set(stack.split(";")):
            totals[frame] = totals.get(frame, 0) + n
    ranked = sorted(totals.items(), key=lambda kv: -kv[1])[:limit]
    return [(name, round(100.0 * n / samples, 1)) for name, n in ranked]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("profile", help="a collapsed-stack file written by --profile")
    parser.add_argument("--limit", type=int, default=25)
    parser.add_argument("--contains", default="", help="only stacks with this text")
    args = parser.parse_args()
    for name, share in top_functions(args.profile, args.limit, args.contains):
        print(f"{share:5.1f} %  {name}")


if __name__ == "__main__":
    main()
