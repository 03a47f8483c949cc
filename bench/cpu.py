"""CPU seconds of groups of processes over a measurement, and waiting for a quiet machine.

The benchmarks run on 2 cores that other people's test runs share: every figure says how much of the
machine's CPU was not ours (``others_share``), and a benchmark waits for a quiet moment before it measures.
"""

import contextlib
import os
import time
from collections.abc import Callable

import psutil

from bench.harness import note
from tests.support.processes import process_tree


def self_pids() -> list[int]:
    return [os.getpid()]


def postgres_pids() -> list[int]:
    found = []
    for proc in psutil.process_iter(["name", "username"]):
        with contextlib.suppress(psutil.Error):
            if proc.info["name"] and proc.info["name"].startswith("postgres"):
                found.append(proc.pid)
    return found


class CpuMeter:
    """CPU seconds spent by groups of processes between start() and stop() (user + system)."""

    def __init__(self, **groups: Callable[[], list[int]]):
        # "ours": this process and every descendant (server, workers, helpers) alive at start or stop;
        # "others" = the whole machine minus ours: other people's work that shared the cores.
        groups.setdefault("ours", lambda: process_tree(os.getpid()) + (postgres_pids() if "postgres" in groups else []))
        self.groups = groups
        self._start: dict[str, dict[int, float]] = {}
        self.seconds: dict[str, float] = {}

    @staticmethod
    def _times(pids: list[int]) -> dict[int, float]:
        out = {}
        for pid in pids:
            try:
                t = psutil.Process(pid).cpu_times()  # children_*: reaped children (renders, commands)
                out[pid] = t.user + t.system + t.children_user + t.children_system
            except psutil.Error:
                pass
        return out

    @staticmethod
    def _machine() -> float:
        t = psutil.cpu_times()
        return t.user + t.system + getattr(t, "nice", 0.0) + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)

    def start(self) -> None:
        self._wall = time.monotonic()
        self._start = {name: self._times(pids()) for name, pids in self.groups.items()}
        self._machine_start = self._machine()

    def stop(self) -> dict[str, float]:
        wall = time.monotonic() - self._wall
        for name, pids in self.groups.items():
            now = self._times(pids())
            before = self._start.get(name, {})
            self.seconds[name] = round(sum(v - before.get(pid, 0.0) for pid, v in now.items()), 3)
        busy = self._machine() - self._machine_start
        self.seconds["machine"] = round(busy, 3)  # every process on the machine (others' tests included)
        self.seconds["wall"] = round(wall, 3)
        others = max(0.0, busy - self.seconds["ours"])
        self.seconds["others_share"] = round(others / (wall * (os.cpu_count() or 1)), 3) if wall > 0 else 0.0
        return dict(self.seconds)


def wait_quiet(max_wait: float | None = None, threshold: float = 0.15, sample: float = 2.0) -> float:
    """Wait (at most ``max_wait`` s) until the machine's CPU use is below ``threshold`` (share of all cores)
    over ``sample`` s, outside this process tree: others run tests on the same 2 cores. Returns the wait."""
    if max_wait is None:
        max_wait = float(os.environ.get("BENCH_QUIET_MAX", "240"))
    began = time.monotonic()
    while True:
        meter = CpuMeter()
        meter.start()
        time.sleep(sample)
        figures = meter.stop()
        if figures["others_share"] < threshold or time.monotonic() - began >= max_wait:
            waited = time.monotonic() - began
            if waited > sample + 0.5:
                note(f"waited {waited:.0f} s for a quiet machine (others now {figures['others_share']:.0%})")
            return round(waited, 1)


def tree_pids(processes) -> list[int]:
    """Every pid of the process trees of ``processes`` (anything with a ``process`` Popen)."""
    return [pid for p in processes for pid in process_tree(p.process.pid)]
