"""The executor's HTTP transport: one connection pool per origin, made at its first request."""

from __future__ import annotations

import ssl
import threading

import httpx

from s3purge.deadline import BoundedTransport


class ByOrigin(httpx.BaseTransport):
    """httpx's transport, one connection pool per origin (scheme, host, port), each made at its
    first request. One pool per origin: a vendor that hangs holds only its own connections, never
    the pool another CDN's calls wait for. Made lazily: a config that only purges over http never
    loads the CA bundle (about 40 ms at a Lambda cold start); https origins share one TLS context."""

    def __init__(self) -> None:
        self._transports: dict[tuple[bytes, bytes, int | None], httpx.HTTPTransport] = {}
        self._tls: ssl.SSLContext | None = None
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._for(request.url).handle_request(request)

    def close(self) -> None:
        for transport in self._transports.values():
            transport.close()

    def _for(self, url: httpx.URL) -> httpx.HTTPTransport:
        origin = (url.raw_scheme, url.raw_host, url.port)
        with self._lock:
            if origin not in self._transports:
                # Plain http has no certificates to check: skip loading them. https verifies as always.
                if url.scheme != "http" and self._tls is None:
                    self._tls = httpx.create_ssl_context()
                self._transports[origin] = BoundedTransport(None if url.scheme == "http" else self._tls)
            return self._transports[origin]
