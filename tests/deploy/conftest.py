"""Deploy fixtures: config files, quick packages, the moto account as `Aws`, account snapshots."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from s3purge import config as config_module
from s3purge.deploy import Architecture, wheels
from s3purge.deploy import package as packages
from s3purge.deploy.aws import Aws

CONFIG = """\
cdns:
  edge:
    vendor: http
    endpoints: ["{varnish}"]
    headers:
      X-Purge-Token: {{ssm: /s3purge/varnish/token}}
  cf:
    vendor: cloudfront
    distribution_ids: [E2EXAMPLE1, E2EXAMPLE2]
  fast:
    vendor: http
    endpoints: ["http://127.0.0.1:9"]
    headers:
      Fastly-Key: {{secretsmanager: s3purge/fastly, key: token}}
buckets:
  site:
    - cdn: edge
      hosts: [www.example.test]
      schemes: http
      prefix: "{prefix}"
    - cdn: cf
      hosts: [cdn.example.test]
      prefix: "{prefix}assets/"
  media:
    - cdn: fast
      hosts: [media.example.test]
      suffix: .jpg
"""


def write_config(path: Path, varnish: str = "http://127.0.0.1:9", prefix: str = "public/") -> Path:
    path.write_text(CONFIG.format(varnish=varnish, prefix=prefix))
    return path


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    return write_config(tmp_path / "multicdn.config.yml")


@pytest.fixture
def loaded(config_file: Path) -> config_module.Config:
    return config_module.load(config_file)


@pytest.fixture
def quick_package(tmp_path: Path) -> Callable[[Path], packages.Package]:
    """A package with s3purge and the config but no dependencies: moto never runs it."""
    empty = tmp_path / "no-deps"
    empty.mkdir()
    return lambda config: packages.build(config, tmp_path / "quick.zip", dependencies=empty)


@pytest.fixture
def account(boto: Any) -> Aws:
    """The moto account, connected as deploy connects (sts, region from the environment)."""
    return Aws.connect()


@pytest.fixture
def buckets(boto: Any) -> dict[str, str]:
    """The user's buckets, with notifications of their own: a queue, a topic, someone else's function.

    Each on keys s3purge's routes do not cover: S3 refuses two entries for one event on one key.
    The account also holds the secrets CONFIG names (deploy checks that they exist).
    """
    boto.ssm.put_parameter(Name="/s3purge/varnish/token", Value="sesame", Type="SecureString")
    boto.secretsmanager.create_secret(Name="s3purge/fastly", SecretString='{"token": "fastly-token"}')
    for name in ("site", "media"):
        boto.s3.create_bucket(Bucket=name)
    queue = boto.sqs.create_queue(QueueName="audit")["QueueUrl"]
    queue_arn = boto.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    topic_arn = boto.sns.create_topic(Name="uploads")["TopicArn"]
    theirs = "arn:aws:lambda:us-east-1:123456789012:function:thumbnailer"
    boto.s3.put_bucket_notification_configuration(
        Bucket="site",
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "Id": "audit",
                    "QueueArn": queue_arn,
                    "Events": ["s3:ObjectRemoved:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "logs/"}]}},
                }
            ],
            "TopicConfigurations": [
                {
                    "Id": "uploads",
                    "TopicArn": topic_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "incoming/"}]}},
                }
            ],
            "LambdaFunctionConfigurations": [
                {
                    "Id": "thumbs",
                    "LambdaFunctionArn": theirs,
                    "Events": ["s3:ObjectCreated:Put"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "images/"}]}},
                }
            ],
        },
    )
    return {"queue": queue_arn, "topic": topic_arn, "function": theirs}


def notifications(boto: Any, bucket: str) -> dict[str, Any]:
    answer = boto.s3.get_bucket_notification_configuration(Bucket=bucket)
    answer.pop("ResponseMetadata")
    return dict(answer)


def others(configuration: dict[str, Any]) -> dict[str, list[str]]:
    """The Ids of entries that are not s3purge's, per kind."""
    return {
        kind: sorted(e["Id"] for e in entries if not e["Id"].startswith("s3purge:"))
        for kind, entries in configuration.items()
    }


def snapshot(boto: Any, counts: bool = True) -> dict[str, Any]:
    """Everything deploy could touch in the account, without timestamps (and message counts)."""
    state: dict[str, Any] = {"buckets": {}, "queues": {}, "roles": {}}
    for bucket in sorted(b["Name"] for b in boto.s3.list_buckets()["Buckets"]):
        keys = [o["Key"] for o in boto.s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
        state["buckets"][bucket] = {"keys": keys, "notifications": notifications(boto, bucket)}
    for url in boto.sqs.list_queues().get("QueueUrls", []):
        attributes = boto.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        state["queues"][url] = {
            k: v for k, v in attributes.items() if "Timestamp" not in k and (counts or "ApproximateNumber" not in k)
        }
    for role in boto.iam.list_roles()["Roles"]:
        name = role["RoleName"]
        state["roles"][name] = boto.iam.list_role_policies(RoleName=name)["PolicyNames"]
    functions = getattr(boto, "lambda").list_functions()["Functions"]
    state["functions"] = sorted((f["FunctionName"], f["CodeSha256"]) for f in functions)
    state["mappings"] = len(getattr(boto, "lambda").list_event_source_mappings()["EventSourceMappings"])
    state["log_groups"] = [g["logGroupName"] for g in boto.logs.describe_log_groups()["logGroups"]]
    state["alarms"] = [a["AlarmName"] for a in boto.cloudwatch.describe_alarms()["MetricAlarms"]]
    state["topics"] = [t["TopicArn"] for t in boto.sns.list_topics()["Topics"]]
    stacks = boto.cloudformation.describe_stacks()["Stacks"]
    state["stacks"] = sorted(
        (s["StackName"], s["StackStatus"]) for s in stacks if s["StackStatus"] != "DELETE_COMPLETE"
    )
    return json.loads(json.dumps(state, default=str))


HOST_PYTHON = f"python{sys.version_info.major}.{sys.version_info.minor}"
HOST_ARCH = "arm64" if platform.machine() in ("aarch64", "arm64") else "x86_64"


@pytest.fixture(scope="session")
def cache_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """XDG_CACHE_HOME for the session: pip installs each platform's dependencies once."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def lambda_deps(cache_home: Path) -> Path:
    """The real dependencies for the default target: arm64, Python 3.12 (pip, manylinux wheels).

    pip installs them offline (no index), from wheels kept on this machine: the session runs the
    real install, once, without reaching PyPI.
    """
    kept = wheelhouse("arm64", "python3.12")
    with pytest.MonkeyPatch.context() as offline:
        offline.setenv("PIP_NO_INDEX", "1")  # pip's own settings: the code under test is unchanged
        offline.setenv("PIP_FIND_LINKS", str(kept))
        return wheels.install_dependencies("arm64", "python3.12", cache_home / "s3purge")


def wheelhouse(arch: Architecture, runtime: str) -> Path:
    """Wheels of the runtime requirements for the target, kept in the user's cache across sessions.

    Filled from the index the first time only (the one step that needs the network); each wheel
    is moved in whole, so sessions running at once never see a partial file.
    """
    requirements = wheels.runtime_requirements()
    folder = wheels.default_cache() / "wheelhouse" / f"{arch}-{runtime}"
    key = hashlib.sha256("\n".join(requirements).encode()).hexdigest()[:16]
    marker = folder / f".complete-{key}"
    if marker.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent) as scratch:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check"]
        command += [*wheels.wheel_options(arch, runtime), "--dest", scratch, *requirements]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            pytest.fail(f"the first fill of {folder} needs the package index once:\n{done.stderr[-2000:]}")
        for wheel in Path(scratch).glob("*.whl"):
            os.replace(wheel, folder / wheel.name)
    marker.touch()
    return folder


@pytest.fixture(scope="session")
def host_deps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real dependencies for this machine (copied from this environment: offline), so the package runs here."""
    return wheels.installed_dependencies(tmp_path_factory.mktemp("host-deps"))


def drain(boto: Any, queue_name: str) -> int:
    """Receive and delete every message, as the deployed function would; how many there were."""
    url = boto.sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
    count = 0
    while messages := boto.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        for message in messages:
            boto.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        count += len(messages)
    return count
