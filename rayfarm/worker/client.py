"""HTTP calls to the farm's worker API over kept-alive connections, with retries (tenacity) while the server is
unreachable.

One client per node, shared by its threads: a call takes an idle connection (or opens one), sends its request,
reads the whole answer and puts the connection back for the next call (HTTP/1.1 keep-alive), so a node opens a
few connections in its life, not one per call. It is the standard library's http.client: a call costs a node
about a third of the CPU that httpx costs (0.15 against 0.45 ms on the reference machine), on cores the node
shares with the renders. A connection the server closed while it was idle (uvicorn closes them after 5 s) is
noticed when it fails before any answer came, and the call goes again once on a new connection.
"""

import hashlib
import http.client
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeVar
from urllib.parse import quote, urlsplit

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, stop_any, wait_exponential_jitter

from rayfarm import tls

log = logging.getLogger(__name__)

T = TypeVar("T")
API = "/v1/worker"
TRANSFER_TIMEOUT = 300.0  # seconds a file transfer may wait for the other side (per read or write, not in all)
BLOCK = 1 << 20


class FarmError(Exception):
    """The server answered with an error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


class StaleSession(FarmError):
    """409 (the session is no longer the node's current one) or 404 (the server does not know this node,
    e.g. its database was replaced): register again."""


class Unreachable(Exception):
    """The server could not be reached, or the connection broke before the whole answer arrived."""


INSUFFICIENT_STORAGE = 507  # the farm cannot store outputs: the chunk fails (and is retried), no endless retry here
BROKEN = (OSError, http.client.HTTPException)  # what a connection raises when it fails (timeouts are OSErrors)


def transient(exc: BaseException) -> bool:
    """Errors worth retrying: the server is down, restarting or overloaded (not a certificate this node distrusts)."""
    if isinstance(exc, Unreachable):
        return tls.certificate_problem(exc) is None
    return isinstance(exc, FarmError) and ((exc.status >= 500 and exc.status != INSUFFICIENT_STORAGE)
                                           or exc.status == 429)


@dataclass
class Answer:
    status: int
    reason: str
    body: bytes


def _check(answer: Answer) -> dict[str, Any]:
    if answer.status < 400:
        if not answer.body:
            return {}
        data = json.loads(answer.body)
        return data if isinstance(data, dict) else {"data": data}
    text = answer.body.decode("utf-8", "replace")
    try:
        data = json.loads(text)
        message = str(data.get("error") or text) if isinstance(data, dict) else text
    except ValueError:
        message = text[:300] or answer.reason
    cls = StaleSession if answer.status == 409 else FarmError
    raise cls(answer.status, message)


def _check_session(answer: Answer) -> dict[str, Any]:
    """`_check` for calls that name the node's session: 404 there means the server no longer knows the node."""
    try:
        return _check(answer)
    except StaleSession:
        raise
    except FarmError as exc:
        if exc.status == 404:
            raise StaleSession(404, exc.message) from None
        raise


class Connections:
    """Kept-alive connections to one server, shared by threads (one connection serves one call at a time)."""

    def __init__(self, server_url: str, ca_cert: str | None = None) -> None:
        parts = urlsplit(server_url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"the server URL must look like http://host:port, not {server_url!r}")
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.https else 80)
        self.prefix = parts.path
        # https: the server's certificate is checked (system CAs, plus `ca_cert` or $RAYFARM_CA_CERT)
        self._context = tls.client_context(ca_cert) if self.https else None
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def _new(self, timeout: float | None) -> http.client.HTTPConnection:
        if self.https:
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=self._context,
                                               blocksize=BLOCK)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout, blocksize=BLOCK)

    def exchange(self, method: str, path: str, headers: dict[str, str], body: bytes | BinaryIO | None,
                 timeout: float | None) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """Send one request and get the answer's head: (its connection, the answer to read). Unreachable when the
        server cannot be reached or the connection breaks; a kept-alive connection that fails before any answer
        (the server closed it while idle) is replaced once."""
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        reused = conn is not None
        if conn is None:
            conn = self._new(timeout)
        while True:
            conn.timeout = timeout
            if conn.sock is not None:
                conn.sock.settimeout(timeout)
            try:
                conn.request(method, self.prefix + path, body=body, headers=headers)
                return conn, conn.getresponse()
            except BROKEN as exc:
                conn.close()
                if not reused:  # (the cause kept: a certificate this node distrusts is told apart, never retried)
                    raise Unreachable(f"{method} {path}: {exc or type(exc).__name__}") from exc
                if body is not None and not isinstance(body, bytes):
                    body.seek(0)  # a file sent again from its start
                reused, conn = False, self._new(timeout)

    def done(self, conn: http.client.HTTPConnection, response: http.client.HTTPResponse) -> None:
        """The answer was read whole: keep the connection for the next call unless it is closing."""
        if response.will_close or not response.isclosed():
            conn.close()
            return
        with self._lock:
            self._idle.append(conn)

    def call(self, method: str, path: str, headers: dict[str, str], body: bytes | BinaryIO | None,
             timeout: float | None) -> Answer:
        conn, response = self.exchange(method, path, headers, body, timeout)
        try:
            data = response.read()
        except BROKEN as exc:
            conn.close()
            raise Unreachable(f"{method} {path}: the answer broke off ({exc or type(exc).__name__})") from None
        self.done(conn, response)
        return Answer(response.status, response.reason, data)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


class FarmClient:
    def __init__(self, server_url: str, token: str, stop: threading.Event | None = None, timeout: float = 30.0,
                 max_backoff: float = 10.0, ca_cert: str | None = None) -> None:
        self.stop = stop or threading.Event()
        self.max_backoff = max_backoff
        self.timeout = timeout
        self.connections = Connections(server_url, ca_cert)
        self.headers = {"Authorization": f"Bearer {token}"}

    def close(self) -> None:
        self.connections.close()

    def identify(self, worker_id: int, session: str) -> None:
        """Send the node's id and session with the calls that carry no JSON body (outputs, scenes)."""
        self.headers = {**self.headers, "X-Worker-Id": str(worker_id), "X-Worker-Session": str(session)}

    def _stopped(self, state: RetryCallState) -> bool:
        return self.stop.is_set()

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0
        log.warning("farm server call failed (%s); retry %d in %.1f s", exc, state.attempt_number + 1, wait)

    def retrying(self, call: Callable[[], T], attempts: int | None = None,
                 give_up: Callable[[], bool] | None = None) -> T:
        """Run `call`, retrying transient errors with exponential backoff until it works or the node stops
        (or `give_up()` turns true: the last error is raised). The first try runs without tenacity's machinery."""
        try:
            return call()
        except Exception as exc:
            if not transient(exc) or attempts == 1 or (give_up is not None and give_up()):
                raise
            first_wait = min(0.5, self.max_backoff)
            log.warning("farm server call failed (%s); retry 1 in %.1f s", exc, first_wait)
            if self.stop.wait(first_wait):
                raise
        stops = [self._stopped]
        if attempts is not None:
            stops.append(stop_after_attempt(attempts - 1))
        if give_up is not None:
            stops.append(lambda state: give_up())
        stop = stop_any(*stops)
        retryer = Retrying(retry=retry_if_exception(transient), stop=stop, reraise=True,
                           wait=wait_exponential_jitter(multiplier=0.5, jitter=0.5, max=self.max_backoff),
                           sleep=self.stop.wait, before_sleep=self._log_retry)
        return retryer(call)

    def post(self, name: str, body: dict[str, Any], *, retry: bool = True, timeout: float | None = None,
             attempts: int | None = None, give_up: Callable[[], bool] | None = None) -> dict[str, Any]:
        data = json.dumps(body, separators=(",", ":")).encode()
        wait = self.timeout if timeout is None else timeout

        def call() -> dict[str, Any]:
            headers = {**self.headers, "Content-Type": "application/json"}
            return _check_session(self.connections.call("POST", f"{API}/{name}", headers, data, wait))
        return self.retrying(call, attempts, give_up) if retry else call()

    def upload(self, lease_id: str, path: Path, give_up: Callable[[], bool] | None = None) -> dict[str, Any]:
        """PUT one output file (raw bytes), retried until it gets through."""
        url = f"{API}/output/{quote(lease_id, safe='')}/{quote(path.name, safe='')}"

        def call() -> dict[str, Any]:
            with open(path, "rb") as stream:
                headers = {**self.headers, "Content-Type": "application/octet-stream",
                           "Content-Length": str(path.stat().st_size)}
                return _check_session(self.connections.call("PUT", url, headers, stream, TRANSFER_TIMEOUT))
        return self.retrying(call, give_up=give_up)

    def download(self, url: str, dest: Path, attempts: int = 6) -> str:
        """GET `url` into the file `dest` (overwritten); returns the sha256 of the bytes."""
        def call() -> str:
            conn, response = self.connections.exchange("GET", url, dict(self.headers), None, TRANSFER_TIMEOUT)

            def read(size: int | None = None) -> bytes:
                try:
                    return response.read(size)
                except BROKEN as exc:
                    raise Unreachable(f"GET {url}: the download broke off ({exc or type(exc).__name__})") from None
            try:
                if response.status >= 400:
                    _check(Answer(response.status, response.reason, read()))
                digest = hashlib.sha256()
                with open(dest, "wb") as out:  # errors of this machine's disk are not the server's
                    while block := read(BLOCK):
                        digest.update(block)
                        out.write(block)
            except BaseException:
                conn.close()
                raise
            self.connections.done(conn, response)
            return digest.hexdigest()
        return self.retrying(call, attempts)
