"""Deploy s3purge to AWS: the Lambda package, a CloudFormation stack, the bucket notifications.

template.py       config + Options -> the CloudFormation template (the one source of truth)
resources.py      its queues, function, trigger and alarms; iam.py its least-privilege role
intrinsics.py     the Fn::Sub ARNs both write; observability.py the dashboard and per-CDN alarms
package.py        the Lambda zip: s3purge + its runtime dependencies for the target platform
wheels.py         those dependencies: wheels for the target platform, installed once per key
artifacts.py      the package's upload to the artifact bucket, tagged so destroy finds it again
notifications.py  merge our entries into a bucket's notification configuration, never replace it
preflight.py      what deploy checks before it makes anything
cloudformation.py change sets, waits (boto3 waiters) and the stack as it is
stack.py          deploy: check, upload, change set, ask, execute, bucket notifications
teardown.py       destroy: exactly what deploy made, nothing else
aws.py            the session and account; one clear error per failed AWS call
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from s3purge.errors import S3PurgeError
from s3purge.pacing import INSTANCES_ENV as INSTANCES_ENV

Architecture = Literal["arm64", "x86_64"]
Trigger = Literal["sqs", "direct"]
RUNTIMES = ("python3.12", "python3.13")
HANDLER = "s3purge.entry.aws_lambda.handler"
CONFIG_NAME = "multicdn.config.yml"
"""Where the config lives inside the package (the function's `config_file`)."""


NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,63}")
"""A stack name that is also a valid function, queue, alarm and log group name."""


class DeployError(S3PurgeError):
    """An AWS call during deploy or destroy failed; names the resource and the reason."""


def check_name(name: str) -> str:
    """Refuse, before anything is made, a name CloudFormation or Lambda would refuse halfway."""
    if not NAME_PATTERN.fullmatch(name):
        raise DeployError(
            f"invalid name {name!r}: it names the stack, the function and the queues, so it must start with a "
            "letter and hold only letters, digits and hyphens, at most 64 characters"
        )
    return name


@dataclass(frozen=True)
class Options:
    """What to deploy, besides the config: names, sizes and switches of the stack."""

    name: str = "s3purge"
    """Stack name; also the function name and the prefix of every named resource."""
    buckets: tuple[str, ...] = ()
    """Buckets to hook up; empty means every bucket in the config."""
    arch: Architecture = "arm64"
    runtime: str = "python3.12"
    trigger: Trigger = "sqs"
    memory: int = 256
    timeout: int = 60
    batch_size: int = 100
    max_concurrency: int = 2
    """Function instances at most (the SQS mapping's MaximumConcurrency, 2..1000); each paces at
    1/max_concurrency of every vendor limit, so together they stay within each vendor account's limit."""
    batch_window: int = 5
    """Seconds SQS gathers events before invoking, so a burst of uploads becomes one batch."""
    max_receive_count: int = 5
    log_retention_days: int = 14
    alarm_email: str | None = None
    debug: bool = False
