"""One lease on this node: fetch the scene, run the renderer's commands, keep log, progress and usage."""

import logging
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rayfarm.worker import process
from rayfarm.worker.client import FarmError, Unreachable
from rayfarm.worker.confine import EXEC_FAILED, Policy, Sandbox
from rayfarm.worker.renderers import Renderer, RenderError, chunk_progress, renderer_for
from rayfarm.worker.scenes import SceneCache

log = logging.getLogger(__name__)

MAX_PENDING_LINES = 2000
MAX_LINE = 1000
TAIL_LINES = 4
ERROR_LINE = re.compile(r"\b(\w*Error|\w*Exception|Traceback|FATAL|Fatal)\b")
KILL_GRACE = 1.0
WATCH_TICK = 0.5  # seconds between two looks of the watchdog (time limit, stuck render)


@dataclass
class Outcome:
    result: str  # "done", "failed" or "timeout"
    error: str = ""
    outputs: list[Path] = field(default_factory=list)
    execute_seconds: float = 0.0
    avg_cpu: float = 0.0  # percent of the whole machine (all cores = 100)
    avg_memory: float = 0.0  # bytes of resident memory


def folder_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:80] or "lease"


class Job:
    def __init__(self, lease: dict[str, Any], work_dir: Path, scenes: SceneCache, policy: Policy) -> None:
        self.lease = lease
        self.lease_id = str(lease["leaseId"])
        self.work_dir = work_dir
        self.dir = work_dir / "leases" / folder_name(self.lease_id)
        self.output_dir = self.dir / "out"
        self.scenes = scenes
        self.policy = policy  # which software runs confined on this node (confine.py)
        self.timeout = float(lease.get("jobStopTime") or 0)
        # seconds a render may go without an output line, a new/grown output file or progress (0 = no limit)
        self.stall_timeout = float(lease.get("stallTimeout") or 0)
        self._active = time.monotonic()  # last sign of life of the running render
        self._began = self._active
        self._files: tuple[int, int] = (0, 0)  # output files (count, bytes) at the last look
        self.progress = 0.0
        self.cpu = 0.0
        self.memory = 0
        self.cancelled: str | None = None  # why the render was killed: "stop", "shutdown", "stale", "timeout", "stuck"
        self.rendered = threading.Event()  # set when the render part is over (reporting may follow)
        self.holds_slot = True  # counts among the node's busy slots (agent.py)
        self._lock = threading.RLock()
        self._proc: subprocess.Popen | None = None
        self._sampler: process.TreeSampler | None = None
        self._pending: deque[str] = deque()
        self._skipped = 0
        self._tail: deque[str] = deque(maxlen=TAIL_LINES)
        self._errors: deque[str] = deque(maxlen=3)
        self._cpu_samples: list[float] = []
        self._mem_samples: list[int] = []
        self._cpu_seconds = 0.0  # from the kernel's accounting of finished runs
        self._peak_memory = 0

    # ---- log lines -------------------------------------------------------------------------------------
    def add_line(self, line: str) -> None:
        line = line.rstrip("\r\n")[:MAX_LINE]
        self._active = time.monotonic()
        with self._lock:
            if line.strip():
                self._tail.append(line)
                if ERROR_LINE.search(line) and line not in self._errors:
                    self._errors.append(line)
            self._pending.append(line)
            if len(self._pending) > MAX_PENDING_LINES:
                self._pending.popleft()
                self._skipped += 1

    def take_log(self) -> list[str]:
        """Lines not yet sent (sent lines are forgotten; give them back with `return_log` if the call failed)."""
        with self._lock:
            lines = list(self._pending)
            if self._skipped:
                lines.insert(0, f"[rayfarm worker: {self._skipped} earlier lines were not sent]")
                self._skipped = 0
            self._pending.clear()
            return lines

    def return_log(self, lines: list[str]) -> None:
        with self._lock:
            room = MAX_PENDING_LINES - len(self._pending)
            keep = lines[-room:] if room > 0 else []
            self._skipped += len(lines) - len(keep)
            self._pending.extendleft(reversed(keep))

    def tail(self) -> str:
        """The error lines and last lines of the output, for a failure message."""
        with self._lock:
            errors = [line for line in self._errors if line not in self._tail]
            text = " | ".join(line.strip()[:200] for line in self._tail) or "(no output)"
        if errors:
            return " | ".join(line.strip()[:200] for line in errors) + " ... " + text
        return text

    # ---- resources ------------------------------------------------------------------------------------
    def sample(self) -> None:
        """Record CPU and memory of the running process tree (called on the agent's monitor tick)."""
        with self._lock:
            sampler = self._sampler
        if sampler is None:
            return
        usage = sampler.sample()
        if usage is None:
            return
        cpu, memory = usage
        with self._lock:
            if self._sampler is sampler:
                self.cpu, self.memory = cpu, memory
                self._cpu_samples.append(cpu)
                self._mem_samples.append(memory)

    # ---- killing --------------------------------------------------------------------------------------
    def cancel(self, reason: str) -> None:
        """Kill the render's process group now: SIGTERM, then SIGKILL after 1 s. Further runs are skipped."""
        with self._lock:
            if self.cancelled is None:
                self.cancelled = reason
            proc = self._proc
            if proc is None or proc.returncode is not None:
                return
            log.info("lease %s: killing render process group %d (%s)", self.lease_id, proc.pid, reason)
            process.signal_group(proc.pid, signal.SIGTERM)
        timer = threading.Timer(KILL_GRACE, self._kill_hard, args=(proc,))
        timer.daemon = True
        timer.start()

    def _kill_hard(self, proc: subprocess.Popen) -> None:
        with self._lock:
            if self._proc is proc and proc.returncode is None:
                process.signal_group(proc.pid, signal.SIGKILL)

    # ---- rendering ------------------------------------------------------------------------------------
    def render(self) -> Outcome:
        """Render the chunk; the caller reports the outcome unless `cancelled` is stop/shutdown/stale."""
        self._began = time.monotonic()
        watched = self.timeout > 0 or self.stall_timeout > 0
        if watched:
            WATCHDOG.add(self)
        try:
            return self._render()
        finally:
            self.rendered.set()
            if watched:
                WATCHDOG.remove(self)

    # ---- watchdog -------------------------------------------------------------------------------------
    def watch(self, now: float) -> None:
        """Kill the render when it runs past jobStopTime, or when it is stuck: a running process that printed
        nothing, wrote or grew no output file and reported no progress for `stall_timeout` seconds."""
        if self.rendered.is_set() or self.cancelled:
            return
        if self.timeout > 0 and now - self._began >= self.timeout:
            self.cancel("timeout")
            return
        if self.stall_timeout <= 0:
            return
        with self._lock:
            running = self._proc is not None and self._proc.returncode is None
        files = self._output_files()
        if files != self._files:
            self._files, self._active = files, now
        if running and now - self._active >= self.stall_timeout:
            self.cancel("stuck")

    def _output_files(self) -> tuple[int, int]:
        count = size = 0
        try:
            with os.scandir(self.output_dir) as entries:
                for entry in entries:
                    if entry.is_file(follow_symlinks=False):
                        count += 1
                        size += entry.stat(follow_symlinks=False).st_size
        except OSError:
            pass
        return count, size

    def _render(self) -> Outcome:
        try:
            make_folders(self.dir, self.output_dir)
        except FileExistsError:  # left by a node that was killed (lease ids are unique)
            shutil.rmtree(self.dir, ignore_errors=True)
            make_folders(self.dir, self.output_dir)
        try:
            renderer = renderer_for(self.lease.get("render") or {})
            if not self.policy.offers(renderer.software):
                raise RenderError(f"this node does not run {renderer.software} tasks: it cannot confine them "
                                  f"(bubblewrap does not work here) and was not started with --unconfined-commands.")
            scene = self.scenes.scene_for(self.lease, self.dir)
            commands = renderer.commands(self.lease, scene, self.output_dir)
        except RenderError as exc:
            return self._failed(str(exc))
        except (FarmError, Unreachable, OSError) as exc:
            return self._failed(f"the scene could not be fetched: {exc}")
        sandbox = self.policy.sandbox_for(renderer.software)
        readable = self._readable(scene, self.dir) if sandbox else []
        seconds = 0.0
        for index, argv in enumerate(commands):
            began = time.monotonic()
            try:
                code = self._run(argv, renderer, index, len(commands), sandbox, readable)
            except OSError as exc:
                return self._failed(not_started(argv[0], str(exc.strerror or exc), False))
            seconds += time.monotonic() - began
            if self.cancelled:
                return self._stopped(seconds)
            if code != 0:
                with self._lock:
                    last = self._tail[-1] if self._tail else ""
                if sandbox and last.startswith(EXEC_FAILED):
                    return self._failed(not_started(argv[0], last.rpartition(": ")[2], True), seconds)
                return self._failed(self._exited(argv[0], code), seconds)
        outputs = self._outputs()
        if renderer.needs_output and not outputs:
            return self._failed(f"{renderer.software} finished but wrote no output file. "
                                f"Last log lines: {self.tail()}", seconds)
        self.progress = 100.0
        return self._outcome("done", "", outputs, seconds)

    def _outputs(self) -> list[Path]:
        """The chunk's output files: regular files only (a link the job made in its folder must not make the
        node upload what it points to)."""
        with os.scandir(self.output_dir) as entries:
            return sorted(Path(entry.path) for entry in entries
                          if entry.is_file(follow_symlinks=False) and not entry.name.startswith("."))

    def _readable(self, scene: Path | None, folder: Path) -> list[str]:
        """What a confined render reads besides the system: `folder` when the scene (and the assets' folder
        tree) was placed there, else the shared root of a scene read in place, else the cached scene file."""
        if scene is None:
            return []
        path, folder = str(scene), str(folder)
        if path.startswith(folder + os.sep):
            return [folder]
        shared = self.lease.get("scene") or {}
        if shared.get("path") == path:
            # the whole shared root, for the scene's relative references (//../tex/wood.png); never a folder
            # that holds this node's own folders (other jobs, the cache)
            node = str(self.work_dir.resolve()) + os.sep
            for root in (str(shared.get("root") or "").rstrip("/"), str(scene.parent).rstrip("/")):
                if root and path.startswith(root + "/") and not node.startswith(root + "/"):
                    return [root]
        return [path]

    def _run(self, argv: list[str], renderer: Renderer, index: int, runs: int, sandbox: Sandbox | None,
             readable: list[str]) -> int:
        with self._lock:
            if self.cancelled:
                return -signal.SIGTERM
            log.info("lease %s: run %d/%d: %s%s", self.lease_id, index + 1, runs, argv[0],
                     " (confined)" if sandbox else "")
            if sandbox:
                proc = process.start(sandbox.wrap(argv, readable, str(self.output_dir)), self.output_dir, True)
            else:
                proc = process.start(argv, self.output_dir)
            self._proc, self._sampler = proc, process.TreeSampler(proc.pid, time.monotonic())
            self._active = time.monotonic()
        self.progress = max(self.progress, chunk_progress(index, runs, 0))
        assert proc.stdout is not None
        for line in proc.stdout:
            self.add_line(line)
            percent = renderer.parse_progress(line)
            if percent is not None:
                self.progress = max(self.progress, chunk_progress(index, runs, percent))
        process.wait_exited(proc.pid)
        process.kill_leftovers(proc.pid)
        with self._lock:
            code, cpu_seconds, peak = process.reap(proc)
            self._proc, self._sampler = None, None
            self._count(cpu_seconds, peak)
        self.progress = max(self.progress, chunk_progress(index + 1, runs, 0))
        return code

    def _count(self, cpu: float, memory: int) -> None:
        """Add a run's CPU seconds and peak memory to the chunk's."""
        with self._lock:
            self._cpu_seconds += cpu
            self._peak_memory = max(self._peak_memory, memory)

    def _outcome(self, result: str, error: str, outputs: list[Path], seconds: float) -> Outcome:
        with self._lock:
            if seconds > 0 and self._cpu_seconds > 0:
                cpu = self._cpu_seconds * 100.0 / seconds / process.CPUS
            else:
                cpu = sum(self._cpu_samples) / len(self._cpu_samples) if self._cpu_samples else 0.0
            memory = sum(self._mem_samples) / len(self._mem_samples) if self._mem_samples else self._peak_memory
        return Outcome(result, error, outputs, round(seconds, 3), round(cpu, 2), round(memory))

    def _exited(self, program: str, code: int) -> str:
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        return f"{Path(program).name} {how}. Last log lines: {self.tail()}"

    def _failed(self, error: str, seconds: float = 0.0) -> Outcome:
        log.warning("lease %s failed: %s", self.lease_id, error)
        return self._outcome("failed", error[:2000], [], seconds)

    def _stopped(self, seconds: float) -> Outcome:
        if self.cancelled == "stuck":
            error = (f"the render was stuck: it printed nothing, wrote no output file and made no progress for "
                     f"{self.stall_timeout:g} s (stall_timeout), so it was killed. Last log lines: {self.tail()}")
            log.warning("lease %s: %s", self.lease_id, error)
            return self._outcome("failed", error[:2000], [], seconds)
        if self.cancelled == "timeout":
            error = (f"the chunk ran longer than its time limit of {self.timeout:g} s (the task's chunk time-out, "
                     f"job_stop_time) and was stopped.")
            log.warning("lease %s: %s", self.lease_id, error)
            return self._outcome("timeout", error, [], seconds)
        return self._outcome("failed", f"the render was stopped ({self.cancelled}).", [], seconds)

    def cleanup(self) -> None:
        try:  # the usual end of a chunk whose outputs went: two empty folders
            os.rmdir(self.output_dir)
            os.rmdir(self.dir)
        except OSError:
            shutil.rmtree(self.dir, ignore_errors=True)


def not_started(program: str, reason: str, confined: bool) -> str:
    """Why a run's program could not start, as a sentence for the user."""
    where = (" Confined render jobs find programs in /usr/local/bin, /usr/bin and /bin, and the task's own files."
             if confined else "")
    return f"{program!r} could not be started on this node: {reason}.{where}"


def make_folders(*folders: Path) -> None:
    """Each folder in turn, its parent first (the leases' folder is made once)."""
    for folder in folders:
        try:
            os.mkdir(folder)
        except FileNotFoundError:
            folder.parent.mkdir(parents=True, exist_ok=True)
            os.mkdir(folder)


class Watchdog:
    """One thread looks at every running job of the node each WATCH_TICK (time limit, stuck render), instead of a
    thread per chunk; it ends when no job is left."""

    def __init__(self) -> None:
        self._jobs: set[Job] = set()
        self._lock = threading.Lock()
        self._running = False

    def add(self, job: "Job") -> None:
        with self._lock:
            self._jobs.add(job)
            if self._running:
                return
            self._running = True
        threading.Thread(target=self._run, name="rayfarm-watchdog", daemon=True).start()

    def remove(self, job: "Job") -> None:
        with self._lock:
            self._jobs.discard(job)

    def _run(self) -> None:
        while True:
            time.sleep(WATCH_TICK)
            with self._lock:
                jobs = list(self._jobs)
                if not jobs:
                    self._running = False
                    return
            now = time.monotonic()
            for job in jobs:
                try:
                    job.watch(now)
                except Exception:
                    log.exception("lease %s: the watchdog failed", job.lease_id)


WATCHDOG = Watchdog()
