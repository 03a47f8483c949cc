"""Figures of the benchmarks: percentiles, summaries, and a timed load loop."""

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

from bench.cpu import CpuMeter
from bench.harness import note


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), nearest-rank on sorted values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, int(round(q / 100.0 * len(ordered) + 0.5)) - 1))
    return ordered[rank]


def ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


def summary(values: list[float]) -> dict:
    """n, p50, p99, mean and max of durations in seconds, in ms."""
    if not values:
        return {}
    return {"n": len(values), "p50_ms": ms(percentile(values, 50)), "p99_ms": ms(percentile(values, 99)),
            "mean_ms": ms(statistics.fmean(values)), "max_ms": ms(max(values))}


def latency(values: list[float]) -> dict:
    """p50, p99 and max of durations in seconds, in ms."""
    if not values:
        return {}
    return {"p50_ms": ms(percentile(values, 50)), "p99_ms": ms(percentile(values, 99)), "max_ms": ms(max(values))}


async def timed_loop(concurrency: int, seconds: float, warmup: float, step: Callable[[int], Awaitable[int]],
                     meter: CpuMeter | None = None) -> dict:
    """Run ``step(i)`` in ``concurrency`` loops; count what it returns during ``seconds`` after ``warmup``."""
    state = {"counting": False, "count": 0, "errors": 0, "stop": False}
    latencies: list[float] = []

    async def loop(index: int) -> None:
        while not state["stop"]:
            began = time.perf_counter()
            try:
                done = await step(index)
            except Exception as exc:  # counted, and the loop backs off a little
                state["errors"] += 1
                if state["errors"] <= 3:
                    note(f"error: {exc!r}"[:300])
                await asyncio.sleep(0.05)
                continue
            if state["counting"]:
                state["count"] += done
                latencies.append(time.perf_counter() - began)

    tasks = [asyncio.create_task(loop(i)) for i in range(concurrency)]
    try:
        await asyncio.sleep(warmup)
        if meter:
            meter.start()
        state["counting"] = True
        began = time.perf_counter()
        await asyncio.sleep(seconds)
        state["counting"] = False
        elapsed = time.perf_counter() - began
        cpu = meter.stop() if meter else None
    finally:
        state["stop"] = True
        await asyncio.wait(tasks, timeout=70)
        for task in tasks:
            task.cancel()
    result = {"count": state["count"], "seconds": round(elapsed, 3), "rate": round(state["count"] / elapsed, 1),
              "errors": state["errors"], "p50_ms": ms(percentile(latencies, 50)), "p99_ms": ms(percentile(latencies, 99))}
    if cpu:
        result["cpu_s"] = cpu
    return result
