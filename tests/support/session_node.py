"""A render node's sessions without the agent: the pool and the jobs rendering now, as `worker/agent.py` holds
them, for the session tests (a stand-in Blender, real bubblewrap)."""

from pathlib import Path

from rayfarm.worker.client import FarmClient
from rayfarm.worker.confine import Policy
from rayfarm.worker.scenes import SceneCache
from rayfarm.worker.session import SessionPool
from rayfarm.worker.session_job import SessionJob


class SessionNode:
    def __init__(self, work: Path, policy: Policy, slots: int = 1, idle: float = 60.0, memory: int | None = None):
        self.work = work
        self.policy = policy
        self.running: set[SessionJob] = set()
        self.pool = SessionPool(work / "sessions", slots, lambda: len(self.running), idle, memory)
        self.client = FarmClient("http://farm.invalid", "t")  # never called: the scenes are on this machine
        self.scenes = SceneCache(work / "cache", self.client)

    def lease_job(self, number: int, render: dict, scene: dict, task: int, start: int, end: int, stop_time: int,
                  stall: int) -> SessionJob:
        lease = {"leaseId": f"L{number}", "taskId": task, "start": start, "end": end, "step": 1,
                 "jobStopTime": stop_time, "stallTimeout": stall, "render": render, "scene": scene}
        return SessionJob(lease, self.work, self.scenes, self.policy, self.pool)

    def render(self, job: SessionJob):
        self.running.add(job)
        try:
            return job.render()
        finally:
            self.running.discard(job)

    def close(self) -> None:
        self.pool.close_all()
        self.client.close()
