"""What a vendor module declares and does.

A provider declares, as data, what it can purge (`supports`), how much fits in one call
and how fast it may call (`limits`), and the options its config takes (`Options`). It
turns a Batch into HTTP requests and judges each response. Batching, throttling,
retries and deadlines live once in the core (plan.py, execute.py), never in a provider.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import httpx
import msgspec

from s3purge.checks import ApiBase
from s3purge.errors import Rejected, Retryable
from s3purge.model import Action, Batch, Target, TargetKind
from s3purge.secrets import Secret

Supports = Mapping[TargetKind, frozenset[Action]]


@dataclass(frozen=True, slots=True)
class Rate:
    """A vendor's rate limit, counted in requests or items: a token bucket (`burst` capacity,
    `per_second` refill) or, with `window`, at most `burst` in any `window` seconds."""

    per_second: float
    burst: float
    unit: Literal["request", "item"] = "request"
    window: float | None = None


@dataclass(frozen=True, slots=True)
class Limits:
    """How much one call may carry and how hard the vendor may be called."""

    max_items: int = 1
    kind_items: Mapping[TargetKind, int] = field(default_factory=dict)
    """Lower caps for some kinds, e.g. one URL but 256 surrogate keys per call."""
    max_bytes: int | None = None
    """Largest request body the vendor accepts; batches are packed below it."""
    concurrency: int = 8
    rate: Rate | None = None
    timeout: float = 10.0

    def items(self, kind: TargetKind) -> int:
        """Most items of `kind` one call may carry."""
        return min(self.max_items, self.kind_items.get(kind, self.max_items))


class VendorOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of each vendor's options; unknown fields are config errors. Checks that span fields
    go in `__post_init__` (raise ValueError); a field's own check in its `Annotated` type."""

    api_base: ApiBase | None = None
    """Override the vendor's API base URL (proxies, regional endpoints, tests)."""

    def fields(self) -> dict[str, Any]:
        """The options by name, as written in the config."""
        return msgspec.structs.asdict(self)

    def secrets(self) -> list[Secret]:
        found: list[Secret] = []
        for value in self.fields().values():
            if isinstance(value, Secret):
                found.append(value)
            elif isinstance(value, Mapping):
                found.extend(v for v in value.values() if isinstance(v, Secret))
        return found


class Provider:
    """One CDN account of one vendor."""

    vendor: ClassVar[str]
    supports: ClassVar[Supports]
    limits: ClassVar[Limits]
    Options: ClassVar[type[VendorOptions]] = VendorOptions
    secret_headers: ClassVar[frozenset[str]] = frozenset({"authorization"})
    """Header names whose values are redacted wherever a request is shown."""

    def __init__(self, name: str, options: VendorOptions) -> None:
        self.name = name
        self.options = options

    @property
    def scheme_agnostic(self) -> bool:
        """True when purging one scheme's URL purges the other's too (dedupe them)."""
        return False

    def identity(self, target: Target) -> str:
        """Targets with one identity are one cache object, purged once (http:// = https:// here)."""
        if self.scheme_agnostic and target.kind in ("url", "prefix") and target.action != "load":
            return target.value.partition("://")[2]  # a prefetch, though, loads one scheme's copy
        return target.value

    def item_bytes(self, value: str) -> int:
        """Bytes one item adds to a request body (JSON string plus separator)."""
        return len(json.dumps(value)) + 1

    @property
    def auth(self) -> httpx.Auth | None:
        """An httpx auth flow (signing, token refresh), if the vendor needs one."""
        return None

    def requests(self, batch: Batch) -> list[httpx.Request]:
        """The HTTP requests that carry out this batch (all must succeed)."""
        raise NotImplementedError

    def judge(self, response: httpx.Response) -> str:
        """Raise Retryable/Rejected for a failed call, else return vendor ids for the log."""
        return judge_status(response)


def judge_status(response: httpx.Response, hint: str = "") -> str:
    """The common rule: 2xx ok; 429 and 5xx retryable; any other status rejected."""
    status = response.status_code
    if response.is_success:
        return ""
    if status == 429 or status >= 500:
        raise Retryable(f"HTTP {status}", retry_after=retry_after(response.headers))
    raise Rejected(f"HTTP {status}: {_snippet(response)}", hint or _hint_for(status))


def retry_after(headers: httpx.Headers) -> float | None:
    """Seconds to wait from a Retry-After header (delta seconds or HTTP date)."""
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _hint_for(status: int) -> str:
    if status in (401, 403):
        return "check the credentials and that they may purge this resource"
    if status == 404:
        return "check api_base and the account/zone/service id in the config"
    return "the vendor rejected the request; see its message"


def _snippet(response: httpx.Response) -> str:
    try:
        text = response.text
    except (httpx.ResponseNotRead, UnicodeDecodeError):
        return ""
    return " ".join(text.split())[:300]
