"""Per-key request rate limit: one token bucket per caller, per server process.

Keys: a signed Renderbus call is counted against its access id once the farm knows that id (it is in
the user cache); any other call without valid credentials (no access id, an unknown one, a bad worker
token, an unknown upload id) is counted against the client's IP address, so floods of bad signatures
or guessed ids are limited too. Render node calls with the right worker token are counted per node.
``rate`` requests per second are allowed on average with bursts of up to ``burst``; ``rate`` 0 turns
the limit off. Refused Renderbus calls answer code 429 (HTTP 200, like every Renderbus answer); refused
native calls answer HTTP 429 with ``Retry-After``.

The dashboard (rayfarm/web/routes.py) uses the same buckets: a call with a valid session cookie counts
against the cookie's access id (so the dashboard does not add to a user's rate), one without against the
address. Failed sign-ins have buckets of their own, much smaller (``signin_limiter``): one per address
and one per access id tried.

The address is the TCP peer's, or, when that peer is a ``--trusted-proxy``, the client address the proxy
forwarded (uvicorn's ProxyHeadersMiddleware, set up in rayfarm/app.py): behind a proxy every user keeps a
bucket of their own, and nobody else can pick their address with an X-Forwarded-For header.
"""

import math
import threading
import time

from starlette.requests import Request

from rayfarm.protocol.codes import ApiError, Code

MAX_KEYS = 10_000
# failed dashboard sign-ins per address: 5 at once, then one every 2 s (1800 an hour): a person who mistypes
# never notices, a key guesser gets nowhere (keys are random). Never more than --rate-limit / --rate-burst.
SIGNIN_RATE, SIGNIN_BURST = 0.5, 5


class RateLimiter:
    def __init__(self, rate: float, burst: int):
        self.rate = float(rate)
        self.burst = max(1.0, float(burst), self.rate)
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, time of last update)
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def _level(self, key: str, now: float) -> float:
        tokens, last = self._buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + (now - last) * self.rate)

    def take(self, key: str) -> float:
        """Spend one token of ``key``: 0 if the request may go on, else the seconds until it could."""
        if not self.enabled:
            return 0.0
        now = time.monotonic()
        with self._lock:
            tokens = self._level(key, now)
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                return (1 - tokens) / self.rate
            if len(self._buckets) >= MAX_KEYS and key not in self._buckets:
                self._forget(now)
            self._buckets[key] = (tokens - 1, now)
            return 0.0

    def give_back(self, key: str) -> None:
        """Return a token ``take`` spent (a sign-in attempt that turned out right costs nothing)."""
        if not self.enabled:
            return
        now = time.monotonic()
        with self._lock:
            if key in self._buckets:
                self._buckets[key] = (min(self.burst, self._level(key, now) + 1), now)

    def blocked(self, key: str) -> float:
        """Seconds until ``key`` has a token again (0 if it has one now), without spending one."""
        if not self.enabled:
            return 0.0
        with self._lock:
            tokens = self._level(key, time.monotonic())
        return 0.0 if tokens >= 1 else (1 - tokens) / self.rate

    def _forget(self, now: float) -> None:
        """Drop buckets that are full again (they behave like new ones); all of them if that is not enough."""
        for key in [k for k in self._buckets if self._level(k, now) >= self.burst]:
            del self._buckets[key]
        if len(self._buckets) >= MAX_KEYS:
            self._buckets.clear()


class Throttled(ApiError):
    """ApiError 429 that knows how long to wait: the dashboard answers it as HTTP 429 with Retry-After."""

    def __init__(self, message: str, wait: float):
        super().__init__(Code.TOO_MANY_REQUESTS, message)
        self.wait = wait


def signin_limiter(settings) -> RateLimiter:
    """The bucket of failed dashboard sign-ins per address; off with --rate-limit 0 like the other one."""
    return RateLimiter(min(SIGNIN_RATE, settings.rate_limit), min(SIGNIN_BURST, settings.rate_burst))


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def retry_after(wait: float) -> str:
    return str(max(1, math.ceil(wait)))


def _per_second(rate: float) -> str:
    return f"{rate:g} per second"


def _take(farm, request: Request, access_id: str | None, anonymous: str) -> tuple[float, str]:
    """A token from the access id's bucket, else from the address's: (seconds to wait, who ran out)."""
    if access_id:
        return farm.limiter.take(f"id:{access_id}"), "this access id"
    return farm.limiter.take(f"ip:{client_ip(request)}"), anonymous


def check_signed(farm, request: Request) -> None:
    """Before a signed Renderbus call does any work: ApiError(429) if its key is out of tokens."""
    if not farm.limiter.enabled:
        return
    access_id = request.headers.get("accessid", "")[:128]
    known = access_id if access_id and farm.knows_access_id(access_id) else None
    wait, who = _take(farm, request, known, "this address without a known access id")
    if wait:
        raise ApiError(Code.TOO_MANY_REQUESTS, too_many_message(farm.limiter, who, wait))


def check_web(farm, request: Request, access_id: str | None) -> None:
    """Before a dashboard call does any work: Throttled if the signed-in access id (from the session cookie),
    or the address for a call without a valid session, is out of tokens."""
    if not farm.limiter.enabled:
        return
    wait, who = _take(farm, request, access_id, "this address without a dashboard session")
    if wait:
        raise Throttled(too_many_message(farm.limiter, who, wait), wait)


def signin_refused(wait: float, who: str) -> Throttled:
    seconds = int(retry_after(wait))
    return Throttled(f"Too many failed sign-ins {who}; wait {seconds} "
                     f"second{'s' if seconds != 1 else ''} and try again.", wait)


def refused_attempts_wait(farm, request: Request) -> float:
    """Seconds this client must wait because of its refused attempts (bad token, unknown upload id); 0 if none."""
    return farm.limiter.blocked(f"ip:{client_ip(request)}")


def count_refused_attempt(farm, request: Request) -> None:
    farm.limiter.take(f"ip:{client_ip(request)}")


def node_key(request: Request, body) -> str:
    """The bucket of a render node's call: its worker id (header or body), else its name, else its address."""
    node = request.headers.get("x-worker-id", "")[:32] or str(getattr(body, "workerId", "") or "")
    if not node:
        node = getattr(body, "name", "") or client_ip(request)
    return f"node:{node}"


def too_many_message(limiter: RateLimiter, who: str, wait: float) -> str:
    return (f"Too many requests from {who}; slow down to {_per_second(limiter.rate)} and try again in "
            f"{wait:.1f} s.")
