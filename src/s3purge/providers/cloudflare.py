"""Cloudflare purge_cache: files (URLs), cache tags, prefixes and everything, for one zone.

Auth is an API token with the Cache Purge permission (Bearer), or the legacy global API
key + e-mail. Items per call default to 100, the figure for every plan and kind in
Cloudflare's current docs; set the account's `max_items` lower for old limits (30) or up
to 500 on Enterprise zones that purge URLs only (tags and prefixes stay at 100 a call).
Whether http and https share a cache entry depends on the zone, so both are purged.
`invalidate` is Cloudflare's soft purge (`POST /zones/{zone_id}/invalidate_cache`, 2026-09-28):
the same selectors as purge_cache, but cached content is marked stale and revalidated with the
origin (a 304 reuses the cached body) instead of being dropped.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Annotated, Any, ClassVar, Literal

import httpx
from msgspec import Meta

from s3purge.checks import HeaderValue, HttpToken
from s3purge.errors import Rejected, TooLarge
from s3purge.model import Action, Batch, TargetKind
from s3purge.providers.answers import json_body, retry_after
from s3purge.providers.base import (
    PRINTABLE_ASCII,
    Limits,
    Provider,
    Rate,
    TagRules,
    VendorOptions,
)
from s3purge.secrets import HeaderSecret

API = "https://api.cloudflare.com/client/v4"
FLEX_MAX = 100
"""Tags, hosts and prefixes per call, on every plan."""
FIELDS = {"url": "files", "tag": "tags", "prefix": "prefixes"}
API_LIMIT = Rate(per_second=1200 / 300, burst=1200, window=300)
"""The client API limit: 1,200 requests per 5 minutes per user, a window (not a 4/s bucket)."""
PLANS: dict[str, dict[TargetKind, Rate]] = {
    # Cache purge limits per plan (developers.cloudflare.com/cache/how-to/purge-cache, 2026-07-29):
    # tag, prefix, host and everything purges are requests from a bucket; single-file purges are URLs
    # per second (a moving average). Per account; a 429 beyond them is still honoured.
    plan: {
        "url": Rate(per_second=urls, burst=urls, unit="item"),
        **dict.fromkeys(("tag", "prefix", "everything"), Rate(per_second=flex, burst=bucket)),
    }
    for plan, urls, flex, bucket in (
        ("free", 800, 5 / 60, 25),
        ("pro", 1500, 5, 25),
        ("business", 1500, 10, 50),
        ("enterprise", 3000, 50, 500),
    )
}
OPERATIONS: dict[Action, str] = {"purge": "purge_cache", "invalidate": "invalidate_cache"}
"""The call per action: both take the same body."""


class CloudflareOptions(VendorOptions, frozen=True):
    zone_id: Annotated[str, Meta(pattern=r"^[0-9a-f]{32}$")]
    api_token: HeaderSecret | None = None
    api_key: HeaderSecret | None = None
    email: str | None = None
    plan: Literal["free", "pro", "business", "enterprise"] | None = None
    """The zone's plan: its purge limits are paced too (unset: only the API limit; 429s still honoured)."""
    file_headers: dict[HttpToken, HeaderValue] = {}
    """Cache-key headers sent with every URL ({url, headers} files), e.g. CF-Device-Type."""

    def __post_init__(self) -> None:
        if (self.api_token is None) == (self.api_key is None):
            raise ValueError("give api_token, or the legacy api_key with email (one of them)")
        if (self.api_key is None) != (self.email is None):
            raise ValueError("api_key and email go together")


class Cloudflare(Provider):
    vendor = "cloudflare"
    supports: ClassVar = {kind: frozenset(OPERATIONS) for kind in ("url", "tag", "prefix", "everything")}
    # The API limit is a window; the per-plan purge buckets (Free: 5 tag/prefix calls a minute)
    # are paced with `plan`, and otherwise answer 429 + Retry-After, which the core honours.
    limits = Limits(
        max_items=100,
        kind_items={"tag": FLEX_MAX, "prefix": FLEX_MAX, "everything": 1},
        max_items_allowed=500,  # URL purges on Enterprise zones
        concurrency=4,
        rate=API_LIMIT,
    )
    Options = CloudflareOptions
    options: CloudflareOptions
    secret_headers = frozenset({"authorization", "x-auth-key"})
    api = API
    endpoints: ClassVar = dict.fromkeys(
        ("url", "tag", "prefix", "everything"), tuple(f"/zones/{{zone_id}}/{op}" for op in OPERATIONS.values())
    )
    # Cache-Tag: printable ASCII, comma-separated, case-insensitive; a purge takes tags of <= 1,024 characters.
    tag_rules = TagRules(allowed=PRINTABLE_ASCII.replace(",", ""), max_length=1024, case_sensitive=False)
    hints: ClassVar = {
        400: "Cloudflare refused the request: see its message",
        401: "check api_token (or api_key and email)",
        403: "the token needs the Zone > Cache Purge permission on this zone",
    }
    other_hint = "not a Cloudflare API answer: check api_base"

    def declared_limits(self) -> Limits:
        if self.options.plan is None:
            return self.limits
        return dataclasses.replace(self.limits, kind_rates=PLANS[self.options.plan])

    def requests(self, batch: Batch) -> list[httpx.Request]:
        opts = self.options
        if batch.kind == "everything":
            body: dict[str, Any] = {"purge_everything": True}
        elif batch.kind == "prefix":  # Cloudflare wants host/path, no scheme: http and https are one
            body = {"prefixes": list(dict.fromkeys(re.sub(r"^[a-z]+://", "", v) for v in batch.values))}
        elif batch.kind == "url" and opts.file_headers:
            body = {"files": [{"url": url, "headers": opts.file_headers} for url in batch.values]}
        else:
            body = {FIELDS[batch.kind]: list(batch.values)}
        url = self.url(f"/zones/{opts.zone_id}/{OPERATIONS[batch.action]}")
        return [httpx.Request("POST", url, json=body, headers=self._auth_headers())]

    def _auth_headers(self) -> dict[str, str]:
        opts = self.options
        if opts.api_token is not None:
            return {"Authorization": f"Bearer {opts.api_token.reveal()}"}
        assert opts.api_key is not None and opts.email is not None  # checked in CloudflareOptions
        return {"X-Auth-Email": opts.email, "X-Auth-Key": opts.api_key.reveal()}

    def wait(self, response: httpx.Response) -> float | None:
        wait = retry_after(response.headers)
        return _reset(response) if wait is None else wait

    def accepted(self, response: httpx.Response) -> str | None:
        answer = json_body(response)
        if answer.get("success") is not True or response.status_code >= 500:
            return None
        return f"id={(answer.get('result') or {}).get('id', '?')}"

    def rejected(self, response: httpx.Response) -> None:
        answer, status = json_body(response), response.status_code
        if "success" in answer and status < 500:  # a Cloudflare answer with success other than true
            errors = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in answer.get("errors") or [])
            if status == 413 or (status == 400 and TOO_LARGE.search(errors)):
                raise TooLarge(f"HTTP {status}: {errors}", "batches are halved to the size the zone takes")
            raise Rejected(
                f"HTTP {status}: {errors or 'success: false'}", self.hints.get(status, "see Cloudflare's message")
            )
        if response.is_success:
            raise Rejected(f"HTTP {status}: not a Cloudflare API answer", "check api_base")


TOO_LARGE = re.compile(r"too many|too large|exceed|maximum|at most|more than", re.IGNORECASE)
"""A 400 saying the call carries too much (below Enterprise, zones refuse over 30 files)."""


def _reset(response: httpx.Response) -> float | None:
    """Seconds from the `Ratelimit: "default";r=0;t=30` header, when Retry-After is missing."""
    found = re.search(r"\bt=(\d+)", response.headers.get("ratelimit", ""))
    return float(found.group(1)) if found else None
