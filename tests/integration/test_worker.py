"""The SQS worker against the moto server: narrowed retries, and messages handed back on stop."""

from __future__ import annotations

import json
from typing import Any

import pytest

from s3purge.config import parse
from s3purge.entry.worker import Worker
from s3purge.pipeline import Pipeline
from tests.conftest import serving
from tests.emulators.base import Emulator, Recorded, Reply
from tests.fixtures import s3_event

CONFIG = """\
cdns:
  good: {{vendor: http, endpoints: ["{good}"]}}
  flaky: {{vendor: http, endpoints: ["{flaky}"], max_attempts: 1}}
buckets:
  site:
    - {{cdn: good, hosts: [www.example.test]}}
    - {{cdn: flaky, hosts: [www.example.test]}}
"""


class DownThenUp(Emulator):
    """Refuses every purge until told it is back."""

    up = False

    def answer(self, request: Recorded) -> Reply:
        return Reply(200) if self.up else Reply(503)


@pytest.fixture
def queue(boto: Any) -> str:
    url: str = boto.sqs.create_queue(QueueName="s3purge-events", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    return url


def counts(boto: Any, queue: str) -> tuple[str, str]:
    found = boto.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    return found["ApproximateNumberOfMessages"], found["ApproximateNumberOfMessagesNotVisible"]


def test_a_partial_failure_is_retried_on_the_failed_cdn_only(
    boto: Any, queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("S3PURGE_RETRY_DELAY", "0")
    with serving(Emulator()) as good, serving(DownThenUp()) as flaky:
        worker = Worker(Pipeline(parse(CONFIG.format(good=good.url, flaky=flaky.url))), queue, wait_seconds=0)
        boto.sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(s3_event("a.html")))
        assert worker.poll_once() == 1  # good accepted, flaky refused: original deleted, narrowed copy queued
        assert [r.path for r in good.requests] == ["/a.html"] and len(flaky.requests) == 1
        flaky.up = True
        assert worker.poll_once() == 1
    assert [r.path for r in good.requests] == ["/a.html"]  # not purged a second time
    assert [r.path for r in flaky.requests] == ["/a.html", "/a.html"]
    assert counts(boto, queue) == ("0", "0")


def test_a_message_failing_everywhere_stays_for_redelivery(boto: Any, queue: str) -> None:
    with serving(DownThenUp()) as down, serving(DownThenUp()) as down_too:
        worker = Worker(Pipeline(parse(CONFIG.format(good=down.url, flaky=down_too.url))), queue, wait_seconds=0)
        boto.sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(s3_event("a.html")))
        worker.poll_once()
    assert counts(boto, queue) == ("0", "1")  # in flight until its visibility timeout, then SQS redelivers


def test_messages_received_after_stop_are_handed_back_at_once(boto: Any, queue: str) -> None:
    with serving(Emulator()) as good, serving(Emulator()) as other:
        worker = Worker(Pipeline(parse(CONFIG.format(good=good.url, flaky=other.url))), queue, wait_seconds=0)
        for key in ("a.html", "b.html"):
            boto.sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(s3_event(key)))
        worker.stop()  # SIGTERM arrived while the long poll was open
        assert worker.poll_once() == 0
    assert good.requests == []
    assert counts(boto, queue) == ("2", "0")  # visible again for another worker, nothing lost
