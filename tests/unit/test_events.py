"""Every envelope peels down to the same Change; keys are decoded exactly once."""

from __future__ import annotations

import json
from urllib.parse import quote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s3purge import s3records
from s3purge.events import (
    REASON_ATTRIBUTE,
    REASON_CHARS,
    changes_in,
    dead_letter_attributes,
    read_lambda_event,
    read_message,
    retry_envelope,
)
from s3purge.model import Change
from tests.fixtures import (
    eventbridge_event,
    s3_event,
    s3_test_event,
    sns_envelope,
    sns_lambda_event,
    sqs_event,
)

RAW = "dir/My+File%2B%C3%BCn%C3%AF%7E%281%29.html"  # how AWS encodes the key below
KEY = "dir/My File+ünï~(1).html"


def only(changes: list[Change]) -> Change:
    assert len(changes) == 1, changes
    return changes[0]


@pytest.mark.parametrize(
    ("name", "event"),
    [
        ("s3 direct", s3_event(RAW)),
        ("sns -> lambda", sns_lambda_event(s3_event(RAW))),
        ("eventbridge", eventbridge_event(RAW)),
    ],
)
def test_direct_envelopes_give_the_same_change(name: str, event: dict[str, object]) -> None:
    from_sqs, messages = read_lambda_event(event)
    assert not from_sqs
    change = only(messages[0].changes)
    assert (change.bucket, change.key, change.event) == ("site", KEY, "created")
    assert change.etag and change.version_id and change.sequencer and change.event_time


@pytest.mark.parametrize(
    "body",
    [
        s3_event(RAW),  # S3 -> SQS
        sns_envelope(s3_event(RAW)),  # S3 -> SNS -> SQS
        json.dumps(s3_event(RAW)),  # S3 -> SNS -> SQS, raw message delivery: the body is the S3 event
        eventbridge_event(RAW),  # EventBridge rule -> SQS
    ],
    ids=["s3", "sns-wrapped", "sns-raw", "eventbridge"],
)
def test_sqs_bodies_give_the_same_change(body: object) -> None:
    from_sqs, messages = read_lambda_event(sqs_event(body))
    assert from_sqs
    assert messages[0].id == "msg-0"
    assert messages[0].queue == "arn:aws:sqs:us-east-1:123456789012:s3purge-events"
    change = only(messages[0].changes)
    assert (change.key, change.source) == (KEY, "msg-0")


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("ObjectCreated:Put", "created"),
        ("ObjectCreated:CompleteMultipartUpload", "created"),
        ("ObjectCreated:Copy", "created"),
        ("ObjectRemoved:Delete", "removed"),
        ("ObjectRemoved:DeleteMarkerCreated", "removed"),
        ("LifecycleExpiration:Delete", "removed"),
    ],
)
def test_event_names(name: str, kind: str) -> None:
    assert only(list(changes_in(s3_event("a.html", name=name), "m"))).event == kind


@pytest.mark.parametrize(
    "name", ["ObjectTagging:Put", "ObjectAcl:Put", "ObjectRestore:Completed", "Replication:OperationFailedReplication"]
)
def test_events_that_do_not_change_content_are_ignored(name: str) -> None:
    assert list(changes_in(s3_event("a.html", name=name), "m")) == []


def test_eventbridge_deleted_and_other_detail_types() -> None:
    assert only(list(changes_in(eventbridge_event("a", "Object Deleted"), "m"))).event == "removed"
    assert list(changes_in(eventbridge_event("a", "Object Restore Completed"), "m")) == []


@pytest.mark.parametrize("wrap", [lambda e: e, sns_envelope], ids=["sqs", "sns-sqs"])
def test_s3_test_event_is_ignored(wrap: object) -> None:
    message = read_message(json.dumps(wrap(s3_test_event())), "m")  # type: ignore[operator]
    assert message.error is None and message.changes == []


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("not json", "body: not valid JSON"),
        ("[1, 2]", "body: expected a JSON object, got list"),
        ({"hello": "world"}, "body: not an S3, SNS, SQS or EventBridge event"),
        ({"Records": "x"}, "Records: expected a list"),
        ({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put"}]}, "Records[0].s3: missing"),
        (s3_event(""), "Records[0].s3.object.key: expected a non-empty string"),
        (
            {
                "Records": [
                    {
                        "eventSource": "aws:s3",
                        "eventName": "ObjectCreated:Put",
                        "s3": {"bucket": {}, "object": {"key": "a"}},
                    }
                ]
            },
            "Records[0].s3.bucket.name: missing",
        ),
        (sns_envelope({"nope": 1}), "Message: not an S3"),
        (s3_event("%FF%FE"), "percent-escapes are not UTF-8"),
    ],
)
def test_malformed_bodies_name_what_is_wrong(body: object, expected: str) -> None:
    text = body if isinstance(body, str) else json.dumps(body)
    message = read_message(text, "m-1")
    assert message.changes == []
    assert message.error is not None
    assert expected in message.error


def test_in_sqs_mode_only_the_malformed_message_fails() -> None:
    _, messages = read_lambda_event(sqs_event(s3_event("good.html"), "garbage", s3_event("also+good.html")))
    assert [m.error is None for m in messages] == [True, False, True]
    assert [c.key for m in messages for c in m.changes] == ["good.html", "also good.html"]


def test_lambda_event_that_is_not_an_object() -> None:
    from s3purge.errors import EventError

    with pytest.raises(EventError, match="expected a JSON object"):
        read_lambda_event(["x"])


def test_moto_shaped_keys_decode_too() -> None:
    # moto encodes '/' as %2F (quote_plus); AWS leaves it: both decode to the same key
    moto_raw = quote_plus(KEY)
    assert s3records.decode_key(moto_raw) == s3records.decode_key(RAW) == KEY


@given(st.text(min_size=1, max_size=300).filter(lambda k: "\x00" not in k))
def test_decode_inverts_s3_encoding(key: str) -> None:
    assert s3records.decode_key(quote_plus(key, safe="/")) == key


def test_a_1024_byte_key() -> None:
    key = "d/" + "é" * 511  # 2 + 1022 bytes of UTF-8
    assert len(key.encode()) == 1024
    assert only(list(changes_in(s3_event(quote_plus(key, safe="/")), "m"))).key == key


def test_retry_envelope_round_trips_with_its_cdns() -> None:
    change = Change("site", KEY, "removed", "m", etag="e", sequencer="s", cdns=frozenset({"b", "a"}))
    again = only(list(changes_in(retry_envelope([change]), "m2")))
    assert again == Change("site", KEY, "removed", "m2", etag="e", sequencer="s", cdns=frozenset({"a", "b"}))


# --- the typed fast path for plain S3 notifications agrees with the general reader -----------

OPTIONAL = st.one_of(st.none(), st.just(""), st.text(max_size=12), st.integers(0, 9))
FIELD = st.one_of(st.just("<absent>"), OPTIONAL)
RECORD = st.fixed_dictionaries(
    {
        "eventName": st.sampled_from(
            ["ObjectCreated:Put", "ObjectRemoved:Delete", "LifecycleExpiration:Delete", "ObjectTagging:Put", "", 7]
        ),
        "eventSource": st.sampled_from(["<absent>", "aws:s3", "aws:sqs"]),
        "eventTime": FIELD,
        "bucket": st.one_of(st.text(max_size=8), st.just(3)),
        "key": st.one_of(st.text(max_size=20).map(quote_plus), st.text(max_size=20), st.just("%C3%28")),
        "eTag": FIELD,
        "versionId": FIELD,
        "sequencer": FIELD,
    }
)


def notification(records: list[dict[str, object]], extra: dict[str, object]) -> str:
    shaped = []
    for r in records:
        obj = {"key": r["key"], **{k: r[k] for k in ("eTag", "versionId", "sequencer") if r[k] != "<absent>"}}
        record = {"eventName": r["eventName"], "s3": {"bucket": {"name": r["bucket"]}, "object": obj}}
        record.update({k: r[k] for k in ("eventSource", "eventTime") if r[k] != "<absent>"})
        shaped.append(record)
    return json.dumps({"Records": shaped, **extra})


@settings(max_examples=300, deadline=None)
@given(st.lists(RECORD, max_size=3), st.sampled_from([{}, {"s3purge": {"changes": []}}, {"Event": "x"}]))
def test_plain_notifications_read_the_same_on_the_fast_path(
    records: list[dict[str, object]], extra: dict[str, object]
) -> None:
    body = notification(records, extra)
    fast = read_message(body, "m")  # a str: the typed fast path, falling back when the shape differs
    general = read_message(json.loads(body), "m")  # already parsed: always the general reader
    assert fast == general


def test_a_plain_notification_takes_the_fast_path() -> None:
    body = json.dumps(s3_event(RAW))
    assert s3records.plain_s3(body, "m") == [only(list(changes_in(json.loads(body), "m")))]
    assert s3records.plain_s3(json.dumps(sns_envelope(s3_event(RAW))), "m") is None  # other envelopes: general


@settings(deadline=None)
@given(st.text(max_size=1_500), st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x1F), max_size=5))
def test_a_dead_letters_reason_is_always_text_sqs_accepts(reason: str, controls: str) -> None:
    # The reason comes from vendor answers and keys: NUL, controls or a lone surrogate in it
    # would fail the SendMessage, and the dead letter would never be written.
    text = dead_letter_attributes(controls + reason + "\ud800", "m1")[REASON_ATTRIBUTE]
    assert 0 < len(text) <= REASON_CHARS
    assert all(
        c in "\t\n\r" or 0x20 <= ord(c) <= 0xD7FF or 0xE000 <= ord(c) <= 0xFFFD or ord(c) >= 0x10000 for c in text
    )
    text.encode("utf-8")  # no lone surrogate left
