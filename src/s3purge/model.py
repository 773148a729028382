"""The records that flow through the pipeline: Change -> Target -> Batch -> Outcome -> Report."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Literal

import msgspec

EventKind = Literal["created", "removed"]
TargetKind = Literal["url", "prefix", "tag", "everything"]
Action = Literal["purge", "invalidate", "delete", "load"]
"""purge: drop the copy; invalidate: soft purge (mark stale, revalidate);
delete: Akamai's hard delete; load: prefetch onto the edge."""


class Change(msgspec.Struct, frozen=True, gc=False):
    """One object created, overwritten or removed in a bucket; `key` is decoded.

    A msgspec Struct like Target (built in C, never walked by the garbage collector: a burst
    holds tens of thousands); `msgspec.structs.replace` copies one with fields changed."""

    bucket: str
    key: str
    event: EventKind
    source: str
    """Id of the message or record this change came from, so failures map back."""
    etag: str | None = None
    version_id: str | None = None
    sequencer: str | None = None
    event_time: str | None = None
    cdns: frozenset[str] | None = None
    """Set on a retry after a partial failure: only these CDNs still need the purge."""
    second_purge: bool = False
    """This is the delayed second purge of a shielded CDN: it schedules no third."""
    metadata: tuple[tuple[str, str], ...] | None = None
    """The object's S3 user metadata, read where a route takes tags from it (metadata.py)."""


class Target(msgspec.Struct, frozen=True, gc=False):
    """One thing to purge on one CDN: an absolute URL, a URL prefix, a tag, or everything.

    A msgspec Struct, not a dataclass: planning makes several per change, and a Struct is built
    and hashed in C, and (holding only strings) is never traversed by the garbage collector.
    `msgspec.structs.replace` copies one with a field changed."""

    cdn: str
    action: Action
    kind: TargetKind
    value: str


@dataclass(frozen=True, slots=True)
class Batch:
    """Targets of one CDN, action and kind, packed to fit into one vendor call."""

    cdn: str
    action: Action
    kind: TargetKind
    values: tuple[str, ...]
    sources: frozenset[str]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one batch."""

    batch: Batch
    ok: bool
    detail: str = ""
    retryable: bool = False


@dataclass(frozen=True, slots=True)
class Proof:
    """What verification found for one (change, CDN): fresh, superseded, stale or unverified."""

    source: str
    cdn: str
    key: str
    result: str
    purges: int
    probes: int
    time_to_fresh: float | None = None
    """Seconds from the first purge request to the probe that showed the new object."""
    detail: str = ""


@dataclass(slots=True)
class Report:
    """Everything one pipeline run did, and which (source, CDN) pairs still need a purge."""

    changes: list[Change] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    routed: Mapping[str, AbstractSet[str]] = field(default_factory=dict)
    """source -> CDNs its changes route to."""
    bad_sources: dict[str, str] = field(default_factory=dict)
    """source -> why it could not even be read (malformed event)."""
    proofs: list[Proof] = field(default_factory=list)
    """Verification's findings, per (change, CDN) on routes that verify."""
    second: dict[float, list[Change]] = field(default_factory=dict)
    """Delay (s) -> changes narrowed to shielded CDNs that accepted, to purge once more."""

    def failed_cdns(self) -> dict[str, set[str]]:
        """source -> CDNs on which at least one of its batches failed."""
        failed: dict[str, set[str]] = {}
        for outcome in self.outcomes:
            if not outcome.ok:
                for source in outcome.batch.sources:
                    failed.setdefault(source, set()).add(outcome.batch.cdn)
        return failed

    @property
    def ok(self) -> bool:
        return not self.bad_sources and all(o.ok for o in self.outcomes)

    def failures(self) -> Iterable[Outcome]:
        return (o for o in self.outcomes if not o.ok)


# Target URLs as the planners (escalate) and vendor modules (highwinds) both read them.
def site_root(url: str) -> str:
    """`https://h/a/b.png` -> `https://h/` (an absolute target URL)."""
    return url[: _path_start(url)] + "/"


def url_path(url: str) -> str:
    """`https://h/a/b.png` -> `/a/b.png`."""
    return url[_path_start(url) :] or "/"


def _path_start(url: str) -> int:
    start = url.find("/", url.index("://") + 3)
    return start if start >= 0 else len(url)
