"""The node never gives up on its server: a server that forgot it (404: new database) gets a new registration,
and an unreachable server is retried until it answers. Driven through a loopback server that answers from memory."""

import threading
import time

from rayfarm.worker.agent import Agent
from rayfarm.worker.client import FarmClient
from tests.support.http_stub import Request, StubServer
from tests.support.processes import wait_for


class Farm:
    """Answers the worker API from memory: forgets the node once, is unreachable for a while."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.registrations = 0
        self.forget = True  # the first session call after registering answers 404
        self.down_until = 0.0
        self.calls: list[str] = []

    def answer(self, request: Request) -> tuple | None:
        name = request.path.rsplit("/", 1)[-1]
        with self.lock:
            self.calls.append(name)
            if time.monotonic() < self.down_until:
                return None  # the connection drops without an answer
            if name == "register":
                self.registrations += 1
                return 200, {"workerId": 1, "session": f"s{self.registrations}", "leaseSeconds": 10,
                             "heartbeatSeconds": 0.2, "busyHeartbeatSeconds": 0.2}
            body = request.json()
            if self.forget and body.get("session") == "s1":
                self.forget = False
                return 404, {"error": "Worker 1 is not registered; register first."}
            if body.get("session") != f"s{self.registrations}":
                return 409, {"error": "This worker session is no longer current."}
        if name == "lease":
            time.sleep(0.05)
            return 200, {"leases": []}
        return 200, {"stop": [], "leaseExpires": time.time() + 10, "disabled": False, "draining": False}


def test_node_registers_again_when_forgotten_and_outlasts_an_outage(tmp_path):
    farm = Farm()
    server = StubServer(farm.answer)
    client = FarmClient(server.url, "token", max_backoff=0.2)
    agent = Agent(server.url, "token", name="node", work_dir=tmp_path, lease_wait=0.1, client=client)
    runner = threading.Thread(target=agent.run, daemon=True)
    runner.start()
    try:
        wait_for(lambda: farm.registrations >= 2, 60, "the forgotten node to register again")
        with farm.lock:
            farm.down_until = time.monotonic() + 3.0  # the server is unreachable for 3 s
            seen = len(farm.calls)
        wait_for(lambda: time.monotonic() > farm.down_until and len(farm.calls) > seen + 5, 60,
                 "the node to keep calling through the outage")
        with farm.lock:
            after = len(farm.calls)
        wait_for(lambda: farm.calls[after:].count("heartbeat") >= 2 and "lease" in farm.calls[after:], 60,
                 "the node to heartbeat and ask for work again after the outage")
        assert runner.is_alive() and agent.error is None
        assert farm.registrations == 2  # the outage itself needs no new registration
    finally:
        agent.stop()
        runner.join(60)
        server.close()
