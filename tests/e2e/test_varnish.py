"""End to end: moto S3 -> SQS -> s3purge worker -> a real Varnish serving the bucket."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from s3purge.config import parse
from s3purge.demo.bed import Varnish
from s3purge.entry.worker import Worker
from s3purge.pipeline import Pipeline
from tests.conftest import HOST, SITE, serving
from tests.emulators.base import Emulator

CONFIG = """\
cdns:
  varnish: {{vendor: http, endpoints: ["{url}"]}}
buckets:
  site:
    - {{cdn: varnish, hosts: [{host}], schemes: both, index_documents: [index.html]}}
"""


@pytest.fixture
def queue(boto: Any, site: str) -> str:
    """The bucket's events go to this queue (created + removed)."""
    url: str = boto.sqs.create_queue(QueueName="s3purge-events", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    arn = boto.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    boto.s3.put_bucket_notification_configuration(
        Bucket=site,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]}]
        },
    )
    return url


@pytest.fixture
def cache(varnish: Varnish) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=varnish.url, headers={"Host": HOST}) as client:
        yield client


@pytest.fixture
def worker(varnish: Varnish, queue: str, boto: Any) -> Worker:
    config = parse(CONFIG.format(url=varnish.url, host=HOST))
    return Worker(Pipeline(config), queue, client=boto.sqs, wait_seconds=0)


def unique(name: str) -> str:
    """Varnish lives for the whole session: every test uses its own keys."""
    return f"t-{uuid.uuid4().hex[:8]}/{name}"


def cached(cache: httpx.Client, path: str, body: bytes) -> None:
    first, second = cache.get(path), cache.get(path)
    assert (first.content, second.content, second.headers["X-Cache"]) == (body, body, "HIT")


def drain(worker: Worker) -> None:
    while worker.poll_once():
        pass


def test_overwrite_is_served_fresh(boto: Any, cache: httpx.Client, worker: Worker) -> None:
    key = unique("page.html")
    boto.s3.put_object(Bucket=SITE, Key=key, Body=b"v1")
    drain(worker)
    cached(cache, f"/{key}", b"v1")
    boto.s3.put_object(Bucket=SITE, Key=key, Body=b"v2")
    assert cache.get(f"/{key}").content == b"v1"  # stale until the worker runs
    drain(worker)
    fresh = cache.get(f"/{key}")
    assert (fresh.content, fresh.headers["X-Cache"]) == (b"v2", "MISS")


def test_delete_is_purged(boto: Any, cache: httpx.Client, worker: Worker) -> None:
    key = unique("gone.css")
    boto.s3.put_object(Bucket=SITE, Key=key, Body=b"body{}")
    drain(worker)
    cached(cache, f"/{key}", b"body{}")
    boto.s3.delete_object(Bucket=SITE, Key=key)
    drain(worker)
    assert cache.get(f"/{key}").status_code in (403, 404)


SPELLED = {
    # key: every URL path S3 serves it under that a client plausibly requests (browser, encoded, '+')
    "c++ guide.html": ["c%2B%2B%20guide.html", "c%2B%2B+guide.html"],
    "my file.txt": ["my%20file.txt", "my+file.txt"],
    "report (1).pdf": ["report%20(1).pdf", "report%20%281%29.pdf", "report+%281%29.pdf"],
    "a;b=c.txt": ["a;b=c.txt", "a%3Bb%3Dc.txt"],
    "me@host:80.txt": ["me@host:80.txt", "me%40host%3A80.txt"],
    "dir/My File+ünï~(1).html": [
        "dir/My%20File%2B%C3%BCn%C3%AF~(1).html",
        "dir/My%20File%2B%C3%BCn%C3%AF~%281%29.html",
        "dir/My+File%2B%C3%BCn%C3%AF~%281%29.html",
    ],
    "double//slash.txt": ["double//slash.txt"],
}


DOTTED = "x/./y/../z.txt"
"""Spelled only "x/%2E/y/%2E%2E/z.txt" (S3 serves it there); whether that may be sent is the request
boundary's decision, as some servers resolve "%2E" too: what matters here is that it never hits x/z.txt."""


def test_every_spelling_a_client_cached_is_served_fresh(boto: Any, cache: httpx.Client, worker: Worker) -> None:
    prefix = unique("")
    # what a wrong spelling would hit: "/c++%20guide.html" is "c   guide.html" to S3, "x/z.txt" is
    # what a client that resolves dot segments makes of the key DOTTED
    neighbours = {"x/z.txt": "x/z.txt", "c   guide.html": "c++%20guide.html"}
    for key in [*SPELLED, *neighbours, DOTTED]:
        boto.s3.put_object(Bucket=SITE, Key=prefix + key, Body=b"old " + key.encode())
    drain(worker)
    for key, paths in [*SPELLED.items(), *((k, [p]) for k, p in neighbours.items())]:
        for path in paths:  # each spelling requested twice through Varnish: its own cached copy
            cached(cache, f"/{prefix}{path}", b"old " + key.encode())
    for key in [*SPELLED, DOTTED]:
        boto.s3.put_object(Bucket=SITE, Key=prefix + key, Body=b"new " + key.encode())
    drain(worker)
    served = {path: cache.get(f"/{prefix}{path}").content for paths in SPELLED.values() for path in paths}
    assert served == {path: b"new " + key.encode() for key, paths in SPELLED.items() for path in paths}
    for key, path in neighbours.items():  # unchanged objects keep their copies
        kept = cache.get(f"/{prefix}{path}")
        assert (kept.content, kept.headers["X-Cache"]) == (b"old " + key.encode(), "HIT")


def test_index_document_purges_its_directory_urls(boto: Any, cache: httpx.Client, worker: Worker) -> None:
    prefix = unique("")
    boto.s3.put_object(Bucket=SITE, Key=f"{prefix}index.html", Body=b"home v1")
    drain(worker)
    cached(cache, f"/{prefix}", b"home v1")
    boto.s3.put_object(Bucket=SITE, Key=f"{prefix}index.html", Body=b"home v2")
    drain(worker)
    assert cache.get(f"/{prefix}").content == b"home v2"


def test_a_1024_byte_key(boto: Any, cache: httpx.Client, worker: Worker) -> None:
    prefix = unique("")
    key = prefix + "ü" * ((1024 - len(prefix)) // 2)
    boto.s3.put_object(Bucket=SITE, Key=key, Body=b"a")
    drain(worker)
    path = "/" + prefix + "%C3%BC" * ((1024 - len(prefix)) // 2)
    cached(cache, path, b"a")
    boto.s3.put_object(Bucket=SITE, Key=key, Body=b"b")
    drain(worker)
    assert cache.get(path).content == b"b"


class OneCallAtATime:
    """An SQS client whose calls reach moto one at a time, across the workers sharing it.

    SQS makes each call atomic: a message one ReceiveMessage returns is hidden from every other.
    moto does not under concurrent requests (its receive checks visibility and marks a message
    received without a lock), and hands a message to both workers now and then (once in 1,500 deliveries
    to two consumers in a trial):
    a double delivery real SQS may make too, but not one this test is about. The purges still
    run concurrently; only the queue calls take turns."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._turn = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        call = getattr(self._client, name)

        def in_turn(*args: Any, **kwargs: Any) -> Any:
            with self._turn:
                return call(*args, **kwargs)

        return in_turn


def test_two_workers_share_a_queue_without_losing_or_double_acking(boto: Any, queue: str) -> None:
    keys = [f"k{i:02}.html" for i in range(30)]
    with serving(Emulator(latency=0.01)) as edge:
        config = parse(CONFIG.format(url=edge.url, host=HOST))
        client: Any = OneCallAtATime(boto.sqs)
        workers = [Worker(Pipeline(config), queue, client=client, wait_seconds=0, max_messages=3) for _ in range(2)]
        for key in keys:
            boto.s3.put_object(Bucket=SITE, Key=key, Body=b"x")
        settled: list[int] = []

        def consume(worker: Worker) -> None:
            while handled := worker.poll_once():
                settled.append(handled)

        threads = [threading.Thread(target=consume, args=(w,)) for w in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sum(settled) == len(keys) + 1  # every put + the s3:TestEvent, each handled once
    assert {r.path for r in edge.requests} == {f"/{k}" for k in keys}
    left = boto.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert (left["ApproximateNumberOfMessages"], left["ApproximateNumberOfMessagesNotVisible"]) == ("0", "0")


def test_worker_process_stops_cleanly_on_sigterm(
    boto: Any, cache: httpx.Client, varnish: Varnish, queue: str, tmp_path: Path
) -> None:
    config = tmp_path / "multicdn.config.yml"
    config.write_text(CONFIG.format(url=varnish.url, host=HOST))
    key = unique("live.html")
    boto.s3.put_object(Bucket=SITE, Key=key, Body=b"v1")
    cached(cache, f"/{key}", b"v1")
    boto.s3.put_object(Bucket=SITE, Key=key, Body=b"v2")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "s3purge",
            "worker",
            "--queue-url",
            queue,
            "--config",
            str(config),
            "--wait-seconds",
            "1",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    assert process.stdout is not None
    try:
        settled = 0
        for line in process.stdout:  # the worker's own JSON log says when it has settled a batch
            record = json.loads(line)
            if record["message"] == "batch settled":
                settled += record["acked"]
            if settled >= 3:  # the s3:TestEvent, the first put and the overwrite
                break
        assert cache.get(f"/{key}").content == b"v2"
        process.send_signal(signal.SIGTERM)
        rest = [json.loads(line)["message"] for line in process.stdout]
        assert process.wait(timeout=30) == 0
        assert rest[-2:] == ["stop requested", "worker stopped"]
    finally:
        process.kill()


def worker_for(config_text: str, varnish: Varnish, queue: str, boto: Any) -> Worker:
    config = parse(config_text.format(url=varnish.url, host=HOST))
    return Worker(Pipeline(config), queue, client=boto.sqs, wait_seconds=0)


def test_tag_purge_through_xkey(boto: Any, cache: httpx.Client, varnish: Varnish, queue: str) -> None:
    # Objects carry their directory as a surrogate key (S3 metadata -> xkey in the VCL);
    # the route purges by that tag only, so a change drops every page of the directory.
    tagged = worker_for(
        'cdns:\n  varnish: {{vendor: http, endpoints: ["{url}"]}}\n'
        'buckets:\n  site:\n    - {{cdn: varnish, tags: ["{{dirname}}"]}}\n',
        varnish, queue, boto,
    )  # fmt: skip
    section = unique("")[:-1]
    for name in ("a.html", "b.html"):
        boto.s3.put_object(Bucket=SITE, Key=f"{section}/{name}", Body=b"old", Metadata={"surrogate-key": section})
    drain(tagged)
    for name in ("a.html", "b.html"):
        cached(cache, f"/{section}/{name}", b"old")
    boto.s3.put_object(Bucket=SITE, Key=f"{section}/b.html", Body=b"new", Metadata={"surrogate-key": section})
    boto.s3.put_object(Bucket=SITE, Key=f"{section}/a.html", Body=b"new", Metadata={"surrogate-key": section})
    drain(tagged)
    assert [cache.get(f"/{section}/{n}").headers["X-Cache"] for n in ("a.html", "b.html")] == ["MISS", "MISS"]


def test_prefix_escalation_bans_the_directory(boto: Any, cache: httpx.Client, varnish: Varnish, queue: str) -> None:
    escalating = worker_for(
        'cdns:\n  varnish: {{vendor: http, endpoints: ["{url}"], prefix_threshold: 2}}\n'
        "buckets:\n  site:\n    - {{cdn: varnish, hosts: [{host}]}}\n",
        varnish, queue, boto,
    )  # fmt: skip
    busy, quiet = unique("busy/"), unique("quiet/")
    keys = [f"{busy}{n}.css" for n in range(3)] + [f"{busy}untouched.css", f"{quiet}q.css"]
    for key in keys:
        boto.s3.put_object(Bucket=SITE, Key=key, Body=b"v1")
    drain(escalating)
    for key in keys:
        cached(cache, f"/{key}", b"v1")
    for key in keys[:3]:  # 3 changes in one directory > prefix_threshold 2: one BAN of the directory
        boto.s3.put_object(Bucket=SITE, Key=key, Body=b"v2")
    drain(escalating)
    assert [cache.get(f"/{k}").content for k in keys[:3]] == [b"v2"] * 3
    assert cache.get(f"/{busy}untouched.css").headers["X-Cache"] == "MISS"  # a prefix purge drops it too
    assert cache.get(f"/{quiet}q.css").headers["X-Cache"] == "HIT"  # other directories keep their copies
