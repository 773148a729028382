"""Fresh, stale or superseded: pure decisions on what a probe through the CDN saw.

The event names an object (its ETag, version id on versioned buckets) or a delete; a probe
answer is fresh when it shows that object, nothing (for a delete), or a newer one. A newer
object is never taken for a failed purge (hex.pm's 923 false alarms): a copy whose
Last-Modified is a whole second later than the event is newer, and any other mismatch is
settled by S3 itself (`superseded`: the key changed after the event). Only then is a copy
stale. A copy whose ETag cannot be compared (stripped, or rewritten as `"abc-gzip"` by a
compressing CDN or Apache) is judged by its Last-Modified against S3's object (`by_date`), and
when that cannot decide either, it is not proved (unverified), never stale. No I/O here:
probing.py asks, verify.py runs the rounds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from s3purge.config import Route
from s3purge.mapping import SCHEMES, url_paths
from s3purge.model import Change

S3_ETAG = re.compile(r"[0-9a-f]+(-[0-9]+)?", re.IGNORECASE)
"""S3's ETags: hex (an MD5, or an MD5 of MD5s and the part count). Anything else was rewritten."""
GONE = frozenset({403, 404, 410})
"""What a deleted object is served as (S3 answers 403 for a missing key without ListBucket)."""


@dataclass(frozen=True, slots=True)
class Expected:
    """The object an event says must now be served (or that nothing must be)."""

    gone: bool
    etag: str | None = None
    version_id: str | None = None
    event_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class Seen:
    """What one probe was answered."""

    status: int | None
    etag: str | None = None
    version_id: str | None = None
    last_modified: datetime | None = None
    error: str = ""

    def describe(self) -> str:
        if self.status is None:
            return f"no answer ({self.error})"
        if self.etag is not None and 200 <= self.status < 300:
            return f"serves ETag {self.etag}"
        if self.last_modified is not None and 200 <= self.status < 300:
            return f"serves Last-Modified {self.last_modified.isoformat()}"
        return f"serves HTTP {self.status}"


@dataclass(frozen=True, slots=True)
class Current:
    """The key's state in S3 now (HeadObject)."""

    exists: bool
    etag: str | None = None
    version_id: str | None = None
    last_modified: datetime | None = None


@dataclass(frozen=True, slots=True)
class Probe:
    """One HEAD request through the CDN: an address and the public Host it stands for."""

    url: str
    host: str
    scheme: str | None = None
    """The public URL's scheme, for a probe address on a cache keyed on it: sent as
    X-Forwarded-Proto, as the http vendor's purge signals it."""


def expected(change: Change) -> Expected | None:
    """What `change` must look like at the edge; None when the event names no identity."""
    when = _iso_time(change.event_time)
    if change.event == "removed":
        return Expected(gone=True, event_time=when)
    if change.etag is None and change.version_id is None:
        return None
    return Expected(False, _bare(change.etag), change.version_id, when)


def is_fresh(expect: Expected, seen: Seen) -> bool:
    """True when the probe shows the event's object, or a newer one, or (delete) nothing."""
    if seen.status is None:
        return False
    if expect.gone:
        return seen.status in GONE or _newer(expect, seen)
    if not 200 <= seen.status < 300:
        return False
    if expect.version_id and seen.version_id:
        return seen.version_id == expect.version_id or _newer(expect, seen)
    if expect.etag and seen.etag and _comparable(expect.etag, seen.etag):
        return _bare(seen.etag) == expect.etag or _newer(expect, seen)
    return _newer(expect, seen)


def identified(expect: Expected, seen: Seen) -> bool:
    """True when the copy's status, version id or ETag can tell the event's object from another."""
    if expect.gone or seen.status is None or not 200 <= seen.status < 300:
        return True  # the status decides
    if expect.version_id and seen.version_id:
        return True
    return bool(expect.etag and seen.etag and _comparable(expect.etag, seen.etag))


def by_date(seen: Seen, now: Current | None) -> bool | None:
    """For a copy that is not `identified`: fresh (True) when its Last-Modified is that of S3's
    object (S3 still holds the event's, else it is superseded) or later, stale (False) when earlier,
    None when a date is missing (unverified, never stale). Whole seconds: two writes within one
    second look alike."""
    if now is None or now.last_modified is None or seen.last_modified is None:
        return None
    return seen.last_modified >= now.last_modified.replace(microsecond=0)


def unidentified(seen: Seen) -> str:
    """Why `by_date` could not decide about a copy that is not `identified`."""
    what = "no ETag" if seen.etag is None else f"no comparable ETag ({seen.etag})"
    why = "nor Last-Modified" if seen.last_modified is None else "and S3 gave no date to compare"
    return f"the CDN serves {what}, {why}"


def superseded(expect: Expected, now: Current) -> bool:
    """True when S3 says the key changed after the event: a later event owns its freshness."""
    if expect.gone:
        return now.exists
    if not now.exists:
        return True
    if expect.version_id and now.version_id:
        return now.version_id != expect.version_id
    return bool(expect.etag and now.etag) and _bare(now.etag) != expect.etag


def probes(route: Route, change: Change, keyed_on_scheme: bool = False) -> list[Probe]:
    """Every URL the route purged for `change`, as probes: one scheme's where the CDN holds one
    copy for both, each scheme's where its cache key has the scheme (`keyed_on_scheme`)."""
    assert route.verify is not None
    schemes = SCHEMES[route.schemes] if keyed_on_scheme else SCHEMES[route.schemes][:1]
    found = []
    for path in url_paths(route, change.key):
        for host in route.hosts:
            for scheme in schemes:
                if route.verify.via:
                    signal = scheme if keyed_on_scheme else None
                    found += [Probe(f"{base.rstrip('/')}{path}", host, signal) for base in route.verify.via]
                else:
                    found.append(Probe(f"{scheme}://{host}{path}", host))
    return found


def stale_reason(purges: int, seen: Seen | None) -> str:
    what = seen.describe() if seen is not None else "not probed"
    return f"still stale after {purges} purge{'s' if purges != 1 else ''}: {what}"


def _newer(expect: Expected, seen: Seen) -> bool:
    # Last-Modified has whole seconds: only a later second proves a later write. An equal
    # second is left to S3 (superseded()), never guessed.
    if expect.event_time is None or seen.last_modified is None:
        return False
    return seen.last_modified > expect.event_time.replace(microsecond=0)


def _comparable(expected: str, served: str) -> bool:
    """The served ETag is the event's, or both are S3's own: then a difference means another object."""
    bare = _bare(served) or ""
    return bare == expected or (S3_ETAG.fullmatch(bare) is not None and S3_ETAG.fullmatch(expected) is not None)


def _bare(etag: str | None) -> str | None:
    """ETag without W/ and quotes: Varnish weakens it when it gzips, S3 events omit quotes."""
    if etag is None:
        return None
    return etag.removeprefix("W/").strip('"')


def _iso_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)
