"""A self-hosted cache's purge endpoint (Varnish VCL conventions), strict like the vendor emulators.

There is no vendor spec: the contract is the VCL of the demo's real Varnish (s3purge/demo/bed.py),
whose conventions providers/http_purge.py defaults to: PURGE of an object path and its query (the
default vcl_hash keys on req.url, query included) with the public Host, BAN of "/" with an anchored
path regex in X-Ban-Url, PURGEKEYS of "/" with Xkey-Purge tags. Any other method, path or header
set is a violation (400); a request without the shared token header is refused with 403, as the
cache's ACL would.
"""

from __future__ import annotations

import re
from typing import Any

from tests.emulators.base import Emulator, Invalid, Recorded, Reply

TOKEN_HEADER = "X-Purge-Token"
TOKEN = "http-purge-test-token"
PURGE_ONLY = {"x-ban-url", "xkey-purge", "xkey-soft"}


class HttpCacheEmulator(Emulator):
    def __init__(self, *, token: str | None = TOKEN, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.token = token
        self.purged: list[tuple[str, str, str]] = []
        """(method, Host header, path or ban regex or tags) of every accepted request."""

    def answer(self, request: Recorded) -> Reply:
        check = {"PURGE": _purge, "BAN": _ban, "PURGEKEYS": _purge_keys}.get(request.method)
        if check is None:
            raise Invalid(f"method {request.method} is not PURGE, BAN or PURGEKEYS")
        if request.body:
            raise Invalid("a purge request has no body")
        if self.token is not None and request.headers.get(TOKEN_HEADER.lower()) != self.token:
            return Reply(403, b"purge not allowed")
        self.purged.append((request.method, request.headers.get("host", ""), check(request)))
        return Reply(200, b"purged")


def _purge(request: Recorded) -> str:
    if not request.path.startswith("/"):
        raise Invalid(f"PURGE of {request.path!r}: an object path")
    if _is_endpoint(request.headers.get("host", "")):
        raise Invalid("PURGE without the public Host header: the cache stores objects per Host")
    if extra := PURGE_ONLY & request.headers.keys():
        raise Invalid(f"PURGE with ban/tag headers {sorted(extra)}")
    return f"{request.path}?{request.query}" if request.query else request.path  # the query is in the cache key


def _ban(request: Recorded) -> str:
    regex = request.headers.get("x-ban-url", "")
    if request.path != "/" or not regex.startswith("^/"):
        raise Invalid(f"BAN {request.path} with X-Ban-Url {regex!r}: expected / and an anchored path regex")
    if _is_endpoint(request.headers.get("host", "")):
        raise Invalid("BAN without the public Host header: it would ban every site")
    try:
        re.compile(regex)
    except re.error as error:
        raise Invalid(f"X-Ban-Url {regex!r} is not a regex: {error}") from None
    return regex


def _purge_keys(request: Recorded) -> str:
    tags = request.headers.get("xkey-purge", "")
    if request.path != "/" or not tags.strip():
        raise Invalid(f"PURGEKEYS {request.path} with Xkey-Purge {tags!r}: expected / and tags")
    if request.headers.get("xkey-soft", "1") != "1":
        raise Invalid("Xkey-Soft must be 1 when present")
    return tags


def _is_endpoint(host: str) -> bool:
    """The cache's own address as Host: the public Host was not sent."""
    return host == "" or host.startswith("127.0.0.1")
