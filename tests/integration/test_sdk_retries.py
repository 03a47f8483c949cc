"""rayfarm's own SDK (rayfarm.sdk): its retry policy, against servers that misbehave on purpose.

Failures are counted (attempts, connections, requests), never timed: a retry that should not happen is a
request too many, whatever the machine's speed.
"""

import json
import socket
import threading
import time

import httpx
import pytest

from rayfarm.protocol import signing
from rayfarm.sdk import Connect, RayfarmAPI, RayfarmAPIError, RayfarmConnectionError, RayfarmError
from tests.support.processes import free_port, wait_for


def quick(domain: str, **options) -> RayfarmAPI:
    options = {"retries": 2, "retry_wait": 0.01, "retry_max_wait": 0.02, "timeout": 5.0, **options}
    return RayfarmAPI("AKID-test", "key-test", domain=domain, **options)


def test_nothing_listening_fails_after_bounded_retries():
    port = free_port()
    client = quick(f"127.0.0.1:{port}")
    for call in (client.query.platforms, lambda: client.task.create_task(count=1)):
        with pytest.raises(RayfarmConnectionError) as caught:
            call()
        error = caught.value
        assert error.attempts == 3 and not error.may_have_reached  # retries=2: then it gives up
        assert f"http://127.0.0.1:{port}/api/" in error.url
        assert str(error).startswith(f"Could not connect to the farm at http://127.0.0.1:{port}")
        assert "tried 3 times" in str(error)
        assert isinstance(error, RayfarmError)
    client.close()


def test_default_retry_is_bounded_by_the_deadline():
    client = RayfarmAPI("AKID-test", "key-test", domain=f"127.0.0.1:{free_port()}", retries=100, retry_wait=0.05,
                        retry_max_wait=0.1, retry_deadline=0.5)
    with pytest.raises(RayfarmConnectionError) as caught:
        client.query.all_frame_status()
    assert 1 < caught.value.attempts < 100  # retried, and stopped by the 0.5 s deadline long before 100 attempts


class HangUp:
    """A TCP server that reads each request and closes the connection without answering (or stalls)."""

    def __init__(self, stall: float = 0.0):
        self.stall = stall
        self.peers: list[int] = []  # the client port of each connection accepted, in order
        self.probes: set[int] = set()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.domain = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while True:
            try:
                conn, peer = self.sock.accept()
            except OSError:
                return
            self.peers.append(peer[1])
            threading.Thread(target=self.drop, args=(conn,), daemon=True).start()

    def drop(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(2)
            try:
                conn.recv(65536)
                time.sleep(self.stall)
            except OSError:
                pass

    def connections(self) -> int:
        """Connections clients have made so far: a probe connects now and is accepted after all of them."""
        with socket.create_connection(("127.0.0.1", self.sock.getsockname()[1]), timeout=30) as probe:
            mine = probe.getsockname()[1]
            self.probes.add(mine)
            wait_for(lambda: mine in self.peers, 30, "the probe connection to be accepted", interval=0.01)
            return len([port for port in self.peers[:self.peers.index(mine)] if port not in self.probes])

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize("stall", [0.0, 0.6], ids=["hang-up", "read-timeout"])
def test_lost_answer_is_retried_only_for_idempotent_calls(stall):
    server = HangUp(stall)
    client = quick(server.domain, timeout=0.3)
    try:
        with pytest.raises(RayfarmConnectionError) as caught:
            client.query.task_info([1])
        assert caught.value.attempts == 3 and caught.value.may_have_reached
        assert "safe to repeat" in str(caught.value)
        assert server.connections() == 3

        with pytest.raises(RayfarmConnectionError) as caught:
            client.task.create_task(count=2)
        assert caught.value.attempts == 1 and caught.value.may_have_reached
        assert "check whether it took effect" in str(caught.value)
        assert server.connections() == 4  # createTask is never sent twice
    finally:
        client.close()
        server.close()


def recorder(answers):
    """A mock transport answering from ``answers`` (cycled), recording each request."""
    seen = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        status, payload = answers[min(len(seen), len(answers)) - 1]
        if isinstance(payload, dict):
            return httpx.Response(status, json=payload)
        return httpx.Response(status, text=payload)

    return httpx.MockTransport(handle), seen


def envelope(code: int, data=None, message: str = "An answer for the test.") -> dict:
    return {"version": "1.0.0", "result": code == 200, "code": code, "message": message, "data": data,
            "serverTime": 0, "requestId": "x"}


@pytest.mark.parametrize("code", [600, 601, 602, 603, 610, 611, 718, 740, 741, 937])
def test_client_mistakes_are_never_retried(code):
    transport, seen = recorder([(200, envelope(code))])
    client = quick("farm.example:80", transport=transport)
    for call in (lambda: client.task.stop_task([1]), lambda: client.task.create_task()):
        with pytest.raises(RayfarmAPIError) as caught:
            call()
        assert caught.value.code == code and caught.value.message == "An answer for the test."
    assert len(seen) == 2


def test_server_trouble_is_retried_for_idempotent_calls_only():
    # HTTP 503 twice, then success: an idempotent call gets through on the third attempt
    transport, seen = recorder([(503, "busy"), (503, "busy"), (200, envelope(200, "success"))])
    client = quick("farm.example:80", transport=transport)
    assert client.task.full_speed([5]) == "success" and len(seen) == 3
    # each attempt is signed anew: fresh nonces, valid signatures
    assert len({r.headers["nonce"] for r in seen}) == 3
    for request in seen:
        headers = {name: request.headers[name] for name in signing.SIGNED_HEADERS}
        message = signing.string_to_sign("farm.example:80", request.url.path, headers, json.loads(request.content))
        assert signing.verify("key-test", message, request.headers["signature"])
        assert headers["channel"] == "4" and headers["version"] == "2.0.0" and headers["platform"] == "2"
        assert request.headers["host"] == "farm.example:80"  # the signed host, default port and all

    transport, seen = recorder([(502, "bad gateway"), (200, envelope(200, {"taskIdList": [1]}))])
    client = quick("farm.example:80", transport=transport)
    with pytest.raises(RayfarmAPIError) as caught:
        client.task.create_task()
    assert caught.value.code == 502 and "HTTP 502" in caught.value.message and len(seen) == 1

    transport, seen = recorder([(200, envelope(500)), (200, envelope(200, []))])
    client = quick("farm.example:80", transport=transport)
    assert client.query.platforms() == [] and len(seen) == 2

    # too many requests: the farm did nothing, so even createTask is tried again
    transport, seen = recorder([(200, envelope(429)), (429, "slow down"), (200, envelope(200, {"taskIdList": [7]}))])
    client = quick("farm.example:80", transport=transport)
    assert client.task.create_task() == {"taskIdList": [7]} and len(seen) == 3


def test_answers_that_are_not_envelopes_are_clear_errors():
    transport, seen = recorder([(200, "<html>hello</html>")])
    client = quick("farm.example:80", transport=transport)
    with pytest.raises(RayfarmAPIError) as caught:
        client.query.platforms()
    assert "not a Renderbus envelope" in caught.value.message and len(seen) == 1


def test_connect_rejects_bad_configuration():
    with pytest.raises(ValueError):
        Connect("", "key")
    with pytest.raises(ValueError):
        Connect("id", "key", protocol="ftp")
    assert "key-test" not in repr(quick("farm.example:80")) and "key-test" not in repr(quick("x:1").connect)
