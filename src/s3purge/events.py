"""Peel every envelope S3 changes arrive in down to the same `Change` records.

Envelopes: S3 notifications (direct), SNS (Lambda record or SQS body, wrapped or raw
delivery), SQS records, EventBridge "Object Created"/"Object Deleted", and the s3purge
retry envelope. Keys are decoded exactly once: form-decoding (`+` is a space) then
percent-decoding as UTF-8, which is how S3 encodes them (and EventBridge on AWS too).
Pure: no I/O. Malformed input raises EventError naming the field that is wrong.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, cast
from urllib.parse import unquote_plus

import msgspec
from msgspec import Meta

from s3purge.errors import EventError
from s3purge.model import Change, EventKind

RETRY_ENVELOPE = "s3purge"
"""Top-level key of the message s3purge enqueues to retry only the CDNs that failed."""
REASON_ATTRIBUTE = "s3purge-reason"
ORIGINAL_ID_ATTRIBUTE = "s3purge-message-id"
"""The message attributes of a dead letter s3purge sends: why it failed, and the failed message's id."""
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
        plain = _plain_s3(doc, source)
        if plain is not None:
            yield from plain
            return
    doc = _as_object(doc, where or "body")
    if RETRY_ENVELOPE in doc:
        yield from _retry_envelope(doc[RETRY_ENVELOPE], source, _join(where, RETRY_ENVELOPE))
    elif doc.get("Event") == "s3:TestEvent":
        return  # sent once when a notification is configured; nothing changed
    elif "Records" in doc:
        yield from _records(doc["Records"], source, _join(where, "Records"))
    elif doc.get("Type") == "Notification" and "Message" in doc:  # SNS inside SQS
        yield from changes_in(doc["Message"], source, _join(where, "Message"))
    elif doc.get("source") == "aws.s3" and "detail-type" in doc:
        yield from _eventbridge(doc, source, where)
    else:
        raise EventError(
            f"{where or 'body'}: not an S3, SNS, SQS or EventBridge event "
            f"(keys: {', '.join(sorted(map(str, doc))[:8]) or 'none'})"
        )


class _Object(msgspec.Struct, gc=False):
    key: Annotated[str, Meta(min_length=1)]
    eTag: str | None = None
    versionId: str | None = None
    sequencer: str | None = None


class _Bucket(msgspec.Struct, gc=False):
    name: Annotated[str, Meta(min_length=1)]


class _Entity(msgspec.Struct, gc=False):
    bucket: _Bucket
    object: _Object


class _Record(msgspec.Struct, gc=False):
    eventName: Annotated[str, Meta(min_length=1)]
    s3: _Entity
    eventSource: str = "aws:s3"
    eventTime: str | None = None


class _Notification(msgspec.Struct, forbid_unknown_fields=True):
    Records: list[_Record]


_NOTIFICATION = msgspec.json.Decoder(_Notification)


def _plain_s3(body: str | bytes, source: str) -> list[Change] | None:
    """The changes of a body that is exactly an S3 notification, decoded in one typed pass (the
    common case, and the hot path); None for anything else, which the general reader handles."""
    try:
        records = _NOTIFICATION.decode(body).Records
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    if any(r.eventSource != "aws:s3" for r in records):
        return None
    changes = []
    for record in records:
        kind = _s3_event_kind(record.eventName)
        if kind is not None:
            obj = record.s3.object
            changes.append(
                Change(
                    bucket=record.s3.bucket.name,
                    key=decode_key(obj.key),
                    event=kind,
                    source=source,
                    etag=obj.eTag or None,
                    version_id=obj.versionId or None,
                    sequencer=obj.sequencer or None,
                    event_time=record.eventTime or None,
                )
            )
    return changes


def _records(records: Any, source: str, where: str) -> Iterator[Change]:
    if not isinstance(records, list):
        raise EventError(f"{where}: expected a list")
    for i, record in enumerate(records):
        at = f"{where}[{i}]"
        record = _as_object(record, at)
        if "Sns" in record:
            sns = _as_object(record["Sns"], f"{at}.Sns")
            yield from changes_in(_need(sns, "Message", f"{at}.Sns"), source, f"{at}.Sns.Message")
        elif _is_sqs_record(record):
            yield from changes_in(record.get("body"), source, f"{at}.body")
        elif record.get("eventSource") == "aws:s3" or "s3" in record:
            change = _s3_record(record, source, at)
            if change is not None:
                yield change
        else:
            raise EventError(f"{at}: not an S3, SNS or SQS record")


def _s3_record(record: Mapping[str, Any], source: str, at: str) -> Change | None:
    kind = _s3_event_kind(_str(record, "eventName", at))
    if kind is None:
        return None  # tagging, ACL, restore, replication: the content did not change
    s3 = _as_object(_need(record, "s3", at), f"{at}.s3")
    bucket = _as_object(_need(s3, "bucket", f"{at}.s3"), f"{at}.s3.bucket")
    obj = _as_object(_need(s3, "object", f"{at}.s3"), f"{at}.s3.object")
    return Change(
        bucket=_str(bucket, "name", f"{at}.s3.bucket"),
        key=decode_key(_str(obj, "key", f"{at}.s3.object")),
        event=kind,
        source=source,
        etag=_opt_str(obj, "eTag"),
        version_id=_opt_str(obj, "versionId"),
        sequencer=_opt_str(obj, "sequencer"),
        event_time=_opt_str(record, "eventTime"),
    )


def _s3_event_kind(name: str) -> EventKind | None:
    if name.startswith("ObjectCreated:"):
        return "created"
    if name.startswith(("ObjectRemoved:", "LifecycleExpiration:")):
        return "removed"
    return None


_EVENTBRIDGE_KINDS: dict[str, EventKind] = {
    "Object Created": "created",
    "Object Deleted": "removed",
}


def _eventbridge(doc: Mapping[str, Any], source: str, where: str) -> Iterator[Change]:
    kind = _EVENTBRIDGE_KINDS.get(_str(doc, "detail-type", where))
    if kind is None:
        return  # restore, tagging, storage class: the content did not change
    at = _join(where, "detail")
    detail = _as_object(_need(doc, "detail", where), at)
    bucket = _as_object(_need(detail, "bucket", at), f"{at}.bucket")
    obj = _as_object(_need(detail, "object", at), f"{at}.object")
    yield Change(
        bucket=_str(bucket, "name", f"{at}.bucket"),
        key=decode_key(_str(obj, "key", f"{at}.object")),
        event=kind,
        source=source,
        etag=_opt_str(obj, "etag"),
        version_id=_opt_str(obj, "version-id"),
        sequencer=_opt_str(obj, "sequencer"),
        event_time=_opt_str(doc, "time"),
    )


def _retry_envelope(body: Any, source: str, where: str) -> Iterator[Change]:
    body = _as_object(body, where)
    changes = _need(body, "changes", where)
    if not isinstance(changes, list):
        raise EventError(f"{where}.changes: expected a list")
    for i, item in enumerate(changes):
        at = f"{where}.changes[{i}]"
        item = _as_object(item, at)
        event = _str(item, "event", at)
        if event not in ("created", "removed"):
            raise EventError(f"{at}.event: expected 'created' or 'removed', got {event!r}")
        cdns = item.get("cdns")
        if cdns is not None and not (isinstance(cdns, list) and all(isinstance(c, str) for c in cdns)):
            raise EventError(f"{at}.cdns: expected a list of CDN names")
        yield Change(
            bucket=_str(item, "bucket", at),
            key=_str(item, "key", at),  # stored decoded
            event=cast(EventKind, event),
            source=source,
            etag=_opt_str(item, "etag"),
            version_id=_opt_str(item, "version_id"),
            sequencer=_opt_str(item, "sequencer"),
            event_time=_opt_str(item, "event_time"),
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


def dead_letter_attributes(reason: str, original_id: str) -> dict[str, str]:
    """The message attributes a dead letter carries (`s3purge redrive` lists them)."""
    return {REASON_ATTRIBUTE: reason[:REASON_CHARS] or "unknown", ORIGINAL_ID_ATTRIBUTE: original_id}


def decode_key(raw: str) -> str:
    """S3 event key -> object key: `+` is a space, then %XX as UTF-8 (strictly)."""
    try:
        return unquote_plus(raw, encoding="utf-8", errors="strict")
    except UnicodeDecodeError as error:
        raise EventError(f"object key {raw[:80]!r}: percent-escapes are not UTF-8") from error


def _is_sqs_record(record: Any) -> bool:
    return isinstance(record, Mapping) and record.get("eventSource") == "aws:sqs"


def _as_object(doc: Any, where: str) -> Mapping[str, Any]:
    if isinstance(doc, str | bytes):
        try:
            doc = json.loads(doc)
        except ValueError as error:
            raise EventError(f"{where}: not valid JSON ({error})") from None
    if not isinstance(doc, Mapping):
        raise EventError(f"{where}: expected a JSON object, got {type(doc).__name__}")
    return doc


def _need(doc: Mapping[str, Any], name: str, where: str) -> Any:
    if name not in doc:
        raise EventError(f"{_join(where, name)}: missing")
    return doc[name]


def _str(doc: Mapping[str, Any], name: str, where: str) -> str:
    value = _need(doc, name, where)
    if not isinstance(value, str) or not value:
        raise EventError(f"{_join(where, name)}: expected a non-empty string")
    return value


def _opt_str(doc: Mapping[str, Any], name: str) -> str | None:
    value = doc.get(name)
    return value if isinstance(value, str) and value else None


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name
