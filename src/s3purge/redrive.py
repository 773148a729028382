"""The dead-letter queue, sent back after an outage: to the source queue, or through the pipeline.

A redrive looks at every message in the dead-letter queue (holding each one invisible while
it runs), picks those the filters select (bucket, CDN still owed a purge, age), and:
  - queue: sends each body back to the source queue, then deletes it from the DLQ;
  - pipeline: purges it here and now; accepted everywhere -> deleted; accepted by some CDNs
    -> replaced in the DLQ by a copy narrowed to the CDNs that failed again; failed -> kept.
Everything not deleted is made visible again at the end, so nothing is lost on any error.

A dead letter s3purge sent carries why (`s3purge-reason`) and the original message's id
(`s3purge-message-id`); SQS's own move after maxReceiveCount carries neither. Sent back to
the source queue, a message keeps its attributes except `s3purge-reason`: that reason was
the last outage's, and if SQS moved the message again itself it would be shown as the new
one. A copy narrowed in the DLQ gets the reason it failed with this time. Ages count from
`s3purge-first-sent` (when the change first entered the queue; a dead letter's own
SentTimestamp is when it was dead-lettered), else SentTimestamp; every copy sent keeps it.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from s3purge.config import Config
from s3purge.errors import S3PurgeError
from s3purge.events import (
    FIRST_SENT_ATTRIBUTE,
    ORIGINAL_ID_ATTRIBUTE,
    REASON_ATTRIBUTE,
    Message,
    dead_letter_attributes,
    first_sent,
    read_message,
    retry_envelope,
)
from s3purge.mapping import targets
from s3purge.model import Change
from s3purge.pipeline import Settlement

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import (
        MessageAttributeValueOutputTypeDef,
        MessageAttributeValueTypeDef,
        MessageTypeDef,
    )

HOLD_SECONDS = 300
"""Visibility timeout while a redrive holds a message (it reappears by itself if we crash)."""


class RedriveError(S3PurgeError):
    """The queues cannot be redriven as asked (no single source queue ...)."""


@dataclass(frozen=True)
class Filters:
    buckets: frozenset[str] = frozenset()
    cdns: frozenset[str] = frozenset()
    older_than: float | None = None
    """Seconds: only messages first sent longer ago than this."""
    newer_than: float | None = None


@dataclass
class Item:
    """One dead letter: what it holds, whether the filters select it, and what became of it."""

    message: Message
    receipt: str
    body: str
    age: float | None
    """Seconds since its change first entered the queue (s3purge-first-sent, else SentTimestamp)."""
    cdns: set[str]
    group: str | None = None
    skipped: str | None = None
    """Why the filters leave it alone (None: selected)."""
    result: str = "kept"
    """kept | moved | purged | narrowed"""
    reason: str = ""
    attributes: dict[str, MessageAttributeValueOutputTypeDef] = field(default_factory=dict)
    """Its message attributes as received (sent back with it, less the old reason)."""
    first_sent: str | None = None
    """Epoch ms its change first entered the queue (what `age` counts from; kept when re-sent)."""

    @property
    def id(self) -> str:
        return self.message.id

    @property
    def dead_reason(self) -> str | None:
        """Why s3purge dead-lettered it (None: SQS moved it itself, or someone else sent it)."""
        return self._string(REASON_ATTRIBUTE)

    @property
    def original_id(self) -> str | None:
        """The id of the message that failed (the dead letter is a new message)."""
        return self._string(ORIGINAL_ID_ATTRIBUTE)

    def _string(self, name: str) -> str | None:
        value = self.attributes.get(name)
        return value.get("StringValue") if value is not None else None

    @property
    def objects(self) -> list[str]:
        return [f"{c.bucket}/{c.key}" for c in self.message.changes]


@dataclass
class Redrive:
    client: SQSClient
    dlq_url: str
    config: Config
    filters: Filters = field(default_factory=Filters)
    wait_seconds: int = 2
    items: list[Item] = field(default_factory=list)

    def scan(self, limit: int | None = None) -> list[Item]:
        """Receive (and hold) every dead letter, up to `limit`; each one judged by the filters."""
        now = time.time()
        for received in self._receive(limit):
            item = self._item(received, now)
            item.skipped = self._skip_reason(item)
            self.items.append(item)
        return self.items

    def selected(self) -> list[Item]:
        return [item for item in self.items if item.skipped is None]

    def to_queue(self, target_url: str) -> None:
        """Send each selected body back to `target_url`, then delete it from the DLQ."""
        for item in self.selected():
            extra: dict[str, Any] = {}
            if target_url.endswith(".fifo"):
                extra = {
                    "MessageGroupId": item.group or "s3purge-redrive",
                    "MessageDeduplicationId": hashlib.sha256(item.body.encode()).hexdigest(),
                }
            attributes = {name: _resend(value) for name, value in item.attributes.items() if name != REASON_ATTRIBUTE}
            if item.first_sent:  # SQS's own move carries none: its age starts at its SentTimestamp
                attributes[FIRST_SENT_ATTRIBUTE] = {"DataType": "String", "StringValue": item.first_sent}
            if attributes:
                extra["MessageAttributes"] = attributes
            self.client.send_message(QueueUrl=target_url, MessageBody=item.body, **extra)
            self._delete(item, "moved")

    def through_pipeline(self, run: Callable[[list[Message]], Settlement]) -> None:
        """Purge the selected messages now; only what fails again stays in the DLQ (narrowed to its CDNs)."""
        selected = {item.id: item for item in self.selected()}
        if not selected:
            return
        settlement = run([item.message for item in selected.values()])
        for message_id in settlement.ack:
            self._delete(selected[message_id], "purged")
        again: dict[str, list[Change]] = {i: list(c) for i, c in settlement.retry.items()}
        reasons = dict(settlement.fail)
        for message_id, dead in settlement.dead.items():  # permanent failures
            reasons[message_id] = dead.reason
            if dead.changes:
                again.setdefault(message_id, []).extend(dead.changes)
            else:
                again.pop(message_id, None)  # unreadable: the original stays as it is
        for message_id, changes in again.items():
            failed = sorted({cdn for change in changes for cdn in change.cdns or ()})
            reasons.setdefault(message_id, f"still failing on {', '.join(failed)}")
            self._narrow(selected[message_id], changes, reasons[message_id])
        for message_id, reason in reasons.items():
            selected[message_id].reason = reason

    def release(self) -> None:
        """Make every message still held visible again in the DLQ."""
        held = [item for item in self.items if item.result == "kept"]
        for start in range(0, len(held), 10):
            entries = [
                {"Id": str(n), "ReceiptHandle": item.receipt, "VisibilityTimeout": 0}
                for n, item in enumerate(held[start : start + 10])
            ]
            self.client.change_message_visibility_batch(QueueUrl=self.dlq_url, Entries=entries)  # type: ignore[arg-type]

    def source_queue(self) -> str:
        """The one queue whose redrive policy points at this DLQ."""
        urls = self.client.list_dead_letter_source_queues(QueueUrl=self.dlq_url).get("queueUrls", [])
        if len(urls) != 1:
            found = ", ".join(urls) or "none"
            raise RedriveError(f"{self.dlq_url}: {len(urls)} source queue(s) ({found}); name one with --to-queue")
        return urls[0]

    def _receive(self, limit: int | None) -> Iterator[MessageTypeDef]:
        count = 0
        while limit is None or count < limit:
            batch = self.client.receive_message(
                QueueUrl=self.dlq_url,
                MaxNumberOfMessages=min(10, limit - count) if limit is not None else 10,
                WaitTimeSeconds=self.wait_seconds,
                VisibilityTimeout=HOLD_SECONDS,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not batch:
                return
            count += len(batch)
            yield from batch

    def _item(self, received: MessageTypeDef, now: float) -> Item:
        body = received.get("Body", "")
        message = read_message(body, received["MessageId"])
        attributes = received.get("Attributes", {})
        carried = dict(received.get("MessageAttributes", {}))
        # A dead letter s3purge sent is a new message: its SentTimestamp is when it was dead-lettered.
        first = carried.get(FIRST_SENT_ATTRIBUTE)
        sent = first_sent(first and first.get("StringValue"), attributes.get("SentTimestamp"))
        cdns = {t.cdn for change in message.changes for t in targets(change, self.config)}
        return Item(
            message=message,
            receipt=received["ReceiptHandle"],
            body=body,
            age=round(now - int(sent) / 1000, 3) if sent is not None else None,
            cdns=cdns,
            group=attributes.get("MessageGroupId"),
            attributes=carried,
            first_sent=sent,
        )

    def _skip_reason(self, item: Item) -> str | None:
        if item.message.error is not None:
            return f"unreadable: {item.message.error}"
        if not item.cdns:
            return "routes to no CDN (nothing to purge)"
        return self._filtered_out(item)

    def _filtered_out(self, item: Item) -> str | None:
        wanted = self.filters
        if wanted.buckets and not {c.bucket for c in item.message.changes} & wanted.buckets:
            return f"bucket not in {', '.join(sorted(wanted.buckets))}"
        if wanted.cdns and not item.cdns & wanted.cdns:
            return f"needs {', '.join(sorted(item.cdns))}, not {', '.join(sorted(wanted.cdns))}"
        if wanted.older_than is not None and (item.age is None or item.age < wanted.older_than):
            return f"newer than {wanted.older_than:g}s"
        if wanted.newer_than is not None and (item.age is None or item.age > wanted.newer_than):
            return f"older than {wanted.newer_than:g}s"
        return None

    def _narrow(self, item: Item, changes: list[Change], reason: str) -> None:
        """Replace the dead letter by a copy narrowed to `changes`, carrying this failure's reason."""
        attributes = dead_letter_attributes(reason, item.original_id or item.id, item.first_sent)
        self.client.send_message(
            QueueUrl=self.dlq_url,
            MessageBody=retry_envelope(changes),
            MessageAttributes={name: {"DataType": "String", "StringValue": v} for name, v in attributes.items()},
        )
        self._delete(item, "narrowed")

    def _delete(self, item: Item, result: str) -> None:
        self.client.delete_message(QueueUrl=self.dlq_url, ReceiptHandle=item.receipt)
        item.result = result


def _resend(value: MessageAttributeValueOutputTypeDef) -> MessageAttributeValueTypeDef:
    """A received attribute as SendMessage takes it (the received one may carry empty list fields)."""
    out: MessageAttributeValueTypeDef = {"DataType": value["DataType"]}
    if "StringValue" in value:
        out["StringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        out["BinaryValue"] = value["BinaryValue"]
    return out


def parse_age(text: str) -> float:
    """30s, 15m, 2h, 1d (or plain seconds) -> seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = (text[:-1], text[-1]) if text[-1:] in units else (text, "s")
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"{text!r}: expected a duration such as 30s, 15m, 2h or 1d") from None
    if value < 0:
        raise ValueError(f"{text!r}: a duration cannot be negative")
    return value * units[unit]
