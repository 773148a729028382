"""Highwinds StrikeTracker (-> StackPath): purge lists of URLs, recursively or as invalidation.

Service status: StackPath, which owned Highwinds, closed its CDN in 2024 (its customer
contracts went to Akamai). This module is kept for users migrating from the old scripts
and works against StrikeTracker's documented API; expect failures against the real host.

`POST /api/v1/accounts/{hash}/purge` takes up to 100 URIs; the account may purge 100 URIs
per 60 s, so the declared rate counts items. Login (OAuth password grant, or a fixed API
token) and the account hash (`/users/me`) live in an httpx auth flow kept on the provider
(providers/striketracker.py): a warm process logs in once and discovers the hash once, not
twice per record as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import httpx

from s3purge.model import Batch, site_root
from s3purge.providers.answers import json_body
from s3purge.providers.base import Limits, Provider, Rate, VendorOptions
from s3purge.providers.striketracker import StrikeTrackerAuth, account_segment, headers
from s3purge.secrets import HeaderSecret, Secret

API = "https://striketracker.highwinds.com"


class HighwindsOptions(VendorOptions, frozen=True):
    account_hash: str | None = None
    """Account to purge; discovered from /api/v1/users/me (once per process) when absent."""
    username: str | None = None
    password: Secret | None = None
    api_token: HeaderSecret | None = None
    """A long-lived StrikeTracker API token, instead of username and password."""
    application_id: str = "s3purge"
    """X-Application-Id header, which StrikeTracker's support asks every client to send."""

    def __post_init__(self) -> None:
        password_grant = self.username is not None or self.password is not None
        if self.api_token is not None and password_grant:
            raise ValueError("give either username and password, or api_token, not both")
        if self.api_token is None and (self.username is None or self.password is None):
            raise ValueError("give username and password, or api_token")


class Highwinds(Provider):
    vendor = "highwinds"
    supports: ClassVar = {
        "url": frozenset({"purge", "invalidate"}),
        "prefix": frozenset({"purge", "invalidate"}),
        "everything": frozenset({"purge", "invalidate"}),
    }
    # 100 URIs per 60 s per account (sliding window). The bucket lets a full call of 100 go
    # at once; if a partial burst still trips the window, the 429's Retry-After pauses us.
    limits = Limits(max_items=100, concurrency=4, rate=Rate(100 / 60, 100, "item", window=60))
    Options = HighwindsOptions
    options: HighwindsOptions

    api = API
    endpoints: ClassVar = dict.fromkeys(("url", "prefix", "everything"), ("/api/v1/accounts/{account_hash}/purge",))
    hints: ClassVar = dict.fromkeys((401, 403, 404), "check that this login may purge account_hash")

    def __init__(self, name: str, options: VendorOptions) -> None:
        super().__init__(name, options)
        self._auth = StrikeTrackerAuth(self.bases()[0], self.options)

    def endpoint_fields(self) -> dict[str, tuple[str, ...]]:
        return {"account_hash": (account_segment(self.options.account_hash),)}

    @property
    def auth(self) -> httpx.Auth:
        return self._auth

    def prepare(self, send: Callable[[httpx.Request], httpx.Response]) -> None:
        # Log in and find the account before the sliding window is counted, not inside the first call.
        self._auth.prepare(send)

    def requests(self, batch: Batch) -> list[httpx.Request]:
        recursive = batch.kind != "url"
        # Everything on a host is a recursive purge of its root.
        values = batch.values if batch.kind != "everything" else tuple(site_root(v) for v in batch.values)
        # Real JSON booleans: the old script sent "false" as a string.
        items = [{"url": v, "recursive": recursive, "invalidateOnly": batch.action == "invalidate"} for v in values]
        account = account_segment(self.options.account_hash)  # the auth flow fills in the discovered hash
        url = self.url(f"/api/v1/accounts/{account}/purge")
        return [httpx.Request("POST", url, headers=headers(self.options.application_id), json={"list": items})]

    def accepted(self, response: httpx.Response) -> str | None:
        return f"job {json_body(response).get('id', '?')}" if response.is_success else None
