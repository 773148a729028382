"""`s3purge demo`: watch an upload purge a real Varnish, all on this machine.

moto server (S3 bucket -> SQS queue with a dead-letter queue) + Varnish caching the
bucket + the s3purge worker, with verification on: each purge is proved by what Varnish
then serves, and its time-to-fresh printed. Then the shield race on two tiers (an edge
Varnish in front of the first): stale without verification, fresh with it, fresh with a
delayed second purge. Prints each step; exits 0 when every check held.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from s3purge import config as config_module
from s3purge import logs
from s3purge.demo.bed import LateShield, Moto, Varnish, public_read_policy
from s3purge.entry.worker import Worker
from s3purge.pipeline import Pipeline

BUCKET = "site"
HOST = "www.example.test"
CONFIG = """\
cdns:
  varnish:
    vendor: http
    endpoints: ["{varnish}"]
buckets:
  {bucket}:
    - cdn: varnish
      hosts: [{host}]
      schemes: both
      index_documents: [index.html]
      verify: {{via: ["{varnish}"], within: 2}}
"""
TIERS = """\
cdns:
  tiers: {{vendor: http, endpoints: ["{edge}", "{shield}"], concurrency: 1{account}}}
buckets:
  {bucket}:
    - {{cdn: tiers, hosts: [{host}], prefix: shielded/{route}}}
"""


class DemoFailed(Exception):
    pass


class Proofs(logging.Handler):
    """Keeps verification's `verified` lines, to print their time-to-fresh."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() in ("verified", "not proved fresh"):
            self.records.append(vars(record))

    def say_last(self, what: str, key: str | None = None) -> None:
        """Print the last proof (of `key`, when given)."""
        found = [r for r in self.records if key is None or (r["key"] == key and r["result"] == "fresh")]
        if not found:
            raise DemoFailed(f"{what}: no verification line logged")
        r = found[-1]
        _say(
            f"verified {r['key']!r} on {r['cdn']}: {r['result']} after {r['purges']} purge(s), {r['probes']} "
            f"probe(s), time-to-fresh {r.get('time_to_fresh_ms', '?')} ms  ({what})"
        )


def run() -> int:
    os.environ.update(
        AWS_ACCESS_KEY_ID="demo",
        AWS_SECRET_ACCESS_KEY="demo",  # noqa: S106 - moto accepts any credentials
        AWS_DEFAULT_REGION="us-east-1",
    )
    moto = Moto().start()
    caches: list[Varnish] = []
    try:
        os.environ["AWS_ENDPOINT_URL"] = moto.url
        caches.append(Varnish(origin_port=moto.port, bucket=BUCKET).start())
        _say(f"moto server on {moto.url}, Varnish on {caches[0].url} caching bucket {BUCKET!r}")
        queue_url = _story(moto, caches[0])
        caches.append(Varnish(origin_port=moto.port, bucket=BUCKET, parent=caches[0].port).start())
        _shield_race(caches[1], caches[0], queue_url)
    except (DemoFailed, RuntimeError) as failure:
        _say(f"DEMO FAILED: {failure}")
        return 1
    finally:
        for cache in caches:
            cache.close()
        moto.close()
    _say("demo passed: every purge landed; all processes stopped")
    return 0


def _story(moto: Moto, varnish: Varnish) -> str:
    import boto3

    s3 = boto3.client("s3")
    sqs = boto3.client("sqs")
    queue_url = _bucket_with_queue(s3, sqs)
    config_file = Path(tempfile.mkdtemp(prefix="s3purge-demo-"), "multicdn.config.yml")
    config_file.write_text(CONFIG.format(varnish=varnish.url, bucket=BUCKET, host=HOST))
    _say(f"config {config_file}:\n{config_file.read_text()}")
    logs.setup(debug=False)
    proofs = Proofs()
    logging.getLogger("s3purge").addHandler(proofs)
    worker = Worker(Pipeline(config_module.load(config_file)), queue_url, client=sqs, wait_seconds=1)
    cache = httpx.Client(base_url=varnish.url, headers={"Host": HOST})

    s3.put_object(Bucket=BUCKET, Key="index.html", Body=b"v1", ContentType="text/html")
    worker.poll_once()  # the creation event: nothing cached yet, purge is harmless
    _expect(cache, "/", "v1", "HIT", "first visit: verification's probe already fetched it into the cache")
    s3.put_object(Bucket=BUCKET, Key="index.html", Body=b"v2", ContentType="text/html")
    _expect(cache, "/", "v1", "HIT", "after overwriting with v2 and before s3purge runs: STALE")

    thread = threading.Thread(target=worker.run, name="s3purge-worker", daemon=True)
    thread.start()
    _wait_fresh(cache, "/", "v2", "worker started: the queued overwrite is purged")
    started, seen = time.monotonic(), len(proofs.records)
    s3.put_object(Bucket=BUCKET, Key="index.html", Body=b"v3", ContentType="text/html")
    elapsed = _wait_fresh(cache, "/", "v3", "overwrite with v3")
    _say(
        f"upload-to-fresh: {(time.monotonic() - started) * 1000:.0f} ms (fresh seen after {elapsed:.0f} ms of polling)"
    )
    _wait_proof(proofs, "index.html", "the v3 purge, proved by what Varnish serves", seen)

    odd = "dir/My File+ünï~(1).html"
    path = "/dir/My%20File%2B%C3%BCn%C3%AF~(1).html"  # as a browser requests it: S3 reads a raw + as a space
    s3.put_object(Bucket=BUCKET, Key=odd, Body=b"odd v1")
    _expect(cache, path, "odd v1", None, f"key {odd!r} cached as {path}")
    s3.put_object(Bucket=BUCKET, Key=odd, Body=b"odd v2")
    _wait_fresh(cache, path, "odd v2", "overwrite of the odd key")

    s3.delete_object(Bucket=BUCKET, Key=odd)
    _wait_gone(cache, path, "delete of the odd key")
    worker.stop()
    thread.join(timeout=30)
    if thread.is_alive():
        raise DemoFailed("worker did not stop")
    left = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])
    _say(f"worker stopped; messages left in the queue: {left['Attributes']['ApproximateNumberOfMessages']}")
    logging.getLogger("s3purge").removeHandler(proofs)
    return queue_url


def _shield_race(edge: Varnish, shield: Varnish, queue_url: str) -> None:
    """Edge -> shield: the shield's purge lands after a visitor made the edge refetch the old copy."""
    import boto3

    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    relay = LateShield(shield.url, edge.url)
    proofs = Proofs()
    logging.getLogger("s3purge").addHandler(proofs)
    _say(f"two tiers: edge Varnish {edge.url} -> shield Varnish {shield.url}; the shield's purges arrive late")
    try:
        cases = [
            ("without verification", "", ""),
            ("with verification", "", f', verify: {{via: ["{edge.url}"], within: 0.5}}'),
            ("with a delayed second purge (0.5 s)", ", second_purge: 0.5", ""),
        ]
        for n, (title, account, route) in enumerate(cases):
            text = TIERS.format(edge=edge.url, shield=relay.url, bucket=BUCKET, host=HOST, account=account, route=route)
            config_file = Path(tempfile.mkdtemp(prefix="s3purge-demo-"), "multicdn.config.yml")
            config_file.write_text(text)
            worker = Worker(Pipeline(config_module.load(config_file)), queue_url, client=sqs, wait_seconds=1)
            key = f"shielded/page{n}.html"
            fresh = _race(s3, worker, key, (edge, shield), title)
            if n == 0 and fresh:
                raise DemoFailed("the race did not happen: the edge is fresh without verification")
            if n > 0 and not fresh:
                raise DemoFailed(f"{title}: the edge is still stale")
            if n == 1:
                proofs.say_last(title)
    finally:
        relay.close()
        logging.getLogger("s3purge").removeHandler(proofs)


def _race(s3: Any, worker: Worker, key: str, tiers: tuple[Varnish, Varnish], title: str) -> bool:
    """v1 cached on both tiers, v2 uploaded and purged: True when the edge then serves v2."""
    edge, shield = tiers
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"v1", ContentType="text/html")
    while worker.poll_once():
        pass
    worker.later.idle(30)
    for tier in (shield, edge):
        httpx.get(f"{tier.url}/{key}", headers={"Host": HOST})
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"v2", ContentType="text/html")
    while worker.poll_once():
        pass
    worker.later.idle(30)
    served = httpx.get(f"{edge.url}/{key}", headers={"Host": HOST})
    _say(f"{title}: GET edge /{key} -> {served.text!r} X-Cache={served.headers.get('X-Cache')}")
    return served.text == "v2"


def _wait_proof(proofs: Proofs, key: str, what: str, seen: int, timeout: float = 15.0) -> None:
    """The worker thread logs the proof after the purge: wait for its line (records after `seen`)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if any(r["key"] == key and r["result"] == "fresh" for r in proofs.records[seen:]):
            proofs.say_last(what, key)
            return
        time.sleep(0.02)
    raise DemoFailed(f"{what}: not proved fresh within {timeout:.0f} s")


def _bucket_with_queue(s3: Any, sqs: Any) -> str:
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_policy(Bucket=BUCKET, Policy=public_read_policy(BUCKET))
    dlq = sqs.create_queue(QueueName="s3purge-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url: str = sqs.create_queue(
        QueueName="s3purge-events",
        Attributes={
            "VisibilityTimeout": "60",
            "RedrivePolicy": f'{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"5"}}',
        },
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(
        Bucket=BUCKET,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]}]
        },
    )
    _say(f"bucket {BUCKET!r} notifies queue s3purge-events (dead-letter queue s3purge-dlq)")
    return queue_url


def _expect(cache: httpx.Client, path: str, body: str, state: str | None, what: str) -> None:
    response = cache.get(path)
    got = response.headers.get("X-Cache")
    _say(f"GET {path} -> {response.status_code} {response.text!r} X-Cache={got}  ({what})")
    if response.text != body or (state is not None and got != state):
        raise DemoFailed(f"expected {body!r} ({state}), got {response.text!r} ({got})")


def _wait_fresh(cache: httpx.Client, path: str, body: str, what: str) -> float:
    return _poll(lambda r: r.text == body, cache, path, what)


def _wait_gone(cache: httpx.Client, path: str, what: str) -> float:
    return _poll(lambda r: r.status_code in (403, 404), cache, path, what)


def _poll(done: Any, cache: httpx.Client, path: str, what: str, timeout: float = 15.0) -> float:
    """A person refreshing the page until it changes (the demo's only wait loop)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        response = cache.get(path)
        if done(response):
            elapsed = (time.monotonic() - started) * 1000
            _say(
                f"GET {path} -> {response.status_code} {response.text[:40]!r} "
                f"X-Cache={response.headers.get('X-Cache')}  ({what}: fresh after {elapsed:.0f} ms)"
            )
            return elapsed
        time.sleep(0.02)
    raise DemoFailed(f"{what}: still stale after {timeout:.0f} s")


def _say(text: str) -> None:
    print(f"[demo] {text}", flush=True)
