"""Poison messages on the real parts: a moto SQS queue with a dead-letter queue, a real Varnish.

In a batch of 10 with 3 poison messages, the 7 good ones are purged exactly once (Varnish's own
purge counter) and acknowledged; the 3 poison ones end in the dead-letter queue at once, each
with its reason. The same through the Lambda handler and through the worker, and on a route that
verifies (a refused key is never probed: its refusal is permanent, not outranked by "still stale").
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from s3purge import pipeline as pipeline_module
from s3purge.config import parse
from s3purge.demo.bed import Varnish
from s3purge.entry import aws_lambda, sqs
from s3purge.entry.worker import Worker
from s3purge.model import Change
from s3purge.pipeline import Pipeline
from tests.conftest import HOST, SITE, serving
from tests.emulators.base import Emulator, Fault
from tests.fixtures import s3_event, sqs_record
from tests.integration.test_lambda import Context, dead_letters, queue_with_dlq

CONFIG = """\
cdns:
  varnish: {{vendor: http, endpoints: ["{url}"]}}
buckets:
  site:
    - {{cdn: varnish, hosts: [{host}]{route}}}
"""
VERIFIED = ', verify: {{via: ["{url}"], within: 0.2, purges: 2}}'
"""Probes through the same Varnish: a poison message must fail alone and at once with it too."""


def purges(varnish: Varnish) -> int:
    """Purges Varnish has executed (MAIN.n_purges), read with varnishstat."""
    workdir = Path(varnish._workdir, "n")  # the bed keeps it private; varnishstat needs it
    out = subprocess.run(
        ["varnishstat", "-n", str(workdir), "-1", "-f", "MAIN.n_purges"], check=True, capture_output=True, text=True
    )
    return int(out.stdout.split()[1])


@pytest.fixture
def cache(varnish: Varnish) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=varnish.url, headers={"Host": HOST}) as client:
        yield client


def stale_objects(boto: Any, cache: httpx.Client, count: int) -> list[str]:
    """Keys cached by Varnish as v1, then overwritten in S3 (no notification): stale until purged."""
    prefix = f"t-{uuid.uuid4().hex[:8]}"
    keys = [f"{prefix}/page-{n}.html" for n in range(count)]
    for key in keys:
        boto.s3.put_object(Bucket=SITE, Key=key, Body=b"v1")
        cache.get(f"/{key}")
        assert cache.get(f"/{key}").headers["X-Cache"] == "HIT"
        boto.s3.put_object(Bucket=SITE, Key=key, Body=b"v2")
    return keys


DOTTED = "t-x/../../admin/secret"
EMPTY = "d41d8cd98f00b204e9800998ecf8427e"
"""The ETag of an empty object, which the events name (s3_event)."""


def dotted_stale(boto: Any, cache: httpx.Client) -> None:
    """Varnish holds v1 of DOTTED and S3 the event's object: a probe there would see a stale copy."""
    boto.s3.put_object(Bucket=SITE, Key=DOTTED, Body=b"v1")
    assert cache.get("/t-x/%2E%2E/%2E%2E/admin/secret").content == b"v1"
    boto.s3.put_object(Bucket=SITE, Key=DOTTED, Body=b"")


def undated(event: dict[str, Any]) -> dict[str, Any]:
    """A crafted event without eventTime: no copy's Last-Modified can pass for a newer write."""
    for record in event["Records"]:
        del record["eventTime"]
    return event


POISON = {
    "dot segments": (json.dumps(undated(s3_event(DOTTED))), "'..' segment"),
    "lone surrogate": (
        json.dumps(
            {
                "s3purge": {
                    "version": 1,
                    "changes": [{"bucket": SITE, "key": "bad\udc80", "event": "created", "etag": EMPTY}],
                }
            }
        ),
        "cannot be mapped",
    ),
    "not json": ("{not json", "not valid JSON"),
}


def send_batch(boto: Any, queue: str, keys: list[str]) -> dict[str, str]:
    """7 good messages and 3 poison ones, interleaved; message id -> which poison it is."""
    bodies = [json.dumps(s3_event(key)) for key in keys]
    for n, (body, _) in enumerate(POISON.values()):
        bodies.insert(2 * n + 1, body)
    names = {body: name for name, (body, _) in POISON.items()}
    poison = {}
    for body in bodies:
        sent = boto.sqs.send_message(QueueUrl=queue, MessageBody=body)["MessageId"]
        if body in names:
            poison[sent] = names[body]
    return poison


def receive_all(boto: Any, queue: str, count: int) -> list[dict[str, Any]]:
    received: list[dict[str, Any]] = []
    while len(received) < count:
        received += boto.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    return received


def left(boto: Any, queue: str) -> tuple[str, str]:
    found = boto.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    return found["ApproximateNumberOfMessages"], found["ApproximateNumberOfMessagesNotVisible"]


@pytest.mark.parametrize("verify", [False, True], ids=["", "verified"])
@pytest.mark.parametrize("entry", ["lambda", "worker"])
def test_poison_messages_fail_alone(
    entry: str,
    verify: bool,
    *,
    boto: Any,
    site: str,
    varnish: Varnish,
    cache: httpx.Client,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    queue, dlq = queue_with_dlq(boto)
    dotted_stale(boto, cache)
    keys = stale_objects(boto, cache, 7)
    poison = send_batch(boto, queue, keys)
    before = purges(varnish)
    route = VERIFIED.format(url=varnish.url) if verify else ""
    text = CONFIG.format(url=varnish.url, host=HOST, route=route)
    if entry == "lambda":
        (tmp_path / "multicdn.config.yml").write_text(text)
        monkeypatch.setenv("LAMBDA_TASK_ROOT", str(tmp_path))
        monkeypatch.setattr(aws_lambda, "_pipeline", None)
        sqs.forget()
        received = receive_all(boto, queue, 10)
        event = {"Records": [sqs_record(m["Body"], m["MessageId"]) for m in received]}
        assert aws_lambda.handler(event, Context()) == {"batchItemFailures": []}  # Lambda deletes all 10
        for message in received:  # as the Lambda service does with what the handler did not fail
            boto.sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    else:
        worker = Worker(Pipeline(parse(text)), queue, client=boto.sqs)
        worker.wait_seconds = 1
        assert worker.poll_once() == 10
    assert purges(varnish) - before == 7  # each good key exactly once, nothing for the poison ones
    assert [cache.get(f"/{key}").content for key in keys] == [b"v2"] * 7
    assert left(boto, queue) == ("0", "0")  # all 10 acknowledged: none comes back
    letters = dead_letters(boto, dlq)
    assert sorted(letters) == sorted(poison)  # exactly the 3 poison messages, at once
    for message_id, (_, reason) in letters.items():
        assert POISON[poison[message_id]][1] in reason, reason


def test_tags_are_never_split_on_real_xkey(boto: Any, site: str, varnish: Varnish, cache: httpx.Client) -> None:
    """Purging `my dir/a.html`'s dirname tag must not drop `dir/b.html` or `my/c.html` (xkey splits on spaces)."""
    tags = {"my dir/a.html": "my%20dir", "dir/b.html": "dir", "my/c.html": "my"}  # the documented spelling
    for key, tag in tags.items():
        boto.s3.put_object(Bucket=SITE, Key=key, Body=b"v1", Metadata={"surrogate-key": tag})
        cache.get(f"/{key.replace(' ', '%20')}")
    paths = [f"/{key.replace(' ', '%20')}" for key in tags]
    assert [cache.get(p).headers["X-Cache"] for p in paths] == ["HIT"] * 3
    boto.s3.put_object(Bucket=SITE, Key="my dir/a.html", Body=b"v2", Metadata={"surrogate-key": "my%20dir"})
    tagged = parse(
        f'cdns:\n  varnish: {{vendor: http, endpoints: ["{varnish.url}"]}}\n'
        'buckets:\n  site:\n    - {cdn: varnish, tags: ["{dirname}"]}\n'
    )
    report = Pipeline(tagged).run([Change(SITE, "my dir/a.html", "created", "m")], time.monotonic() + 10)
    assert report.ok, [o.detail for o in report.outcomes]
    assert cache.get(paths[0]).content == b"v2"  # the changed object, by its tag
    assert [cache.get(p).headers["X-Cache"] for p in paths[1:]] == ["HIT", "HIT"]  # the others untouched


def test_a_hundred_narrowed_retries_go_out_together(boto: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # edge-b hangs for every message (100 connections held open: edge-a has pools of its own)
    # and 100 narrowed retries must be sent in the safety margin,
    # as 10 SendMessageBatch calls, not 100 SendMessage calls one after another.
    queue = boto.sqs.create_queue(QueueName="s3purge-events")["QueueUrl"]
    monkeypatch.setenv("S3PURGE_RETRY_DELAY", "0")
    with serving(Emulator()) as good, serving(Emulator()) as hanging:
        hanging.faults.extend([Fault(hang=30)] * 200)
        (tmp_path / "multicdn.config.yml").write_text(
            f'cdns:\n  edge-a: {{vendor: http, endpoints: ["{good.url}"]}}\n'
            f'  edge-b: {{vendor: http, endpoints: ["{hanging.url}"], concurrency: 100}}\n'
            "buckets:\n  site:\n    - {cdn: edge-a, hosts: [h]}\n    - {cdn: edge-b, hosts: [h]}\n"
        )
        monkeypatch.setenv("LAMBDA_TASK_ROOT", str(tmp_path))
        monkeypatch.setattr(aws_lambda, "_pipeline", None)
        sqs.forget()
        calls: list[str] = []
        sqs.sqs_client().meta.events.register("before-call.sqs.*", lambda model, **_: calls.append(model.name))
        event = {"Records": [sqs_record(s3_event(f"k{n}.html"), f"m{n}") for n in range(100)]}
        started = time.monotonic()
        # 4.5 s to the deadline: edge-a's 100 calls finish in it on a loaded 2-core machine (2.5 s did not)
        result = aws_lambda.handler(event, Context(remaining_ms=6000))
        took = time.monotonic() - started
    assert result == {"batchItemFailures": []}  # every message narrowed to edge-b and acknowledged
    assert calls.count("SendMessageBatch") == 10 and "SendMessage" not in calls
    assert len({r.path for r in good.requests}) == 100
    received = receive_all(boto, queue, 100)
    assert (
        sorted(json.loads(m["Body"])["s3purge"]["changes"][0]["cdns"] == ["edge-b"] for m in received) == [True] * 100
    )
    assert took < 6.0  # the invocation's own budget: the retries fit in the safety margin


def test_an_unexpected_exception_fails_only_its_own_message(
    boto: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, logs: pytest.LogCaptureFixture
) -> None:
    """The Lambda handler's last resort: a bug that raises for one message fails it alone."""
    queue, dlq = queue_with_dlq(boto)  # maxReceiveCount 5
    real = pipeline_module.plan

    def buggy(changes: Any, config: Any) -> Any:  # a stand-in for a bug no stage expected
        changes = list(changes)
        if any(change.key == "boom.html" for change in changes):
            raise RuntimeError("a bug")
        return real(changes, config)

    monkeypatch.setattr(pipeline_module, "plan", buggy)
    with serving(Emulator()) as edge:
        (tmp_path / "multicdn.config.yml").write_text(
            f'cdns:\n  edge: {{vendor: http, endpoints: ["{edge.url}"]}}\n'
            "buckets:\n  site:\n    - {cdn: edge, hosts: [h]}\n"
        )
        monkeypatch.setenv("LAMBDA_TASK_ROOT", str(tmp_path))
        monkeypatch.setattr(aws_lambda, "_pipeline", None)
        sqs.forget()
        records = [sqs_record(s3_event(key), f"m-{key}") for key in ("a.html", "boom.html", "b.html")]
        first = aws_lambda.handler({"Records": records}, Context())
        records[1]["attributes"]["ApproximateReceiveCount"] = "5"  # its last delivery
        last = aws_lambda.handler({"Records": records[1:2]}, Context())
    assert first == {"batchItemFailures": [{"itemIdentifier": "m-boom.html"}]}  # only it comes back
    assert sorted(r.path for r in edge.requests if r.method == "PURGE") == ["/a.html", "/b.html"]  # each once
    assert last == {"batchItemFailures": []}
    ((_, reason),) = dead_letters(boto, dlq).values()  # dead-lettered with why, not by SQS without it
    assert reason == "unexpected error: RuntimeError: a bug"
    assert left(boto, queue) == ("0", "0")
