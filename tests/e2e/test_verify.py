"""Fresh at the edge, proved: the shield race on two real Varnish tiers, and a CDN that never evicts.

edge Varnish -> shield Varnish (the session's) -> moto S3. `LateShield` passes the shield's
purge on only after a visitor has asked the (already purged) edge for the object, so the
edge refetches the shield's old copy: the race Fastly documents.
"""

from __future__ import annotations

import email.utils
import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

import httpx
import pytest

from s3purge.config import parse
from s3purge.demo.bed import LateShield, Moto, Varnish
from s3purge.entry import aws_lambda, sqs
from s3purge.entry.worker import Worker
from s3purge.model import Change
from s3purge.pipeline import Pipeline
from tests.conftest import HOST, SITE, serving
from tests.emulators.base import Emulator, Recorded, Reply
from tests.emulators.fastly import TOKEN, FastlyEmulator
from tests.fixtures import s3_event, sqs_event

TIERS = """\
cdns:
  tiers: {{vendor: http, endpoints: ["{edge}", "{shield}"], concurrency: 1{account}}}
buckets:
  site:
    - {{cdn: tiers, hosts: [{host}]{route}}}
"""
VERIFY = ', verify: {{via: ["{edge}"], within: 0.3, purges: 3}}'


@pytest.fixture(scope="module")
def edge(moto_server: Moto, varnish: Varnish) -> Iterator[Varnish]:
    cache = Varnish(origin_port=moto_server.port, bucket=SITE, parent=varnish.port).start()
    yield cache
    cache.close()


@dataclass
class Race:
    """The two tiers, the late shield purge and the bucket's queue."""

    boto: Any
    queue: str
    edge: Varnish
    shield: Varnish
    relay: LateShield

    def worker(self, *, account: str = "", route: str = "") -> Worker:
        route = route.format(edge=self.edge.url)
        text = TIERS.format(edge=self.edge.url, shield=self.relay.url, host=HOST, account=account, route=route)
        return Worker(Pipeline(parse(text)), self.queue, client=self.boto.sqs, wait_seconds=0)

    def overwrite(self, worker: Worker) -> str:
        """v1 cached at the shield and the edge, then v2 uploaded and its event handled: the path."""
        key = f"t-{uuid.uuid4().hex[:8]}/page.html"
        self.boto.s3.put_object(Bucket=SITE, Key=key, Body=b"v1")
        drain(worker)
        assert worker.later.idle(timeout=10)  # v1's own second purge (if any) is done before v1 is cached
        for tier in (self.shield, self.edge, self.edge):
            assert get(tier.url, f"/{key}").content == b"v1"
        assert get(self.edge.url, f"/{key}").headers["X-Cache"] == "HIT"
        self.boto.s3.put_object(Bucket=SITE, Key=key, Body=b"v2")
        drain(worker)
        return f"/{key}"


@pytest.fixture
def race(boto: Any, site: str, varnish: Varnish, edge: Varnish) -> Iterator[Race]:
    queue: str = boto.sqs.create_queue(QueueName="s3purge-events")["QueueUrl"]
    arn = boto.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    boto.s3.put_bucket_notification_configuration(
        Bucket=site,
        NotificationConfiguration={"QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]},
    )
    relay = LateShield(varnish.url, edge.url)
    yield Race(boto, queue, edge, varnish, relay)
    relay.close()


def get(base: str, path: str) -> httpx.Response:
    return httpx.get(base + path, headers={"Host": HOST})


def drain(worker: Worker) -> None:
    while worker.poll_once():
        pass


def test_without_verification_the_edge_keeps_the_old_copy(race: Race) -> None:
    path = race.overwrite(race.worker())
    assert race.relay.visits[-1] == b"v1"  # the visitor, between the two purges, got the old copy
    assert get(race.shield.url, path).content == b"v2"  # the shield was purged ...
    stale = get(race.edge.url, path)
    assert (stale.content, stale.headers["X-Cache"]) == (b"v1", "HIT")  # ... the edge serves v1 for its TTL


def test_verification_purges_again_and_proves_the_edge_fresh(race: Race, logs: pytest.LogCaptureFixture) -> None:
    path = race.overwrite(race.worker(route=VERIFY))
    assert get(race.edge.url, path).content == b"v2"
    assert race.relay.visits[-2:] == [b"v1", b"v2"]  # stale after the first purge, fresh after the second
    proofs = [r for r in logs.records if r.getMessage() == "verified" and r.key == path[1:]]
    assert [(p.result, p.purges) for p in proofs] == [("fresh", 1), ("fresh", 2)]  # v1 at once, v2 purged twice
    assert proofs[1].time_to_fresh_ms > 0  # logged per (change, CDN) ...
    emf = [r for r in logs.records if r.getMessage() == "metrics" and getattr(r, "CDN", None) == "tiers"]
    assert [len(r.TimeToFresh) for r in emf][-2:] == [1, 1]  # ... and as the CDN's TimeToFresh metric, per batch


def test_a_delayed_second_purge_ends_fresh_too(race: Race) -> None:
    worker = race.worker(account=", second_purge: 0.05")
    path = race.overwrite(worker)
    assert worker.later.idle(timeout=10)  # the worker's in-process second purges have run
    assert race.relay.purges == 4  # v1: first and second purge, v2: the same
    assert race.relay.visits[-2:] == [b"v1", b"v2"]  # the race happened: stale after v2's first purge, not its second
    fresh = get(race.edge.url, path)
    assert (fresh.content, fresh.headers["X-Cache"]) == (b"v2", "HIT")  # refetched by the visitor


class NeverEvicts(FastlyEmulator):
    """Fastly's API (strict) accepting every purge, and an edge that keeps serving the old copy."""

    old_etag = '"0dd0dd0dd0dd0dd0dd0dd0dd0dd0dd00"'

    def answer(self, request: Recorded) -> Reply:
        if request.method == "HEAD":  # a probe through the edge
            return Reply(200, headers={"ETag": self.old_etag, "Content-Type": "text/html"})
        return super().answer(request)


def test_a_cdn_that_never_evicts_fails_verification_into_the_dead_letter_queue(
    boto: Any, site: str, logs: pytest.LogCaptureFixture
) -> None:
    dlq = boto.sqs.create_queue(QueueName="s3purge-dlq")["QueueUrl"]
    dlq_arn = boto.sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"})
    queue = boto.sqs.create_queue(
        QueueName="s3purge-events", Attributes={"VisibilityTimeout": "1", "RedrivePolicy": redrive}
    )["QueueUrl"]
    with serving(NeverEvicts()) as fastly:
        config = parse(
            f'cdns:\n  fastly: {{vendor: fastly, api_base: "{fastly.url}", api_token: {TOKEN}}}\n'
            f"buckets:\n  site:\n    - {{cdn: fastly, hosts: [{HOST}],"
            f' verify: {{via: ["{fastly.url}"], within: 0.1, purges: 2}}}}\n'
        )
        worker = Worker(Pipeline(config), queue, client=boto.sqs, wait_seconds=0)
        put = boto.s3.put_object(Bucket=site, Key="news.html", Body=b"v2")
        event = {"Records": [record("news.html", put["ETag"])]}
        boto.sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(event))
        for _ in range(2):  # maxReceiveCount: each receive purges twice, probes, fails; the last dead-letters it
            received = boto.sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=5, AttributeNames=["All"])["Messages"]
            assert len(received) == 1
            worker.handle(received, time.monotonic() + 20)
        assert boto.sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=2).get("Messages", []) == []
        (dead,) = boto.sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=1, MessageAttributeNames=["All"])["Messages"]
    why = f"fastly: still stale after 2 purges: serves ETag {NeverEvicts.old_etag}"
    assert json.loads(dead["Body"]) == event  # the message as received, as SQS's own move would keep it
    assert dead["MessageAttributes"]["s3purge-reason"]["StringValue"] == why  # with its reason, for the operator
    assert dead["MessageAttributes"]["s3purge-message-id"]["StringValue"] == received[0]["MessageId"]
    assert fastly.purged_urls == [f"{HOST}/news.html"] * 4
    probes = [r for r in fastly.requests if r.method == "HEAD"]
    assert probes and all("fastly-key" not in r.headers and "authorization" not in r.headers for r in probes)
    failed = [(r.getMessage(), r.reason) for r in logs.records if r.getMessage().startswith("purge failed")]
    assert failed == [
        ("purge failed; left for redelivery", why),
        ("purge failed on its last delivery; sent to the dead-letter queue", why),
    ]


def record(key: str, etag: str) -> dict[str, Any]:
    """An S3 record as AWS sends it (moto's own carry no sequencer)."""
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventTime": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        "eventName": "ObjectCreated:Put",
        "s3": {
            "bucket": {"name": SITE},
            "object": {"key": key, "eTag": etag.strip('"'), "sequencer": "0055AED6DCD90281E5"},
        },
    }


@dataclass
class Context:
    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def test_on_lambda_the_second_purge_comes_back_through_the_queue_after_its_delay(
    boto: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = boto.sqs.create_queue(QueueName="s3purge-events")["QueueUrl"]
    with serving(Emulator()) as edge:
        (tmp_path / "multicdn.config.yml").write_text(
            f'cdns:\n  edge: {{vendor: http, endpoints: ["{edge.url}"], second_purge: 2}}\n'
            f"buckets:\n  site:\n    - {{cdn: edge, hosts: [{HOST}]}}\n"
        )
        monkeypatch.setenv("LAMBDA_TASK_ROOT", str(tmp_path))
        monkeypatch.setattr(aws_lambda, "_pipeline", None)  # a fresh container reading this config
        sqs.forget()
        delays: list[int | None] = []
        sqs.sqs_client().meta.events.register(
            "before-parameter-build.sqs.SendMessageBatch",
            lambda params, **_: delays.extend(e.get("DelaySeconds") for e in params["Entries"]),
        )
        assert aws_lambda.handler(sqs_event(s3_event("a.html")), Context()) == {"batchItemFailures": []}
        # Held back by DelaySeconds; asked of the request, not of the queue's delayed count, which a
        # machine stalled for 2 s would already show as visible.
        assert delays == [2] and sum(map(int, waiting(boto, queue))) == 1
        (second,) = boto.sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=10)["Messages"]
        (change,) = json.loads(second["Body"])["s3purge"]["changes"]
        assert (change["key"], change["cdns"], change["second_purge"]) == ("a.html", ["edge"], True)
        assert aws_lambda.handler(sqs_event(second["Body"]), Context()) == {"batchItemFailures": []}
    assert [r.path for r in edge.requests] == ["/a.html", "/a.html"]
    assert waiting(boto, queue) == ("0", "0")  # a second purge schedules no third


def waiting(boto: Any, queue: str) -> tuple[str, str]:
    """(visible, delayed) messages in the queue."""
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed"]
    found = boto.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=names)["Attributes"]
    return found[names[0]], found[names[1]]


class Serves(Emulator):
    """A cache node that accepts every PURGE and serves whatever ETag it is told."""

    etag = ""

    def answer(self, request: Recorded) -> Reply:
        return Reply(200, headers={"ETag": self.etag}) if request.method == "HEAD" else Reply(200)


def test_a_newer_write_at_the_edge_is_superseded_never_stale(
    boto: Any, site: str, logs: pytest.LogCaptureFixture
) -> None:
    queue = boto.sqs.create_queue(QueueName="s3purge-events")["QueueUrl"]
    with serving(Serves()) as node:
        config = parse(
            f'cdns:\n  node: {{vendor: http, endpoints: ["{node.url}"]}}\n'
            f'buckets:\n  site:\n    - {{cdn: node, hosts: [{HOST}], verify: {{via: ["{node.url}"], purges: 2}}}}\n'
        )
        worker = Worker(Pipeline(config), queue, client=boto.sqs, wait_seconds=0)
        v2 = boto.s3.put_object(Bucket=site, Key="a.html", Body=b"v2")["ETag"]
        node.etag = boto.s3.put_object(Bucket=site, Key="a.html", Body=b"v3")["ETag"]  # the same second, already served
        boto.sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"Records": [record("a.html", v2)]}))
        assert worker.poll_once() == 1
    assert [r.method for r in node.requests] == ["PURGE", "HEAD"]  # not purged again, no alarm
    assert [(r.result, r.purges) for r in logs.records if r.getMessage() == "verified"] == [("superseded", 1)]
    assert waiting(boto, queue) == ("0", "0")  # acknowledged


class Rewrites(Emulator):
    """A cache node that accepts every PURGE and serves the new object with the headers it is told:
    its ETag stripped, or rewritten as compressing CDNs and Apache do."""

    def __init__(self) -> None:
        super().__init__()
        self.headers: dict[str, str] = {}

    def answer(self, request: Recorded) -> Reply:
        return Reply(200, headers=self.headers) if request.method == "HEAD" else Reply(200)


@pytest.mark.parametrize(
    ("etag", "dated", "result"),
    [
        (None, True, "fresh"),  # stripped: its Last-Modified is S3's object's
        ('"{etag}-gzip"', True, "fresh"),  # Apache's mod_deflate
        ('W/"{etag}--gzip"', True, "fresh"),
        (None, False, "unverified"),  # nothing to tell it by: not proved, never stale
    ],
)
def test_a_cdn_that_strips_or_rewrites_etags_is_judged_by_date_never_stale(
    etag: str | None, dated: bool, result: str, *, boto: Any, site: str, logs: pytest.LogCaptureFixture
) -> None:
    queue = boto.sqs.create_queue(QueueName="s3purge-events")["QueueUrl"]
    with serving(Rewrites()) as node:
        config = parse(
            f'cdns:\n  node: {{vendor: http, endpoints: ["{node.url}"]}}\n'
            f"buckets:\n  site:\n    - {{cdn: node, hosts: [{HOST}],"
            f' verify: {{via: ["{node.url}"], within: 0.2, purges: 2}}}}\n'
        )
        worker = Worker(Pipeline(config), queue, client=boto.sqs, wait_seconds=0)
        put = boto.s3.put_object(Bucket=site, Key="a.html", Body=b"v2")["ETag"]
        written = boto.s3.head_object(Bucket=site, Key="a.html")["LastModified"].astimezone(UTC)
        node.headers = {"ETag": etag.format(etag=put.strip('"'))} if etag else {}
        if dated:
            node.headers["Last-Modified"] = email.utils.format_datetime(written, usegmt=True)
        boto.sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"Records": [record("a.html", put)]}))
        assert worker.poll_once() == 1
    assert [r.method for r in node.requests] == ["PURGE", "HEAD"]  # not purged again: no false alarm
    proofs = [(r.result, getattr(r, "detail", "")) for r in logs.records if r.getMessage() in PROOF_LINES]
    detail = "" if dated else "the CDN serves no ETag, nor Last-Modified"
    assert proofs == [(result, detail)]
    assert waiting(boto, queue) == ("0", "0")  # acknowledged


PROOF_LINES = ("verified", "not proved fresh")


class KeyedOnScheme(Emulator):
    """A cache keyed on the scheme (X-Forwarded-Proto; none: the connection's, http) whose http
    copy survives the first purge: only a probe of each scheme's copy sees it."""

    def __init__(self, new: str) -> None:
        super().__init__()
        self.new = new
        self.purged: Counter[str] = Counter()

    def answer(self, request: Recorded) -> Reply:
        scheme = request.headers.get("x-forwarded-proto", "http")
        if request.method == "PURGE":
            self.purged[scheme] += 1
            return Reply(200)
        fresh = self.purged[scheme] >= (2 if scheme == "http" else 1)
        return Reply(200, headers={"ETag": self.new if fresh else NeverEvicts.old_etag})


def test_a_cache_keyed_on_the_scheme_is_proved_fresh_at_each_scheme(
    boto: Any, site: str, logs: pytest.LogCaptureFixture
) -> None:
    put = boto.s3.put_object(Bucket=site, Key="a.css", Body=b"v2")["ETag"]
    with serving(KeyedOnScheme(put)) as node:
        config = parse(
            f'cdns:\n  node: {{vendor: http, endpoints: ["{node.url}"], scheme_in_cache_key: true}}\n'
            f"buckets:\n  site:\n    - {{cdn: node, hosts: [{HOST}], schemes: both,"
            f' verify: {{via: ["{node.url}"], within: 0.2}}}}\n'
        )
        change = Change(site, "a.css", "created", "m", etag=put.strip('"'))
        report = Pipeline(config).run([change], time.monotonic() + 20)
    assert report.ok
    probed = [r.headers.get("x-forwarded-proto") for r in node.requests if r.method == "HEAD"]
    assert probed[:2] == ["https", "http"] and set(probed) == {"https", "http"}  # each copy, as purged
    assert [(p.result, p.purges) for p in report.proofs] == [("fresh", 2)]  # so purged again, then proved
