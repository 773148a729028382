"""The Lambda handler: every envelope, partial batch failures, narrowed retries, cold start."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from s3purge.entry import aws_lambda, sqs
from s3purge.errors import ConfigError
from tests.conftest import serving
from tests.emulators.base import Emulator, Fault, Recorded, Reply
from tests.fixtures import eventbridge_event, s3_event, sns_envelope, sns_lambda_event, sqs_event, sqs_record

CONFIG = """\
cdns:
  edge-a: {{vendor: http, endpoints: ["{a}"], max_attempts: 2, timeout: 2}}
  edge-b: {{vendor: http, endpoints: ["{b}"], max_attempts: 2, timeout: 2}}
buckets:
  site:
    - {{cdn: edge-a, hosts: [www.example.test]}}
    - {{cdn: edge-b, hosts: [www.example.test]}}
"""


@dataclass
class Context:
    remaining_ms: int = 30_000
    aws_request_id: str = "req-1"
    function_name: str = "s3purge"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def caches() -> Iterator[tuple[Emulator, Emulator]]:
    with serving(Emulator()) as a, serving(Emulator()) as b:
        yield a, b


@pytest.fixture
def function(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caches: tuple[Emulator, Emulator]) -> Path:
    return install(tmp_path, monkeypatch, *caches)


def install(root: Path, monkeypatch: pytest.MonkeyPatch, a: Emulator, b: Emulator) -> Path:
    """A deployed function: its root holds multicdn.config.yml; the next call is a cold start."""
    (root / "multicdn.config.yml").write_text(CONFIG.format(a=a.url, b=b.url))
    monkeypatch.setenv("LAMBDA_TASK_ROOT", str(root))
    monkeypatch.delenv("config_file", raising=False)
    monkeypatch.setenv("debug", "false")
    monkeypatch.setattr(aws_lambda, "_pipeline", None)  # a fresh container
    sqs.forget()
    return root


def paths(cache: Emulator) -> list[str]:
    return [r.path for r in cache.requests]


@pytest.mark.parametrize(
    "event",
    [s3_event("a+b.html"), sns_lambda_event(s3_event("a+b.html")), eventbridge_event("a+b.html")],
    ids=["s3", "sns", "eventbridge"],
)
def test_direct_invocations_purge_every_cdn(function: Path, caches: tuple[Emulator, Emulator], event: Any) -> None:
    result = aws_lambda.handler(event, Context())
    assert result == {"changes": 1, "batches": 4}  # 2 spellings of "a b.html" on 2 CDNs
    assert sorted(paths(caches[0])) == sorted(paths(caches[1])) == ["/a%20b.html", "/a+b.html"]


def test_direct_invocation_failure_raises_for_lambdas_retry(function: Path, caches: tuple[Emulator, Emulator]) -> None:
    caches[1].faults.extend([Fault(status=503)] * 2)
    with pytest.raises(aws_lambda.PurgeFailed, match="edge-b: HTTP 503"):
        aws_lambda.handler(s3_event("a.html"), Context())


def queue_with_dlq(boto: Any, name: str = "s3purge-events") -> tuple[str, str]:
    """The source queue (redriving to a dead-letter queue after 5 receives) and its DLQ."""
    dlq = boto.sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = boto.sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"})
    queue = boto.sqs.create_queue(QueueName=name, Attributes={"RedrivePolicy": policy})["QueueUrl"]
    return queue, dlq


def dead_letters(boto: Any, dlq: str) -> dict[str, tuple[str, str]]:
    """Original message id -> (body, reason) of every message in the dead-letter queue."""
    found = boto.sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
    letters = {}
    for message in found.get("Messages", []):
        attributes = message["MessageAttributes"]
        letters[attributes["s3purge-message-id"]["StringValue"]] = (
            message["Body"],
            attributes["s3purge-reason"]["StringValue"],
        )
    return letters


def test_a_malformed_sqs_message_goes_to_the_dlq_at_once(
    function: Path, caches: tuple[Emulator, Emulator], boto: Any
) -> None:
    _, dlq = queue_with_dlq(boto)
    event = sqs_event(s3_event("one.html"), "{not json", sns_envelope(s3_event("two.html")))
    assert aws_lambda.handler(event, Context()) == {"batchItemFailures": []}  # none is redelivered for nothing
    assert sorted(paths(caches[0])) == ["/one.html", "/two.html"]
    ((body, reason),) = dead_letters(boto, dlq).values()
    assert body == "{not json" and "not valid JSON" in reason


def test_a_dead_letter_carries_when_its_change_first_entered_the_queue(
    function: Path, caches: tuple[Emulator, Emulator], boto: Any
) -> None:
    _, dlq = queue_with_dlq(boto)
    event = sqs_event("{not json", "{nor this")
    carried = {"stringValue": "1700000000000", "stringListValues": [], "binaryListValues": [], "dataType": "String"}
    event["Records"][1]["messageAttributes"] = {"s3purge-first-sent": carried}  # a message s3purge re-sent

    aws_lambda.handler(event, Context())

    found = boto.sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, MessageAttributeNames=["All"])["Messages"]
    first_sent = {
        m["MessageAttributes"]["s3purge-message-id"]["StringValue"]: m["MessageAttributes"]["s3purge-first-sent"][
            "StringValue"
        ]
        for m in found
    }
    assert first_sent == {"msg-0": "1764158400000", "msg-1": "1700000000000"}  # its SentTimestamp, else what it carried


def test_without_a_dlq_a_malformed_message_is_logged_and_acknowledged(
    function: Path, caches: tuple[Emulator, Emulator], boto: Any, logs: pytest.LogCaptureFixture
) -> None:
    boto.sqs.create_queue(QueueName="s3purge-events")
    event = sqs_event(s3_event("one.html"), "{not json")
    assert aws_lambda.handler(event, Context()) == {"batchItemFailures": []}
    (line,) = [r for r in logs.records if r.getMessage().startswith("purge failed permanently")]
    assert line.levelno == logging.ERROR and "no dead-letter queue" in line.getMessage()
    assert line.message_id == "msg-1" and "not valid JSON" in line.reason  # type: ignore[attr-defined]


class Broken(Emulator):
    """Answers 500 for one path, whatever the attempt."""

    def answer(self, request: Recorded) -> Reply:
        return Reply(500) if request.path == "/bad.html" else Reply(200)


def test_direct_invocations_do_not_raise_for_permanent_failures(
    function: Path, caches: tuple[Emulator, Emulator], logs: pytest.LogCaptureFixture
) -> None:
    result = aws_lambda.handler(s3_event("a/../../admin.html", "fine.html"), Context())  # Lambda would only repeat it
    assert result["changes"] == 2
    assert paths(caches[0]) == paths(caches[1]) == ["/fine.html"]
    (line,) = [r for r in logs.records if r.getMessage() == "purge failed permanently"]
    assert line.levelno == logging.ERROR and "'..' segment" in line.reason  # type: ignore[attr-defined]
    assert aws_lambda.handler([1, 2], Context())["changes"] == 0  # not even an event: logged, not raised


def test_sqs_message_failing_on_every_cdn_returns_to_the_queue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with serving(Broken()) as a, serving(Broken()) as b:
        install(tmp_path, monkeypatch, a, b)
        event = sqs_event(s3_event("bad.html"), s3_event("good.html"))
        assert aws_lambda.handler(event, Context()) == {"batchItemFailures": [{"itemIdentifier": "msg-0"}]}


def test_on_its_last_delivery_a_failing_message_goes_to_the_dlq_with_its_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, boto: Any
) -> None:
    _, dlq = queue_with_dlq(boto)  # maxReceiveCount 5
    with serving(Broken()) as a, serving(Broken()) as b:
        install(tmp_path, monkeypatch, a, b)
        event = sqs_event(s3_event("bad.html"), s3_event("bad.html"))
        event["Records"][1]["attributes"]["ApproximateReceiveCount"] = "5"  # SQS would move it, reason lost
        assert aws_lambda.handler(event, Context()) == {"batchItemFailures": [{"itemIdentifier": "msg-0"}]}
    ((body, reason),) = dead_letters(boto, dlq).values()
    assert body == event["Records"][1]["body"]  # as received, as SQS's own move keeps it
    assert reason == "edge-a: HTTP 500; edge-b: HTTP 500"


def test_partial_failure_retries_only_the_failed_cdn(
    function: Path, caches: tuple[Emulator, Emulator], boto: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("S3PURGE_RETRY_DELAY", "0")  # receive the retry now instead of in 30 s
    queue = boto.sqs.create_queue(QueueName="s3purge-events")["QueueUrl"]
    caches[1].faults.extend([Fault(status=503)] * 2)  # edge-b fails both attempts
    result = aws_lambda.handler(sqs_event(s3_event("page.html")), Context())
    assert result == {"batchItemFailures": []}  # acknowledged: the retry is queued instead
    assert paths(caches[0]) == ["/page.html"] and len(caches[1].requests) == 2

    retry = boto.sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=0, MaxNumberOfMessages=10)["Messages"]
    assert len(retry) == 1
    assert json.loads(retry[0]["Body"])["s3purge"]["changes"][0]["cdns"] == ["edge-b"]
    result = aws_lambda.handler({"Records": [sqs_record(retry[0]["Body"], "retry-1")]}, Context())
    assert result == {"batchItemFailures": []}
    assert paths(caches[0]) == ["/page.html"]  # edge-a was not purged again
    assert paths(caches[1]) == ["/page.html"] * 3


def test_the_sqs_client_and_queue_lookups_serve_every_invocation_of_a_container(
    function: Path, caches: tuple[Emulator, Emulator], boto: Any
) -> None:
    queue_with_dlq(boto)
    calls: list[str] = []
    sqs.sqs_client().meta.events.register("before-call.sqs.*", lambda model, **_: calls.append(model.name))
    for n in range(3):  # partial failures (a narrowed retry) and poison (a dead letter), invocation after invocation
        caches[1].faults.extend([Fault(status=503)] * 2)
        result = aws_lambda.handler(sqs_event(s3_event(f"p{n}.html"), "{not json"), Context())
        assert result == {"batchItemFailures": []}
    assert calls.count("GetQueueUrl") == calls.count("GetQueueAttributes") == 1  # asked once per process
    assert calls.count("SendMessageBatch") == 6  # every send went through the one client


def test_moto_generated_notifications(function: Path, caches: tuple[Emulator, Emulator], boto: Any) -> None:
    queue = boto.sqs.create_queue(QueueName="s3purge-events")["QueueUrl"]
    arn = boto.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    boto.s3.create_bucket(Bucket="site")
    boto.s3.put_bucket_notification_configuration(
        Bucket="site",
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]}]
        },
    )
    boto.s3.put_object(Bucket="site", Key="dir/My File+ünï~(1).html", Body=b"x")
    boto.s3.delete_object(Bucket="site", Key="dir/My File+ünï~(1).html")
    received = boto.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    event = {"Records": [sqs_record(m["Body"], m["MessageId"]) for m in received]}
    assert len(received) == 3  # the s3:TestEvent, the put and the delete
    assert aws_lambda.handler(event, Context()) == {"batchItemFailures": []}
    assert sorted(paths(caches[0])) == [  # put and delete: one purge of each spelling
        "/dir/My%20File%2B%C3%BCn%C3%AF~%281%29.html",
        "/dir/My%20File%2B%C3%BCn%C3%AF~(1).html",
        "/dir/My+File%2B%C3%BCn%C3%AF~%281%29.html",
    ]


def test_config_file_and_debug_come_from_the_environment(
    function: Path, caches: tuple[Emulator, Emulator], monkeypatch: pytest.MonkeyPatch, logs: pytest.LogCaptureFixture
) -> None:
    (function / "conf").mkdir()
    (function / "multicdn.config.yml").rename(function / "conf" / "other.yml")
    monkeypatch.setenv("config_file", "conf/other.yml")
    monkeypatch.setenv("debug", "true")
    aws_lambda.handler(s3_event("a.html"), Context())
    assert [r.levelno for r in logs.records if r.getMessage() == "plan"] == [logging.DEBUG]
    logs.clear()
    monkeypatch.setattr(aws_lambda, "_pipeline", None)
    monkeypatch.setenv("debug", "false")
    aws_lambda.handler(s3_event("a.html"), Context())
    assert [r for r in logs.records if r.getMessage() == "plan"] == []  # "false" means off
    assert len(caches[0].requests) == 2


def test_config_is_read_once_per_cold_start(function: Path, caches: tuple[Emulator, Emulator]) -> None:
    aws_lambda.handler(s3_event("a.html"), Context())
    (function / "multicdn.config.yml").write_text("broken: [")
    aws_lambda.handler(s3_event("b.html"), Context())  # warm: the loaded config is reused
    assert paths(caches[0]) == ["/a.html", "/b.html"]


def test_a_bad_config_fails_the_cold_start_loudly(function: Path) -> None:
    (function / "multicdn.config.yml").write_text("cdns: {}\nbuckets: {}\n")
    with pytest.raises(ConfigError, match=r"multicdn\.config\.yml: 2 problems"):
        aws_lambda.handler(s3_event("a.html"), Context())


@pytest.mark.parametrize("raw", [False, True], ids=["sns-envelope", "raw-delivery"])
def test_moto_generated_sns_to_sqs_notifications(
    function: Path, caches: tuple[Emulator, Emulator], boto: Any, raw: bool
) -> None:
    queue = boto.sqs.create_queue(QueueName="s3purge-events")["QueueUrl"]
    queue_arn = boto.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    topic = boto.sns.create_topic(Name="s3-events")["TopicArn"]
    attributes = {"RawMessageDelivery": "true"} if raw else {}
    boto.sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes=attributes)
    boto.s3.create_bucket(Bucket="site")
    boto.s3.put_bucket_notification_configuration(
        Bucket="site",
        NotificationConfiguration={"TopicConfigurations": [{"TopicArn": topic, "Events": ["s3:ObjectCreated:*"]}]},
    )
    boto.s3.put_object(Bucket="site", Key="news/Spring Sale+50%.html", Body=b"x")
    received = boto.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    assert ('"Type": "Notification"' in received[-1]["Body"]) is not raw
    event = {"Records": [sqs_record(m["Body"], m["MessageId"]) for m in received]}
    assert aws_lambda.handler(event, Context()) == {"batchItemFailures": []}
    assert sorted(paths(caches[1])) == ["/news/Spring%20Sale%2B50%25.html", "/news/Spring+Sale%2B50%25.html"]


def test_a_cold_start_purging_over_http_loads_no_ca_bundle(
    function: Path, caches: tuple[Emulator, Emulator], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Certificates cost ~40 ms of every cold start; plain http, with no route verifying, needs none."""
    import ssl

    loaded: list[object] = []
    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", lambda *args, **kw: loaded.append(args))
    aws_lambda.handler(s3_event("a.html"), Context())
    assert paths(caches[0]) == ["/a.html"]
    assert loaded == []


def test_a_shielded_cdn_schedules_its_second_purge(
    function: Path, caches: tuple[Emulator, Emulator], logs: pytest.LogCaptureFixture
) -> None:
    """Second purges come from the verification step, which the pipeline loads only for configs that need it."""
    text = (function / "multicdn.config.yml").read_text()
    (function / "multicdn.config.yml").write_text(text.replace("max_attempts: 2, timeout: 2}", "second_purge: 5}", 1))
    aws_lambda.handler(s3_event("a.html"), Context())  # direct: no queue to delay the second purge on
    assert paths(caches[0]) == paths(caches[1]) == ["/a.html"]
    (skipped,) = [r for r in logs.records if r.getMessage() == "second purge skipped: needs a standard SQS queue"]
    assert skipped.key == "a.html"
