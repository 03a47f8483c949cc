"""A lease on a node with persistent Blender sessions (session.py): a Blender chunk renders in its task's session.

Everything else of a job stays as in job.py: its log (only this chunk's lines, from the command sent to the
session to the session's end-of-chunk line), progress, CPU and memory, the time limit and the stuck-render
watchdog (they kill the session, and the chunk counts an attempt), the stop (kills the session at once).
Command tasks, and Blender tasks that opt out (`persistent_session: false` in the lease's render dict), run
one-shot, as on a node without sessions.
"""

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rayfarm.worker import process
from rayfarm.worker.client import FarmError, Unreachable
from rayfarm.worker.confine import Policy, Sandbox
from rayfarm.worker.job import Job, Outcome, folder_name
from rayfarm.worker.renderers import RenderError
from rayfarm.worker.renderers.blender import BlenderRenderer
from rayfarm.worker.renderers.blender_session import verdict
from rayfarm.worker.scenes import SceneCache
from rayfarm.worker.session import Session, SessionPool, describe_exit, session_key

log = logging.getLogger(__name__)


def wants_session(render: dict[str, Any]) -> bool:
    """A Blender task that did not opt out (task.json `task_info.persistent_session: "0"`)."""
    software = str(render.get("software") or "").lower()
    return software == BlenderRenderer.software and render.get("persistent_session") is not False


class SessionJob(Job):
    def __init__(self, lease: dict[str, Any], work_dir: Path, scenes: SceneCache, policy: Policy,
                 sessions: SessionPool) -> None:
        super().__init__(lease, work_dir, scenes, policy)
        self.sessions = sessions
        self._session: Session | None = None  # while a chunk runs in it
        self._chunk: tuple[Session, Path] | None = None  # the session and folder that hold this chunk's outputs

    def cancel(self, reason: str) -> None:
        """A chunk in a session: kill the session now (SIGKILL; the next chunk starts a fresh one). A chunk whose
        render is over (its outputs upload) ends its session if no chunk took it meanwhile: nothing of a stopped
        task stays running."""
        with self._lock:
            session = self._session
            if session is not None:
                if self.cancelled is None:
                    self.cancelled = reason
                log.info("lease %s: killing Blender session %d (%s)", self.lease_id, session.number, reason)
                session.kill()
                return
        if self._chunk is not None:
            self.sessions.end_idle(self._chunk[0], f"a chunk of its task was stopped ({reason})")
        super().cancel(reason)

    def cleanup(self) -> None:
        super().cleanup()
        if self._chunk is not None:
            session, folder = self._chunk
            session.drop_chunk_folder(folder)

    def _render(self) -> Outcome:
        render = self.lease.get("render") or {}
        if not wants_session(render):
            self.sessions.make_room()
            return super()._render()
        renderer = BlenderRenderer(render)
        sandbox = self.policy.sandbox_for(renderer.software)
        key = session_key(self.lease, sandbox is not None)
        session = self.sessions.take(key)
        if session is None:
            session = self.sessions.new(key)
            try:
                failure = self._start(session, renderer, sandbox)
            except BaseException:
                self.sessions.release(session, healthy=False)
                raise
            if failure is not None:
                self.sessions.release(session, healthy=False)
                return failure
        try:
            return self._chunk_in(session, renderer)
        except BaseException:  # whatever went wrong, the pool does not keep a session nobody uses
            self.sessions.release(session, healthy=False)
            raise

    def _chunk_in(self, session: Session, renderer: BlenderRenderer) -> Outcome:
        self.output_dir = session.chunk_folder(folder_name(self.lease_id))
        self._chunk = (session, self.output_dir)
        try:
            command = renderer.session_chunk(self.lease, session.scene, self.output_dir)
        except RenderError as exc:
            self.sessions.release(session, healthy=True)  # nothing was sent to it
            return self._failed(str(exc))
        return self._in(session, renderer, command)

    def _start(self, session: Session, renderer: BlenderRenderer, sandbox: Sandbox | None) -> Outcome | None:
        """Fetch the scene into the session's folder (or use the cache) and start Blender on it; the failure's
        outcome, or None."""
        try:
            scene = self.scenes.scene_for(self.lease, session.folder)
            if scene is None:
                raise RenderError("the task has no scene file to render.")
            argv = renderer.session_argv(scene)  # RenderError for a format Blender does not know
        except RenderError as exc:
            return self._failed(str(exc))
        except (FarmError, Unreachable, OSError) as exc:
            return self._failed(f"the scene could not be fetched: {exc}")
        session.scene = scene
        if sandbox is not None:
            argv = sandbox.wrap(argv, self._readable(scene, session.folder), str(session.out))
        log.info("lease %s: starting Blender session %d%s", self.lease_id, session.number,
                 " (confined)" if sandbox else "")
        try:
            session.start(argv, sandbox is not None)
        except OSError as exc:
            return self._failed(f"{renderer.executable!r} could not be started on this node: {exc.strerror or exc}.")
        return None

    def _in(self, session: Session, renderer: BlenderRenderer, command: dict[str, Any]) -> Outcome:
        """Render the chunk in `session` and say how it went; the session goes back to the pool or ends."""
        assert session.proc is not None
        with self._lock:
            if self.cancelled:
                self.sessions.release(session, healthy=False)
                return self._stopped(0.0)
            self._proc, self._session = session.proc, session
            self._sampler = process.TreeSampler(session.proc.pid, time.monotonic())
            self._active = time.monotonic()
        if session.chunks:
            self.add_line(f"[rayfarm worker: rendered in Blender session {session.number} of this node, its chunk "
                          f"{session.chunks + 1}: the scene was loaded for its first chunk]")
        # a new session's first chunk counts all of the process's CPU: loading the scene is part of its work
        began, cpu = time.monotonic(), session.cpu_seconds() if session.chunks else 0.0
        result, sentence = session.render(command, self._line_handler(renderer), verdict)
        seconds = time.monotonic() - began
        cpu, memory = max(0.0, session.cpu_seconds() - cpu), session.memory()
        with self._lock:
            self._proc, self._sampler, self._session = None, None, None
            self._cpu_seconds += cpu
            self._peak_memory = max(self._peak_memory, memory)
        if result == "exited":
            code = session.wait_exit()
            self.sessions.release(session, healthy=False)
            if self.cancelled:
                return self._stopped(seconds)
            return self._failed(f"blender {describe_exit(code)} (in a Blender session; the next chunk starts a "
                                f"fresh one). Last log lines: {self.tail()}", seconds)
        if self.cancelled:
            self.sessions.release(session, healthy=False)
            return self._stopped(seconds)
        outputs = self._outputs() if result == "done" else []
        self.sessions.release(session, healthy=bool(outputs))
        if result != "done":
            return self._failed(f"blender could not render the chunk: {sentence or result}. "
                                f"Last log lines: {self.tail()}", seconds)
        if not outputs:
            return self._failed(f"blender finished but wrote no output file. Last log lines: {self.tail()}", seconds)
        self.progress = 100.0
        return self._outcome("done", "", outputs, seconds)

    def _line_handler(self, renderer: BlenderRenderer) -> Callable[[str], None]:
        def on_line(line: str) -> None:
            self.add_line(line)
            percent = renderer.parse_progress(line)
            if percent is not None:
                self.progress = max(self.progress, percent)
        return on_line
