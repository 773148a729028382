"""The built package, run as Lambda runs it: every vendor purges from the zip alone.

The zip is built for this machine (architecture and Python), offline, from this
environment's installed dependencies, and unpacked into a read-only directory. Each
vendor's invocation is a fresh interpreter whose path holds only the stdlib, the package
and what the Lambda Python runtime provides (boto3 and its dependencies): no site-packages,
no bytecode writing. So a module the package lacks fails here as it would on Lambda.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import boto3
import pytest

from s3purge.demo.bed import Moto
from s3purge.deploy import package as packages
from s3purge.deploy import wheels
from tests.conftest import serving
from tests.deploy.conftest import HOST_ARCH, HOST_PYTHON
from tests.emulators import http_cache
from tests.emulators.base import Emulator
from tests.vendors.test_contract import CASES, Aws

HOST = "www.example.com"
KEY = "dir/page one+ü.html"
PATH = "/dir/page%20one%2B%C3%BC.html"  # its browser spelling (a raw + would be a space to S3)
CLOUDFRONT_PATH = "/dir/page%20one+%C3%BC.html"  # CloudFront's own rule leaves '+' raw (docs/cloudfront.md)
TOKEN_PARAMETER = "/s3purge/packaged/http-token"

RUNNER = """
import importlib.util, json, sys
task, runtime = sys.argv[1], sys.argv[2]
sys.path[:0] = [task, runtime]  # /var/task first, then what the runtime provides
assert not [p for p in sys.path if "site-packages" in p], sys.path
from s3purge.entry.aws_lambda import handler

class Context:
    aws_request_id = "packaged-test"
    def get_remaining_time_in_millis(self):
        return 30_000

result = handler(json.load(sys.stdin), Context())
compiled = 0
for name, module in list(sys.modules.items()):
    origin = getattr(module, "__file__", None) or ""
    if name.split(".")[0] == "s3purge" and origin.endswith(".py"):
        header = open(importlib.util.cache_from_source(origin), "rb").read(8)
        assert header[:4] == importlib.util.MAGIC_NUMBER and header[4] == 0b01, (name, header)  # unchecked hash
        compiled += 1
unneeded = sorted({"yaml", "s3purge.verify", "s3purge.entry.sqs"} & set(sys.modules))
print("RESULT " + json.dumps({"result": result, "compiled_modules": compiled, "unneeded": unneeded}))
"""


@dataclass
class Deployed:
    task: Path
    runtime: Path
    emulators: dict[str, Emulator]
    files: list[Path]


def lambda_runtime(root: Path) -> Path:
    """A directory holding only what the Lambda Python runtime provides, linked from this environment."""
    root.mkdir()
    for name in wheels.IN_LAMBDA_RUNTIME:
        dist = metadata.distribution(name)
        for top in {Path(f).parts[0] for f in dist.files or [] if Path(f).parts[0] != ".."}:
            if not Path(root, top).exists():
                Path(root, top).symlink_to(Path(str(dist.locate_file(top))))
    return root


def config_for(emulators: dict[str, Emulator], aws: Aws) -> str:
    cdns, buckets = [], []
    for case in CASES:
        account = case.account(emulators[case.vendor], aws)
        if case.vendor == "http":  # one secret from SSM, fetched by the packaged code through boto3
            account = account.replace(http_cache.TOKEN, f"{{ssm: {TOKEN_PARAMETER}}}")
        cdns.append(f"  {case.vendor}: {{{account}}}")
        buckets.append(f"  site-{case.vendor}:\n    - {{cdn: {case.vendor}, hosts: [{HOST}]}}")
    return "cdns:\n" + "\n".join(cdns) + "\nbuckets:\n" + "\n".join(buckets) + "\n"


@pytest.fixture(scope="module")
def deployed(moto_server: Moto, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    moto_server.reset()
    aws = Aws(moto_server, _Clients())
    boto3.client("ssm").put_parameter(Name=TOKEN_PARAMETER, Value="from-ssm", Type="SecureString")
    emulators = {case.vendor: case.emulator(aws) for case in CASES}
    assert isinstance(emulators["http"], http_cache.HttpCacheEmulator)
    emulators["http"].token = "from-ssm"  # the cache refuses any other
    with ExitStack() as stack:
        for emulator in emulators.values():
            stack.enter_context(serving(emulator))
        root = tmp_path_factory.mktemp("packaged")
        config = root / "multicdn.config.yml"
        config.write_text(config_for(emulators, aws))
        deps = wheels.installed_dependencies(root / "deps")
        built = packages.build(config, root / "s3purge.zip", arch=HOST_ARCH, runtime=HOST_PYTHON, dependencies=deps)
        assert built.compiled, built.summary()
        task = root / "task"
        with zipfile.ZipFile(built.path) as archive:
            archive.extractall(task)
        for path in [task, *task.rglob("*")]:  # /var/task is read-only
            path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
        yield Deployed(task, lambda_runtime(root / "runtime"), emulators, sorted(task.rglob("*")))


class _Clients:
    def __getattr__(self, service: str) -> Any:
        return boto3.client(service)


def invoke(deployed: Deployed, event: dict[str, Any]) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    env |= {"LAMBDA_TASK_ROOT": str(deployed.task), "config_file": "multicdn.config.yml", "debug": "false"}
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-B", "-c", RUNNER, str(deployed.task), str(deployed.runtime)],
        input=json.dumps(event),
        capture_output=True,
        text=True,
        cwd=deployed.task,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    answer: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
    return answer


def s3_event_in_sqs(bucket: str, key: str) -> dict[str, Any]:
    from urllib.parse import quote_plus

    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(key, safe="/"), "size": 1}},
    }
    return {
        "Records": [
            {
                "messageId": f"m-{bucket}",
                "receiptHandle": "r",
                "body": json.dumps({"Records": [record]}),
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:s3purge-events",
                "awsRegion": "us-east-1",
            }
        ]
    }


@pytest.mark.parametrize("vendor", [case.vendor for case in CASES])
def test_the_packaged_handler_purges_every_vendor(deployed: Deployed, vendor: str) -> None:
    emulator = deployed.emulators[vendor]
    before = len(emulator.requests)
    answer = invoke(deployed, s3_event_in_sqs(f"site-{vendor}", KEY))
    assert answer["result"] == {"batchItemFailures": []}
    sent = emulator.requests[before:]
    path = CLOUDFRONT_PATH if vendor == "cloudfront" else PATH
    assert any(path in r.path + r.body.decode() for r in sent), [(r.method, r.path, r.body[:200]) for r in sent]
    assert answer["compiled_modules"] > 10  # every s3purge module came with an unchecked-hash .pyc
    # Left to later or never, at a cold start's cost: PyYAML (the config came as the tree parsed at
    # deploy, configfile.py), verification (no route verifies), SQS sends (nothing to retry).
    assert answer["unneeded"] == []
    if vendor == "http":
        assert {r.headers.get("x-purge-token") for r in sent} == {"from-ssm"}
    assert sorted(deployed.task.rglob("*")) == deployed.files  # nothing written into /var/task
