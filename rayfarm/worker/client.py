"""HTTP calls to the farm's worker API, with retries (tenacity) while the server is unreachable."""

import hashlib
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, stop_any, wait_exponential_jitter

from rayfarm import tls

log = logging.getLogger(__name__)

T = TypeVar("T")
API = "/v1/worker"


class FarmError(Exception):
    """The server answered with an error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


class StaleSession(FarmError):
    """409 (the session is no longer the node's current one) or 404 (the server does not know this node,
    e.g. its database was replaced): register again."""


INSUFFICIENT_STORAGE = 507  # the farm cannot store outputs: the chunk fails (and is retried), no endless retry here


def transient(exc: BaseException) -> bool:
    """Errors worth retrying: the server is down, restarting or overloaded (not a certificate this node distrusts)."""
    if isinstance(exc, httpx.TransportError):
        return tls.certificate_problem(exc) is None
    return isinstance(exc, FarmError) and ((exc.status >= 500 and exc.status != INSUFFICIENT_STORAGE)
                                           or exc.status == 429)


def _check_session(response: httpx.Response) -> dict[str, Any]:
    """`_check` for calls that name the node's session: 404 there means the server no longer knows the node."""
    try:
        return _check(response)
    except StaleSession:
        raise
    except FarmError as exc:
        if exc.status == 404:
            raise StaleSession(404, exc.message) from None
        raise


def _check(response: httpx.Response) -> dict[str, Any]:
    if response.status_code < 400:
        if not response.content:
            return {}
        data = response.json()
        return data if isinstance(data, dict) else {"data": data}
    try:
        message = str(response.json().get("error") or response.text)
    except (ValueError, AttributeError):
        message = response.text[:300] or response.reason_phrase
    cls = StaleSession if response.status_code == 409 else FarmError
    raise cls(response.status_code, message)


class FarmClient:
    def __init__(self, server_url: str, token: str, stop: threading.Event | None = None, timeout: float = 30.0,
                 max_backoff: float = 10.0, transport: httpx.BaseTransport | None = None,
                 ca_cert: str | None = None) -> None:
        self.stop = stop or threading.Event()
        self.max_backoff = max_backoff
        # https: the server's certificate is checked (system CAs, plus `ca_cert` or $RAYFARM_CA_CERT)
        self.http = httpx.Client(base_url=server_url.rstrip("/"), timeout=timeout, transport=transport,
                                 headers={"Authorization": f"Bearer {token}"}, verify=tls.verify_for(server_url, ca_cert))

    def close(self) -> None:
        self.http.close()

    def identify(self, worker_id: int, session: str) -> None:
        """Send the node's id and session with the calls that carry no JSON body (outputs, scenes)."""
        self.http.headers["X-Worker-Id"] = str(worker_id)
        self.http.headers["X-Worker-Session"] = str(session)

    def _stopped(self, state: RetryCallState) -> bool:
        return self.stop.is_set()

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0
        log.warning("farm server call failed (%s); retry %d in %.1f s", exc, state.attempt_number, wait)

    def retrying(self, call: Callable[[], T], attempts: int | None = None,
                 give_up: Callable[[], bool] | None = None) -> T:
        """Run `call`, retrying transient errors with exponential backoff until it works or the node stops
        (or `give_up()` turns true: the last error is raised)."""
        stops = [self._stopped]
        if attempts is not None:
            stops.append(stop_after_attempt(attempts))
        if give_up is not None:
            stops.append(lambda state: give_up())
        stop = stop_any(*stops)
        retryer = Retrying(retry=retry_if_exception(transient), stop=stop, reraise=True,
                           wait=wait_exponential_jitter(multiplier=0.5, jitter=0.5, max=self.max_backoff),
                           sleep=self.stop.wait, before_sleep=self._log_retry)
        return retryer(call)

    def post(self, name: str, body: dict[str, Any], *, retry: bool = True, timeout: float | None = None,
             attempts: int | None = None, give_up: Callable[[], bool] | None = None) -> dict[str, Any]:
        def call() -> dict[str, Any]:
            extra = {"timeout": timeout} if timeout is not None else {}
            return _check_session(self.http.post(f"{API}/{name}", json=body, **extra))
        return self.retrying(call, attempts, give_up) if retry else call()

    def upload(self, lease_id: str, path: Path, give_up: Callable[[], bool] | None = None) -> dict[str, Any]:
        """PUT one output file (raw bytes), retried until it gets through."""
        url = f"{API}/output/{quote(lease_id, safe='')}/{quote(path.name, safe='')}"

        def call() -> dict[str, Any]:
            with open(path, "rb") as stream:
                return _check_session(self.http.put(url, content=stream, timeout=None,
                                                    headers={"Content-Type": "application/octet-stream",
                                                             "Content-Length": str(path.stat().st_size)}))
        return self.retrying(call, give_up=give_up)

    def download(self, url: str, dest: Path, attempts: int = 6) -> str:
        """GET `url` into the file `dest` (overwritten); returns the sha256 of the bytes."""
        def call() -> str:
            digest = hashlib.sha256()
            with self.http.stream("GET", url, timeout=httpx.Timeout(60.0, read=300.0)) as response:
                if response.status_code >= 400:
                    response.read()
                    _check(response)
                with open(dest, "wb") as out:
                    for block in response.iter_bytes(1 << 20):
                        digest.update(block)
                        out.write(block)
            return digest.hexdigest()
        return self.retrying(call, attempts)
