"""A lease on a node with persistent sessions (session.py): a chunk runs in its task's session when it has one.

A Blender chunk renders in its task's Blender session; a command chunk, on a node that confines commands, runs in
its task's command session (one sandbox whose launcher runs the chunk's command, renderers/command_session.py).
Everything else of a job stays as in job.py: its log (only this chunk's lines, from the command sent to the
session to the session's end-of-chunk line), progress, CPU and memory, the time limit and the stuck-render
watchdog (they kill the session, and the chunk counts an attempt), the stop (kills the session at once).
Tasks that opt out (`persistent_session: false` in the lease's render dict), and command tasks on a node that runs
them unconfined (or where the launcher does not work), run one-shot, as on a node without sessions.
"""

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rayfarm.worker import process
from rayfarm.worker.client import FarmError, Unreachable
from rayfarm.worker.confine import COMMAND, Policy, Sandbox
from rayfarm.worker.job import Job, Outcome, folder_name, not_started
from rayfarm.worker.renderers import RenderError, chunk_progress, command_session
from rayfarm.worker.renderers.blender import BlenderRenderer
from rayfarm.worker.renderers.blender_session import verdict
from rayfarm.worker.renderers.command import CommandRenderer
from rayfarm.worker.scenes import SceneCache
from rayfarm.worker.session import BLENDER, Session, SessionPool, describe_exit, session_key

log = logging.getLogger(__name__)


def session_kind(render: dict[str, Any], sandbox: Sandbox | None) -> str | None:
    """The kind of session a task's chunks run in on this node (`sandbox`: how it confines the task's software), or
    None: one-shot (task.json `task_info.persistent_session: "0"`, or commands that cannot have a session here)."""
    if render.get("persistent_session") is False:
        return None
    software = str(render.get("software") or "").lower()
    if software == BlenderRenderer.software:
        return BLENDER
    if software == COMMAND and sandbox is not None and sandbox.python:
        return COMMAND
    return None


class SessionJob(Job):
    def __init__(self, lease: dict[str, Any], work_dir: Path, scenes: SceneCache, policy: Policy,
                 sessions: SessionPool) -> None:
        super().__init__(lease, work_dir, scenes, policy)
        self.sessions = sessions
        self._session: Session | None = None  # while a chunk runs in it
        self._chunk: tuple[Session, Path] | None = None  # the session and folder that hold this chunk's outputs

    def cancel(self, reason: str) -> None:
        """A chunk in a session: kill the session now (SIGKILL; the next chunk starts a fresh one). A chunk whose
        render is over (its outputs upload) ends its task's idle session if no chunk took it meanwhile: nothing of
        a stopped task stays running."""
        with self._lock:
            session = self._session
            if session is not None:
                if self.cancelled is None:
                    self.cancelled = reason
                log.info("lease %s: killing %s (%s)", self.lease_id, session.name, reason)
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
        software = str(render.get("software") or "").lower()
        sandbox = self.policy.sandbox_for(software)
        kind = session_kind(render, sandbox)
        if kind is None:
            self.sessions.make_room()
            return super()._render()
        key = session_key(self.lease, sandbox is not None)
        if kind == BLENDER:
            blender = BlenderRenderer(render)
            return self._in_session(key, kind, lambda session: self._start_blender(session, blender, sandbox),
                                    lambda session: self._render_in(session, blender))
        command = CommandRenderer(render)
        assert sandbox is not None and sandbox.python is not None
        return self._in_session(key, kind, lambda session: self._start_launcher(session, sandbox),
                                lambda session: self._run_in(session, command))

    def _in_session(self, key: Any, kind: str, start: Callable[[Session], Outcome | None],
                    chunk: Callable[[Session], Outcome]) -> Outcome:
        """The chunk in its task's idle session, or in a new one started with `start` (its failure ends the chunk)."""
        session = self.sessions.take(key)
        if session is None:
            session = self.sessions.new(key, kind)
            try:
                failure = start(session)
            except BaseException:
                self.sessions.release(session, healthy=False)
                raise
            if failure is not None:
                self.sessions.release(session, healthy=False)
                return failure
        try:
            self.output_dir = session.chunk_folder(folder_name(self.lease_id))
            self._chunk = (session, self.output_dir)
            return chunk(session)
        except BaseException:  # whatever went wrong, the pool does not keep a session nobody uses
            self.sessions.release(session, healthy=False)
            raise

    def _scene(self, session: Session) -> Path | Outcome | None:
        """The task's scene in the session's folder (or the cache, or its shared root); a failure's outcome."""
        try:
            return self.scenes.scene_for(self.lease, session.folder)
        except RenderError as exc:
            return self._failed(str(exc))
        except (FarmError, Unreachable, OSError) as exc:
            return self._failed(f"the scene could not be fetched: {exc}")

    def _launch(self, session: Session, argv: list[str], sandbox: Sandbox | None, program: str) -> Outcome | None:
        if sandbox is not None:
            argv = sandbox.wrap(argv, self._readable(session.scene, session.folder), str(session.out))
        log.info("lease %s: starting %s%s", self.lease_id, session.name, " (confined)" if sandbox else "")
        try:
            session.start(argv, sandbox is not None)
        except OSError as exc:
            return self._failed(not_started(program, str(exc.strerror or exc), False))
        return None

    def _enter(self, session: Session) -> bool:
        """The chunk runs in `session` from now (a stop kills it); False when it was stopped already."""
        assert session.proc is not None
        with self._lock:
            if self.cancelled:
                return False
            self._proc, self._session = session.proc, session
            self._sampler = process.TreeSampler(session.proc.pid, time.monotonic())
            self._active = time.monotonic()
        return True

    def _leave(self, cpu: float, memory: int) -> None:
        with self._lock:
            self._proc, self._sampler, self._session = None, None, None
        self._count(cpu, memory)

    # ---- Blender -----------------------------------------------------------------------------------------
    def _start_blender(self, session: Session, renderer: BlenderRenderer, sandbox: Sandbox | None) -> Outcome | None:
        """Fetch the scene into the session's folder (or use the cache) and start Blender on it; the failure's
        outcome, or None."""
        scene = self._scene(session)
        if isinstance(scene, Outcome):
            return scene
        if scene is None:
            return self._failed("the task has no scene file to render.")
        try:
            argv = renderer.session_argv(scene)  # RenderError for a format Blender does not know
        except RenderError as exc:
            return self._failed(str(exc))
        session.scene = scene
        return self._launch(session, argv, sandbox, renderer.executable)

    def _prepare(self, session: Session, make: Callable[[], Any]) -> tuple[Any, Outcome | None]:
        """(what `make()` gives for the chunk, None) once this job entered `session`; (None, the outcome) when it
        cannot: `make` refused the chunk (RenderError: the session goes back unused) or the job was stopped."""
        try:
            made = make()
        except RenderError as exc:
            self.sessions.release(session, healthy=True)  # nothing was sent to it
            return None, self._failed(str(exc))
        if not self._enter(session):
            self.sessions.release(session, healthy=False)
            return None, self._stopped(0.0)
        return made, None

    def _render_in(self, session: Session, renderer: BlenderRenderer) -> Outcome:
        """Render the chunk in `session` and say how it went; the session goes back to the pool or ends."""
        assert session.scene is not None
        command, refused = self._prepare(session, lambda: renderer.session_chunk(self.lease, session.scene,
                                                                              self.output_dir))
        if refused is not None:
            return refused
        if session.chunks:
            self.add_line(f"[rayfarm worker: rendered in Blender session {session.number} of this node, its chunk "
                          f"{session.chunks + 1}: the scene was loaded for its first chunk]")
        # a new session's first chunk counts all of the process's CPU: loading the scene is part of its work
        began, cpu = time.monotonic(), session.cpu_seconds() if session.chunks else 0.0
        result, sentence = session.render(command, self._line_handler(renderer), verdict)
        seconds = time.monotonic() - began
        self._leave(max(0.0, session.cpu_seconds() - cpu), session.memory())
        session.tidy()
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

    # ---- commands ----------------------------------------------------------------------------------------
    def _start_launcher(self, session: Session, sandbox: Sandbox) -> Outcome | None:
        """Fetch the task's scene and inputs into the session's folder (or use the cache) and start the launcher in
        the sandbox that shows them; the failure's outcome, or None."""
        scene = self._scene(session)
        if isinstance(scene, Outcome):
            return scene
        session.scene = scene
        assert sandbox.python is not None
        return self._launch(session, command_session.session_argv(sandbox.python), sandbox, sandbox.python)

    def _run_in(self, session: Session, renderer: CommandRenderer) -> Outcome:
        """Run the chunk's command (once, or once per frame) in `session` and say how it went; the session goes back
        to the pool, or ends when the launcher could not clean up after the chunk or is gone."""
        runs, refused = self._prepare(session, lambda: renderer.commands(self.lease, session.scene, self.output_dir))
        if refused is not None:
            return refused
        seconds, failure, clean = 0.0, None, True
        for index, argv in enumerate(runs):
            self.progress = max(self.progress, chunk_progress(index, len(runs), 0))
            began = time.monotonic()
            result, payload = session.render(command_session.run_command(argv, self.output_dir), self.add_line,
                                             command_session.verdict)
            seconds += time.monotonic() - began
            try:
                ran = command_session.ran(payload) if result == command_session.ENDED else None
            except ValueError:
                ran = None
            if ran is None:
                self._leave(0.0, 0)
                self.sessions.release(session, healthy=False)
                if self.cancelled:
                    return self._stopped(seconds)
                return self._failed(f"the command session ended while it ran {Path(argv[0]).name} "
                                    f"({describe_exit(session.wait_exit())}; the next chunk starts a fresh one). Last "
                                    f"log lines: {self.tail()}", seconds)
            self._count(ran.cpu, ran.rss)
            clean = clean and ran.clean
            if ran.code is None:
                failure = not_started(argv[0], ran.error, True)
            elif ran.code != 0:
                failure = self._exited(argv[0], ran.code)
            if failure or self.cancelled:
                break
            self.progress = max(self.progress, chunk_progress(index + 1, len(runs), 0))
        self._leave(0.0, 0)
        session.tidy()
        if self.cancelled:
            self.sessions.release(session, healthy=False)
            return self._stopped(seconds)
        self.sessions.release(session, healthy=clean, reason="a chunk left what the launcher could not remove")
        if failure:
            return self._failed(failure, seconds)
        outputs = self._outputs()
        self.progress = 100.0
        return self._outcome("done", "", outputs, seconds)
