"""The render nodes of bench/load.py: tests/support/fake_node.AsyncNode rendering nothing, with a chunk a sleep of
about ``--render`` s, ``--fail-rate`` of them failed, the server's ``stop`` honoured, a PNG uploaded for each
Blender chunk, and the node's own record of every result it reported."""

from __future__ import annotations

import asyncio
import io
import random
import time

from bench.load_clients import Run
from tests.support.fake_node import AsyncNode


def tiny_png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 80, 20)).save(out, "PNG")
    return out.getvalue()


class LoadNode(AsyncNode):
    """A render node that renders nothing (real protocol), and its own record of every result it reported."""

    def __init__(self, name: str, base: str, token: str, clients: tuple, run: Run, rng: random.Random,
                 render: float, fail_rate: float, png: bytes):
        client, self.beat_client = clients  # leases and results on one connection, heartbeats on another
        super().__init__(client, base, token, name, software={"command": "", "blender": "3.4.1"}, version="load")
        self.run, self.rng = run, rng
        self.render, self.fail_rate, self.png = render, fail_rate, png
        self.current: str | None = None
        self.cancel = asyncio.Event()
        self.records: list[dict] = []  # one per result reported: lease, frame, result, accepted

    def timed(self, call: str, seconds: float, answer: dict) -> None:
        # an empty lease is a wait for work (up to "wait"), not a latency
        self.run.timed("node:" + call, seconds, call != "lease" or bool(answer.get("leases")))

    async def heartbeats(self) -> None:
        while not self.run.stop_nodes:
            await asyncio.sleep(self.busy_heartbeat_seconds if self.current else self.heartbeat_seconds)
            lease = self.current
            try:
                answer = await self.heartbeat([lease] if lease else [], client=self.beat_client)
            except Exception as exc:
                self.run.error(f"node {self.name} heartbeat: {exc!r}")
                continue
            if lease and lease in answer["stop"] and self.current == lease:
                self.cancel.set()

    async def work_loop(self) -> None:
        while not self.run.stop_nodes:
            try:
                for lease in await self.lease(1, wait=1.0):
                    await self.work(lease)
            except Exception as exc:
                self.run.error(f"node {self.name}: {exc!r}")
                await asyncio.sleep(0.2)

    async def work(self, lease: dict) -> None:
        lease_id = lease["leaseId"]
        self.current, self.cancel = lease_id, asyncio.Event()
        record = {"node": self.id, "lease": lease_id, "frame": lease["frameId"], "task": lease["taskId"],
                  "frames": (lease["end"] - lease["start"]) // lease["step"] + 1}
        try:
            try:
                await asyncio.wait_for(self.cancel.wait(), self.rng.uniform(0.5, 1.5) * self.render)
                self.run.events["node_stopped_by_server"] += 1  # told to stop: report nothing more
                return
            except TimeoutError:
                pass
            outputs = []
            if lease["render"].get("software") == "blender":
                name = f"shot_{lease['start']:04d}.png"
                if not (await self.output(lease_id, name, self.png))["accepted"]:
                    self.run.events["node_output_refused"] += 1  # the lease went away: drop the chunk
                    return
                outputs.append(name)
            result = "failed" if self.rng.random() < self.fail_rate else "done"
            answer = await self.complete(lease_id, result, error="simulated render failure" if result == "failed" else "",
                                         outputs=outputs, seconds=0.1)
            self.records.append({**record, "result": result, "accepted": bool(answer["accepted"]),
                                 "outputs": outputs, "at": time.monotonic()})
        finally:
            self.current = None
