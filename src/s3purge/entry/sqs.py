"""SQS at the edge: send narrowed retries, acknowledge, release. Shared by Lambda and the worker."""

from __future__ import annotations

import hashlib
import logging
import os
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from s3purge.events import retry_envelope
from s3purge.model import Change

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

log = logging.getLogger("s3purge")


def retry_delay() -> int:
    """Seconds before a narrowed retry is received, so a struggling CDN gets a breather (0-900)."""
    return min(900, max(0, int(os.environ.get("S3PURGE_RETRY_DELAY", "30"))))


def sqs_client() -> SQSClient:
    import boto3

    return boto3.client("sqs")


@lru_cache(maxsize=32)
def queue_url(client: SQSClient, queue_arn: str) -> str:
    """arn:aws:sqs:REGION:ACCOUNT:NAME -> the queue's URL (asked once per container)."""
    _, _, _, _, account, name = queue_arn.split(":", 5)
    return client.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]


def send_retries(client: SQSClient, url: str, retries: dict[str, list[Change]], delay: int | None = None) -> set[str]:
    """Enqueue each message's narrowed changes (after `delay` s, default retry_delay());
    the ids whose retry could not be sent."""
    unsent = set()
    for message_id, changes in retries.items():
        body = retry_envelope(changes)
        extra: dict[str, Any] = {}
        if url.endswith(".fifo"):  # FIFO queues need a group and refuse per-message delays
            extra = {
                "MessageGroupId": "s3purge-retry",
                "MessageDeduplicationId": hashlib.sha256(body.encode()).hexdigest(),
            }
        else:
            extra = {"DelaySeconds": retry_delay() if delay is None else min(900, delay)}
        try:
            client.send_message(QueueUrl=url, MessageBody=body, **extra)
        except Exception as error:  # noqa: BLE001 - then the original is failed instead
            log.warning("retry not enqueued", extra={"message_id": message_id, "error": str(error)})
            unsent.add(message_id)
        else:
            log.info(
                "retry enqueued",
                extra={
                    "message_id": message_id,
                    "cdns": sorted({c for ch in changes for c in ch.cdns or ()}),
                },
            )
    return unsent
