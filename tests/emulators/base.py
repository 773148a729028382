"""Local HTTP emulators of vendor APIs: strict about requests, honest about limits.

An Emulator listens on 127.0.0.1, records every request, checks it (subclasses raise
`Invalid` for anything the vendor's published spec or documented limits forbid — it is
answered 400 and kept in `violations`, which the fixtures assert empty), enforces a
token-bucket rate limit with 429, and can be told to misbehave: answer a status, hang
past the client's timeout, or drop the connection.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Recorded:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Fault:
    """One injected misbehaviour, used for the next matching request."""

    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    hang: float = 0.0
    drop: bool = False
    trickle: float = 0.0
    """Answer 200 with a long body, one byte every `trickle` seconds (resets the client's read timeout)."""


class Invalid(Exception):
    """The request breaks the vendor's spec or limits."""


class Emulator:
    """Subclasses implement `answer(request) -> Reply` and may override `throttled(wait)`."""

    def __init__(self, rate: float | None = None, burst: float | None = None, latency: float = 0.0) -> None:
        self.rate, self.burst, self.latency = rate, burst or rate, latency
        self.requests: list[Recorded] = []
        self.violations: list[str] = []
        self.throttled_count = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.faults: deque[Fault] = deque()
        self._tokens = self.burst or 0.0
        self._stamp = time.monotonic()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.emulator = self  # type: ignore[attr-defined]
        # a short poll interval: shutdown() waits for it, once per test
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> Emulator:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()

    # --- what subclasses define -------------------------------------------------
    def answer(self, request: Recorded) -> Reply:
        return Reply(200)

    def cost(self, request: Recorded) -> float:
        """Tokens this request takes from the rate limit (requests by default)."""
        return 1.0

    def throttled(self, wait: float) -> Reply:
        return Reply(429, {"error": "rate limited"}, {"Retry-After": str(max(1, round(wait)))})

    # --- machinery ----------------------------------------------------------------
    def _take(self, cost: float) -> float:
        """0 when the request may pass, else seconds until it could."""
        if self.rate is None:
            return 0.0
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst or 0.0, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            if self._tokens >= cost:
                self._tokens -= cost
                return 0.0
            return (cost - self._tokens) / self.rate

    def _serve(self, handler: _Handler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        split = urlsplit(handler.path)
        request = Recorded(
            method=handler.command,
            path=split.path,
            query=split.query,
            headers={k.lower(): v for k, v in handler.headers.items()},
            body=handler.rfile.read(length) if length else b"",
            at=time.monotonic(),
        )
        with self._lock:
            self.requests.append(request)
            fault = self.faults.popleft() if self.faults else None
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.latency:
                self._closing.wait(self.latency)
            reply = self._reply(request, fault, handler)
        finally:
            with self._lock:
                self.in_flight -= 1
        if reply is not None:
            handler.send(reply)

    def _reply(self, request: Recorded, fault: Fault | None, handler: _Handler) -> Reply | None:
        if fault is not None:
            if fault.trickle:
                handler.trickle(fault.trickle, self._closing)
                return None
            if fault.hang:
                self._closing.wait(fault.hang)
            if fault.drop or fault.hang:
                handler.drop()
                return None
            return Reply(fault.status or 500, fault.body, fault.headers)
        try:
            wait = self._take(self.cost(request))
            if wait:
                self.throttled_count += 1
                return self.throttled(wait)
            return self.answer(request)
        except Invalid as error:
            self.violations.append(f"{request.method} {request.path}: {error}")
            return Reply(400, {"error": str(error)})


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # the default backlog of 5 resets connections in a burst: not the vendor's doing

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if not isinstance(error, ConnectionError):  # a client that timed out and left is part of the tests
            self.emulator.violations.append(f"emulator crashed: {error!r}")  # type: ignore[attr-defined]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go in two sends: don't add 40 ms of delayed ACK
    server: ThreadingHTTPServer

    def handle_one_request(self) -> None:
        self.raw_requestline = self.rfile.readline(65537)
        if not self.raw_requestline:
            self.close_connection = True
            return
        if not self.parse_request():
            return
        self.server.emulator._serve(self)  # type: ignore[attr-defined]
        self.wfile.flush()

    def send(self, reply: Reply) -> None:
        body = reply.body if isinstance(reply.body, bytes) else b""
        if reply.body is not None and not isinstance(reply.body, bytes):
            body = json.dumps(reply.body).encode()
            reply.headers.setdefault("Content-Type", "application/json")
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def trickle(self, every: float, closing: threading.Event, length: int = 10_000) -> None:
        """Headers at once, then the body a byte at a time until done, closed, or the client left."""
        self.send_response(200)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.close_connection = True
        try:
            for _ in range(length):
                self.wfile.write(b".")
                self.wfile.flush()
                if closing.wait(every):
                    return
        except OSError:  # the client gave up: what the tests want
            return

    def drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):  # the client may have gone already
            self.connection.shutdown(socket.SHUT_RDWR)

    def log_message(self, format: str, *args: Any) -> None:
        pass
