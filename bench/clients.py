"""HTTP clients of the benchmarks' load generators: httpx, or a raw HTTP/1.1 client that costs a tenth of its
CPU per request (``--client raw``), and signed Renderbus calls over either."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from typing import Any

import httpx

_SSL: ssl.SSLContext | None = None


def async_client(connections: int = 1, timeout: float = 60.0) -> httpx.AsyncClient:
    """An httpx client for ONE sequential user: httpcore's pool gets slower than linear when many
    requests share it (64 loops on one pool: ~40 req/s against ~700 with a client each), so every
    simulated worker or user gets a client of its own."""
    global _SSL
    if _SSL is None:  # building one per client costs ~40 ms (CA bundle): 1000 clients would take 40 s
        _SSL = ssl.create_default_context()
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(limits=limits, timeout=timeout, verify=_SSL)


class RawResponse:
    def __init__(self, status_code: int, content: bytes):
        self.status_code = status_code
        self.content = content

    @property
    def text(self) -> str:
        return self.content.decode(errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)

    def raise_for_status(self) -> None:
        if self.status_code >= 400:
            raise RuntimeError(f"HTTP {self.status_code}: {self.text[:200]}")


class RawClient:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams, for ONE sequential user, with the calls of
    httpx.AsyncClient the benchmarks make (get, post, put with content and headers). It spends a fraction of
    httpx's CPU per request, so the load generator stops being what is measured (``--client raw``)."""

    def __init__(self, timeout: float = 60.0):
        self.timeout = timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> RawClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
            self._reader = self._writer = None

    async def get(self, url: str, headers: dict | None = None, timeout: float | None = None) -> RawResponse:
        return await self.request("GET", url, b"", headers, timeout)

    async def post(self, url: str, content: bytes = b"", headers: dict | None = None,
                   timeout: float | None = None) -> RawResponse:
        return await self.request("POST", url, content, headers, timeout)

    async def put(self, url: str, content: bytes = b"", headers: dict | None = None,
                  timeout: float | None = None) -> RawResponse:
        return await self.request("PUT", url, content, headers, timeout)

    async def request(self, method: str, url: str, content: bytes, headers: dict | None,
                      timeout: float | None) -> RawResponse:
        return await asyncio.wait_for(self._request(method, url, content, headers or {}), timeout or self.timeout)

    async def _request(self, method: str, url: str, content: bytes, headers: dict) -> RawResponse:
        headers = dict(headers)
        rest = url.split("://", 1)[1]
        hostport, _, path = rest.partition("/")
        path = "/" + path
        if self._writer is None:
            host, _, port = hostport.partition(":")
            self._reader, self._writer = await asyncio.open_connection(host, int(port or 80))
        lines = [f"{method} {path} HTTP/1.1", f"Host: {headers.pop('Host', hostport)}",
                 f"Content-Length: {len(content)}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + content)
        try:
            head = await self._reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length, close = 0, False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection" and value.strip().lower() == b"close":
                    close = True
            body = await self._reader.readexactly(length) if length else b""
        except BaseException:
            await self.aclose()
            raise
        if close:
            await self.aclose()
        return RawResponse(status, body)


def make_client(kind: str):
    """One sequential user's HTTP client: "httpx" (httpx.AsyncClient) or "raw" (RawClient)."""
    return RawClient() if kind == "raw" else async_client()


class Refused(RuntimeError):
    """A Renderbus answer with a code other than 200."""

    def __init__(self, code: int, message: str):
        super().__init__(f"code {code}: {message}")
        self.code = code
        self.message = message


class SignedAsync:
    """Signed Renderbus calls of one user over an asyncio client (headers from the SDK's Connect.signed_headers)."""

    def __init__(self, server, user, client):
        from rayfarm.sdk.connect import Connect

        self.connect = Connect(user.access_id, user.access_key, domain=server.domain)
        self.connect.close()  # only its signing is used
        self.base = server.url
        self.client = client

    async def post(self, path: str, body: dict | None = None) -> Any:
        """The answer's data; RuntimeError for an HTTP error, :class:`Refused` for a code other than 200."""
        body = body or {}
        headers = self.connect.signed_headers(path, body)
        response = await self.client.post(self.base + path, content=json.dumps(body).encode(), headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"{path}: HTTP {response.status_code} {response.text[:300]}")
        payload = response.json()
        if payload.get("code") != 200:
            raise Refused(int(payload.get("code") or 0), str(payload.get("message")))
        return payload.get("data")
