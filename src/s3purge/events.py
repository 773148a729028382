"""Peel every envelope S3 changes arrive in down to the same `Change` records.

Envelopes: S3 notifications (direct), SNS (Lambda record or SQS body, wrapped or raw
delivery), SQS records, EventBridge "Object Created"/"Object Deleted", and the s3purge
retry envelope. Keys are decoded exactly once: form-decoding (`+` is a space) then
percent-decoding as UTF-8, which is how S3 encodes them (and EventBridge on AWS too).
Pure: no I/O. Malformed input raises EventError naming the field that is wrong. This module
peels the envelopes and writes the retry envelope; s3records.py reads the S3 and EventBridge
records inside them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from s3purge.errors import EventError
from s3purge.model import Change, EventKind
from s3purge.s3records import as_object, eventbridge, join, need, opt_text, plain_s3, s3_record, text

RETRY_ENVELOPE = "s3purge"
"""Top-level key of the message s3purge enqueues to retry only the CDNs that failed."""
REASON_ATTRIBUTE = "s3purge-reason"
ORIGINAL_ID_ATTRIBUTE = "s3purge-message-id"
"""The message attributes of a dead letter s3purge sends: why it failed, and the failed message's id."""
FIRST_SENT_ATTRIBUTE = "s3purge-first-sent"
"""When the change first entered the queue (epoch ms: the first message's SentTimestamp), carried by
the retries and dead letters s3purge sends: their own SentTimestamp is when they were re-sent."""
REASON_CHARS = 1000
"""A dead letter's reason attribute is cut here (the body says what failed)."""


@dataclass(slots=True)
class Message:
    """One unit that is acknowledged or failed as a whole (an SQS message, or one event)."""

    id: str
    changes: list[Change] = field(default_factory=list)
    error: str | None = None
    queue: str | None = None
    """ARN of the SQS queue it was received from (where a narrowed retry goes)."""


def read_lambda_event(event: Any) -> tuple[bool, list[Message]]:
    """Split a Lambda invocation event into messages; True when it came from SQS."""
    if not isinstance(event, Mapping):
        raise EventError(f"event: expected a JSON object, got {type(event).__name__}")
    records = event.get("Records")
    if isinstance(records, list) and records and _is_sqs_record(records[0]):
        return True, [read_sqs_record(r, i) for i, r in enumerate(records)]
    return False, [read_message(event, "event")]


def read_sqs_record(record: Any, index: int) -> Message:
    """One SQS record (Lambda shape); a malformed body fails only this message."""
    if not isinstance(record, Mapping) or not isinstance(record.get("messageId"), str):
        return Message(id=f"Records[{index}]", error=f"Records[{index}].messageId: missing")
    message = read_message(record.get("body"), record["messageId"])
    arn = record.get("eventSourceARN")
    message.queue = arn if isinstance(arn, str) else None
    return message


def read_message(body: Any, message_id: str) -> Message:
    """Parse one message body (JSON text or object) into changes, capturing any error."""
    try:
        return Message(id=message_id, changes=list(changes_in(body, message_id)))
    except EventError as error:
        return Message(id=message_id, error=str(error))


def changes_in(doc: Any, source: str, where: str = "") -> Iterator[Change]:
    """Every change in `doc`, whatever envelope wraps it."""
    if isinstance(doc, str | bytes):
        plain = plain_s3(doc, source)
        if plain is not None:
            yield from plain
            return
    doc = as_object(doc, where or "body")
    if RETRY_ENVELOPE in doc:
        yield from _retry_envelope(doc[RETRY_ENVELOPE], source, join(where, RETRY_ENVELOPE))
    elif doc.get("Event") == "s3:TestEvent":
        return  # sent once when a notification is configured; nothing changed
    elif "Records" in doc:
        yield from _records(doc["Records"], source, join(where, "Records"))
    elif doc.get("Type") == "Notification" and "Message" in doc:  # SNS inside SQS
        yield from changes_in(doc["Message"], source, join(where, "Message"))
    elif doc.get("source") == "aws.s3" and "detail-type" in doc:
        yield from eventbridge(doc, source, where)
    else:
        raise EventError(
            f"{where or 'body'}: not an S3, SNS, SQS or EventBridge event "
            f"(keys: {', '.join(sorted(map(str, doc))[:8]) or 'none'})"
        )


def _records(records: Any, source: str, where: str) -> Iterator[Change]:
    if not isinstance(records, list):
        raise EventError(f"{where}: expected a list")
    for i, record in enumerate(records):
        at = f"{where}[{i}]"
        record = as_object(record, at)
        if "Sns" in record:
            sns = as_object(record["Sns"], f"{at}.Sns")
            yield from changes_in(need(sns, "Message", f"{at}.Sns"), source, f"{at}.Sns.Message")
        elif _is_sqs_record(record):
            yield from changes_in(record.get("body"), source, f"{at}.body")
        elif record.get("eventSource") == "aws:s3" or "s3" in record:
            change = s3_record(record, source, at)
            if change is not None:
                yield change
        else:
            raise EventError(f"{at}: not an S3, SNS or SQS record")


def _retry_envelope(body: Any, source: str, where: str) -> Iterator[Change]:
    body = as_object(body, where)
    changes = need(body, "changes", where)
    if not isinstance(changes, list):
        raise EventError(f"{where}.changes: expected a list")
    for i, item in enumerate(changes):
        at = f"{where}.changes[{i}]"
        item = as_object(item, at)
        event = text(item, "event", at)
        if event not in ("created", "removed"):
            raise EventError(f"{at}.event: expected 'created' or 'removed', got {event!r}")
        cdns = item.get("cdns")
        if cdns is not None and not (isinstance(cdns, list) and all(isinstance(c, str) for c in cdns)):
            raise EventError(f"{at}.cdns: expected a list of CDN names")
        yield Change(
            bucket=text(item, "bucket", at),
            key=text(item, "key", at),  # stored decoded
            event=cast(EventKind, event),
            source=source,
            etag=opt_text(item, "etag"),
            version_id=opt_text(item, "version_id"),
            sequencer=opt_text(item, "sequencer"),
            event_time=opt_text(item, "event_time"),
            cdns=frozenset(cdns) if cdns is not None else None,
            second_purge=item.get("second_purge") is True,
        )


def retry_envelope(changes: list[Change]) -> str:
    """The body of a message that retries exactly these changes on their `cdns`."""
    items = [
        {
            "bucket": c.bucket,
            "key": c.key,
            "event": c.event,
            "etag": c.etag,
            "version_id": c.version_id,
            "sequencer": c.sequencer,
            "event_time": c.event_time,
            "cdns": sorted(c.cdns) if c.cdns is not None else None,
            **({"second_purge": True} if c.second_purge else {}),
        }
        for c in changes
    ]
    return json.dumps({RETRY_ENVELOPE: {"version": 1, "changes": items}}, ensure_ascii=False)


# What SQS accepts in a message attribute (its documented character set); anything else in a
# reason (a NUL or lone surrogate from a vendor answer or a crafted key) would fail the send.
_NOT_SQS_TEXT = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def dead_letter_attributes(reason: str, original_id: str, first_sent: str | None = None) -> dict[str, str]:
    """The message attributes a dead letter carries (`s3purge redrive` lists them)."""
    text = _NOT_SQS_TEXT.sub("\ufffd", reason[:REASON_CHARS]) or "unknown"
    attributes = {REASON_ATTRIBUTE: text, ORIGINAL_ID_ATTRIBUTE: original_id}
    return attributes | first_sent_attribute(first_sent)


def first_sent_attribute(first_sent: str | None) -> dict[str, str]:
    """The `s3purge-first-sent` attribute, when that time is known."""
    return {FIRST_SENT_ATTRIBUTE: first_sent} if first_sent else {}


def first_sent(attribute: object, sent_timestamp: object) -> str | None:
    """When a received message's change first entered the queue: its `s3purge-first-sent`
    attribute (a re-sent message), else its own SentTimestamp; None when neither is epoch ms."""
    for stamp in (attribute, sent_timestamp):
        if isinstance(stamp, str) and stamp.isdigit():
            return stamp
    return None


def _is_sqs_record(record: Any) -> bool:
    return isinstance(record, Mapping) and record.get("eventSource") == "aws:sqs"
