"""Self-hosted caches (Varnish, nginx, Traffic Server): HTTP PURGE, BAN and tag purge.

Each URL is purged with one request per cache endpoint, sent to the endpoint with the
public Host header, so the cache finds the object it stored for that Host, path and query
(a pasted `/p.html?v=2` is purged as that: Varnish's and nginx's default keys hold the query).
Prefixes and "everything" are BAN requests carrying a path regex in a header; tags go
in a header (Varnish xkey). Method and header names are options, since these are VCL
conventions, not a standard.
"""

from __future__ import annotations

import re
from typing import Annotated, ClassVar
from urllib.parse import urlsplit

import httpx
from msgspec import Meta

from s3purge.checks import EndpointUrl, HttpToken, UrlPath
from s3purge.errors import Rejected
from s3purge.model import Batch
from s3purge.providers.base import PRINTABLE_ASCII, Limits, Provider, TagRules, VendorOptions, Wildcards, join
from s3purge.secrets import HeaderSecret


class HttpPurgeOptions(VendorOptions, frozen=True):
    endpoints: Annotated[list[EndpointUrl], Meta(min_length=1)]
    """Base URLs of every cache node, e.g. http://10.0.0.5:6081."""
    purge_method: HttpToken = "PURGE"
    path_prefix: UrlPath = ""
    """Prepended to the path for caches that purge under a separate location (nginx /purge)."""
    ban_method: HttpToken = "BAN"
    ban_header: HttpToken = "X-Ban-Url"
    tag_method: HttpToken = "PURGEKEYS"
    tag_header: HttpToken = "Xkey-Purge"
    soft_tag_header: HttpToken = "Xkey-Soft"
    scheme_in_cache_key: bool = False
    """True for caches keyed on the scheme (nginx's default key): send X-Forwarded-Proto."""
    headers: dict[HttpToken, HeaderSecret] = {}
    """Extra headers on every request, e.g. a shared purge token."""


class HttpPurge(Provider):
    vendor = "http"
    supports: ClassVar = {
        "url": frozenset({"purge"}),
        "prefix": frozenset({"purge"}),
        "everything": frozenset({"purge"}),
        "tag": frozenset({"purge", "invalidate"}),
    }
    limits = Limits(max_items=1, concurrency=16, timeout=5.0)
    Options = HttpPurgeOptions
    options: HttpPurgeOptions
    endpoints: ClassVar = {"url": ("{path_prefix}/*",), "prefix": ("/",), "everything": ("/",), "tag": ("/",)}
    wildcards = Wildcards(trailing_only=True, note="on caches with partial-key purge (nginx)")
    # xkey splits its header on spaces and commas; the header must stay printable ASCII.
    tag_rules = TagRules(allowed=PRINTABLE_ASCII.replace(",", ""), separators=", ")  # xkey: space or comma
    hints: ClassVar = {}
    other_hint = "the cache refused: check its purge ACL allows this host"

    @property
    def scheme_agnostic(self) -> bool:
        return not self.options.scheme_in_cache_key

    @property
    def secret_headers(self) -> frozenset[str]:  # type: ignore[override]
        return frozenset(name.lower() for name in self.options.headers) | {"authorization"}

    def bases(self) -> tuple[str, ...]:
        return tuple(self.options.endpoints)

    def endpoint_fields(self) -> dict[str, tuple[str, ...]]:
        return {"path_prefix": (self.options.path_prefix,)}  # a path: its slashes stay

    def requests(self, batch: Batch) -> list[httpx.Request]:
        return [self._request(endpoint, batch, value) for value in batch.values for endpoint in self.options.endpoints]

    def _request(self, endpoint: str, batch: Batch, value: str) -> httpx.Request:
        opts = self.options
        headers = {name: secret.reveal() for name, secret in opts.headers.items()}
        if batch.kind == "tag":
            headers[opts.tag_header] = value
            if batch.action == "invalidate":
                headers[opts.soft_tag_header] = "1"
            return httpx.Request(opts.tag_method, join(endpoint, "/"), headers=headers)
        url = urlsplit(value)
        headers["Host"] = url.netloc
        if opts.scheme_in_cache_key:
            headers["X-Forwarded-Proto"] = url.scheme
        if batch.kind == "url":  # the exact request: Varnish's and nginx's default cache keys hold the query
            query = f"?{url.query}" if url.query else ""
            target = join(endpoint, opts.path_prefix + (url.path or "/") + query)
            return httpx.Request(opts.purge_method, target, headers=headers)
        headers[opts.ban_header] = "^" + re.escape(url.path or "/")  # prefix and everything
        return httpx.Request(opts.ban_method, join(endpoint, "/"), headers=headers)

    def accepted(self, response: httpx.Response) -> str | None:
        if response.status_code in (404, 412) and response.request.method == self.options.purge_method:
            return "not cached"  # ngx_cache_purge: nothing stored under that key
        return super().accepted(response)

    def rejected(self, response: httpx.Response) -> None:
        if response.status_code in (405, 501):
            raise Rejected(
                f"HTTP {response.status_code} for {response.request.method}",
                "the cache does not handle this method: add it to its VCL/config",
            )
