"""How a node reports a chunk: its outputs first (each stored before the result is sent), then `complete`.

A chunk's result is never sent before its outputs are on the server, so a result is never accepted without
them. When a chunk has outputs, its slot is handed back as its render ends (agent.py), so that the upload
and the result of this chunk run while the slot's next chunk renders; without outputs the result goes at
once and asks for the slot's next chunk in the same call (`complete` with `next`).
"""

import logging
import threading
from typing import Any

from rayfarm.protocol import nodes
from rayfarm.worker.client import FarmClient, FarmError, StaleSession, Unreachable
from rayfarm.worker.job import Job, Outcome

log = logging.getLogger(__name__)

DROP = ("stop", "shutdown", "stale")  # cancel reasons after which nothing more is reported for a lease
MAX_COMPLETE_LINES = 500


class OutputRefused(Exception):
    """The server refused an output file (storage full or unwritable, too large...): the chunk failed."""


def where(job: Job) -> str:
    lease = job.lease
    return f"task {lease.get('taskId')} chunk {lease.get('frameIndex')} frame id {lease.get('frameId')}"


def dropped(job: Job, outcome: Outcome, reason: str) -> None:
    log.warning("lease %s: result %s dropped for %s: %s", job.lease_id, outcome.result, where(job), reason)


class Reporting:
    """The agent's reporting part (agent.py's Agent is one)."""

    client: FarmClient
    session: Any
    worker_id: Any
    stop_event: threading.Event

    def _reregister(self, stale_session: Any) -> None:
        raise NotImplementedError

    def _start_all(self, leases: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def _report(self, job: Job, outcome: Outcome, next_chunks: int) -> None:
        """Upload the chunk's outputs, then send its result (asking for `next_chunks` more in the same call)."""
        session = self.session
        try:
            try:
                names = self._upload(job, outcome)
            except OutputRefused as exc:
                # Reported as a failed attempt: the chunk is retried (here or on another node) up to the task's
                # attempt limit, and the user reads the server's sentence in the frame's error.
                log.error("lease %s: %s; reporting the chunk as failed", job.lease_id, exc)
                outcome = Outcome("failed", str(exc)[:2000], [], outcome.execute_seconds, outcome.avg_cpu,
                                  outcome.avg_memory)
                names = []
            if names is None or job.cancelled in DROP:
                dropped(job, outcome, "the server took the chunk back (lease no longer valid)")
                return
            body = nodes.body(nodes.Complete, workerId=self.worker_id, session=session, leaseId=job.lease_id,
                              result=outcome.result, error=outcome.error, executeSeconds=outcome.execute_seconds,
                              avgCpu=outcome.avg_cpu, avgMemory=outcome.avg_memory, outputs=names,
                              log=job.take_log()[-MAX_COMPLETE_LINES:], next=next_chunks)
            answer = self.client.post("complete", body, give_up=lambda: job.cancelled in DROP)
        except StaleSession:
            self._reregister(session)
            return
        except FarmError as exc:
            dropped(job, outcome, f"complete refused: {exc}")
            return
        except Unreachable as exc:
            if job.cancelled in DROP and not self.stop_event.is_set():
                dropped(job, outcome, "the server took the chunk back while it was unreachable")
            else:
                log.warning("lease %s: result not reported, the node is stopping (%s)", job.lease_id, exc)
            return
        self._start_all(answer.get("leases") or [])
        if answer.get("accepted"):
            log.info("lease %s: result %s accepted for %s (%.1f s, %d files)", job.lease_id, outcome.result,
                     where(job), outcome.execute_seconds, len(names))
        else:
            log.warning("lease %s: result %s not accepted for %s (lease no longer valid); dropped", job.lease_id,
                        outcome.result, where(job))

    def _upload(self, job: Job, outcome: Outcome) -> list[str] | None:
        """Upload the outputs; None when the lease turned out invalid (drop everything)."""
        names = []
        for path in outcome.outputs:
            if job.cancelled in DROP:
                return None
            try:
                answer = self.client.upload(job.lease_id, path, give_up=lambda: job.cancelled in DROP)
            except StaleSession:
                raise
            except FarmError as exc:
                job.add_line(f"[rayfarm worker: upload of {path.name} refused: {exc.message}]")
                raise OutputRefused(f"the farm refused the output file {path.name} (HTTP {exc.status}): "
                                    f"{exc.message}") from None
            if answer.get("accepted") is False:
                log.warning("lease %s: the server no longer accepts outputs; result dropped", job.lease_id)
                return None
            names.append(path.name)
        return names
