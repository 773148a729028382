"""One CDN account of the config: its common settings (`Account`), checked against its vendor and
the vendor's own options, and built into a `Cdn` ready to use (provider, effective limits).

The provider layer (and httpx with it) is imported only here, where an account is built: the
pure core imports config, and loads no provider by doing so.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from msgspec import Meta

from s3purge.capabilities import Limits, Rate, Thresholds
from s3purge.checks import Checker
from s3purge.locations import Loc, Problems
from s3purge.model import TargetKind

if TYPE_CHECKING:
    from s3purge.providers.base import Provider, VendorOptions


class Account(msgspec.Struct, frozen=True, kw_only=True):
    """The settings every CDN account takes; its other fields are the vendor's own options."""

    vendor: str
    concurrency: Annotated[int, Meta(ge=1, le=256)] | None = None
    rate: Annotated[float, Meta(gt=0)] | None = None
    """Calls (or items, per vendor) per second; overrides the vendor's declared rate."""
    burst: Annotated[float, Meta(gt=0)] | None = None
    timeout: Annotated[float, Meta(gt=0, le=120)] | None = None
    max_attempts: Annotated[int, Meta(ge=1, le=20)] = 4
    max_items: Annotated[int, Meta(ge=1)] | None = None
    """Items per call; overrides the vendor's declared maximum where plans differ (Cloudflare)."""
    prefix_threshold: Annotated[int, Meta(ge=0)] | None = None
    """Purge a directory by prefix when more of its URLs than this changed (off by default)."""
    everything_threshold: Annotated[int, Meta(ge=0)] | None = None
    """Purge the whole CDN when more URL paths than this changed (off by default)."""
    second_purge: Annotated[float, Meta(gt=0, le=900)] | None = None
    """Purge again this many seconds after an accepted purge (shielded CDNs; off by default)."""


ACCOUNT_FIELDS = frozenset(f.name for f in msgspec.structs.fields(Account))


@dataclass(frozen=True)
class Cdn:
    """One CDN account, ready to use: its provider, effective limits and retry budget."""

    name: str
    provider: Provider
    limits: Limits
    max_attempts: int
    escalation: Thresholds = dataclasses.field(default_factory=Thresholds)
    second_purge: float | None = None


def account(name: str, raw: Any, checker: Checker) -> tuple[Cdn | None, type[Provider] | None]:
    """One account: its common settings, its vendor and that vendor's options, checked together;
    the vendor's class even when the account has problems (routes are checked against it)."""
    from s3purge.providers import known_vendors, provider_class  # here, not at the top: see the module's doc

    at: Loc = ("cdns", name)
    if not isinstance(raw, dict):
        checker.struct(raw, Account, at)  # reports what it is instead of a mapping
        return None, None
    common = {k: v for k, v in raw.items() if k in ACCOUNT_FIELDS}
    settings = checker.struct(common, Account, at)
    vendor = raw.get("vendor")
    cls = provider_class(vendor) if isinstance(vendor, str) else None
    if cls is None:
        if isinstance(vendor, str):
            known = ", ".join(known_vendors())
            checker.problems.append(((*at, "vendor"), f"unknown vendor {vendor!r} (known: {known})"))
        return None, None
    own = {k: v for k, v in raw.items() if k not in ACCOUNT_FIELDS}
    options = checker.struct(own, cls.Options, at, also_known=ACCOUNT_FIELDS)
    if settings is Checker.INVALID:
        return None, cls
    valid = options is not Checker.INVALID
    checker.problems += _checks(at, settings, cls, options if valid else None)
    if not valid:
        return None, cls
    provider = cls(name, options)
    cdn = Cdn(
        name=name,
        provider=provider,
        limits=_limits(provider.declared_limits(), settings),
        max_attempts=settings.max_attempts,
        escalation=Thresholds(settings.prefix_threshold, settings.everything_threshold),
        second_purge=settings.second_purge,
    )
    return cdn, cls


def _checks(at: Loc, account: Account, cls: type[Provider], options: VendorOptions | None) -> Problems:
    """Common settings against the vendor, and against the account's own options when they are valid."""
    problems: Problems = []
    thresholds: dict[TargetKind, int | None] = {
        "prefix": account.prefix_threshold,
        "everything": account.everything_threshold,
    }
    for kind, threshold in thresholds.items():
        if threshold is None:
            continue
        if not cls.supports.get(kind):
            problems.append(((*at, f"{kind}_threshold"), f"vendor {cls.vendor!r} cannot purge by {kind}"))
        elif options is not None and (why := options.cannot(kind)):
            problems.append(((*at, f"{kind}_threshold"), f"vendor {cls.vendor!r} {why}"))
    if account.max_items is not None and (too_many := cls.limits.max_items_problem(account.max_items)):
        problems.append(((*at, "max_items"), f"vendor {cls.vendor!r} {too_many}; lower or remove max_items"))
    return problems


def _limits(declared: Limits, account: Account) -> Limits:
    rate = declared.rate
    if account.rate is not None or account.burst is not None:
        per_second = account.rate or (rate.per_second if rate else 1.0)
        burst = account.burst or (rate.burst if rate else max(1.0, per_second))
        window = burst / per_second if rate and rate.window else None  # a sliding window stays one
        rate = Rate(per_second, burst, rate.unit if rate else "request", window)
    return dataclasses.replace(
        declared,
        concurrency=account.concurrency or declared.concurrency,
        max_items=account.max_items or declared.max_items,
        timeout=account.timeout or declared.timeout,
        rate=rate,
    )
