"""Command renders for the tests, and the records they keep of what the nodes really ran.

``Chunks``: one frame of a command task is the CHUNK script. It appends "start" and "done" lines to a
record file (frame, event, node, pid, time), runs as long as the speed file says (read while it runs, so
the test decides when running chunks end), optionally fails, and writes {output}/f_<frame>.txt naming the
node. The node is the worker's folder name.

``LONG_RUN``: a render that starts a child which notes SIGTERM and ignores it (only SIGKILL ends it), writes
both pids to a file, then sleeps for ten minutes: it never ends by itself while a test waits.
"""

import collections
from dataclasses import dataclass
from pathlib import Path

from tests.support.processes import PYTHON, wait_for

CHUNK = """
import os, sys, time
frame, output, record, speed = sys.argv[1:5]
failing = sys.argv[5].split(",") if len(sys.argv) > 5 else []
node = os.path.basename(output.rsplit(os.sep + "leases" + os.sep, 1)[0])  # <work dir>/leases/<lease>/out
def seconds():
    try:
        with open(speed) as handle:
            return float(handle.read())
    except (OSError, ValueError):
        return 0.1
def note(event):
    with open(record, "a") as handle:
        handle.write(f"{frame} {event} {node} {os.getpid()} {time.time():.3f}\\n")
began = time.time()
note("start")
print(f"rendering frame {frame} on node {node}", flush=True)
while time.time() - began < seconds():
    time.sleep(0.05)
if frame in failing:
    print(f"RenderError: frame {frame} cannot be rendered", flush=True)
    sys.exit(3)
with open(os.path.join(output, f"f_{frame}.txt"), "w") as handle:
    handle.write(f"{frame} {node}\\n")
note("done")
"""

LONG_RUN = """
import os, subprocess, sys, time
pids = sys.argv[1]
CHILD = '''
import os, signal, sys, time
def term(signum, frame):
    with open(sys.argv[1] + ".term", "a") as handle:
        handle.write("TERM ")
signal.signal(signal.SIGTERM, term)
with open(sys.argv[1], "w") as handle:
    handle.write(str(os.getpid()))
time.sleep(600)
'''
ready = pids + ".child"
child = subprocess.Popen([sys.executable, "-c", CHILD, ready])
while not os.path.exists(ready) or not open(ready).read():
    time.sleep(0.02)
with open(pids, "w") as handle:
    handle.write(f"{os.getpid()} {child.pid}")
print("started", flush=True)
time.sleep(600)
"""


def long_run(pids_file: Path) -> list[str]:
    """The command of a LONG_RUN render that writes its pids to ``pids_file``."""
    return [PYTHON, "-c", LONG_RUN, str(pids_file)]


def read_pids(pids_file: Path, timeout: float = 60) -> list[int]:
    """The pids a LONG_RUN render wrote (the render, then its child), once it has written them."""
    text = wait_for(lambda: pids_file.exists() and pids_file.read_text().strip(), timeout, "the render to start")
    return [int(pid) for pid in text.split()]


def child_got_sigterm(pids_file: Path) -> bool:
    """The LONG_RUN render's child received SIGTERM (and ignored it)."""
    term = pids_file.with_name(pids_file.name + ".child.term")
    return term.exists() and "TERM" in term.read_text()


@dataclass
class Record:
    frame: str
    event: str
    node: str
    pid: int
    time: float


class Chunks:
    """The CHUNK script, its record file and its speed file, in a folder of the test."""

    def __init__(self, folder: Path, seconds: float = 0.1):
        folder.mkdir(parents=True, exist_ok=True)
        self.script = folder / "chunk.py"
        self.script.write_text(CHUNK)
        self.record = folder / "record.txt"
        self.record.touch()
        self.speed = folder / "speed.txt"
        self.set_seconds(seconds)

    def set_seconds(self, seconds: float) -> None:
        """How long chunks run from their start: running ones read it too, so they end sooner or later."""
        temp = self.speed.with_suffix(".tmp")
        temp.write_text(str(seconds))
        temp.replace(self.speed)

    def command(self, failing: str = "") -> list[str]:
        """The task's command; the frames in ``failing`` (comma-separated) exit 3 instead of writing output."""
        args = [PYTHON, str(self.script), "{frame}", "{output}", str(self.record), str(self.speed)]
        return args + ([failing] if failing else [])

    def lines(self) -> list[Record]:
        rows = []
        for line in self.record.read_text().splitlines():
            frame, event, node, pid, at = line.split()
            rows.append(Record(frame, event, node, int(pid), float(at)))
        return rows

    def events(self, event: str, frame: str | None = None) -> list[Record]:
        return [r for r in self.lines() if r.event == event and (frame is None or r.frame == frame)]

    def running(self) -> list[Record]:
        """Runs that started and have not written their "done" line (yet, or ever)."""
        rows = self.lines()
        finished = {r.pid for r in rows if r.event == "done"}
        return [r for r in rows if r.event == "start" and r.pid not in finished]

    def done_counts(self) -> collections.Counter:
        return collections.Counter(r.frame for r in self.events("done"))
