"""Akamai Fast Purge (CCU v3): invalidate or delete by URL, cache tag or CP code, EdgeGrid-signed.

Actions: `invalidate` (Akamai's recommendation: mark stale, revalidate with the origin) or
`delete` (evict unconditionally). `purge`, the route default, means invalidate: for a
changed S3 object revalidation fetches the new copy, and invalidate is the safer choice.
"everything" purges the account's configured `cp_codes` (a CP code is Akamai's coarsest
unit; there is no purge-all). Credentials come from an `.edgerc` file and section, or from
inline `host`/`client_token`/`client_secret`/`access_token` (secret references welcome).
Requests are signed by providers/edgegrid.py (EdgeGrid, checked against Akamai's test vectors).
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import ClassVar, Literal

import httpx

from s3purge.checks import Host
from s3purge.errors import Rejected, TooLarge
from s3purge.model import Batch, TargetKind
from s3purge.providers.answers import COMMON_HINTS, json_body
from s3purge.providers.base import Limits, Provider, Rate, TagRules, VendorOptions
from s3purge.providers.edgegrid import EdgeGridAuth
from s3purge.secrets import HeaderSecret, Secret

BODY_LIMIT = 50_000
"""Akamai answers 413 above this many bytes (the strictest figure in its docs)."""
ENVELOPE = len('{"objects":[]}') - 1
"""Body bytes besides the items (item_bytes counts a comma per item; the last has none)."""
PATHS: dict[TargetKind, str] = {"url": "url", "tag": "tag", "everything": "cpcode"}
CREDENTIALS = ("client_token", "client_secret", "access_token")
HINTS = {
    401: "check client_token/client_secret/access_token and the clock (EdgeGrid signs a timestamp)",
    403: "grant the API client Fast Purge (CCU) access for these hostnames/CP codes/tags",
    413: "request body over 50,000 bytes",
}


class AkamaiOptions(VendorOptions, frozen=True):
    edgerc: str | None = None
    section: str = "default"
    host: Host | None = None
    client_token: HeaderSecret | None = None
    client_secret: Secret | None = None
    access_token: HeaderSecret | None = None
    network: Literal["production", "staging"] = "production"
    cp_codes: list[int] = []
    """What "everything" purges."""
    scheme_in_cache_key: bool = False
    """True for properties with protocol-specific cache keys: purge http and https URLs."""

    def __post_init__(self) -> None:
        inline = [name for name in (*CREDENTIALS, "host") if getattr(self, name) is not None]
        if self.edgerc and inline:
            raise ValueError(f"give either edgerc or inline credentials, not both (found {', '.join(inline)})")
        missing = [name for name in CREDENTIALS if getattr(self, name) is None]
        if not self.edgerc and missing:
            raise ValueError(f"needs edgerc, or inline credentials (missing {', '.join(missing)})")
        if not self.edgerc and not (self.host or self.api_base):
            raise ValueError("needs host (the akab-….purge.akamaiapis.net name from the credentials)")

    def cannot(self, kind: TargetKind) -> str:
        if kind == "everything" and not self.cp_codes:
            return "has no purge-all: list the account's CP codes under cp_codes"
        return ""


class Akamai(Provider):
    vendor = "akamai"
    supports: ClassVar = {kind: frozenset({"purge", "invalidate", "delete"}) for kind in ("url", "tag", "everything")}
    # Bytes: the body limit less its envelope. Items: the tag bucket (5,000) must fit one call.
    # Rate: the account's URL-object bucket (10,000, refilling 200/s); tags and CP codes refill
    # slower and are paced by Akamai's 429 and its X-Ratelimit headers.
    limits = Limits(
        max_items=5_000,
        max_bytes=BODY_LIMIT - ENVELOPE,
        concurrency=4,
        rate=Rate(per_second=200, burst=10_000, unit="item"),
    )
    Options = AkamaiOptions
    options: AkamaiOptions
    endpoints: ClassVar = {
        kind: tuple(f"/ccu/v3/{action}/{path}/{{network}}" for action in ("invalidate", "delete"))
        for kind, path in PATHS.items()
    }
    # Cache tags are RFC 9110 tokens without '*', at most 128 characters, case-sensitive, 128 per object.
    tag_rules = TagRules(allowed="!#$&'+-.^_`|~", max_length=128, per_object=128)
    throttled = frozenset({429, 507})  # 507: the older docs' over-rate answer
    hints: ClassVar = {**COMMON_HINTS, **HINTS}

    @property
    def scheme_agnostic(self) -> bool:
        return not self.options.scheme_in_cache_key  # Akamai: a URL purge covers both schemes

    @cached_property
    def _credentials(self) -> dict[str, Secret]:
        """host and the three EdgeGrid credentials; the .edgerc file is read on first use."""
        opts = self.options
        if not opts.edgerc:
            creds = {name: getattr(opts, name) for name in CREDENTIALS}
            return {**creds, "host": Secret("plain", value=opts.host or "")}
        return _read_edgerc(Path(opts.edgerc).expanduser(), opts.section)

    def bases(self) -> tuple[str, ...]:
        return (self.options.api_base or f"https://{self._credentials['host'].reveal()}",)

    @property
    def auth(self) -> httpx.Auth:
        return EdgeGridAuth(*(self._credentials[name] for name in CREDENTIALS))

    def requests(self, batch: Batch) -> list[httpx.Request]:
        self._credentials["host"].reveal()  # reads .edgerc now, so a bad one fails this batch
        objects: list[str] | list[int] = list(batch.values)
        if batch.kind == "everything":
            objects = self.options.cp_codes
            if not objects:
                raise Rejected("Akamai has no purge-all", "list the account's CP codes under cp_codes")
        action = "delete" if batch.action == "delete" else "invalidate"
        url = self.url(f"/ccu/v3/{action}/{PATHS[batch.kind]}/{self.options.network}")
        body = json.dumps({"objects": objects}, separators=(",", ":"))  # compact, as item_bytes counts
        return [httpx.Request("POST", url, content=body.encode(), headers={"Content-Type": "application/json"})]

    def wait(self, response: httpx.Response) -> float:
        return rate_wait(response)

    def accepted(self, response: httpx.Response) -> str | None:
        if not response.is_success:
            return None
        answer = json_body(response)
        return " ".join(f"{key}={answer[key]}" for key in ("purgeId", "estimatedSeconds", "supportId") if key in answer)

    def rejected(self, response: httpx.Response) -> None:
        answer, status = json_body(response), response.status_code
        problem = " ".join(str(answer[k]) for k in ("title", "detail", "supportId") if answer.get(k))
        if status == 413:  # the body is over the account's limit: its halves may pass (adapt.py)
            raise TooLarge(f"HTTP 413: {problem or 'request body too large'}", "batches are halved to the size taken")
        if problem and status < 500:
            raise Rejected(f"HTTP {status}: {problem}", HINTS.get(status, "see Akamai's detail above"))


def rate_wait(response: httpx.Response) -> float:
    """Seconds until Akamai's buckets hold this request, from X-Ratelimit-* (it sends no Retry-After)."""

    def header(name: str) -> float | None:
        try:
            return float(response.headers[f"x-ratelimit-{name}"])
        except (KeyError, ValueError):
            return None

    waits = []
    requests_left, requests_rate = header("remaining"), header("limit-per-second")
    if requests_left is not None and requests_left < 1 and requests_rate:
        waits.append((1 - requests_left) / requests_rate)
    objects_left, objects_rate = header("remaining-objects"), header("limit-per-second-objects")
    size = json_body(response).get("rateLimitCurrentRequestSize")
    if objects_left is not None and objects_rate and isinstance(size, int | float):
        waits.append(max(0.0, size - objects_left) / objects_rate)
    if waits:
        return max(waits)
    refresh = [w for w in (header("seconds-to-refresh-limit"), header("seconds-to-refresh-limit-objects")) if w]
    return max(refresh, default=5.0)  # Akamai's 429 page: wait about five seconds


def _read_edgerc(path: Path, section: str) -> dict[str, Secret]:
    from configparser import ConfigParser, Error

    parser = ConfigParser(interpolation=None)
    try:
        found = parser.read(path, encoding="utf-8")
    except (OSError, Error) as error:
        raise Rejected(f"cannot read {path}: {type(error).__name__}", "fix the edgerc file") from None
    if not found or not parser.has_section(section):
        raise Rejected(f"{path} has no [{section}] section", "check edgerc and section in the config")
    values = {name: parser.get(section, name, fallback="").strip() for name in (*CREDENTIALS, "host")}
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise Rejected(f"{path} [{section}] lacks {', '.join(missing)}", "copy the API client's credentials")
    values["host"] = values["host"].removeprefix("https://").rstrip("/")
    return {name: Secret("plain", value=value) for name, value in values.items()}
