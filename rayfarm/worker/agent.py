"""The render node: register, lease chunks while slots are free, heartbeat, render, upload, complete."""

import logging
import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil

from rayfarm import tls
from rayfarm.protocol import nodes
from rayfarm.worker.capabilities import capabilities
from rayfarm.worker.client import FarmClient, FarmError, StaleSession, Unreachable
from rayfarm.worker.confine import Policy, node_policy
from rayfarm.worker.job import KILL_GRACE, Job
from rayfarm.worker.report import DROP, Reporting
from rayfarm.worker.roots import map_lease
from rayfarm.worker.scenes import SceneCache
from rayfarm.worker.session import DEFAULT_IDLE_SECONDS, SessionPool
from rayfarm.worker.session_job import SessionJob

log = logging.getLogger(__name__)

MONITOR_TICK = 1.0  # seconds between CPU/memory samples of running renders


class WorkerError(Exception):
    """The node cannot work with this server (bad token, refused registration...)."""


def default_work_dir() -> Path:
    return Path.home() / ".rayfarm" / "worker"


class Agent(Reporting):
    """`persistent_sessions`: Blender chunks, and confined command chunks, run in persistent sessions (session.py),
    each closed after `session_idle` seconds without a chunk; a Blender session also when it uses more than
    `session_memory` bytes (None: 75 % of the machine's memory divided among the slots)."""

    def __init__(self, server_url: str, token: str, name: str | None = None, slots: int = 1,
                 tags: Sequence[str] = (), work_dir: str | Path | None = None, *, lease_wait: float = 20.0,
                 client: FarmClient | None = None, unconfined_commands: bool = False,
                 persistent_sessions: bool = True, session_idle: float = DEFAULT_IDLE_SECONDS,
                 session_memory: int | None = None, ca_cert: str | None = None,
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
        self.sessions = SessionPool(self.work_dir / "sessions", slots, self._rendering, session_idle,
                                    session_memory) if persistent_sessions else None
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
        if self.sessions is not None:
            self.sessions.clear_folder()
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
        if self.sessions is not None:
            self.sessions.close_all()
        deadline = time.monotonic() + KILL_GRACE + 4.0
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.client.close()
        log.info("worker %s stopped", self.name)

    # ---- session --------------------------------------------------------------------------------------
    def register(self) -> None:
        if self._capabilities is None:
            self.policy = node_policy(self.work_dir, self.unconfined_commands)
            self._capabilities = nodes.body(nodes.Register, **capabilities(self.name, self.slots, self.tags,
                                                                           self.policy.offers))
        try:
            answer = self.client.post("register", self._capabilities)
        except FarmError as exc:
            raise WorkerError(f"the server refused to register this node: {exc.message} (HTTP {exc.status})") from exc
        except Unreachable as exc:
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

    # ---- leasing --------------------------------------------------------------------------------------
    def free_slots(self) -> int:
        """Slots without a chunk: a chunk whose render ended while its outputs upload gave its slot back."""
        with self._jobs_lock:
            return self.slots - sum(1 for job in self.jobs.values() if job.holds_slot)

    def _rendering(self) -> int:
        """Chunks whose render has not ended (the sessions' pool counts them against the slots)."""
        with self._jobs_lock:
            return sum(1 for job in self.jobs.values() if not job.rendered.is_set())

    def _lease_loop(self) -> None:
        while not self.stop_event.is_set():
            free = self.free_slots()
            if self.paused or free <= 0:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            session = self.session
            body = nodes.body(nodes.LeaseRequest, workerId=self.worker_id, session=session, max=free,
                              wait=self.lease_wait)
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
            except Unreachable:
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
        if self.sessions is not None:
            job: Job = SessionJob(lease, self.work_dir, self.scenes, self.policy, self.sessions)
        else:
            job = Job(lease, self.work_dir, self.scenes, self.policy)
        log.debug("lease %s: task %s frames %s-%s step %s", job.lease_id, lease.get("taskId"), lease.get("start"),
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
            elif self.paused or self.stop_event.is_set():
                self._report(job, outcome, next_chunks=0)
            elif outcome.outputs:
                # the slot renders its next chunk while this one's outputs upload and its result is sent
                with self._jobs_lock:
                    job.holds_slot = False
                self._wake.set()
                self._report(job, outcome, next_chunks=0)
            else:
                self._report(job, outcome, next_chunks=1)  # the next chunk comes with the answer
        except Exception:
            log.exception("lease %s: unexpected error", job.lease_id)
        finally:
            job.cleanup()
            with self._jobs_lock:
                self.jobs.pop(job.lease_id, None)
                self._threads.pop(job.lease_id, None)
            self._wake.set()

    # ---- heartbeat ------------------------------------------------------------------------------------
    def _heartbeat_loop(self) -> None:
        last = float("-inf")
        psutil.cpu_percent(None)
        while not self.stop_event.is_set():
            with self._jobs_lock:
                jobs = list(self.jobs.values())
            for job in jobs:
                job.sample()
            if self.sessions is not None:
                self.sessions.expire()
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
        running = [nodes.body(nodes.Running, leaseId=job.lease_id, progress=job.progress, cpu=job.cpu,
                              memory=job.memory, log=lines) for job, lines in sent.items()]
        session = self.session
        body = nodes.body(nodes.Heartbeat, workerId=self.worker_id, session=session, cpu=psutil.cpu_percent(None),
                          memUsed=psutil.virtual_memory().used, running=running)
        try:
            answer = self.client.post("heartbeat", body, retry=False, timeout=max(5.0, self.busy_heartbeat_seconds))
        except StaleSession:
            self._reregister(session)
            return
        except (FarmError, Unreachable) as exc:
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
