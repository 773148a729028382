"""The S3 client that asks the origin (HeadObject: metadata reads, verification's origin checks).

Bounded timeouts and two attempts, because `deadline.within` bounds only httpx's sockets: a
HeadObject must not outlive the invocation by boto3's default 60 s reads and retries. Callers
make it under a lock, since building clients from botocore's default session in several
threads at once is not safe.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def s3_client() -> S3Client:
    import boto3  # only configs that read metadata or verify pay for it
    from botocore.config import Config

    return boto3.client("s3", config=Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 2}))
