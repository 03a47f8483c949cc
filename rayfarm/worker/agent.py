"""The render node: register, lease chunks while slots are free, heartbeat, render, upload, complete."""

import logging
import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import psutil

from rayfarm import tls
from rayfarm.worker.capabilities import capabilities
from rayfarm.worker.client import FarmClient, FarmError, StaleSession
from rayfarm.worker.confine import Policy, node_policy
from rayfarm.worker.job import KILL_GRACE, Job, Outcome
from rayfarm.worker.roots import map_lease
from rayfarm.worker.scenes import SceneCache

log = logging.getLogger(__name__)

DROP = ("stop", "shutdown", "stale")  # cancel reasons after which nothing more is reported for a lease
MONITOR_TICK = 1.0  # seconds between CPU/memory samples of running renders
MAX_COMPLETE_LINES = 500


class WorkerError(Exception):
    """The node cannot work with this server (bad token, refused registration...)."""


class OutputRefused(Exception):
    """The server refused an output file (storage full or unwritable, too large...): the chunk failed."""


def _where(job: Job) -> str:
    lease = job.lease
    return f"task {lease.get('taskId')} chunk {lease.get('frameIndex')} frame id {lease.get('frameId')}"


def default_work_dir() -> Path:
    return Path.home() / ".rayfarm" / "worker"


class Agent:
    def __init__(self, server_url: str, token: str, name: str | None = None, slots: int = 1,
                 tags: Sequence[str] = (), work_dir: str | Path | None = None, *, lease_wait: float = 20.0,
                 client: FarmClient | None = None, unconfined_commands: bool = False, ca_cert: str | None = None,
                 root_map: Sequence[tuple[str, str]] = ()) -> None:
        if slots < 1:
            raise ValueError("slots must be at least 1")
        self.stop_event = threading.Event()
        self.client = client or FarmClient(server_url, token, self.stop_event, ca_cert=ca_cert)
        self.root_map = tuple(root_map)  # (server path, local path) of shared roots mounted elsewhere here
        self.client.stop = self.stop_event
        self.name = name or socket.gethostname()
        self.slots = slots
        self.tags = tuple(tags)
        self.work_dir = (Path(work_dir) if work_dir else default_work_dir()).absolute()  # bubblewrap binds absolute paths
        self.lease_wait = max(0.0, min(float(lease_wait), 20.0))
        self.scenes = SceneCache(self.work_dir / "cache", self.client)
        self.worker_id: Any = None
        self.session: Any = None
        self.lease_seconds = 60.0
        self.heartbeat_seconds = 15.0
        self.busy_heartbeat_seconds = 5.0
        self.paused = False  # the server says disabled or draining: take no new chunks
        self.unconfined_commands = unconfined_commands
        self.policy = Policy(None)  # what runs confined: probed at the first registration (confine.py)
        self.error: str | None = None
        self.jobs: dict[str, Job] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._jobs_lock = threading.Lock()
        self._register_lock = threading.Lock()
        self._wake = threading.Event()
        self._capabilities: dict[str, Any] | None = None
        self._heartbeat_failing = False

    # ---- life cycle -----------------------------------------------------------------------------------
    def run(self) -> None:
        """Work until `stop()` (or a fatal error: WorkerError). Kills running renders before returning."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.register()
            if self.stop_event.is_set():
                return
            for target, name in ((self._heartbeat_loop, "heartbeat"), (self._lease_loop, "lease")):
                threading.Thread(target=target, name=f"rayfarm-{name}", daemon=True).start()
            self.stop_event.wait()
        finally:
            self._shutdown()
        if self.error:
            raise WorkerError(self.error)

    def stop(self) -> None:
        """Ask the node to stop (safe from a signal handler): no new leases, running renders are killed."""
        self.stop_event.set()
        self._wake.set()

    def _fatal(self, message: str) -> None:
        log.error("%s", message)
        self.error = message
        self.stop()

    def _shutdown(self) -> None:
        self.stop()
        with self._jobs_lock:
            jobs, threads = list(self.jobs.values()), list(self._threads.values())
        for job in jobs:
            if not job.rendered.is_set():
                job.cancel("shutdown")
        deadline = time.monotonic() + KILL_GRACE + 4.0
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.client.close()
        log.info("worker %s stopped", self.name)

    # ---- session --------------------------------------------------------------------------------------
    def register(self) -> None:
        if self._capabilities is None:
            self.policy = node_policy(self.work_dir, self.unconfined_commands)
            self._capabilities = capabilities(self.name, self.slots, self.tags, self.policy.offers)
        try:
            answer = self.client.post("register", self._capabilities)
        except FarmError as exc:
            raise WorkerError(f"the server refused to register this node: {exc.message} (HTTP {exc.status})") from exc
        except httpx.HTTPError as exc:
            if self.stop_event.is_set():
                return
            raise WorkerError(f"cannot reach the server: {tls.certificate_problem(exc) or exc}") from exc
        self.worker_id, self.session = answer["workerId"], answer["session"]
        self.client.identify(self.worker_id, self.session)
        self.lease_seconds = float(answer.get("leaseSeconds") or self.lease_seconds)
        self.heartbeat_seconds = float(answer.get("heartbeatSeconds") or self.heartbeat_seconds)
        self.busy_heartbeat_seconds = float(answer.get("busyHeartbeatSeconds") or self.busy_heartbeat_seconds)
        log.info("registered as %s (worker %s) with %s", self.name, self.worker_id,
                 self._capabilities.get("software"))

    def _reregister(self, stale_session: Any) -> None:
        """409: the server forgot this session and its leases; kill their renders and register again."""
        with self._register_lock:
            if self.session != stale_session or self.stop_event.is_set():
                return
            log.warning("the server says this node's session is stale; dropping running chunks and registering again")
            with self._jobs_lock:
                jobs = list(self.jobs.values())
            for job in jobs:
                job.cancel("stale")
            try:
                self.register()
            except WorkerError as exc:
                self._fatal(str(exc))

    def _ids(self) -> dict[str, Any]:
        return {"workerId": self.worker_id, "session": self.session}

    # ---- leasing --------------------------------------------------------------------------------------
    def free_slots(self) -> int:
        with self._jobs_lock:
            return self.slots - len(self.jobs)

    def _lease_loop(self) -> None:
        while not self.stop_event.is_set():
            free = self.free_slots()
            if self.paused or free <= 0:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            session = self.session
            body = {**self._ids(), "max": free, "wait": self.lease_wait}
            try:
                answer = self.client.post("lease", body, timeout=self.lease_wait + 15.0)
            except StaleSession:
                self._reregister(session)
                continue
            except FarmError as exc:
                if exc.status == 403:
                    log.warning("the server says this node is disabled; not taking chunks")
                    self.paused = True
                else:
                    log.error("lease refused: %s", exc)
                self.stop_event.wait(5.0)
                continue
            except httpx.HTTPError:
                continue  # retries gave up because the node is stopping
            except Exception:
                log.exception("lease call failed unexpectedly")
                self.stop_event.wait(5.0)
                continue
            self._start_all(answer.get("leases") or [])

    def _start_all(self, leases: list[dict[str, Any]]) -> None:
        for lease in leases:
            if self.stop_event.is_set():
                log.warning("lease %s arrived while stopping; not started", lease.get("leaseId"))
                continue
            try:
                self._start(lease)
            except (KeyError, TypeError, ValueError) as exc:
                log.error("ignoring a malformed lease %r: %s", lease, exc)

    def _start(self, lease: dict[str, Any]) -> None:
        lease = map_lease(lease, self.root_map)
        job = Job(lease, self.work_dir, self.scenes, self.policy)
        log.info("lease %s: task %s frames %s-%s step %s", job.lease_id, lease.get("taskId"), lease.get("start"),
                 lease.get("end"), lease.get("step"))
        thread = threading.Thread(target=self._work, args=(job,), name=f"rayfarm-lease-{job.lease_id}", daemon=True)
        with self._jobs_lock:
            self.jobs[job.lease_id] = job
            self._threads[job.lease_id] = thread
        thread.start()

    def _work(self, job: Job) -> None:
        try:
            outcome = job.render()
            if job.cancelled in DROP:
                log.info("lease %s: render killed (%s); nothing reported", job.lease_id, job.cancelled)
            else:
                self._report(job, outcome)
        except Exception:
            log.exception("lease %s: unexpected error", job.lease_id)
        finally:
            job.cleanup()
            with self._jobs_lock:
                self.jobs.pop(job.lease_id, None)
                self._threads.pop(job.lease_id, None)
            self._wake.set()

    # ---- reporting ------------------------------------------------------------------------------------
    def _report(self, job: Job, outcome: Outcome) -> None:
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
                self._dropped(job, outcome, "the server took the chunk back (lease no longer valid)")
                return
            body = {**self._ids(), "leaseId": job.lease_id, "result": outcome.result, "error": outcome.error,
                    "executeSeconds": outcome.execute_seconds, "avgCpu": outcome.avg_cpu,
                    "avgMemory": outcome.avg_memory, "outputs": names, "log": job.take_log()[-MAX_COMPLETE_LINES:],
                    # this job's slot is free once the result is in: its next chunk comes with the answer
                    "next": 0 if self.paused or self.stop_event.is_set() else 1}
            answer = self.client.post("complete", body, give_up=lambda: job.cancelled in DROP)
        except StaleSession:
            self._reregister(session)
            return
        except FarmError as exc:
            self._dropped(job, outcome, f"complete refused: {exc}")
            return
        except httpx.HTTPError as exc:
            if job.cancelled in DROP and not self.stop_event.is_set():
                self._dropped(job, outcome, "the server took the chunk back while it was unreachable")
            else:
                log.warning("lease %s: result not reported, the node is stopping (%s)", job.lease_id, exc)
            return
        self._start_all(answer.get("leases") or [])
        where = _where(job)
        if answer.get("accepted"):
            log.info("lease %s: result %s accepted for %s (%.1f s, %d files)", job.lease_id, outcome.result, where,
                     outcome.execute_seconds, len(names))
        else:
            log.warning("lease %s: result %s not accepted for %s (lease no longer valid); dropped", job.lease_id,
                        outcome.result, where)

    @staticmethod
    def _dropped(job: Job, outcome: Outcome, reason: str) -> None:
        log.warning("lease %s: result %s dropped for %s: %s", job.lease_id, outcome.result, _where(job), reason)

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

    # ---- heartbeat ------------------------------------------------------------------------------------
    def _heartbeat_loop(self) -> None:
        last = float("-inf")
        psutil.cpu_percent(None)
        while not self.stop_event.is_set():
            with self._jobs_lock:
                jobs = list(self.jobs.values())
            for job in jobs:
                job.sample()
            interval = self.busy_heartbeat_seconds if jobs else self.heartbeat_seconds
            if time.monotonic() - last >= interval:
                last = time.monotonic()
                try:
                    self.heartbeat()
                except Exception:
                    log.exception("heartbeat failed unexpectedly")
            due = last + interval - time.monotonic()
            self.stop_event.wait(max(0.05, min(MONITOR_TICK, due)))

    def heartbeat(self) -> None:
        """One heartbeat: report running leases, kill the ones the server lists in `stop`."""
        with self._jobs_lock:
            jobs = [job for job in self.jobs.values() if job.cancelled not in DROP]
        sent = {job: job.take_log() for job in jobs}
        running = [{"leaseId": job.lease_id, "progress": job.progress, "cpu": job.cpu, "memory": job.memory,
                    "log": lines} for job, lines in sent.items()]
        session = self.session
        body = {**self._ids(), "cpu": psutil.cpu_percent(None), "memUsed": psutil.virtual_memory().used,
                "running": running}
        try:
            answer = self.client.post("heartbeat", body, retry=False, timeout=max(5.0, self.busy_heartbeat_seconds))
        except StaleSession:
            self._reregister(session)
            return
        except (FarmError, httpx.HTTPError) as exc:
            for job, lines in sent.items():
                job.return_log(lines)
            if not self._heartbeat_failing:
                log.warning("heartbeat failed (%s); rendering goes on, will retry", exc)
            self._heartbeat_failing = True
            return
        if self._heartbeat_failing:
            log.info("heartbeat works again")
            self._heartbeat_failing = False
        self.stop_leases(answer.get("stop") or [])
        self._adopt_intervals(answer)
        paused = bool(answer.get("disabled") or answer.get("draining"))
        if paused != self.paused:
            log.info("the server %s this node", "paused" if paused else "resumed")
            self.paused = paused
            self._wake.set()

    def _adopt_intervals(self, answer: dict[str, Any]) -> None:
        """The server stretches heartbeat intervals as the farm grows; the latest answer says them."""
        for key, attribute in (("heartbeatSeconds", "heartbeat_seconds"), ("busyHeartbeatSeconds", "busy_heartbeat_seconds")):
            value = answer.get(key)
            if isinstance(value, int | float) and 0 < value <= 3600:
                setattr(self, attribute, float(value))

    def stop_leases(self, lease_ids: Sequence[str]) -> None:
        """Kill the render of every listed lease at once (SIGTERM now, SIGKILL 1 s later)."""
        with self._jobs_lock:
            jobs = [self.jobs[str(lease_id)] for lease_id in lease_ids if str(lease_id) in self.jobs]
        for job in jobs:
            job.cancel("stop")
