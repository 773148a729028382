"""Fresh at the edge, proved: after a purge is accepted, probe what the CDN serves.

A route with `verify:` has each purged URL fetched through the CDN (its public URL, or
each probe address `via`, with the public Host header) and compared with the object the
event names: its ETag (and version id on versioned buckets), or for a delete, nothing.
Probes poll with backoff for `within` seconds; a copy still stale is purged again, up to
`purges` purges in all, then that (change, CDN) fails "still stale after N purges:
serves ETag X" and goes the normal retry and dead-letter way (the dead letter carries
that reason: entry/settle.py).

A newer object is never taken for a failed purge (hex.pm's 923 false alarms). A copy
whose Last-Modified is a whole second later than the event is newer: fresh. Any other
mismatch is settled by S3 itself, asked once per purge at the first mismatching probe: if
the key's current ETag/version is no longer the event's (overwritten or deleted since), a
later event owns it and this one is done ("superseded"). Only then is a copy stale.

Probes are HEAD requests: no body is sent back, and CDNs (Varnish, CloudFront, Fastly,
Cloudflare, Akamai) answer HEAD from the same cache entry as GET with the same ETag and
Last-Modified. They go out on their own HTTP client with no auth, no .netrc, no proxy
credentials: a probe never carries a credential. Pure decisions first, then the prober.
"""

from __future__ import annotations

import email.utils
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx

from s3purge import metrics
from s3purge.capabilities import Rate
from s3purge.config import Config, Route
from s3purge.mapping import SCHEMES, applies, url_paths
from s3purge.model import Batch, Change, Outcome, Proof, Report
from s3purge.pacing import limiter

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger("s3purge")

GONE = frozenset({403, 404, 410})
"""What a deleted object is served as (S3 answers 403 for a missing key without ListBucket)."""
BACKOFF = (0.05, 0.1, 0.2, 0.4, 0.8, 1.0)
"""Seconds between probes of one round; the last step repeats until `within` is spent."""
USER_AGENT = "s3purge-verify/1"
SLACK = 0.01
"""Seconds a probe may start after `within` (the wait before it ends exactly there)."""

# --- pure decisions ----------------------------------------------------------------------


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
        return f"serves HTTP {self.status}"


@dataclass(frozen=True, slots=True)
class Current:
    """The key's state in S3 now (HeadObject)."""

    exists: bool
    etag: str | None = None
    version_id: str | None = None


@dataclass(frozen=True, slots=True)
class Probe:
    """One HEAD request through the CDN: an address and the public Host it stands for."""

    url: str
    host: str


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
    if expect.etag and seen.etag:
        return _bare(seen.etag) == expect.etag or _newer(expect, seen)
    return _newer(expect, seen)


def superseded(expect: Expected, now: Current) -> bool:
    """True when S3 says the key changed after the event: a later event owns its freshness."""
    if expect.gone:
        return now.exists
    if not now.exists:
        return True
    if expect.version_id and now.version_id:
        return now.version_id != expect.version_id
    return bool(expect.etag and now.etag) and _bare(now.etag) != expect.etag


def probes(route: Route, change: Change) -> list[Probe]:
    """Every URL the route purged for `change`, as probes (one scheme: caches hold one copy)."""
    assert route.verify is not None
    scheme = SCHEMES[route.schemes][0]
    found = []
    for path in url_paths(route, change.key):
        for host in route.hosts:
            if route.verify.via:
                found += [Probe(f"{base.rstrip('/')}{path}", host) for base in route.verify.via]
            else:
                found.append(Probe(f"{scheme}://{host}{path}", host))
    return found


def stale_reason(purges: int, seen: Seen | None) -> str:
    what = seen.describe() if seen is not None else "not probed"
    return f"still stale after {purges} purge{'s' if purges != 1 else ''}: {what}"


def second_purges(report: Report, config: Config) -> dict[float, list[Change]]:
    """Delay -> changes narrowed to each shielded CDN that accepted them, to purge once more."""
    failed = report.failed_cdns()
    due: dict[float, dict[Change, set[str]]] = {}
    for change in report.changes:
        if change.second_purge:
            continue  # this is the second one: schedule no third
        for cdn in report.routed.get(change.source, set()) - failed.get(change.source, set()):
            delay = config.cdns[cdn].second_purge
            if delay is not None and (change.cdns is None or cdn in change.cdns):
                due.setdefault(delay, {}).setdefault(change, set()).add(cdn)
    return {
        delay: [replace(c, cdns=frozenset(cdns), second_purge=True) for c, cdns in group.items()]
        for delay, group in due.items()
    }


def _newer(expect: Expected, seen: Seen) -> bool:
    # Last-Modified has whole seconds: only a later second proves a later write. An equal
    # second is left to S3 (superseded()), never guessed.
    if expect.event_time is None or seen.last_modified is None:
        return False
    return seen.last_modified > expect.event_time.replace(microsecond=0)


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


def _http_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None


# --- the prober --------------------------------------------------------------------------


@dataclass(eq=False)
class _Pair:
    """One (change, route) being verified."""

    change: Change
    route: Route
    expect: Expected
    probes: list[Probe]
    purges: int = 1
    probed: int = 0
    last: Seen | None = None
    fresh_at: float | None = None
    superseded: bool = False
    asked: bool = False
    """S3 was asked about the key since the last purge."""
    failed: bool = False

    @property
    def cdn(self) -> str:
        return self.route.cdn


@dataclass
class _Budget:
    left: int
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, n: int) -> bool:
        with self.lock:
            if self.left < n:
                return False
            self.left -= n
            return True


PurgeAgain = Callable[[list[Change], float], list[Outcome]]
"""Plans and executes `changes` (narrowed to CDNs) before the deadline; their outcomes."""


class Verifier:
    """Probes through the CDN, asks S3 when in doubt, purges again; reused across invocations."""

    def __init__(
        self,
        client: httpx.Client | None = None,
        s3: S3Client | None = None,
        wait: Callable[[float], Any] | None = None,
    ) -> None:
        # Its own client: no auth, no .netrc or proxy credentials from the environment.
        self.client = client or httpx.Client(follow_redirects=False, trust_env=False, timeout=5.0)
        self._s3 = s3
        self._wait = wait or threading.Event().wait
        self._pool = ThreadPoolExecutor(8, thread_name_prefix="s3purge-probe")

    def run(self, report: Report, config: Config, purge: PurgeAgain, started: float, deadline: float) -> None:
        """Verify every accepted (change, CDN) on routes that verify; adds proofs and failures."""
        pairs = list(_pairs(report, config))
        if not pairs:
            return
        budget = _Budget(config.probes.max_per_run)
        pace = limiter(Rate(config.probes.rate, config.probes.rate))
        pending = pairs
        while pending:
            self._poll(pending, started, budget, pace, deadline)
            stale = [p for p in pending if p.fresh_at is None and p.last is not None]
            pending = self._again(stale, report, purge, deadline)
        proofs = [_proof(p) for p in pairs]
        for proof in proofs:
            _log_proof(proof)
            if proof.result == "fresh" and proof.time_to_fresh is not None:
                metrics.time_to_fresh(proof.cdn, proof.time_to_fresh)  # the CDN's TimeToFresh (EMF)
        report.proofs += proofs

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.client.close()

    def _poll(self, pairs: list[_Pair], started: float, budget: _Budget, pace: Any, deadline: float) -> None:
        """Probe until each pair is fresh or its `within` is spent (or budget, or deadline)."""
        for pair in pairs:
            pair.last, pair.asked = None, False
        begun = time.monotonic()
        for step in _steps():
            now = time.monotonic()
            live = [p for p in pairs if p.fresh_at is None and now - begun < _within(p) + SLACK and now < deadline]
            live = [p for p in live if budget.take(len(p.probes)) and pace.acquire(len(p.probes), deadline)]
            if not live:
                return
            for pair, seen in zip(live, self._pool.map(self._look, live), strict=True):
                pair.last = seen
                if pair.superseded or is_fresh(pair.expect, seen):
                    pair.fresh_at = time.monotonic() - started
            if all(p.fresh_at is not None for p in live):
                return
            now = time.monotonic()
            left = max(_within(p) - (now - begun) for p in live if p.fresh_at is None)
            if left <= 0:
                return
            self._wait(min(step, left, max(0.0, deadline - now)))  # the last probe lands on `within`

    def _look(self, pair: _Pair) -> Seen:
        """Probe each URL of the pair; the first that is not fresh (else the last) speaks for it."""
        seen = Seen(None, error="no probe")
        for probe in pair.probes:
            pair.probed += 1
            seen = self._probe(probe)
            if not is_fresh(pair.expect, seen):
                self._ask_s3(pair, seen)
                return seen
        return seen

    def _ask_s3(self, pair: _Pair, seen: Seen) -> None:
        """Once per purge, at the first copy that is not the event's: has the key changed since?"""
        if pair.asked or seen.status is None:
            return
        pair.asked = True
        now = self._current(pair.change)
        pair.superseded = now is not None and superseded(pair.expect, now)

    def _probe(self, probe: Probe) -> Seen:
        try:
            response = self.client.head(probe.url, headers={"Host": probe.host, "User-Agent": USER_AGENT})
        except httpx.HTTPError as error:
            return Seen(None, error=type(error).__name__)
        headers = response.headers
        return Seen(
            response.status_code,
            headers.get("etag"),
            headers.get("x-amz-version-id"),
            _http_time(headers.get("last-modified")),
        )

    def _current(self, change: Change) -> Current | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            head = self._s3_client().head_object(Bucket=change.bucket, Key=change.key)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchKey", "NotFound"):
                return Current(exists=False)
            log.warning("origin check failed", extra={"bucket": change.bucket, "key": change.key, "error": code})
            return None
        except BotoCoreError as error:
            log.warning("origin check failed", extra={"bucket": change.bucket, "error": type(error).__name__})
            return None
        return Current(True, head.get("ETag"), head.get("VersionId"))

    def _s3_client(self) -> S3Client:
        if self._s3 is None:
            import boto3

            self._s3 = boto3.client("s3")
        return self._s3

    def _again(self, stale: list[_Pair], report: Report, purge: PurgeAgain, deadline: float) -> list[_Pair]:
        """Purge stale pairs again (those with purges left); the rest fail as still stale."""
        late = time.monotonic() >= deadline  # a stale copy seen and no time to purge again: fail, not ack
        spent = [p for p in stale if late or (p.route.verify is not None and p.purges >= p.route.verify.purges)]
        for pair in spent:
            pair.failed = True
            report.outcomes.append(_stale_outcome(pair))
        retry = [p for p in stale if p not in spent]
        if not retry:
            return []
        changes = [replace(p.change, cdns=frozenset({p.cdn})) for p in retry]
        outcomes = purge(changes, deadline)
        report.outcomes += outcomes
        refused = {(s, o.batch.cdn) for o in outcomes if not o.ok for s in o.batch.sources}
        accepted = [p for p in retry if (p.change.source, p.cdn) not in refused]
        for pair in accepted:
            pair.purges += 1
        return accepted


def _pairs(report: Report, config: Config) -> Iterator[_Pair]:
    failed = report.failed_cdns()
    for change in report.changes:
        expect = expected(change)
        for route in config.routes(change.bucket):
            if route.verify is None or not applies(route, change):
                continue
            if route.cdn in failed.get(change.source, set()):
                continue  # not accepted: the normal retry handles it
            if expect is None:
                log.info("unverified", extra={"cdn": route.cdn, "key": change.key, "reason": "event has no ETag"})
                continue
            yield _Pair(change, route, expect, probes(route, change))


def _steps() -> Iterator[float]:
    yield from BACKOFF
    while True:
        yield BACKOFF[-1]


def _within(pair: _Pair) -> float:
    return pair.route.verify.within if pair.route.verify is not None else 0.0


def _stale_outcome(pair: _Pair) -> Outcome:
    batch = Batch(pair.cdn, pair.route.action, "url", (), frozenset({pair.change.source}))  # no purge items
    return Outcome(batch, False, stale_reason(pair.purges, pair.last), retryable=True)


def _proof(pair: _Pair) -> Proof:
    if pair.fresh_at is not None:
        result, detail = ("superseded" if pair.superseded else "fresh"), ""
    elif pair.last is None:
        result, detail = "unverified", "probe budget or deadline spent before a probe"
    elif pair.failed:
        result, detail = "stale", stale_reason(pair.purges, pair.last)
    else:
        result, detail = "unverified", f"deadline or probe budget spent: {pair.last.describe()}"
    return Proof(pair.change.source, pair.cdn, pair.change.key, result, pair.purges, pair.probed, pair.fresh_at, detail)


def _log_proof(proof: Proof) -> None:
    fields: dict[str, Any] = {
        "cdn": proof.cdn,
        "key": proof.key,
        "source": proof.source,
        "result": proof.result,
        "purges": proof.purges,
        "probes": proof.probes,
    }
    if proof.time_to_fresh is not None:
        fields["time_to_fresh_ms"] = round(proof.time_to_fresh * 1000, 1)
    if proof.detail:
        fields["detail"] = proof.detail
    level = logging.INFO if proof.result in ("fresh", "superseded") else logging.WARNING
    log.log(level, "verified" if level == logging.INFO else "not proved fresh", extra=fields)
