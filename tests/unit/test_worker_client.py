"""The node's HTTP client (worker/client.py): kept-alive connections, a connection the server closed, errors."""

import pytest

from rayfarm.worker.client import FarmClient, FarmError, StaleSession, Unreachable
from tests.support.http_stub import StubServer


@pytest.fixture
def stub():
    servers = []

    def make(answer) -> StubServer:
        servers.append(StubServer(answer))
        return servers[-1]
    yield make
    for server in servers:
        server.close()


def test_calls_go_over_one_kept_alive_connection_with_the_token(stub):
    server = stub(lambda request: (200, {"echo": request.json()}))
    client = FarmClient(server.url, "tok")
    answers = [client.post("heartbeat", {"n": n}) for n in range(5)]
    assert answers == [{"echo": {"n": n}} for n in range(5)]
    assert len({request.peer for request in server.requests}) == 1
    assert {request.headers["Authorization"] for request in server.requests} == {"Bearer tok"}
    assert server.requests[0].path == "/v1/worker/heartbeat"
    client.close()


def test_a_connection_the_server_closed_while_idle_is_replaced_and_the_call_sent_once(stub):
    server = stub(lambda request: (200, {"ok": True}))
    server.close_after_answer = True  # as uvicorn closes kept-alive connections after 5 s without a call
    client = FarmClient(server.url, "tok")
    assert [client.post("complete", {"n": n}, retry=False) for n in range(3)] == [{"ok": True}] * 3
    assert [request.json()["n"] for request in server.requests] == [0, 1, 2]  # each call arrived once
    assert len({request.peer for request in server.requests}) == 3
    client.close()


def test_errors_are_the_servers_sentences_and_an_unreachable_server_is_unreachable(stub):
    answers = {"/v1/worker/lease": (409, {"error": "This worker session is no longer current."}),
               "/v1/worker/heartbeat": (404, {"error": "Worker 1 is not registered; register first."}),
               "/v1/worker/complete": (422, {"error": "leaseId is missing."})}
    server = stub(lambda request: answers[request.path])
    client = FarmClient(server.url, "tok")
    with pytest.raises(StaleSession, match="no longer current"):
        client.post("lease", {}, retry=False)
    with pytest.raises(StaleSession) as stale:  # a session call that the server does not know: register again
        client.post("heartbeat", {}, retry=False)
    assert stale.value.status == 404
    with pytest.raises(FarmError) as refused:
        client.post("complete", {}, retry=False)
    assert (refused.value.status, refused.value.message) == (422, "leaseId is missing.")
    client.close()
    server.close()
    with pytest.raises(Unreachable):
        FarmClient(server.url, "tok").post("heartbeat", {}, retry=False)
