"""Persistent sessions on a node: one long-lived process per task a slot works on, chunk after chunk.

A Blender session is a `blender -b scene --python-expr LOOP` process (renderers/blender_session.py) that loaded
its task's scene once and renders the chunks it is sent, one JSON line each on its stdin. A command session is
one bubblewrap sandbox (confine.py) whose pid 1 is the launcher (renderers/command_session.py, launcher.py): it
runs each chunk's command and, once it ended, kills whatever the chunk left running and empties the sandbox's
scratch space. A session runs like a one-shot render: its own process group, confined by bubblewrap where the
node confines its software (command sessions exist only confined), dying with the node. Its folder
`<work dir>/sessions/<n>/` holds the scene's folder tree when the task has inputs (`inputs/`) and `out/`, the
one folder it may write: each chunk writes into `out/<lease>/`, from where the node uploads that chunk's outputs
(while the next chunk renders) and then removes it; anything else a chunk leaves in `out/` is removed after it.

The pool keeps at most one session per slot: a chunk takes the idle session of its task (same scene, inputs,
output format and confinement) or starts a new one, and idle sessions of other tasks are closed so that running
chunks plus idle sessions never exceed the slots: a slot that takes work of another task ends its session, and
no session ever runs a chunk of another task than its own. A session also ends when it has been idle
`idle_seconds`, when a Blender session's processes use more than `memory_limit` bytes after a chunk, when a
chunk failed in a Blender session (the retry starts a fresh one; a command that failed leaves nothing behind in
its session, which goes on), when a command session could not empty its scratch space, and when it is killed: a
stop, a time limit or a stuck render kills the whole session (SIGKILL to its process group; bubblewrap takes
its PID namespace with it), so a crash or a kill costs that chunk an attempt and the next chunk starts fresh.
"""

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

import psutil

from rayfarm.worker import process

log = logging.getLogger(__name__)

BLENDER = "Blender"  # a session's kind: Blender, or the software it runs ("command": a command session)
DEFAULT_IDLE_SECONDS = 60.0
START_TIMEOUT = 60.0  # seconds to wait for the process to be started (not for the scene to load)
MEMORY_SHARE = 0.75  # default bound: this share of the machine's memory, divided among the slots


def default_memory_limit(slots: int) -> int:
    return int(psutil.virtual_memory().total * MEMORY_SHARE / max(1, slots))


def session_key(lease: dict[str, Any], confined: bool) -> Hashable:
    """What a session is good for: one task, one scene file and set of inputs (by content), one output format (set
    as the session starts), one confinement."""
    scene = lease.get("scene") or {}
    inputs = tuple(sorted((str(item.get("path")), str(item.get("sha256"))) for item in lease.get("inputs") or []))
    file_format = (lease.get("render") or {}).get("format")
    return (lease.get("taskId"), scene.get("sha256"), scene.get("path"), inputs, file_format, confined)


class Session:
    """One long-running render process, fed a command per chunk on stdin; its lines on stdout."""

    def __init__(self, number: int, key: Hashable, folder: Path, kind: str = BLENDER) -> None:
        self.number = number
        self.key = key
        self.folder = folder
        self.kind = kind
        self.name = f"{kind} session {number}"
        self.out = folder / "out"  # writable for the process: one subfolder per chunk
        self.proc: subprocess.Popen | None = None
        self.scene: Path | None = None  # the scene file it loaded
        self.chunks = 0  # chunks sent to it
        self.idle_since = time.monotonic()
        self.code: int | None = None  # exit code once it ended
        self._started = threading.Event()
        self.exited = threading.Event()
        self._error: OSError | None = None
        self._known: dict[int, psutil.Process] = {}  # its processes at the last look
        self._chunk_folders: set[str] = set()  # of chunks not reported yet
        self._lock = threading.Lock()

    # ---- life --------------------------------------------------------------------------------------------
    def start(self, argv: list[str], confined: bool) -> None:
        """Start the process from a thread of its own that outlives it (the death signal that kills it with
        the node fires when the starting thread ends), then reaps it. OSError when it cannot start."""
        self.out.mkdir(parents=True, exist_ok=True)
        owner = threading.Thread(target=self._own, args=(argv, confined), name=f"rayfarm-session-{self.number}",
                                 daemon=True)
        owner.start()
        if not self._started.wait(START_TIMEOUT):
            raise OSError(f"the session process did not start within {START_TIMEOUT:g} s")
        if self._error is not None:
            raise self._error

    def _own(self, argv: list[str], confined: bool) -> None:
        try:
            self.proc = process.start(argv, self.out, confined, stdin=True)
        except OSError as exc:
            self._error = exc
            self.exited.set()
            self._started.set()
            self._remove_if_unused()
            return
        self._started.set()
        pid = self.proc.pid
        process.wait_exited(pid)
        process.kill_leftovers(pid)
        self.code, _, _ = process.reap(self.proc)
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except (OSError, ValueError):
                pass
        self.exited.set()
        log.info("%s ended (%s) after %d run(s)", self.name, describe_exit(self.code), self.chunks)
        self._remove_if_unused()

    def alive(self) -> bool:
        return self.proc is not None and not self.exited.is_set()

    def kill(self) -> None:
        """SIGKILL its whole process group now (a confined session's PID namespace goes with bubblewrap)."""
        if self.proc is not None and not self.exited.is_set():
            process.signal_group(self.proc.pid, signal.SIGKILL)

    def wait_exit(self, timeout: float = 5.0) -> int | None:
        self.exited.wait(timeout)
        return self.code

    # ---- chunks ------------------------------------------------------------------------------------------
    def chunk_folder(self, name: str) -> Path:
        folder = self.out / name
        folder.mkdir()
        with self._lock:
            self._chunk_folders.add(name)
        return folder

    def drop_chunk_folder(self, folder: Path) -> None:
        """A chunk's outputs were reported: remove them (and the session's folder once it ended and is empty)."""
        shutil.rmtree(folder, ignore_errors=True)
        with self._lock:
            self._chunk_folders.discard(folder.name)
        self._remove_if_unused()

    def tidy(self) -> None:
        """Remove what a chunk left in `out/` besides the chunks' own folders: nothing of it reaches the next chunk."""
        with self._lock:
            keep = set(self._chunk_folders)
        try:
            with os.scandir(self.out) as entries:
                strays = [entry for entry in entries if entry.name not in keep]
        except OSError:
            return
        for entry in strays:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)

    def _remove_if_unused(self) -> None:
        with self._lock:
            if not self.exited.is_set() or self._chunk_folders:
                return
        shutil.rmtree(self.folder, ignore_errors=True)

    def render(self, command: dict[str, Any], on_line: Callable[[str], None],
               verdict: Callable[[str, str], tuple[str, str, str] | None]) -> tuple[str, str]:
        """Send one chunk and pass its lines to `on_line` until its end: ("done", ""), ("failed", sentence),
        or ("exited", "") when the process is gone (crashed or killed)."""
        proc = self.proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        self.chunks += 1
        marker = command["marker"]
        try:
            proc.stdin.write(json.dumps(command) + "\n")
            proc.stdin.flush()
        except (OSError, ValueError):
            return "exited", ""
        while True:
            try:
                line = proc.stdout.readline()
            except (OSError, ValueError):
                line = ""
            if not line:
                return "exited", ""
            ended = verdict(line, marker)
            if ended is None:
                on_line(line)
                continue
            before, result, sentence = ended
            if before.strip():
                on_line(before)
            self.idle_since = time.monotonic()
            return result, sentence

    # ---- resources ---------------------------------------------------------------------------------------
    def _processes(self) -> list[psutil.Process]:
        """Its processes now (bubblewrap and Blender, and whatever Blender started), the known ones kept (psutil
        keeps their identity)."""
        if self.proc is None or self.exited.is_set():
            return []
        try:
            pids = process.tree(self.proc.pid)
        except psutil.Error:
            return []
        found = {}
        for pid in pids:
            try:
                found[pid] = self._known.get(pid) or psutil.Process(pid)
            except psutil.Error:
                continue
        self._known = found
        return list(found.values())

    def memory(self) -> int:
        """Resident bytes of its processes now."""
        total = 0
        for proc in self._processes():
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                continue
        return total

    def cpu_seconds(self) -> float:
        """CPU seconds its processes used so far (with their reaped children)."""
        total = 0.0
        for proc in self._processes():
            try:
                times = proc.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system + times.children_user + times.children_system
        return total


def describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    return f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"


class SessionPool:
    """The node's sessions: at most one per slot, counting the chunks that render now (`rendering()`)."""

    def __init__(self, root: Path, slots: int, rendering: Callable[[], int], idle_seconds: float = DEFAULT_IDLE_SECONDS,
                 memory_limit: int | None = None) -> None:
        self.root = root
        self.slots = slots
        self.rendering = rendering
        self.idle_seconds = idle_seconds
        self.memory_limit = memory_limit if memory_limit is not None else default_memory_limit(slots)
        self._idle: list[Session] = []  # oldest first
        self._busy: set[Session] = set()
        self._count = 0
        self._lock = threading.Lock()

    def clear_folder(self) -> None:
        """At the node's start: no session outlives its node, so what a previous run left is removed."""
        shutil.rmtree(self.root, ignore_errors=True)

    def take(self, key: Hashable) -> Session | None:
        """The idle session for `key`, now busy; None when there is none (start one with `new`)."""
        with self._lock:
            for session in self._idle:
                if session.key == key and session.alive():
                    self._idle.remove(session)
                    self._busy.add(session)
                    return session
        return None

    def new(self, key: Hashable, kind: str = BLENDER) -> Session:
        """A session not started yet, counted busy; idle sessions of other tasks make room for it."""
        self.make_room()
        with self._lock:
            self._count += 1
            session = Session(self._count, key, self.root / str(self._count), kind)
            self._busy.add(session)
        return session

    def make_room(self) -> None:
        """Close the oldest idle sessions until the chunks rendering now plus the idle sessions fit in the
        slots: called by a chunk that starts without taking an idle session (it counts among `rendering()`)."""
        closing = []
        with self._lock:
            self._idle = [session for session in self._idle if session.alive()]
            while self._idle and self.rendering() + len(self._idle) > self.slots:
                closing.append(self._idle.pop(0))
        for session in closing:
            log.info("closing %s: its slot takes other work", session.name)
            session.kill()

    def release(self, session: Session, healthy: bool, reason: str = "its chunk did not succeed") -> None:
        """A chunk ended in `session`: keep it for the task's next chunk, or end it (not `healthy`: for `reason`; a
        process gone; a Blender session over the memory bound)."""
        if healthy:
            reason = self._unfit(session)
        with self._lock:
            self._busy.discard(session)
            if reason is None:
                session.idle_since = time.monotonic()
                self._idle.append(session)
        if reason is not None:
            if session.alive():
                log.info("closing %s: %s", session.name, reason)
            session.kill()

    def _unfit(self, session: Session) -> str | None:
        """Why a session whose chunk went well must end anyway, or None."""
        if not session.alive():
            return "its process is gone"
        if session.kind != BLENDER:  # its chunks' processes are gone: only the launcher's few MiB are left
            return None
        used = session.memory()
        if used > self.memory_limit:
            return f"it uses {used / 2**20:.0f} MiB, more than the bound of {self.memory_limit / 2**20:.0f} MiB"
        return None

    def end_idle(self, session: Session, reason: str) -> None:
        """End `session` if it is idle (a busy one renders a chunk that keeps it)."""
        with self._lock:
            if session not in self._idle:
                return
            self._idle.remove(session)
        log.info("closing %s: %s", session.name, reason)
        session.kill()

    def expire(self) -> None:
        """Close sessions idle longer than `idle_seconds` (the node calls this on its monitor tick)."""
        now = time.monotonic()
        with self._lock:
            old = [session for session in self._idle if now - session.idle_since >= self.idle_seconds
                   or not session.alive()]
            self._idle = [session for session in self._idle if session not in old]
        for session in old:
            if session.alive():
                log.info("closing %s: idle for %.0f s", session.name, now - session.idle_since)
            session.kill()

    def idle(self) -> list[Session]:
        with self._lock:
            return list(self._idle)

    def count(self) -> int:
        """Sessions idle or rendering."""
        with self._lock:
            return len(self._idle) + len(self._busy)

    def close_all(self) -> None:
        with self._lock:
            sessions = [*self._idle, *self._busy]
            self._idle, self._busy = [], set()
        for session in sessions:
            session.kill()
        for session in sessions:
            session.wait_exit(5.0)
