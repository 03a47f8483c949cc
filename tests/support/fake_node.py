"""A render node that renders nothing, speaking the native API (docs/worker-protocol.md) by hand.

``Node`` is synchronous, on an httpx.Client of its own (the tests also send through ``node.http`` what no
real node would). ``AsyncNode`` is the same node on an asyncio client given to it (httpx.AsyncClient, or
bench.clients.RawClient: anything with ``post`` and ``put``), for benchmarks that run hundreds of nodes in
one process. Both register, lease, heartbeat (adopting the intervals the server asks for), upload outputs
and complete, and raise ``NodeError`` for any answer but HTTP 200.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable, Mapping

import httpx

from rayfarm.protocol import nodes as wire

TRANSPORT_ERRORS = (httpx.TransportError, ConnectionError, asyncio.IncompleteReadError)


class NodeError(RuntimeError):
    """The server answered a node's call with something else than HTTP 200."""


class NodeCalls:
    """What a node sends, and what it keeps of the answers: its id, session and heartbeat intervals."""

    def __init__(self, name: str, token: str, software: Iterable[str] | Mapping[str, str] = ("command",),
                 version: str = "test", tags: Iterable[str] = ()):
        self.name = name
        self.software = dict(software) if isinstance(software, Mapping) else {s: "" for s in software}
        self.version = version
        self.tags = list(tags)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.id: int | None = None
        self.session: str | None = None
        self.heartbeat_seconds = 3.0
        self.busy_heartbeat_seconds = 1.0

    def register_body(self) -> dict:
        return wire.body(wire.Register, name=self.name, hostname=self.name, slots=1, cores=1, memory=0, gpu="",
                         software=self.software, tags=self.tags, version=self.version)

    def registered(self, answer: dict) -> None:
        self.id, self.session = answer["workerId"], answer["session"]
        self.headers.update({"X-Worker-Id": str(self.id), "X-Worker-Session": self.session})
        self.heard(answer)

    def heard(self, answer: dict) -> None:
        """As a real node: the server stretches the intervals on a big farm."""
        self.heartbeat_seconds = float(answer.get("heartbeatSeconds") or self.heartbeat_seconds)
        self.busy_heartbeat_seconds = float(answer.get("busyHeartbeatSeconds") or self.busy_heartbeat_seconds)

    def who(self) -> dict:
        return {"workerId": self.id, "session": self.session}

    def lease_body(self, count: int, wait: float) -> dict:
        return wire.body(wire.LeaseRequest, **self.who(), max=count, wait=wait)

    def heartbeat_body(self, leases: Iterable[str | dict], progress: float, log: Iterable[str] = ()) -> dict:
        ids = [lease["leaseId"] if isinstance(lease, dict) else lease for lease in leases]
        running = [wire.body(wire.Running, leaseId=lease_id, progress=progress, log=list(log)) for lease_id in ids]
        return wire.body(wire.Heartbeat, **self.who(), cpu=1.0, memUsed=0, running=running)

    def complete_body(self, lease_id: str, result: str, error: str, outputs: Iterable[str], seconds: float,
                      next_count: int | None) -> dict:
        body = wire.body(wire.Complete, **self.who(), leaseId=lease_id, result=result, error=error,
                         executeSeconds=seconds, outputs=list(outputs))
        if next_count is not None:
            body["next"] = next_count  # the result and this node's next leases in one call, as `rayfarm worker` does
        return body

    def output_headers(self) -> dict:
        return {**self.headers, "Content-Type": "application/octet-stream"}

    def _answer(self, call: str, response) -> dict:
        if response.status_code != 200:
            raise NodeError(f"node {self.name} {call}: HTTP {response.status_code} {response.text[:300]}")
        return response.json()


class Node(NodeCalls):
    """A node of a farm (anything with ``url`` and ``worker_token()``), registered on creation."""

    def __init__(self, farm, name: str, software: Iterable[str] | Mapping[str, str] = ("command",),
                 tags: Iterable[str] = ()):
        super().__init__(name, farm.worker_token(), software, tags=tags)
        # the client carries the node's credentials: the tests send their own requests through it too
        self.http = httpx.Client(base_url=farm.url, timeout=30,
                                 headers={"Authorization": self.headers["Authorization"]})
        self.registered(self.post("register", self.register_body()))
        self.http.headers.update({"X-Worker-Id": str(self.id), "X-Worker-Session": self.session})

    def post(self, call: str, body: dict) -> dict:
        return self._answer(call, self.http.post(f"/v1/worker/{call}", content=json.dumps(body).encode(),
                                                 headers={"Content-Type": "application/json"}))

    def lease(self, count: int = 1, wait: float = 0.0) -> list[dict]:
        return self.post("lease", self.lease_body(count, wait))["leases"]

    def heartbeat(self, leases: Iterable[str | dict] = (), progress: float = 50.0, log: Iterable[str] = ()) -> dict:
        answer = self.post("heartbeat", self.heartbeat_body(leases, progress, log))
        self.heard(answer)
        return answer

    def complete(self, lease_id: str, result: str = "done", *, error: str = "", outputs: Iterable[str] = (),
                 seconds: float = 0.0, next_count: int | None = None) -> dict:
        return self.post("complete", self.complete_body(lease_id, result, error, outputs, seconds, next_count))

    def output(self, lease_id: str, name: str, data: bytes) -> dict:
        return self._answer("output", self.http.put(f"/v1/worker/output/{lease_id}/{name}", content=data,
                                                    headers={"Content-Type": "application/octet-stream"}))

    def finish(self, lease: dict, outputs: Mapping[str, bytes] | None = None) -> None:
        """Upload these outputs of a lease and report it done (accepted)."""
        for name, data in (outputs or {}).items():
            self.output(lease["leaseId"], name, data)
        assert self.complete(lease["leaseId"], outputs=list(outputs or {}))["accepted"] is True

    def close(self) -> None:
        self.http.close()


class AsyncNode(NodeCalls):
    """A node on an asyncio client; ``retries`` transport failures of a call are tried again (a server may
    close an idle keep-alive connection under a real node too), counted in ``retried``."""

    def __init__(self, client, base: str, token: str, name: str,
                 software: Iterable[str] | Mapping[str, str] = ("command", "blender"), version: str = "bench",
                 retries: int = 0):
        super().__init__(name, token, software, version)
        self.client = client
        self.base = base
        self.retries = retries
        self.retried = 0

    def timed(self, call: str, seconds: float, answer: dict) -> None:
        """Called with every answered call; a benchmark's node records its latency here."""

    async def post(self, call: str, body: dict, client=None, timeout: float = 60.0) -> dict:
        content = json.dumps(body).encode()
        for attempt in range(self.retries + 1):
            began = time.perf_counter()
            try:
                response = await (client or self.client).post(f"{self.base}/v1/worker/{call}", content=content,
                                                              headers=self.headers, timeout=timeout)
                break
            except TRANSPORT_ERRORS:
                if attempt == self.retries:
                    raise
                self.retried += 1
        answer = self._answer(call, response)
        self.timed(call, time.perf_counter() - began, answer)
        return answer

    async def register(self) -> None:
        self.registered(await self.post("register", self.register_body()))

    async def lease(self, count: int = 1, wait: float = 0.0) -> list[dict]:
        return (await self.post("lease", self.lease_body(count, wait), timeout=wait + 60))["leases"]

    async def heartbeat(self, leases: Iterable[str | dict] = (), progress: float = 50.0, client=None) -> dict:
        answer = await self.post("heartbeat", self.heartbeat_body(leases, progress), client)
        self.heard(answer)
        return answer

    async def complete(self, lease_id: str, result: str = "done", *, error: str = "", outputs: Iterable[str] = (),
                       seconds: float = 0.0, next_count: int | None = None) -> dict:
        return await self.post("complete", self.complete_body(lease_id, result, error, outputs, seconds, next_count))

    async def output(self, lease_id: str, name: str, data: bytes) -> dict:
        began = time.perf_counter()
        response = await self.client.put(f"{self.base}/v1/worker/output/{lease_id}/{name}", content=data,
                                         headers=self.output_headers())
        answer = self._answer("output", response)
        self.timed("output", time.perf_counter() - began, answer)
        return answer
