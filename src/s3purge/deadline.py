"""A hard bound on each HTTP call's total time, which httpx's timeouts alone do not give.

httpx times each socket operation: a vendor that sends its headers and then one byte a
second resets the read timeout with every byte and holds the call for as long as it likes.
Here every connect, read and write of the calling thread is given at most the time left
until that thread's current limit (`within`), so a call ends at its limit however the
server trickles. The limit is per thread because httpx's sync client sends on the caller's
thread (auth flows' extra calls included).
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import httpcore
import httpx

_limit = threading.local()


@contextmanager
def within(limit: float) -> Iterator[None]:
    """Calls made by this thread inside the block end by `limit` (a time.monotonic() value)."""
    outer = getattr(_limit, "at", None)
    _limit.at = limit if outer is None else min(outer, limit)
    try:
        yield
    finally:
        _limit.at = outer


def _left(timeout: float | None, error: type[Exception]) -> float | None:
    limit: float | None = getattr(_limit, "at", None)
    if limit is None:
        return timeout
    left = limit - time.monotonic()
    if left <= 0:
        raise error("the call's time limit has passed")
    return left if timeout is None else min(timeout, left)


class _Stream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        tls = self._inner.start_tls(ssl_context, server_hostname, _left(timeout, httpcore.ConnectTimeout))
        return _Stream(tls)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        left = _left(timeout, httpcore.ConnectTimeout)
        return _Stream(self._inner.connect_tcp(host, port, left, local_address, socket_options))

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        left = _left(timeout, httpcore.ConnectTimeout)
        return _Stream(self._inner.connect_unix_socket(path, left, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class BoundedTransport(httpx.HTTPTransport):
    """httpx's own transport (same pool, TLS and limits) on sockets that honour `within`."""

    def __init__(self, ssl_context: ssl.SSLContext | None) -> None:  # not super(): it would build a pool we replace
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=100,  # httpx's defaults
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=_Backend(),
        )
