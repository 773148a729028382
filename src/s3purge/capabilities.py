"""What a CDN account can purge and how hard it may be called: vocabulary of the model layer.

Providers declare it (providers/base.py re-exports it for vendor modules), config applies an
account's overrides, and the pure core obeys it: plan packs batches within `Limits`, escalate
widens only to kinds in `Supports` and as `Thresholds` say, pacing keeps to a `Rate`, and an
`Admission` is what a vendor makes of one target. It lives here so that those modules plan
without importing the provider layer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import msgspec

from s3purge.model import Action, Target, TargetKind

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
    kind_rates: Mapping[TargetKind, Rate] = field(default_factory=dict)
    """Limits of some kinds' calls besides `rate`, each paced apart (Cloudflare's per-plan purge buckets)."""
    timeout: float = 10.0

    max_items_allowed: int | None = None
    """The most items an account may set with `max_items` (None: max_items as declared is the most)."""

    def items(self, kind: TargetKind) -> int:
        """Most items of `kind` one call may carry."""
        return min(self.max_items, self.kind_items.get(kind, self.max_items))

    def max_items_problem(self, wanted: int) -> str:
        """Why an account cannot set `max_items: wanted` ('' when it can)."""
        most = self.max_items_allowed or self.max_items
        if wanted <= most:
            return ""
        return "takes one item per call" if most == 1 else f"takes at most {most} items per call"


@dataclass(frozen=True, slots=True)
class Thresholds:
    """One CDN's escalation settings; None turns a rule off (the default)."""

    prefix: int | None = None
    everything: int | None = None


class Admission(msgspec.Struct, frozen=True, gc=False):
    """A target as the vendor can take it: as it is, made safe, widened (with why), or refused.

    A msgspec Struct like Target: planning makes one per target, and it holds no container."""

    target: Target | None
    widened: str = ""
    refused: str = ""


@dataclass(frozen=True, slots=True)
class AwsGrant:
    """An IAM permission the deployed function needs for a vendor's own calls (an AWS-hosted CDN).

    Grants of one `sid` from several accounts become one statement over all their resources,
    so they share `action` and `service`.
    """

    sid: str
    action: str
    service: str
    resources: tuple[str, ...]
    """The resource part of each ARN in the deploying account, e.g. "distribution/E123"."""
    regional: bool = True
    """False for global services (CloudFront): their ARNs name no region."""
