"""SQS at the edge, for the settle path (entry/settle.py): one client, queue lookups, batched sends.

The client, each queue's URL and its RedrivePolicy are kept for the process. Narrowed
retries and dead letters go out as SendMessageBatch calls of 10 entries, all chunks at
once, so 100 narrowed retries cost one round trip, not 100 (they must fit in the
invocation's safety margin). A dead letter carries its reason as the message attribute
`s3purge-reason` and the original id as `s3purge-message-id`; retries and dead letters carry
`s3purge-first-sent`, when the change first entered the queue (what redrive's age filters read).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from s3purge.events import dead_letter_attributes, first_sent_attribute, retry_envelope
from s3purge.model import Change

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

    from s3purge.pipeline import Dead

log = logging.getLogger("s3purge")

CHUNK = 10
"""Entries per SendMessageBatch (SQS's maximum)."""
CHUNK_BYTES = 200_000
"""Body bytes per SendMessageBatch, below SQS's 256 KiB for the whole call."""


def retry_delay() -> int:
    """Seconds before a narrowed retry is received, so a struggling CDN gets a breather (0-900)."""
    return min(900, max(0, int(os.environ.get("S3PURGE_RETRY_DELAY", "30"))))


AWS_ENVIRONMENT = (
    *("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS", "AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION"),
    *("AWS_ACCESS_KEY_ID", "AWS_MAX_ATTEMPTS"),
)
"""What boto3 builds a client from; a command that changes it (the CLI's --profile) gets its own."""


def sqs_client() -> SQSClient:
    """One client per process and AWS environment (creating one costs tens of ms; clients are thread-safe)."""
    return _client(tuple(os.environ.get(name) for name in AWS_ENVIRONMENT))


@lru_cache(maxsize=4)
def _client(environment: tuple[str | None, ...]) -> SQSClient:
    import boto3

    return boto3.client("sqs")


def forget() -> None:
    """Drop the cached client and queue lookups (a fresh process, for tests)."""
    for cached in (_client, queue_url, redrive):
        cached.cache_clear()


@lru_cache(maxsize=32)
def queue_url(client: SQSClient, queue_arn: str) -> str:
    """arn:aws:sqs:REGION:ACCOUNT:NAME -> the queue's URL (asked once per process)."""
    _, _, _, _, account, name = queue_arn.split(":", 5)
    return client.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]


@dataclass(frozen=True)
class Redrive:
    """A queue's RedrivePolicy: where its dead letters go, and after how many deliveries SQS moves them."""

    dead_letter_url: str
    max_receives: int


@lru_cache(maxsize=32)
def redrive(client: SQSClient, source_url: str) -> Redrive | None:
    """The source queue's RedrivePolicy, or None without one (asked once per process)."""
    answer = client.get_queue_attributes(QueueUrl=source_url, AttributeNames=["RedrivePolicy"])
    found = answer.get("Attributes", {})  # absent when the queue has none of those asked
    policy = found.get("RedrivePolicy")
    if not policy:
        return None
    parsed = json.loads(policy)
    # The DLQ lives in the source queue's region: its URL is the source's with the ARN's account and
    # name, so no GetQueueUrl call (and no permission for it) is needed.
    _, _, _, _, account, name = parsed["deadLetterTargetArn"].split(":", 5)
    return Redrive(f"{source_url.rsplit('/', 2)[0]}/{account}/{name}", int(parsed.get("maxReceiveCount", 10)))


@dataclass(frozen=True)
class _Out:
    message_id: str
    body: str
    attributes: dict[str, str]


def send_retries(
    client: SQSClient,
    url: str,
    retries: dict[str, list[Change]],
    delay: int | None = None,
    first_sent: Mapping[str, str] | None = None,
) -> set[str]:
    """Enqueue each message's narrowed changes (after `delay` s, default retry_delay());
    the ids whose retry could not be sent. `first_sent`: message id -> its s3purge-first-sent."""
    first_sent = first_sent or {}
    out = [_Out(i, retry_envelope(changes), first_sent_attribute(first_sent.get(i))) for i, changes in retries.items()]
    unsent = _send(client, url, out, delay=retry_delay() if delay is None else min(900, delay))
    for message_id, changes in retries.items():
        if message_id not in unsent:
            cdns = sorted({c for change in changes for c in change.cdns or ()})
            log.info("retry enqueued", extra={"message_id": message_id, "cdns": cdns})
    return unsent


def send_dead(
    client: SQSClient,
    dead_letter_url: str,
    dead: dict[str, Dead],
    bodies: dict[str, str],
    first_sent: Mapping[str, str] | None = None,
) -> set[str]:
    """Send failed messages to the dead-letter queue with their reason; the ids that could not be sent.

    The body is the message narrowed to its failed CDNs (what a redrive should redo), or the
    body as received when there are none (it could not be read, or it is moved as SQS would)."""
    out = [
        _Out(
            message_id,
            retry_envelope(why.changes) if why.changes else bodies.get(message_id) or "(empty)",
            dead_letter_attributes(why.reason, message_id, (first_sent or {}).get(message_id)),
        )
        for message_id, why in dead.items()
    ]
    return _send(client, dead_letter_url, out, delay=0)


def _send(client: SQSClient, url: str, out: list[_Out], delay: int) -> set[str]:
    """Send every message, 10 per SendMessageBatch and all batches at once; the ids not sent."""
    chunks = _chunks(out)
    if not chunks:
        return set()
    with ThreadPoolExecutor(min(len(chunks), 10), thread_name_prefix="s3purge-sqs") as pool:
        return set().union(*pool.map(lambda chunk: _send_chunk(client, url, chunk, delay), chunks))


def _chunks(out: list[_Out]) -> list[list[_Out]]:
    chunks: list[list[_Out]] = []
    size = 0
    for item in out:
        cost = len(item.body.encode()) + sum(len(k) + len(v) for k, v in item.attributes.items())
        if not chunks or len(chunks[-1]) == CHUNK or size + cost > CHUNK_BYTES:
            chunks.append([])
            size = 0
        chunks[-1].append(item)
        size += cost
    return chunks


def _send_chunk(client: SQSClient, url: str, chunk: list[_Out], delay: int) -> set[str]:
    entries = [_entry(str(n), item, url, delay) for n, item in enumerate(chunk)]
    try:
        answer = client.send_message_batch(QueueUrl=url, Entries=entries)
    except Exception as error:  # noqa: BLE001 - then those originals are failed instead
        log.warning("messages not enqueued", extra={"queue_url": url, "count": len(chunk), "error": str(error)})
        return {item.message_id for item in chunk}
    failed = {int(f["Id"]) for f in answer.get("Failed", [])}
    for entry in answer.get("Failed", []):
        log.warning("message not enqueued", extra={"queue_url": url, "code": entry.get("Code")})
    return {chunk[n].message_id for n in failed}


def _entry(ident: str, item: _Out, url: str, delay: int) -> SendMessageBatchRequestEntryTypeDef:
    entry: SendMessageBatchRequestEntryTypeDef = {"Id": ident, "MessageBody": item.body}
    if item.attributes:
        entry["MessageAttributes"] = {
            name: {"DataType": "String", "StringValue": value} for name, value in item.attributes.items()
        }
    if url.endswith(".fifo"):  # FIFO queues need a group and refuse per-message delays
        entry["MessageGroupId"] = "s3purge-retry"
        entry["MessageDeduplicationId"] = hashlib.sha256(item.body.encode()).hexdigest()
    elif delay:
        entry["DelaySeconds"] = delay
    return entry
