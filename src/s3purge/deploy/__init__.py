"""Deploy s3purge to AWS: the Lambda package, a CloudFormation stack, the bucket notifications.

template.py       config + Options -> the CloudFormation template (the one source of truth)
package.py        the Lambda zip: s3purge + its runtime dependencies for the target platform
notifications.py  merge our entries into a bucket's notification configuration, never replace it
stack.py          deploy: upload, change sets, waits, bucket notifications
teardown.py       destroy: exactly what deploy made, nothing else
fallback.py       resources a stack skipped (moto), created through their APIs
aws.py            the session and account; one clear error per failed AWS call
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from s3purge.errors import S3PurgeError

Architecture = Literal["arm64", "x86_64"]
Trigger = Literal["sqs", "direct"]
RUNTIMES = ("python3.12", "python3.13")
HANDLER = "s3purge.entry.aws_lambda.handler"
CONFIG_NAME = "multicdn.config.yml"
"""Where the config lives inside the package (the function's `config_file`)."""


class DeployError(S3PurgeError):
    """An AWS call during deploy or destroy failed; names the resource and the reason."""


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
    batch_window: int = 5
    """Seconds SQS gathers events before invoking, so a burst of uploads becomes one batch."""
    max_receive_count: int = 5
    log_retention_days: int = 14
    alarm_email: str | None = None
    debug: bool = False
