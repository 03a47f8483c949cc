"""A loopback HTTP server answering from a Python function, for node tests that need a server's exact behaviour.

``answer(request)`` returns ``(status, body)`` (a dict is sent as JSON, bytes as they are) with optional headers
as a third item, or None to drop the connection without an answer (as a server that goes away does).
``close_after_answer``: close each connection after its answer without saying so (as a server closes an idle
kept-alive connection).
"""

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    peer: int  # the client's port: one per connection

    def json(self) -> Any:
        return json.loads(self.body or b"{}")


class StubServer:
    def __init__(self, answer: Callable[[Request], tuple | None]) -> None:
        self.requests: list[Request] = []
        self.close_after_answer = False
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as uvicorn

            def log_message(self, *args: Any) -> None:
                pass

            def handle_one(self) -> None:
                size = int(self.headers.get("Content-Length") or 0)
                request = Request(self.command, self.path, dict(self.headers.items()), self.rfile.read(size),
                                  self.client_address[1])
                stub.requests.append(request)
                result = answer(request)
                if result is None:
                    self.close_connection = True
                    return
                status, body, *more = result
                data = json.dumps(body).encode() if isinstance(body, dict | list) else body
                self.send_response(status)
                for name, value in (more[0] if more else {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json" if isinstance(body, dict | list) else
                                 "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                self.close_connection = stub.close_after_answer

            do_GET = do_POST = do_PUT = handle_one

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
