"""Edgecast (Verizon Digital Media -> Edgio): purge or load (prefetch) one URL per call.

Service status: the Edgio platform, Edgecast included, ended service on 2025-01-15. This
module is kept for users migrating from the old scripts and works against Edgecast's
documented REST API (`PUT /v2/mcc/customers/{account}/edge/purge|load`, `TOK:` auth);
expect DNS or HTTP failures against the real host.

Edgecast allows 50 outstanding purges (and 50 loads) per account and answers an
over-limit with 400, not 429: that answer is retried, every other 400 is not. A purge
covers http and https, but a load is per scheme, so loads are not merged across schemes.
"""

from __future__ import annotations

import re
from typing import ClassVar, Literal
from urllib.parse import quote

import httpx
import msgspec

from s3purge.errors import Crowded, Rejected
from s3purge.model import Batch, Target
from s3purge.providers.answers import json_body
from s3purge.providers.base import Limits, Provider, VendorOptions, Wildcards
from s3purge.providers.boundary import wildcard_cut
from s3purge.secrets import HeaderSecret

API = "https://api.edgecast.com"
MEDIA_TYPES = {"flash": 2, "http-large": 3, "http-small": 8, "adn": 14}
"""Platform name -> the API's MediaType id."""
OVER_LIMIT = re.compile(r"concurren|limit|too many", re.IGNORECASE)
"""How Edgecast's 400 for too many outstanding requests differs from a malformed request."""


class EdgecastOptions(VendorOptions, frozen=True):
    account: str
    """Customer account number (hex, e.g. 0001), shown in the MCC's upper-right corner."""
    token: HeaderSecret
    """REST API token from MCC "My Settings"; sent as `Authorization: TOK:<token>`."""
    platform: Literal["http-large", "http-small", "adn", "flash"] = "http-small"
    """The old scripts' default was the HTTP Small platform."""


class Edgecast(Provider):
    vendor = "edgecast"
    supports: ClassVar = {
        "url": frozenset({"purge", "load"}),
        "prefix": frozenset({"purge"}),
        "everything": frozenset({"purge"}),
    }
    # Edgecast counts every outstanding request against 50 per account; stay well below it
    # so other tools (and concurrent Lambda instances) keep room.
    limits = Limits(max_items=1, concurrency=16)
    Options = EdgecastOptions
    options: EdgecastOptions
    api = API
    endpoints: ClassVar = {
        "url": ("/v2/mcc/customers/{account}/edge/purge", "/v2/mcc/customers/{account}/edge/load"),
        "prefix": ("/v2/mcc/customers/{account}/edge/purge",),
        "everything": ("/v2/mcc/customers/{account}/edge/purge",),
    }
    wildcards = Wildcards()  # a `*` anywhere in MediaPath matches; there is no escape

    @property
    def scheme_agnostic(self) -> bool:
        return True  # a purge covers http and https (the core never merges schemes for a load)

    def identity(self, target: Target) -> str:
        return super().identity(msgspec.structs.replace(target, value=_media_path(target.kind, target.value)))

    def requests(self, batch: Batch) -> list[httpx.Request]:
        return [self._request(batch, value) for value in batch.values]  # one item per call

    def _request(self, batch: Batch, value: str) -> httpx.Request:
        opts = self.options
        account = quote(opts.account, safe="")
        url = self.url(f"/v2/mcc/customers/{account}/edge/{batch.action}")
        headers = {"Authorization": f"TOK:{opts.token.reveal()}", "Accept": "application/json"}
        body = {"MediaPath": _media_path(batch.kind, value), "MediaType": MEDIA_TYPES[opts.platform]}
        return httpx.Request("PUT", url, headers=headers, json=body)

    def accepted(self, response: httpx.Response) -> str | None:
        return f"id {json_body(response).get('Id', '?')}" if response.is_success else None

    def rejected(self, response: httpx.Response) -> None:
        if response.status_code == 400 and OVER_LIMIT.search(_message(response)):
            raise Crowded(f"HTTP 400: {_message(response)}")
        if response.status_code == 400:
            raise Rejected(f"HTTP 400: {_message(response)}", "check account (the hex customer number) and platform")


def _media_path(kind: str, value: str) -> str:
    """The URL as Edgecast matches it: a directory is `dir/*`; a key with `*` is cut after its first one."""
    if kind in ("prefix", "everything"):
        return value.rstrip("/") + "/*"  # Edgecast's recursive directory wildcard
    cut = wildcard_cut(value)
    return value if cut is None else cut + "*"


def _message(response: httpx.Response) -> str:
    """Edgecast errors are {"Message": "..."}; fall back to the raw text."""
    return str(json_body(response).get("Message") or response.text[:300])
