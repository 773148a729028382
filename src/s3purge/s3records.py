"""One changed object as AWS writes it, read into a `Change`: an S3 notification record (a whole
plain notification in one typed pass, the hot path; any record on its own) or an EventBridge
"Object Created"/"Object Deleted" event. The key is decoded exactly once. Pure.

Also the readers of a JSON event's fields that envelopes share: each error names the field.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Annotated, Any
from urllib.parse import unquote_plus

import msgspec
from msgspec import Meta

from s3purge.errors import EventError
from s3purge.model import Change, EventKind


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


def plain_s3(body: str | bytes, source: str) -> list[Change] | None:
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


def s3_record(record: Mapping[str, Any], source: str, at: str) -> Change | None:
    kind = _s3_event_kind(text(record, "eventName", at))
    if kind is None:
        return None  # tagging, ACL, restore, replication: the content did not change
    s3 = as_object(need(record, "s3", at), f"{at}.s3")
    bucket = as_object(need(s3, "bucket", f"{at}.s3"), f"{at}.s3.bucket")
    obj = as_object(need(s3, "object", f"{at}.s3"), f"{at}.s3.object")
    return Change(
        bucket=text(bucket, "name", f"{at}.s3.bucket"),
        key=decode_key(text(obj, "key", f"{at}.s3.object")),
        event=kind,
        source=source,
        etag=opt_text(obj, "eTag"),
        version_id=opt_text(obj, "versionId"),
        sequencer=opt_text(obj, "sequencer"),
        event_time=opt_text(record, "eventTime"),
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


def eventbridge(doc: Mapping[str, Any], source: str, where: str) -> Iterator[Change]:
    kind = _EVENTBRIDGE_KINDS.get(text(doc, "detail-type", where))
    if kind is None:
        return  # restore, tagging, storage class: the content did not change
    at = join(where, "detail")
    detail = as_object(need(doc, "detail", where), at)
    bucket = as_object(need(detail, "bucket", at), f"{at}.bucket")
    obj = as_object(need(detail, "object", at), f"{at}.object")
    yield Change(
        bucket=text(bucket, "name", f"{at}.bucket"),
        key=decode_key(text(obj, "key", f"{at}.object")),
        event=kind,
        source=source,
        etag=opt_text(obj, "etag"),
        version_id=opt_text(obj, "version-id"),
        sequencer=opt_text(obj, "sequencer"),
        event_time=opt_text(doc, "time"),
    )


def decode_key(raw: str) -> str:
    """S3 event key -> object key: `+` is a space, then %XX as UTF-8 (strictly)."""
    try:
        return unquote_plus(raw, encoding="utf-8", errors="strict")
    except UnicodeDecodeError as error:
        raise EventError(f"object key {raw[:80]!r}: percent-escapes are not UTF-8") from error


def as_object(doc: Any, where: str) -> Mapping[str, Any]:
    if isinstance(doc, str | bytes):
        try:
            doc = json.loads(doc)
        except ValueError as error:
            raise EventError(f"{where}: not valid JSON ({error})") from None
    if not isinstance(doc, Mapping):
        raise EventError(f"{where}: expected a JSON object, got {type(doc).__name__}")
    return doc


def need(doc: Mapping[str, Any], name: str, where: str) -> Any:
    if name not in doc:
        raise EventError(f"{join(where, name)}: missing")
    return doc[name]


def text(doc: Mapping[str, Any], name: str, where: str) -> str:
    value = need(doc, name, where)
    if not isinstance(value, str) or not value:
        raise EventError(f"{join(where, name)}: expected a non-empty string")
    return value


def opt_text(doc: Mapping[str, Any], name: str) -> str | None:
    value = doc.get(name)
    return value if isinstance(value, str) and value else None


def join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name
