"""The deployed pipeline end to end: S3 put -> deployed queue -> packaged handler -> Varnish purged.

moto cannot run Lambda code, so the test plays the Lambda service: it receives the message
from the queue deploy created and invokes the handler imported from the unpacked package
(built for this machine), in a fresh interpreter, exactly as the Lambda runtime would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from s3purge import config as config_module
from s3purge.demo.bed import Varnish
from s3purge.deploy import Options, stack
from s3purge.deploy import package as packages
from s3purge.deploy.aws import Aws
from tests.conftest import HOST
from tests.deploy.conftest import HOST_ARCH, HOST_PYTHON

pytestmark = pytest.mark.e2e

CONFIG = """\
cdns:
  varnish:
    vendor: http
    endpoints: ["{varnish}"]
    headers:
      X-Purge-Token: {{ssm: /s3purge/purge-token}}
buckets:
  {bucket}:
    - cdn: varnish
      hosts: [{host}]
      schemes: http
"""

LAMBDA_RUNTIME = """
import json, sys
root = sys.argv[1]
sys.path.insert(0, root)  # the function's code comes first, as in /var/task
import msgspec, s3purge
assert s3purge.__file__.startswith(root), s3purge.__file__
assert msgspec.__file__.startswith(root), msgspec.__file__
from s3purge.entry.aws_lambda import handler

class Context:
    def get_remaining_time_in_millis(self):
        return 30_000

print("RESULT " + json.dumps(handler(json.load(sys.stdin), Context())))
"""


def invoke_packaged_handler(root: Path, event: dict[str, Any]) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(LAMBDA_TASK_ROOT=str(root), config_file="multicdn.config.yml", debug="false")
    done = subprocess.run(
        [sys.executable, "-c", LAMBDA_RUNTIME, str(root)],
        input=json.dumps(event),
        capture_output=True,
        text=True,
        cwd=root,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (result,) = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    answer: dict[str, Any] = json.loads(result.removeprefix("RESULT "))
    return answer


def drain(boto: Any, queue: str) -> None:
    while messages := boto.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages"):
        for message in messages:
            boto.sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """What the event source mapping hands the function."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1",
            }
            for m in messages
        ]
    }


def test_an_upload_is_purged_by_the_packaged_handler(
    boto: Any, site: str, varnish: Varnish, host_deps: Path, tmp_path: Path
) -> None:
    config_file = tmp_path / "multicdn.config.yml"
    config_file.write_text(CONFIG.format(varnish=varnish.url, bucket=site, host=HOST))
    boto.ssm.put_parameter(Name="/s3purge/purge-token", Value="sesame", Type="SecureString")
    built = packages.build(
        config_file, tmp_path / "s3purge.zip", arch=HOST_ARCH, runtime=HOST_PYTHON, dependencies=host_deps
    )
    stack.deploy(config_module.load(config_file), Options(arch=HOST_ARCH), built, Aws.connect(), print)
    root = tmp_path / "task"
    with zipfile.ZipFile(built.path) as archive:
        archive.extractall(root)

    queue = boto.sqs.get_queue_url(QueueName="s3purge-events")["QueueUrl"]
    queue_arn = boto.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    drain(boto, queue)  # S3's test event from hooking up the bucket

    boto.s3.put_object(Bucket=site, Key="page one.html", Body=b"v1", ContentType="text/html")
    drain(boto, queue)
    cache = httpx.Client(base_url=varnish.url, headers={"Host": HOST})
    assert (cache.get("/page%20one.html").text, cache.get("/page%20one.html").headers["X-Cache"]) == ("v1", "HIT")

    boto.s3.put_object(Bucket=site, Key="page one.html", Body=b"v2", ContentType="text/html")
    assert cache.get("/page%20one.html").text == "v1"  # stale until s3purge runs
    messages = boto.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    assert len(messages) == 1 and "ObjectCreated:Put" in messages[0]["Body"]

    assert invoke_packaged_handler(root, sqs_event(messages, queue_arn)) == {"batchItemFailures": []}
    fresh = cache.get("/page%20one.html")
    assert (fresh.text, fresh.headers["X-Cache"]) == ("v2", "MISS")
