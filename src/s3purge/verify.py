"""Fresh at the edge, proved: after a purge is accepted, probe what the CDN serves; purge again while stale.

A route with `verify:` has each purged URL fetched through the CDN (its public URL, or
each probe address `via`, with the public Host header) and compared with the object the
event names (freshness.py decides; probing.py asks, without credentials). Probes poll with
backoff for `within` seconds; a copy still stale is purged again, up to `purges` purges in
all, then that (change, CDN) fails "still stale after N purges: serves ETag X" and goes
the normal retry and dead-letter way (the dead letter carries that reason: entry/settle.py).
Probes are paced and capped per invocation. Shielded CDNs' delayed second purges are
chosen here too (second_purges).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import httpx
import msgspec

from s3purge import metrics
from s3purge.capabilities import Rate
from s3purge.config import Config, Route
from s3purge.freshness import (
    Current,
    Expected,
    Probe,
    Seen,
    by_date,
    expected,
    identified,
    is_fresh,
    probes,
    stale_reason,
    superseded,
    unidentified,
)
from s3purge.mapping import applies
from s3purge.model import Batch, Change, Outcome, Proof, Report
from s3purge.pacing import limiter
from s3purge.probing import Prober

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger("s3purge")

BACKOFF = (0.05, 0.1, 0.2, 0.4, 0.8, 1.0)
"""Seconds between probes of one round; the last step repeats until `within` is spent."""
SLACK = 0.01
"""Seconds a probe may start after `within` (the wait before it ends exactly there)."""

Verdict = Literal["fresh", "stale", "unknown", "silent"]
"""What a probe proved: the new object (or a newer one), an old one, nothing either way (the copy
has no comparable ETag and no date decides: a final answer), or nothing yet (no answer)."""
_WEIGHT: dict[Verdict, int] = {"fresh": 0, "unknown": 1, "silent": 2, "stale": 3}
"""Which probe of a pair speaks for it: the worst."""


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
        delay: [msgspec.structs.replace(c, cdns=frozenset(cdns), second_purge=True) for c, cdns in group.items()]
        for delay, group in due.items()
    }


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
    verdict: Verdict | None = None
    """What the probes of this round proved so far (None: none sent)."""
    fresh_at: float | None = None
    superseded: bool = False
    asked: bool = False
    """S3 was asked about the key since the last purge."""
    now: Current | None = None
    """S3's answer then (None: not asked, or S3 could not say)."""
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
        self.prober = Prober(client, s3)
        self._wait = wait or threading.Event().wait
        self._pool = ThreadPoolExecutor(8, thread_name_prefix="s3purge-probe")

    def run(self, report: Report, config: Config, purge: PurgeAgain, started: float, deadline: float) -> None:
        """Verify every accepted (change, CDN) on routes that verify; adds proofs and failures."""
        pairs = list(_pairs(report, config))
        if not pairs:
            return
        budget = _Budget(config.probes.max_per_run)
        pace = limiter(Rate(config.probes.rate, config.probes.rate))
        pending = [p for p in pairs if p.probes]
        while pending:
            self._poll(pending, started, budget, pace, deadline)
            stale = [p for p in pending if p.fresh_at is None and p.verdict == "stale"]
            pending = self._again(stale, report, purge, deadline)  # no answer proves nothing: not purged again
        proofs = [_proof(p) for p in pairs]
        for proof in proofs:
            _log_proof(proof)
            if proof.result == "fresh" and proof.time_to_fresh is not None:
                metrics.time_to_fresh(proof.cdn, proof.time_to_fresh)  # the CDN's TimeToFresh (EMF)
        report.proofs += proofs

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.prober.close()

    def _poll(self, pairs: list[_Pair], started: float, budget: _Budget, pace: Any, deadline: float) -> None:
        """Probe until each pair is fresh or its `within` is spent (or budget, or deadline)."""
        for pair in pairs:
            pair.last, pair.verdict, pair.asked = None, None, False
        begun = time.monotonic()
        for step in _steps():
            now = time.monotonic()
            live = [p for p in pairs if _open(p) and now - begun < _within(p) + SLACK and now < deadline]
            live = [p for p in live if budget.take(len(p.probes))]
            if not live:
                return
            for pair, looked in zip(live, self._pool.map(lambda p: self._look(p, pace, deadline), live), strict=True):
                if looked is None:
                    continue  # no probe could be paced before the deadline
                pair.last, pair.verdict = looked
                if pair.verdict == "fresh":
                    pair.fresh_at = time.monotonic() - started
            waiting = [p for p in live if _open(p)]
            if not waiting:
                return
            now = time.monotonic()
            left = max(_within(p) - (now - begun) for p in waiting)
            if left <= 0:
                return
            self._wait(min(step, left, max(0.0, deadline - now)))  # the last probe lands on `within`

    def _look(self, pair: _Pair, pace: Any, deadline: float) -> tuple[Seen, Verdict] | None:
        """Probe each URL of the pair until one is stale; the worst probe speaks for the pair.

        Each probe waits for its turn here, just before it is sent: paced where the CDN counts them."""
        worst: tuple[Seen, Verdict] | None = None
        for probe in pair.probes:
            if not pace.acquire(1, deadline):  # its turn would come after the deadline
                return None if worst is None else (Seen(None, error="deadline reached before every URL"), "silent")
            pair.probed += 1
            seen = self.prober.probe(probe, deadline)
            verdict = self._judge(pair, seen)
            if worst is None or _WEIGHT[verdict] > _WEIGHT[worst[1]]:
                worst = (seen, verdict)
            if verdict == "stale":
                break
        return worst

    def _judge(self, pair: _Pair, seen: Seen) -> Verdict:
        if seen.status is None:
            return "silent"  # no evidence either way: another URL may still show a stale copy
        if is_fresh(pair.expect, seen):
            return "fresh"
        self._ask_s3(pair)
        if pair.superseded:
            return "fresh"
        if identified(pair.expect, seen):
            return "stale"
        dated = by_date(seen, pair.now)  # the CDN strips or rewrites ETags: its dates must decide
        return "unknown" if dated is None else "fresh" if dated else "stale"

    def _ask_s3(self, pair: _Pair) -> None:
        """Once per purge, at the first copy that is not the event's: has the key changed since?"""
        if pair.asked:
            return
        pair.asked = True
        pair.now = self.prober.current(pair.change)
        pair.superseded = pair.now is not None and superseded(pair.expect, pair.now)

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
        changes = [msgspec.structs.replace(p.change, cdns=frozenset({p.cdn})) for p in retry]
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
        if change.source in report.bad_sources:
            continue  # not mapped: nothing was purged, it is dead-lettered with its reason
        for route in config.routes(change.bucket):
            if route.verify is None or not applies(route, change):
                continue
            if route.cdn in failed.get(change.source, set()):
                continue  # refused, or not accepted: dead-lettered, or the normal retry handles it
            if expect is None:
                log.info("unverified", extra={"cdn": route.cdn, "key": change.key, "reason": "event has no ETag"})
                continue
            try:  # a cache keyed on the scheme holds a copy per scheme: each is probed
                found = probes(route, change, not config.cdns[route.cdn].provider.scheme_agnostic)
            except Exception as error:  # noqa: BLE001 - a key no probe can be built for: unverified, said why
                yield _Pair(
                    change, route, expect, [], last=Seen(None, error=f"no probe built ({type(error).__name__})")
                )
                continue
            yield _Pair(change, route, expect, found)


def _open(pair: _Pair) -> bool:
    """Still to be probed: neither proved fresh nor past proving (no comparable ETag nor date)."""
    return pair.fresh_at is None and pair.verdict != "unknown"


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
    elif pair.verdict == "unknown":  # nothing to tell the new object from an old one: never stale
        result, detail = "unverified", unidentified(pair.last)
    elif pair.last.status is None:  # an error is no evidence: never stale
        result, detail = "unverified", pair.last.describe()
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
