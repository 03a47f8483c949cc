"""The rayfarm render node (worker): `run_worker` connects to a farm server and renders its chunks."""

import logging
import signal
import threading
from collections.abc import Sequence
from pathlib import Path

from rayfarm.worker.agent import Agent, WorkerError
from rayfarm.worker.session import DEFAULT_IDLE_SECONDS

log = logging.getLogger(__name__)


def run_worker(server: str, token: str, name: str | None = None, slots: int = 1, tags: Sequence[str] = (),
               work_dir: str | Path | None = None, unconfined_commands: bool = False, persistent_sessions: bool = True,
               session_idle: float = DEFAULT_IDLE_SECONDS, session_memory: int | None = None,
               ca_cert: str | None = None, root_map: Sequence[tuple[str, str]] = ()) -> None:
    """Run a render node until SIGTERM/SIGINT (then running renders are killed). Raises WorkerError
    when the server refuses the node (bad token, bad registration, an untrusted certificate). Render jobs
    run confined when bubblewrap works here; `unconfined_commands` runs command tasks unconfined
    (worker/confine.py). `persistent_sessions`: Blender chunks, and confined command chunks, run in persistent
    sessions (worker/session.py). `ca_cert`: a CA to trust over https besides the system's; `root_map`: shared
    roots mounted elsewhere on this node (worker/roots.py)."""
    agent = Agent(server, token, name=name, slots=slots, tags=tags, work_dir=work_dir,
                  unconfined_commands=unconfined_commands, persistent_sessions=persistent_sessions,
                  session_idle=session_idle, session_memory=session_memory, ca_cert=ca_cert, root_map=root_map)
    previous = {}
    if threading.current_thread() is threading.main_thread():
        def on_signal(signum: int, frame: object) -> None:
            log.info("received %s; stopping", signal.Signals(signum).name)
            agent.stop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, on_signal)
    try:
        agent.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


__all__ = ["Agent", "WorkerError", "run_worker"]
