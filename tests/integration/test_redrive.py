"""`s3purge redrive` on the moto server: dry run, back to the source queue, through the pipeline, filters."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from s3purge.config import parse
from s3purge.entry import sqs
from s3purge.entry.cli import main
from s3purge.entry.worker import Worker
from s3purge.pipeline import Dead, Pipeline
from tests.conftest import serving
from tests.emulators.base import Emulator, Recorded, Reply
from tests.fixtures import s3_event
from tests.integration.test_cli_output import document

CONFIG = """\
cdns:
  edge: {{vendor: http, endpoints: ["{edge}"], max_attempts: 1}}
  other: {{vendor: http, endpoints: ["{other}"], max_attempts: 1}}
buckets:
  site:
    - {{cdn: edge, hosts: [www.example.test]}}
  assets:
    - {{cdn: other, hosts: [cdn.example.test]}}
"""


class Refuses(Emulator):
    """Accepts every purge except of /still-down*, as a vendor half back from an outage."""

    def answer(self, request: Recorded) -> Reply:
        return Reply(503) if request.path.startswith("/still-down") else Reply(200)


@pytest.fixture
def queues(boto: Any) -> tuple[str, str]:
    dlq = boto.sqs.create_queue(QueueName="events-dlq")["QueueUrl"]
    arn = boto.sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 3})
    source = boto.sqs.create_queue(QueueName="events", Attributes={"RedrivePolicy": policy})["QueueUrl"]
    return source, dlq


def dead_letters(boto: Any, dlq: str, *keys: tuple[str, str]) -> None:
    for bucket, key in keys:
        boto.sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps(s3_event(key, bucket=bucket)))


def dead_lettered(boto: Any, dlq: str, object_: tuple[str, str], reason: str, original_id: str) -> None:
    """A dead letter as s3purge sends it (entry/sqs.py): the body as received, with its reason and original id."""
    bucket, key = object_
    body = json.dumps(s3_event(key, bucket=bucket))
    assert sqs.send_dead(boto.sqs, dlq, {original_id: Dead(reason, [])}, {original_id: body}) == set()


def bodies(boto: Any, url: str) -> list[str]:
    """Every key waiting in the queue (received once, then handed back)."""
    found = boto.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
    for message in found:
        boto.sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    return sorted(_key(json.loads(m["Body"])) for m in found)


def _key(body: dict[str, Any]) -> str:
    if "s3purge" in body:
        return "retry:" + ",".join(c["key"] for c in body["s3purge"]["changes"])
    return str(body["Records"][0]["s3"]["object"]["key"])


def redrive(config: Path, dlq: str, *args: str) -> Result:
    return CliRunner().invoke(
        main,
        ["redrive", "--config", str(config), "--dlq-url", dlq, "--wait-seconds", "0", *args],
        catch_exceptions=False,
    )


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yml"
    path.write_text(CONFIG.format(edge="http://127.0.0.1:9", other="http://127.0.0.1:9"))
    return path


def test_a_dry_run_lists_and_leaves_every_message(boto: Any, queues: tuple[str, str], config: Path) -> None:
    source, dlq = queues
    dead_letters(boto, dlq, ("site", "a.html"), ("assets", "b.css"))

    result = redrive(config, dlq, "--output", "json")

    doc = document(result)
    assert result.exit_code == 0 and doc["dry_run"] is True and doc["target"] == source
    assert sorted(m["objects"][0] for m in doc["dead_letters"] if m["selected"]) == ["assets/b.css", "site/a.html"]
    assert bodies(boto, dlq) == ["a.html", "b.css"] and bodies(boto, source) == []
    text = redrive(config, dlq)  # no --yes and no terminal to ask on: it only lists
    assert text.exit_code == 0
    assert "no terminal to ask on: add --yes" in text.stderr
    assert text.stdout.count("would ") == 2
    assert bodies(boto, dlq) == ["a.html", "b.css"] and bodies(boto, source) == []


def test_send_moves_the_selected_messages_back_to_the_source_queue(
    boto: Any, queues: tuple[str, str], config: Path
) -> None:
    source, dlq = queues
    dead_letters(boto, dlq, ("site", "a.html"), ("assets", "b.css"), ("site", "c.html"))

    result = redrive(config, dlq, "--bucket", "site", "--send")

    assert result.exit_code == 0, result.output
    assert bodies(boto, source) == ["a.html", "c.html"]
    assert bodies(boto, dlq) == ["b.css"]
    assert "summary: 2 of 3 message(s)" in result.stderr


def test_through_the_pipeline_a_message_failing_again_stays_in_the_dlq(
    boto: Any, queues: tuple[str, str], tmp_path: Path
) -> None:
    _, dlq = queues
    dead_letters(boto, dlq, ("site", "fine.html"), ("site", "still-down.html"), ("assets", "x.css"))
    with serving(Refuses()) as edge, serving(Refuses()) as other:
        config = tmp_path / "live.yml"
        config.write_text(CONFIG.format(edge=edge.url, other=other.url))
        result = redrive(config, dlq, "--to", "pipeline", "--cdn", "edge", "--send", "--output", "json")

    doc = document(result)
    assert result.exit_code == 1
    assert sorted(r.path for r in edge.requests) == ["/fine.html", "/still-down.html"]
    assert other.requests == []  # --cdn edge: the assets message is not touched
    assert doc["summary"] | {} == {
        "examined": 3, "selected": 2, "moved": 0, "purged": 1, "narrowed": 0, "kept": 1
    }  # fmt: skip
    (kept,) = [m for m in doc["dead_letters"] if m["result"] == "kept" and m["selected"]]
    assert kept["objects"] == ["site/still-down.html"] and "HTTP 503" in kept["reason"]
    assert bodies(boto, dlq) == ["still-down.html", "x.css"]


def test_age_filters_select_by_when_the_message_was_first_sent(
    boto: Any, queues: tuple[str, str], config: Path
) -> None:
    _, dlq = queues
    dead_letters(boto, dlq, ("site", "a.html"))

    old_only = document(redrive(config, dlq, "--older-than", "1h", "--output", "json"))
    recent = document(redrive(config, dlq, "--newer-than", "1h", "--output", "json"))
    bad = redrive(config, dlq, "--older-than", "soon")

    assert [m["skipped"] for m in old_only["dead_letters"]] == ["newer than 3600s"]
    assert [m["selected"] for m in recent["dead_letters"]] == [True]
    assert bad.exit_code == 2 and "expected a duration" in bad.output


def test_no_single_source_queue_asks_for_one(boto: Any, config: Path) -> None:
    lonely = boto.sqs.create_queue(QueueName="lonely-dlq")["QueueUrl"]

    result = redrive(config, lonely)

    assert result.exit_code == 2
    assert result.stderr == f"error: {lonely}: 0 source queue(s) (none); name one with --to-queue\n"


def test_a_url_that_is_no_queue_url_is_one_line(config: Path) -> None:
    result = redrive(config, "notaurl")
    to_queue = redrive(config, "https://sqs.us-east-1.amazonaws.com/123456789012/dlq", "--to-queue", "q")

    assert (result.exit_code, to_queue.exit_code) == (2, 2)
    assert result.stderr == (
        "error: --dlq-url 'notaurl' is not a queue URL (expected https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)\n"
    )
    assert to_queue.stderr.startswith("error: --to-queue 'q' is not a queue URL")


class Down(Emulator):
    def answer(self, request: Recorded) -> Reply:
        return Reply(503)


def test_a_partial_success_leaves_a_copy_narrowed_to_the_failing_cdn_with_its_reason(
    boto: Any, queues: tuple[str, str], tmp_path: Path, config: Path
) -> None:
    _, dlq = queues
    dead_letters(boto, dlq, ("site", "a.html"))
    (first_id,) = [m["id"] for m in document(redrive(config, dlq, "--output", "json"))["dead_letters"]]
    with serving(Emulator()) as edge, serving(Down()) as other:
        config = tmp_path / "two.yml"
        config.write_text(
            f'cdns:\n  edge: {{vendor: http, endpoints: ["{edge.url}"]}}\n'
            f'  other: {{vendor: http, endpoints: ["{other.url}"], max_attempts: 1}}\n'
            "buckets:\n  site:\n    - {cdn: edge, hosts: [h]}\n    - {cdn: other, hosts: [h]}\n"
        )
        result = redrive(config, dlq, "--to", "pipeline", "--send")

    assert result.exit_code == 1
    assert [r.path for r in edge.requests] == ["/a.html"]
    (left,) = boto.sqs.receive_message(
        QueueUrl=dlq, WaitTimeSeconds=0, MessageAttributeNames=["All"], AttributeNames=["SentTimestamp"]
    )["Messages"]
    (change,) = json.loads(left["Body"])["s3purge"]["changes"]
    assert (change["key"], change["cdns"]) == ("a.html", ["other"])  # edge is not purged again next time
    assert "narrowed" in result.stdout and "still failing on other" in result.stdout
    attributes = {k: v["StringValue"] for k, v in left.get("MessageAttributes", {}).items()}
    first_sent = attributes.pop("s3purge-first-sent")  # the SentTimestamp of the message SQS moved itself
    assert attributes == {"s3purge-reason": "still failing on other", "s3purge-message-id": first_id}
    assert first_sent.isdigit() and int(first_sent) <= int(left["Attributes"]["SentTimestamp"])


def test_the_listing_shows_why_each_message_failed(boto: Any, queues: tuple[str, str], config: Path) -> None:
    _, dlq = queues
    dead_lettered(boto, dlq, ("site", "a.html"), "edge: HTTP 503\n  Service Unavailable", "first-a")
    dead_letters(boto, dlq, ("assets", "b.css"))  # moved by SQS itself: no reason

    doc = document(redrive(config, dlq, "--output", "json"))
    text = redrive(config, dlq, "--dry-run")

    found = {m["objects"][0]: (m["dead_reason"], m["original_id"]) for m in doc["dead_letters"]}
    assert found == {
        "site/a.html": ("edge: HTTP 503\n  Service Unavailable", "first-a"),
        "assets/b.css": (None, None),
    }
    lines = text.stdout.splitlines()
    (a,) = [n for n, line in enumerate(lines) if line.endswith(" site/a.html")]
    assert lines[a + 1] == "         dead-lettered: edge: HTTP 503 Service Unavailable (was message first-a)"
    assert text.stdout.count("dead-lettered") == 1  # b.css shows no reason
    assert bodies(boto, dlq) == ["a.html", "b.css"]


def test_sent_back_a_message_keeps_its_original_id_but_not_the_old_reason(
    boto: Any, queues: tuple[str, str], config: Path
) -> None:
    source, dlq = queues
    dead_lettered(boto, dlq, ("site", "a.html"), "edge: HTTP 503", "first-a")

    assert redrive(config, dlq, "--yes").exit_code == 0

    (back,) = boto.sqs.receive_message(QueueUrl=source, MessageAttributeNames=["All"])["Messages"]
    assert _key(json.loads(back["Body"])) == "a.html"
    attributes = {k: v["StringValue"] for k, v in back["MessageAttributes"].items()}
    assert attributes.pop("s3purge-first-sent").isdigit()  # none carried: the dead letter's SentTimestamp
    assert attributes == {"s3purge-message-id": "first-a"}


def test_ages_count_from_when_the_change_first_entered_the_queue_not_from_the_dead_lettering(
    boto: Any, queues: tuple[str, str], config: Path
) -> None:
    source, dlq = queues
    two_hours_ago = str(int(time.time() * 1000) - 7_200_000)
    dead = {"first-a": Dead("edge: HTTP 503", [])}
    body = json.dumps(s3_event("a.html"))
    assert sqs.send_dead(boto.sqs, dlq, dead, {"first-a": body}, {"first-a": two_hours_ago}) == set()

    old_only = document(redrive(config, dlq, "--older-than", "1h", "--output", "json"))
    text = redrive(config, dlq, "--dry-run")
    assert redrive(config, dlq, "--yes").exit_code == 0

    (listed,) = old_only["dead_letters"]
    assert listed["selected"] and 7_200 <= listed["age_seconds"] < 7_200 + 60  # not seconds: the dead letter's own
    assert "(72" in text.stdout and "s old;" in text.stdout
    (back,) = boto.sqs.receive_message(QueueUrl=source, MessageAttributeNames=["All"])["Messages"]
    assert back["MessageAttributes"]["s3purge-first-sent"]["StringValue"] == two_hours_ago  # kept when sent back


class Forbids(Emulator):
    """Refuses every purge for good (403): the message is dead-lettered at once."""

    def answer(self, request: Recorded) -> Reply:
        return Reply(403, b"forbidden")


def test_a_dead_letter_carries_when_its_change_first_entered_the_queue(boto: Any, queues: tuple[str, str]) -> None:
    source, dlq = queues
    boto.sqs.send_message(QueueUrl=source, MessageBody=json.dumps(s3_event("new.html")))
    boto.sqs.send_message(
        QueueUrl=source,
        MessageBody=json.dumps(s3_event("resent.html")),
        MessageAttributes={"s3purge-first-sent": {"DataType": "String", "StringValue": "1700000000000"}},
    )
    with serving(Forbids()) as cdn:
        config = parse(
            f'cdns:\n  edge: {{vendor: http, endpoints: ["{cdn.url}"], max_attempts: 1}}\n'
            "buckets:\n  site: [{cdn: edge, hosts: [h]}]\n"
        )
        worker = Worker(Pipeline(config), source, wait_seconds=0, max_messages=10)
        sent = {
            m["MessageId"]: m["Attributes"]["SentTimestamp"]
            for m in boto.sqs.receive_message(
                QueueUrl=source, MaxNumberOfMessages=10, AttributeNames=["SentTimestamp"], VisibilityTimeout=0
            )["Messages"]
        }
        assert worker.poll_once() == 2

    found = boto.sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, MessageAttributeNames=["All"])["Messages"]
    carried = {
        _key(json.loads(m["Body"])): {k: v["StringValue"] for k, v in m["MessageAttributes"].items()} for m in found
    }
    new = carried["retry:new.html"]  # narrowed to the CDN that refused it
    assert new["s3purge-first-sent"] == sent[new["s3purge-message-id"]]  # its own SentTimestamp
    assert (
        carried["retry:resent.html"]["s3purge-first-sent"] == "1700000000000"
    )  # what it carried, not its SentTimestamp


def test_a_narrowed_retry_keeps_when_its_change_first_entered_the_queue(
    boto: Any, queues: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("S3PURGE_RETRY_DELAY", "0")
    source, _ = queues
    boto.sqs.send_message(QueueUrl=source, MessageBody=json.dumps(s3_event("a.html")))
    with serving(Emulator()) as edge, serving(Down()) as other:  # other fails: only it is retried
        config = parse(
            f'cdns:\n  edge: {{vendor: http, endpoints: ["{edge.url}"]}}\n'
            f'  other: {{vendor: http, endpoints: ["{other.url}"], max_attempts: 1}}\n'
            "buckets:\n  site:\n    - {cdn: edge, hosts: [h]}\n    - {cdn: other, hosts: [h]}\n"
        )
        (first,) = boto.sqs.receive_message(QueueUrl=source, AttributeNames=["SentTimestamp"], VisibilityTimeout=0)[
            "Messages"
        ]
        assert Worker(Pipeline(config), source, wait_seconds=0).poll_once() == 1

    (retry,) = boto.sqs.receive_message(QueueUrl=source, MessageAttributeNames=["All"])["Messages"]
    assert _key(json.loads(retry["Body"])) == "retry:a.html"
    assert retry["MessageAttributes"]["s3purge-first-sent"]["StringValue"] == first["Attributes"]["SentTimestamp"]
