"""Metrics (EMF), receipts and skipped changes, as the Lambda and the worker log them."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from s3purge import logs, metrics
from s3purge.config import parse
from s3purge.entry import aws_lambda
from s3purge.entry.worker import Worker
from s3purge.model import Proof, Report
from s3purge.pipeline import Pipeline
from tests.conftest import serving
from tests.emulators.base import Emulator, Fault, Recorded, Reply
from tests.fixtures import s3_event, sqs_event
from tests.integration.test_lambda import Context, install

EMF = json.loads((Path(__file__).parents[1] / "unit" / "emf.schema.json").read_text())


def emf_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The log lines CloudWatch would turn into metrics, exactly as the JSON formatter writes them."""
    lines = [json.loads(logs.JsonFormatter().format(r)) for r in caplog.records if r.msg == "metrics"]
    for line in lines:
        assert_emf(line)
    return lines


def assert_emf(line: dict[str, Any]) -> None:
    """Valid per the EMF specification, including what a JSON schema cannot express."""
    jsonschema.validate(line, EMF)
    for directive in line["_aws"]["CloudWatchMetrics"]:
        for dimension in (d for group in directive["Dimensions"] for d in group):
            assert isinstance(line[dimension], str), f"dimension {dimension} must be a string member"
        for metric in directive["Metrics"]:
            value = line[metric["Name"]]
            values = value if isinstance(value, list) else [value]
            assert values and len(values) <= 100
            assert all(isinstance(v, int | float) and not isinstance(v, bool) for v in values), metric


def by_cdn(lines: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {line.get("CDN", "(service)"): line for line in lines}


class Picky(Emulator):
    """Refuses /private for good (403), accepts the rest."""

    def answer(self, request: Recorded) -> Reply:
        return Reply(403, b"no") if request.path.startswith("/private") else Reply(200, b"ok")


@pytest.fixture
def quiet_counter() -> Iterator[None]:
    metrics._counter.drain()  # counts from earlier tests in this process
    yield


def test_lambda_emits_emf_per_cdn_with_calls_retries_429s_and_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, logs: pytest.LogCaptureFixture, quiet_counter: None
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "purger")
    with serving(Picky()) as a, serving(Picky()) as b:
        install(tmp_path, monkeypatch, a, b)
        b.faults.append(Fault(status=429, headers={"Retry-After": "0"}))
        event = sqs_event(s3_event("a.html"), s3_event("private/x.html"), {"bad": "body"})
        now = int(time.time() * 1000)
        for age, record in zip((90_000, 5_000, 1_000), event["Records"], strict=True):
            record["attributes"]["SentTimestamp"] = str(now - age)
        aws_lambda.handler(event, Context())

    lines = by_cdn(emf_lines(logs))
    assert set(lines) == {"edge-a", "edge-b", "(service)"}
    a_line, b_line, service = lines["edge-a"], lines["edge-b"], lines["(service)"]
    assert a_line["Service"] == "purger" and a_line["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "s3purge"
    assert (a_line["Changes"], a_line["PurgeItems"], a_line["Calls"]) == (2, 2, 2)  # a 403 is not retried
    assert (a_line["Retries"], a_line["Throttled"], a_line["CallErrors4xx"], a_line["Failures"]) == (0, 0, 1, 1)
    assert a_line["FailuresPermanent"] == 1  # a 403 is dead-lettered at once, not retried
    assert (b_line["Calls"], b_line["Retries"], b_line["Throttled"], b_line["CallErrors4xx"]) == (3, 1, 1, 1)
    assert b_line["CallErrors5xx"] == b_line["CallErrorsNetwork"] == 0
    assert 90_000 <= service["OldestMessageAge"] < 90_000 + 60_000
    assert service["BadMessages"] == 1


def test_receipts_name_the_vendor_id_and_the_changes_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, logs: pytest.LogCaptureFixture, quiet_counter: None
) -> None:
    with serving(Emulator()) as a, serving(Emulator()) as b:
        install(tmp_path, monkeypatch, a, b)
        aws_lambda.handler(sqs_event(s3_event("a+b.html")), Context())

    receipts = [r for r in logs.records if r.msg == "purge receipt"]
    # "a b.html": one call per spelling (a%20b, a+b) on each CDN
    assert sorted(r.cdn for r in receipts) == ["edge-a", "edge-a", "edge-b", "edge-b"]  # type: ignore[attr-defined]
    for receipt in receipts:
        assert receipt.message_ids == ["msg-0"]  # type: ignore[attr-defined]
        assert receipt.objects == ["site/a b.html"]  # type: ignore[attr-defined]


def test_skipped_changes_are_logged_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, logs: pytest.LogCaptureFixture, quiet_counter: None
) -> None:
    with serving(Emulator()) as a, serving(Emulator()) as b:
        install(tmp_path, monkeypatch, a, b)
        aws_lambda.handler(sqs_event(s3_event("a.html", bucket="elsewhere")), Context())

    (skipped,) = [r for r in logs.records if r.msg == "change skipped"]
    assert skipped.reason == "no route for bucket 'elsewhere'; configured: site"  # type: ignore[attr-defined]
    assert skipped.message_id == "msg-0"  # type: ignore[attr-defined]
    assert by_cdn(emf_lines(logs))["(service)"]["Skipped"] == 1


def test_the_worker_emits_the_oldest_message_age_and_time_to_fresh(
    boto: Any, logs: pytest.LogCaptureFixture, quiet_counter: None
) -> None:
    queue = boto.sqs.create_queue(QueueName="events")["QueueUrl"]
    config = (
        'cdns:\n  edge: {{vendor: http, endpoints: ["{url}"]}}\nbuckets:\n  site:\n    - {{cdn: edge, hosts: [h]}}\n'
    )
    with serving(Emulator()) as cache:
        worker = Worker(Pipeline(parse(config.format(url=cache.url))), queue, wait_seconds=0)
        boto.sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(s3_event("a.html")))
        metrics.time_to_fresh("edge", 1.25)  # what verification reports while the batch runs
        worker.poll_once()

    lines = by_cdn(emf_lines(logs))
    assert lines["edge"]["TimeToFresh"] == [1250.0]
    assert lines["edge"]["Calls"] == 1
    assert lines["(service)"]["OldestMessageAge"] >= 0


def test_verification_proofs_count_stale_copies_per_cdn(logs: pytest.LogCaptureFixture, quiet_counter: None) -> None:
    config = parse(
        'cdns:\n  edge: {vendor: http, endpoints: ["http://127.0.0.1:9"]}\nbuckets:\n  s: [{cdn: edge, hosts: [h]}]\n'
    )
    proofs = [
        Proof("m1", "edge", "a.html", "fresh", purges=1, probes=2, time_to_fresh=0.42),
        Proof("m2", "edge", "b.html", "stale", purges=3, probes=6),
        Proof("m3", "edge", "c.html", "unverified", purges=1, probes=0, detail="probe budget spent"),
        Proof("m4", "edge", "d.html", "unverified", purges=1, probes=3, detail="no answer"),
    ]
    metrics.publish(Report(proofs=proofs), config)

    line = by_cdn(emf_lines(logs))["edge"]
    assert (line["Stale"], line["Unverified"]) == (1, 2)
    assert "TimeToFresh" not in line  # verification reports it through metrics.time_to_fresh(), once
