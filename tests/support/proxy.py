"""A loopback TCP proxy that can be cut, and a `rayfarm worker` that reaches its server through one."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass, field

from tests.support.processes import UNCONFINED_COMMANDS, FarmServer, FarmWorker


@dataclass
class Proxy:
    """A loopback TCP proxy (asyncio streams, own thread) in front of ``target_port``.

    `cut()` closes the listening socket and aborts every open connection, so the far side sees the
    server as unreachable (connection refused); `restore()` listens again on the same port.
    """

    target_port: int
    port: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _server: asyncio.base_events.Server | None = None
    _writers: set = field(default_factory=set)
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Proxy:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="proxy", daemon=True)
        self._thread.start()
        self._call(self._listen())
        return self

    def _call(self, coroutine, timeout: float = 60):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        pair = {writer, up_writer}
        self._writers |= pair

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            with contextlib.suppress(OSError):
                if sink.can_write_eof():
                    sink.write_eof()

        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            for each in pair:
                each.transport.abort()
            self._writers -= pair

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def cut(self) -> None:
        self._call(self._cut())

    def restore(self) -> None:
        self._call(self._listen())

    def close(self) -> None:
        if self._loop is None:
            return
        self._call(self._cut())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop.close()
        self._loop = None


class ProxiedWorker(FarmWorker):
    """A `rayfarm worker` that reaches its server through a :class:`Proxy` (its --server is the proxy)."""

    def __init__(self, server: FarmServer, name: str, proxy: Proxy, extra_args: list[str] | None = None):
        # the last --server wins (click), so the proxy's URL replaces the server's own
        super().__init__(server, name, [*(extra_args or []), UNCONFINED_COMMANDS, "--server", proxy.url])
