"""Fastly: URL, surrogate-key and purge-all through the HTTPS API (api.fastly.com).

URL purges are `POST /purge/{host/path}` on the API host, one URL per call: the token
never goes to the object's own (possibly plain-http) URL, unlike the old script's
`PURGE http://host/key`. Surrogate keys go 256 per call in a JSON body (one key too); purge-all is per
service. `invalidate` is Fastly's soft purge (`Fastly-Soft-Purge: 1`), which purge-all
cannot do. Fastly's default cache key is host + path, so one purge covers both schemes.
"""

from __future__ import annotations

import time
from typing import ClassVar
from urllib.parse import quote

import httpx

from s3purge.errors import Rejected
from s3purge.model import Batch
from s3purge.providers.answers import json_body, retry_after
from s3purge.providers.base import (
    PRINTABLE_ASCII,
    Limits,
    Provider,
    TagRules,
    VendorOptions,
)
from s3purge.secrets import HeaderSecret

API = "https://api.fastly.com"


class FastlyOptions(VendorOptions, frozen=True):
    api_token: HeaderSecret
    """Fastly-Key: scope purge_select for URL and key purges, purge_all for everything."""
    service_id: str | None = None
    """Needed for surrogate-key purges and purge-all; URL purges name the host instead."""


class Fastly(Provider):
    vendor = "fastly"
    supports: ClassVar = {
        "url": frozenset({"purge", "invalidate"}),
        "tag": frozenset({"purge", "invalidate"}),
        "everything": frozenset({"purge"}),
    }
    # URL and key purges are not counted in Fastly's hourly API budget; purge-all is, and
    # answers 429 with Fastly-RateLimit-Reset when spent (the wait hook).
    limits = Limits(max_items=256, kind_items={"url": 1, "everything": 1}, concurrency=16)
    Options = FastlyOptions
    options: FastlyOptions
    secret_headers = frozenset({"fastly-key"})
    api = API
    endpoints: ClassVar = {
        "url": ("/purge/*",),
        "tag": ("/service/{service_id}/purge",),
        "everything": ("/service/{service_id}/purge_all",),
    }
    # Surrogate-Key headers separate keys by spaces; a key is at most 1,024 bytes.
    tag_rules = TagRules(allowed=PRINTABLE_ASCII, max_length=1024, separators=", ")  # Surrogate-Key: space
    hints: ClassVar = {
        **dict.fromkeys(
            (401, 403), "check api_token: it needs scope purge_select (purge_all for everything) on this service"
        ),
        404: "check service_id and api_base",
    }
    other_hint = "Fastly rejected the request; see its message"

    @property
    def scheme_agnostic(self) -> bool:
        return True

    def requests(self, batch: Batch) -> list[httpx.Request]:
        if batch.kind == "url":
            return [self._post(f"/purge/{_cached_url(url)}", batch) for url in batch.values]
        service = self._service()
        if batch.kind == "everything":
            if batch.action != "purge":
                raise Rejected("Fastly cannot soft-purge everything", "soft-purge a surrogate key every object carries")
            return [self._post(f"/service/{service}/purge_all", batch)]
        # The bulk form even for one key: a JSON body carries any key, a path segment would need escaping.
        return [self._post(f"/service/{service}/purge", batch, {"surrogate_keys": list(batch.values)})]

    def wait(self, response: httpx.Response) -> float | None:
        """Seconds until Fastly-RateLimit-Reset (epoch seconds), else Retry-After."""
        reset = response.headers.get("fastly-ratelimit-reset")
        try:
            return max(0.0, float(reset) - time.time()) if reset else retry_after(response.headers)
        except ValueError:
            return retry_after(response.headers)

    def accepted(self, response: httpx.Response) -> str | None:
        return _purge_ids(response) if response.is_success else None

    def _service(self) -> str:
        if not self.options.service_id:
            raise Rejected("Fastly key and purge-all need a service", f"set service_id for CDN {self.name!r}")
        return quote(self.options.service_id, safe="")

    def _post(self, path: str, batch: Batch, body: object = None) -> httpx.Request:
        headers = {"Fastly-Key": self.options.api_token.reveal(), "Accept": "application/json"}
        if batch.action == "invalidate":
            headers["Fastly-Soft-Purge"] = "1"
        return httpx.Request("POST", self.url(path), headers=headers, json=body)


def _cached_url(url: str) -> str:
    """https://host/path?q -> host/path?q, as the API expects (no scheme)."""
    return url.split("://", 1)[-1]


def _purge_ids(response: httpx.Response) -> str:
    """The purge id (single) or ids (bulk: a map key -> id), shortened for the log."""
    body = json_body(response)
    ids = [str(body["id"])] if "id" in body else [str(v) for k, v in body.items() if k != "status"]
    more = f" (+{len(ids) - 5} more)" if len(ids) > 5 else ""
    return f"purge ids {','.join(ids[:5])}{more}" if ids else ""
