"""The one core call every entry point makes, and what to do with each message afterwards.

Pipeline.run(changes, deadline) -> Report     order, plan, execute, verify
settle(messages, report) -> Settlement        ack / retry narrowed / fail, per message
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field

from s3purge.config import Config
from s3purge.events import Message
from s3purge.execute import Executor
from s3purge.model import Change, Outcome, Report
from s3purge.order import Ledger
from s3purge.plan import plan
from s3purge.secrets import Vault
from s3purge.verify import Verifier, second_purges

log = logging.getLogger("s3purge")


@dataclass
class Pipeline:
    """A loaded config and an executor: built once per process, run per invocation."""

    config: Config
    executor: Executor = field(default_factory=Executor)
    ledger: Ledger = field(default_factory=Ledger)
    verifier: Verifier = field(default_factory=Verifier)
    vault: Vault = field(init=False)
    """The config's secrets, fetched in the background from construction on."""

    def __post_init__(self) -> None:
        by_cdn = {name: cdn.provider.options.secrets() for name, cdn in self.config.cdns.items()}
        self.vault = Vault(by_cdn)

    def run(self, changes: list[Change], deadline: float) -> Report:
        changes, superseded = self.ledger.admit(changes)
        for old in superseded:  # a newer event of the key purges (and verifies) it instead
            log.info("superseded", extra={"key": old.key, "source": old.source, "sequencer": old.sequencer})
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
        started = time.monotonic()
        ready = [batch for batch in planned.batches if batch.cdn not in down]
        outcomes = self.executor.run(ready, self.config.cdns, deadline) + stopped
        report = Report(changes=changes, outcomes=outcomes, routed=planned.routed)
        self.verifier.run(report, self.config, self._purge, started, deadline)
        report.second = second_purges(report, self.config)
        return report

    def _purge(self, changes: list[Change], deadline: float) -> list[Outcome]:
        """Plan and send `changes` again (verification's re-purge of a stale copy)."""
        return self.executor.run(plan(changes, self.config).batches, self.config.cdns, deadline)

    def run_messages(self, messages: list[Message], deadline: float) -> tuple[Report, Settlement]:
        changes = [change for message in messages for change in message.changes]
        report = self.run(changes, deadline)
        report.bad_sources = {m.id: m.error for m in messages if m.error is not None}
        return report, settle(messages, report)


@dataclass
class Settlement:
    """Per message: acknowledge it, retry only its failed CDNs, or fail it whole."""

    ack: list[str] = field(default_factory=list)
    retry: dict[str, list[Change]] = field(default_factory=dict)
    """message id -> its changes narrowed to the CDNs that failed (sent, then the original acked)."""
    fail: dict[str, str] = field(default_factory=dict)
    """message id -> why; SQS redelivers it, and after maxReceiveCount moves it to the DLQ."""

    @property
    def ok(self) -> bool:
        return not self.retry and not self.fail


def settle(messages: list[Message], report: Report) -> Settlement:
    failed = report.failed_cdns()
    reasons = _reasons(report)
    result = Settlement()
    for message in messages:
        if message.error is not None:
            result.fail[message.id] = message.error
            continue
        lost = failed.get(message.id, set())
        if not lost:
            result.ack.append(message.id)
        elif lost >= report.routed.get(message.id, set()):
            result.fail[message.id] = "; ".join(reasons[(message.id, cdn)] for cdn in sorted(lost))
        else:  # some CDNs accepted: a retry must not purge them again
            result.retry[message.id] = [_narrow(c, lost) for c in message.changes]
    return result


def _narrow(change: Change, cdns: set[str]) -> Change:
    keep = cdns if change.cdns is None else cdns & change.cdns
    return dataclasses.replace(change, cdns=frozenset(keep))


def _reasons(report: Report) -> dict[tuple[str, str], str]:
    reasons: dict[tuple[str, str], str] = {}
    for outcome in report.failures():
        for source in outcome.batch.sources:
            reasons.setdefault((source, outcome.batch.cdn), f"{outcome.batch.cdn}: {outcome.detail}")
    return reasons
