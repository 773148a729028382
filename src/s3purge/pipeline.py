"""The one core call every entry point makes, and what to do with each message afterwards.

Pipeline.run(changes, deadline) -> Report     order, plan, execute, verify
settle(messages, report) -> Settlement        ack / retry narrowed / redeliver / dead-letter, per message
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import msgspec

from s3purge.config import Config
from s3purge.events import Message
from s3purge.execute import Executor
from s3purge.metadata import MetadataReader
from s3purge.model import Batch, Change, Outcome, Report
from s3purge.order import Ledger
from s3purge.plan import Plan, Refusal, plan
from s3purge.secrets import Vault

if TYPE_CHECKING:
    from s3purge.verify import Verifier

log = logging.getLogger("s3purge")


@dataclass
class Pipeline:
    """A loaded config and an executor: built once per process, run per invocation."""

    config: Config
    executor: Executor = field(default_factory=Executor)
    ledger: Ledger = field(default_factory=Ledger)
    verifier: Verifier | None = None
    """Made at the first run that needs it: a config whose routes never verify and whose CDNs
    take no second purge never imports verify.py (its probe and proof types: Lambda cold start)."""
    metadata: MetadataReader = field(default_factory=MetadataReader)
    vault: Vault = field(init=False)
    """The config's secrets, fetched in the background from construction on."""
    after_purge: bool = field(init=False)
    """Whether any route verifies or any CDN purges a second time."""

    def __post_init__(self) -> None:
        by_cdn = {name: cdn.provider.options.secrets() for name, cdn in self.config.cdns.items()}
        self.vault = Vault(by_cdn)
        verifies = any(route.verify is not None for routes in self.config.buckets.values() for route in routes)
        self.after_purge = verifies or any(cdn.second_purge is not None for cdn in self.config.cdns.values())

    def run(self, changes: list[Change], deadline: float) -> Report:
        changes, superseded = self.ledger.admit(changes)
        for old in superseded:  # a newer event of the key purges (and verifies) it instead
            log.info("superseded", extra={"key": old.key, "source": old.source, "sequencer": old.sequencer})
        changes, unread = self.metadata.read(changes, self.config, deadline)
        planned = plan(changes, self.config)
        down = self.vault.unavailable(deadline)
        for cdn, reason in sorted(down.items()):
            log.error("cdn unavailable", extra={"cdn": cdn, "reason": reason})
        stopped = [Outcome(b, False, f"not sent: {down[b.cdn]}", True) for b in planned.batches if b.cdn in down]
        log.debug(
            "plan",
            extra={
                "changes": len(changes),
                "batches": len(planned.batches),
                "targets": sum(len(b.values) for b in planned.batches),
            },
        )
        _log_plan(planned)
        started = time.monotonic()
        ready = [batch for batch in planned.batches if batch.cdn not in down]
        outcomes = self.executor.run(ready, self.config.cdns, deadline) + stopped
        # What was refused or could not be read fails before verification: a (change, CDN) that
        # failed is never probed, so a permanent refusal is not outranked by a retryable "stale".
        outcomes += refusal_outcomes(planned) + unread
        report = Report(changes=changes, outcomes=outcomes, routed=planned.routed)
        report.bad_sources = dict(planned.bad_sources)
        if self.after_purge:
            self._verify(report, started, deadline)
        return report

    def _verify(self, report: Report, started: float, deadline: float) -> None:
        """Proofs on routes that verify (purging again while stale), then the second purges due."""
        from s3purge.verify import Verifier, second_purges

        if self.verifier is None:
            self.verifier = Verifier()
        self.verifier.run(report, self.config, self._purge, started, deadline)
        report.second = second_purges(report, self.config)

    def _purge(self, changes: list[Change], deadline: float) -> list[Outcome]:
        """Plan and send `changes` again (verification's re-purge of a stale copy)."""
        return self.executor.run(plan(changes, self.config).batches, self.config.cdns, deadline)

    def run_messages(self, messages: list[Message], deadline: float) -> tuple[Report, Settlement]:
        changes = [change for message in messages for change in message.changes]
        report = self.run(changes, deadline)
        report.bad_sources.update({m.id: m.error for m in messages if m.error is not None})
        return report, settle(messages, report)


def refusal_outcomes(planned: Plan) -> list[Outcome]:
    """A permanently failed outcome for each target the plan refused (nothing was sent for it)."""
    return [
        Outcome(Batch(r.target.cdn, r.target.action, r.target.kind, (r.target.value,), r.sources), False, _why(r))
        for r in planned.refused
    ]


@dataclass(frozen=True)
class Dead:
    """A message that failed permanently: retrying cannot help, so it goes to the dead-letter queue."""

    reason: str
    changes: list[Change]
    """Its changes narrowed to the CDNs that failed permanently (empty: the body goes as received)."""


@dataclass
class Settlement:
    """Per message: acknowledge it, retry only its failed CDNs, leave it for redelivery, or dead-letter it.

    A message may be both retried (CDNs that failed retryably) and dead (CDNs that failed
    permanently); the original is acknowledged once both are sent."""

    ack: list[str] = field(default_factory=list)
    retry: dict[str, list[Change]] = field(default_factory=dict)
    """message id -> its changes narrowed to the CDNs that failed retryably (sent, then the original acked)."""
    fail: dict[str, str] = field(default_factory=dict)
    """message id -> why; every CDN failed retryably: SQS redelivers it (the last delivery: the DLQ, with why)."""
    dead: dict[str, Dead] = field(default_factory=dict)
    """message id -> why and what: failed permanently, so it goes to the dead-letter queue at once."""

    @property
    def ok(self) -> bool:
        return not self.retry and not self.fail and not self.dead


def settle(messages: list[Message], report: Report) -> Settlement:
    retryable, permanent, reasons = _failures(report)
    result = Settlement()
    for message in messages:
        bad = message.error or report.bad_sources.get(message.id)
        if bad is not None:
            result.dead[message.id] = Dead(bad, [])
            continue
        again = retryable.get(message.id, set())
        lost = permanent.get(message.id, set()) - again  # a CDN failing both ways is retried
        if lost:
            why = "; ".join(reasons[(message.id, cdn)] for cdn in sorted(lost))
            result.dead[message.id] = Dead(why, [_narrow(c, lost) for c in message.changes])
        if again and not lost and again >= report.routed.get(message.id, set()):
            result.fail[message.id] = "; ".join(reasons[(message.id, cdn)] for cdn in sorted(again))
        elif again:  # some CDNs accepted or are dead-lettered: a retry must not purge them again
            result.retry[message.id] = [_narrow(c, again) for c in message.changes]
        elif not lost:
            result.ack.append(message.id)
    return result


def _failures(report: Report) -> tuple[dict[str, set[str]], dict[str, set[str]], dict[tuple[str, str], str]]:
    """source -> CDNs failing retryably, source -> CDNs failing permanently, (source, CDN) -> first reason."""
    retryable: dict[str, set[str]] = {}
    permanent: dict[str, set[str]] = {}
    reasons: dict[tuple[str, str], str] = {}
    for outcome in report.failures():
        for source in outcome.batch.sources:
            (retryable if outcome.retryable else permanent).setdefault(source, set()).add(outcome.batch.cdn)
            reasons.setdefault((source, outcome.batch.cdn), f"{outcome.batch.cdn}: {outcome.detail}")
    return retryable, permanent, reasons


def _narrow(change: Change, cdns: set[str]) -> Change:
    keep = cdns if change.cdns is None else cdns & change.cdns
    return msgspec.structs.replace(change, cdns=frozenset(keep))


def _why(refusal: Refusal) -> str:
    return f"refused {refusal.target.kind} {refusal.target.value[:200]}: {refusal.reason}"


def _log_plan(planned: Plan) -> None:
    for decision in planned.decisions:
        widened = decision.rule == "wildcard"
        log.log(
            logging.WARNING if widened else logging.INFO,
            "purge widened" if widened else "purge escalated",
            extra={"cdn": decision.cdn, "rule": decision.rule, "target": decision.target.value}
            | {"reason": decision.reason},
        )
    for refusal in planned.refused:
        log.error(
            "target refused",
            extra={"cdn": refusal.target.cdn, "sources": sorted(refusal.sources), "reason": _why(refusal)},
        )
    for source, reason in planned.bad_sources.items():
        log.error("change not mapped", extra={"source": source, "reason": reason})
