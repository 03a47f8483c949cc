"""Signed requests to a Renderbus-compatible farm, with a retry policy that never repeats an unsafe call.

Every call is a ``POST`` of a JSON object to a fixed path, signed exactly like the official
``rayvision_api`` SDK does it (see :mod:`rayfarm.protocol.signing`). The answer is the Renderbus
envelope; a ``code`` other than 200 raises :class:`~rayfarm.sdk.errors.RayfarmAPIError`.

Retry policy (bounded, with jittered exponential waits, implemented with ``tenacity``):

* A request that never left this machine (connection refused, connect timeout, no free
  connection in the pool) is retried for every call: the farm never saw it.
* A request that may have reached the farm but whose answer was lost (read timeout, connection
  reset, server hung up) is retried only when the call is idempotent, which is every call but
  ``createTask`` (a repeat would reserve new task ids).
* An answer saying "too many requests" (HTTP 429 or code 429) is retried for every call: the farm
  did not act on it. A server-side failure (code 500, HTTP 500/502/503/504) is retried only for
  idempotent calls.
* Any other answer, in particular a client mistake (6xx, 7xx, 9xx codes), is raised at once.

Each attempt is signed anew, with a fresh nonce and timestamp, so retries are never taken for
replays.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from tenacity import Retrying, retry_if_exception, stop_after_attempt, stop_after_delay, wait_exponential_jitter

from rayfarm import tls
from rayfarm.protocol import signing
from rayfarm.sdk.errors import RayfarmAPIError, RayfarmConnectionError, RayfarmError
from rayfarm.sdk.urls import NOT_IDEMPOTENT, ApiUrl

CHANNEL = "4"
VERSION = "2.0.0"
#: Transport errors raised before the request was sent: the farm cannot have seen it.
NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
#: Transport errors after the request may have been sent: the answer was lost.
ANSWER_LOST = (httpx.ReadTimeout, httpx.WriteTimeout, httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError,
               httpx.CloseError)
RETRY_HTTP_ANY = frozenset({429})
RETRY_HTTP_IDEMPOTENT = frozenset({500, 502, 503, 504})
RETRY_CODES_ANY = frozenset({429})
RETRY_CODES_IDEMPOTENT = frozenset({500})


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, RayfarmError) and bool(getattr(exc, "retryable", False))


def _mark(exc: RayfarmError, retryable: bool) -> RayfarmError:
    exc.retryable = retryable  # type: ignore[attr-defined]
    return exc


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Connect:
    """A signed-request connection to one farm (one access id and key).

    Args:
        access_id: The user's access id.
        access_key: The user's access key (the HMAC secret; it never leaves this object).
        domain: ``host:port`` of the farm, as the requests address it (it is part of the signature).
        protocol: ``"http"`` or ``"https"``.
        platform: The platform header (rayfarm answers as platform ``"2"`` by default).
        timeout: Seconds to wait for the farm (connect, send and read), per attempt.
        retries: Extra attempts after the first one, for failures that are safe to retry.
        retry_wait: First wait between attempts, seconds (doubles each time, with jitter).
        retry_max_wait: Longest wait between two attempts, seconds.
        retry_deadline: No new attempt starts after this many seconds since the first one.
        transport: An ``httpx`` transport to use instead of the network (for tests).
        ca_cert: Over https, a CA certificate file to trust besides the system's (a studio CA); default
            ``$RAYFARM_CA_CERT``. Certificates are always checked.
        sleep: The function that waits between attempts (for tests).
    """

    url = ApiUrl

    def __init__(self, access_id: str, access_key: str, domain: str = "127.0.0.1:8765", protocol: str = "http",
                 platform: str = "2", timeout: float = 60.0, *, retries: int = 3, retry_wait: float = 0.5,
                 retry_max_wait: float = 4.0, retry_deadline: float = 120.0,
                 transport: httpx.BaseTransport | None = None, sleep: Callable[[float], None] = time.sleep,
                 ca_cert: str | None = None) -> None:
        if not access_id:
            raise ValueError("access_id is required: pass the access id the farm's administrator gave you.")
        if not access_key:
            raise ValueError("access_key is required: pass the access key the farm's administrator gave you.")
        if protocol not in ("http", "https"):
            raise ValueError(f"protocol must be 'http' or 'https', not {protocol!r}.")
        if retries < 0:
            raise ValueError("retries cannot be negative.")
        self.access_id = access_id
        self._access_key = access_key
        self.domain = domain
        self.protocol = protocol
        self.platform = str(platform)
        self.timeout = timeout
        self.retries = retries
        self.retry_wait = retry_wait
        self.retry_max_wait = retry_max_wait
        self.retry_deadline = retry_deadline
        self._sleep = sleep
        try:
            verify = tls.client_context(ca_cert) if protocol == "https" else True
        except tls.TrustError as exc:
            raise RayfarmError(str(exc)) from None
        self._client = httpx.Client(timeout=timeout, transport=transport, follow_redirects=False, verify=verify)

    def __repr__(self) -> str:
        return f"Connect(domain={self.domain!r}, access_id={self.access_id!r})"

    # ------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close the underlying HTTP connections."""
        self._client.close()

    def __enter__(self) -> Connect:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def http(self) -> httpx.Client:
        """The HTTP client of this connection (its certificate trust): file transfers use it too."""
        return self._client

    # ------------------------------------------------------------ requests

    def address(self, path: str) -> str:
        """The full URL of an API path."""
        return f"{self.protocol}://{self.domain}{path}"

    def signed_headers(self, path: str, body: Mapping[str, Any]) -> dict[str, str]:
        """Headers of one request to ``path`` with ``body``: a fresh nonce and timestamp, signed.

        ``body`` must already be JSON-normalised (what the farm will decode), see :meth:`post`.
        """
        headers = {
            "accessId": self.access_id,
            "channel": CHANNEL,
            "platform": self.platform,
            "UTCTimestamp": str(int(time.time())),
            "nonce": secrets.token_hex(8),
            "version": VERSION,
        }
        message = signing.string_to_sign(self.domain, path, headers, body)
        headers["signature"] = signing.sign(self._access_key, message)
        headers["Content-Type"] = "application/json"
        headers["languageFlag"] = "1"
        # The farm checks the signature against the Host it receives: send exactly the signed one
        # (an HTTP client would otherwise drop a default port such as ":80" from it).
        headers["Host"] = self.domain
        return headers

    def post(self, api_url: str, data: Mapping[str, Any] | None = None, *, idempotent: bool | None = None) -> Any:
        """Send a signed request and return the answer's ``data``.

        Args:
            api_url: The API path, e.g. ``/api/render/handle/queryTaskInfo/v2``.
            data: The request body (a mapping of JSON values; tuples are sent as lists).
            idempotent: Whether repeating the call has the same effect as doing it once; by
                default every call but ``createTask``. Only idempotent calls are retried once the
                request may have reached the farm.

        Returns:
            The envelope's ``data`` (dict, list, str or None).

        Raises:
            RayfarmAPIError: The farm answered with a code other than 200.
            RayfarmConnectionError: The farm could not be reached or did not answer, after the
                retries the policy allows.
        """
        path = str(getattr(api_url, "value", api_url))
        if idempotent is None:
            idempotent = path not in NOT_IDEMPOTENT
        # What the farm will decode is what gets signed: a JSON round trip makes both sides agree
        # (tuples become lists, keys become strings).
        body = json.loads(json.dumps(dict(data or {})))
        url = self.address(path)
        retrying = Retrying(
            stop=stop_after_attempt(self.retries + 1) | stop_after_delay(self.retry_deadline),
            wait=wait_exponential_jitter(multiplier=self.retry_wait, max=self.retry_max_wait,
                                         jitter=self.retry_wait),
            retry=retry_if_exception(_retryable),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._send_once(url, path, body, idempotent)
        except RayfarmConnectionError as exc:
            attempts = retrying.statistics.get("attempt_number", 1)
            exc.attempts = attempts
            if attempts > 1:
                exc.message = f"{exc.message} (tried {attempts} times)"
                exc.args = (exc.message,)
            raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _send_once(self, url: str, path: str, body: dict, idempotent: bool) -> Any:
        headers = self.signed_headers(path, body)
        content = json.dumps(body).encode("utf-8")
        try:
            response = self._client.post(url, content=content, headers=headers)
        except NEVER_SENT as exc:
            problem = tls.certificate_problem(exc)
            if problem:  # retrying cannot help: the certificate stays what it is
                raise RayfarmConnectionError(f"{problem} ({url})", url, may_have_reached=False) from exc
            raise _mark(RayfarmConnectionError(
                f"Could not connect to the farm at {url} ({_reason(exc)}); check that the server runs and that "
                f"domain {self.domain!r} is right.", url, may_have_reached=False), True) from exc
        except ANSWER_LOST as exc:
            safe = "the call is safe to repeat" if idempotent else "check whether it took effect before repeating it"
            raise _mark(RayfarmConnectionError(
                f"The farm at {url} did not answer ({_reason(exc)}); the request may have reached it, "
                f"{safe}.", url, may_have_reached=True), idempotent) from exc
        except httpx.HTTPError as exc:
            raise RayfarmConnectionError(f"The request to {url} failed ({_reason(exc)}).", url) from exc
        return self._answer(response, url, idempotent)

    @staticmethod
    def _answer(response: httpx.Response, url: str, idempotent: bool) -> Any:
        status = response.status_code
        if status != 200:
            snippet = response.text[:200].strip()
            error = RayfarmAPIError(status, f"The farm answered HTTP {status} instead of a Renderbus answer"
                                            f"{': ' + snippet if snippet else ''}.", url)
            raise _mark(error, status in RETRY_HTTP_ANY or (idempotent and status in RETRY_HTTP_IDEMPOTENT))
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict) or not isinstance(payload.get("code"), int):
            raise RayfarmAPIError(status, "The farm's answer is not a Renderbus envelope (JSON with a 'code'); "
                                          "check that the domain points at a rayfarm server.", url)
        code = payload["code"]
        if code != 200:
            error = RayfarmAPIError(code, str(payload.get("message") or ""), url)
            raise _mark(error, code in RETRY_CODES_ANY or (idempotent and code in RETRY_CODES_IDEMPOTENT))
        return payload.get("data")
