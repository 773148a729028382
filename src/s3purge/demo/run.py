"""`s3purge demo`: watch an upload purge a real Varnish, all on this machine.

moto server (S3 bucket -> SQS queue with a dead-letter queue) + Varnish caching the
bucket + the s3purge worker. Prints each step; exits 0 when every check held.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from s3purge import config as config_module
from s3purge import logs
from s3purge.demo.bed import Moto, Varnish, public_read_policy
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
"""


class DemoFailed(Exception):
    pass


def run() -> int:
    os.environ.update(
        AWS_ACCESS_KEY_ID="demo",
        AWS_SECRET_ACCESS_KEY="demo",  # noqa: S106 - moto accepts any credentials
        AWS_DEFAULT_REGION="us-east-1",
    )
    moto = Moto().start()
    varnish: Varnish | None = None
    try:
        os.environ["AWS_ENDPOINT_URL"] = moto.url
        varnish = Varnish(origin_port=moto.port, bucket=BUCKET).start()
        _say(f"moto server on {moto.url}, Varnish on {varnish.url} caching bucket {BUCKET!r}")
        _story(moto, varnish)
    except (DemoFailed, RuntimeError) as failure:
        _say(f"DEMO FAILED: {failure}")
        return 1
    finally:
        if varnish is not None:
            varnish.close()
        moto.close()
    _say("demo passed: every purge landed; all processes stopped")
    return 0


def _story(moto: Moto, varnish: Varnish) -> None:
    import boto3

    s3 = boto3.client("s3")
    sqs = boto3.client("sqs")
    queue_url = _bucket_with_queue(s3, sqs)
    config_file = Path(tempfile.mkdtemp(prefix="s3purge-demo-"), "multicdn.config.yml")
    config_file.write_text(CONFIG.format(varnish=varnish.url, bucket=BUCKET, host=HOST))
    _say(f"config {config_file}:\n{config_file.read_text()}")
    logs.setup(debug=False)
    worker = Worker(Pipeline(config_module.load(config_file)), queue_url, client=sqs, wait_seconds=1)
    cache = httpx.Client(base_url=varnish.url, headers={"Host": HOST})

    s3.put_object(Bucket=BUCKET, Key="index.html", Body=b"v1", ContentType="text/html")
    worker.poll_once()  # the creation event: nothing cached yet, purge is harmless
    _expect(cache, "/", "v1", "MISS", "first visit fetches from the bucket")
    _expect(cache, "/", "v1", "HIT", "second visit is served from the cache")
    s3.put_object(Bucket=BUCKET, Key="index.html", Body=b"v2", ContentType="text/html")
    _expect(cache, "/", "v1", "HIT", "after overwriting with v2 and before s3purge runs: STALE")

    thread = threading.Thread(target=worker.run, name="s3purge-worker", daemon=True)
    thread.start()
    _wait_fresh(cache, "/", "v2", "worker started: the queued overwrite is purged")
    started = time.monotonic()
    s3.put_object(Bucket=BUCKET, Key="index.html", Body=b"v3", ContentType="text/html")
    elapsed = _wait_fresh(cache, "/", "v3", "overwrite with v3")
    _say(
        f"upload-to-fresh: {(time.monotonic() - started) * 1000:.0f} ms (fresh seen after {elapsed:.0f} ms of polling)"
    )

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
