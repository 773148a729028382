"""`s3purge worker`: a long-running SQS consumer running the same pipeline as Lambda.

A message is deleted only when every CDN its changes route to accepted the purge. On a
partial failure a copy narrowed to the failed CDNs is enqueued first. Messages that
failed retryably everywhere are left for SQS to redeliver (on their last delivery they are
moved to the dead-letter queue with their reason); messages that failed permanently
(unreadable, a refused key, a request the vendor rejects) are moved there at once with
their reason, and deleted (entry/settle.py, shared with Lambda). No batch, however hostile,
stops the worker. Run several workers on one queue to scale out: SQS's visibility timeout
keeps them apart, and each batch must finish before that timeout runs out.
SIGTERM/SIGINT: stop receiving, finish the batch in hand, exit.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType
from typing import TYPE_CHECKING

from s3purge import metrics
from s3purge.entry import sqs
from s3purge.entry.later import Later
from s3purge.entry.settle import Received, receives, settle
from s3purge.events import FIRST_SENT_ATTRIBUTE, first_sent, read_message
from s3purge.model import Change
from s3purge.pipeline import Pipeline

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import (
        ChangeMessageVisibilityBatchRequestEntryTypeDef,
        DeleteMessageBatchRequestEntryTypeDef,
        MessageTypeDef,
    )

log = logging.getLogger("s3purge")

SQS_BACKOFF = 5.0
"""Seconds to wait after a failed SQS call before polling again (messages stay in the queue)."""
MARGIN = 5.0
"""Seconds kept back from the visibility timeout to settle a batch before SQS redelivers it."""


class Worker:
    def __init__(
        self,
        pipeline: Pipeline,
        queue_url: str,
        client: SQSClient | None = None,
        wait_seconds: int = 20,
        max_messages: int = 10,
    ) -> None:
        self.pipeline = pipeline
        self.queue_url = queue_url
        self.client = client or sqs.sqs_client()
        self.wait_seconds = wait_seconds
        self.max_messages = max_messages
        self.stopping = threading.Event()
        attributes = self.client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["VisibilityTimeout"])[
            "Attributes"
        ]
        self.visibility = int(attributes.get("VisibilityTimeout", "30"))
        metrics.watch()
        self.later = Later(self._second_purge)
        """Shielded CDNs' delayed second purges, run in this process."""

    def run(self) -> None:
        """Poll until stopped (by SIGTERM/SIGINT when run in the main thread, or `stop()`)."""
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, self._on_signal)
        log.info("worker started", extra={"queue_url": self.queue_url, "visibility": self.visibility})
        from botocore.exceptions import BotoCoreError, ClientError

        while not self.stopping.is_set():
            try:
                self.poll_once()
            except (BotoCoreError, ClientError) as error:  # SQS unreachable or throttling: keep going
                log.error("sqs call failed; retrying", extra={"error": str(error), "retry_in_s": SQS_BACKOFF})
                self.stopping.wait(SQS_BACKOFF)
            except Exception:  # a bug must not stop the worker: the batch's messages come back to the queue
                log.exception("batch failed; its messages will be redelivered")
                self.stopping.wait(SQS_BACKOFF)
        self.later.close()  # second purges still waiting run now: a clean stop drops none
        log.info("worker stopped", extra={"queue_url": self.queue_url})

    def stop(self) -> None:
        self.stopping.set()

    def poll_once(self) -> int:
        """Receive one batch of messages and settle it; the number of messages handled."""
        received = self.client.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.max_messages,
            WaitTimeSeconds=self.wait_seconds,
            AttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
            MessageAttributeNames=[FIRST_SENT_ATTRIBUTE],
        ).get("Messages", [])
        if not received:
            return 0
        if self.stopping.is_set():
            self._release(received)  # told to stop while polling: hand them straight back
            return 0
        deadline = time.monotonic() + self.visibility - MARGIN
        self.handle(received, deadline)
        return len(received)

    def handle(self, batch: list[MessageTypeDef], deadline: float) -> None:
        """Purge a batch's changes, then settle each message (entry/settle.py) and delete those done."""
        messages = [read_message(m.get("Body"), m["MessageId"]) for m in batch]
        report, settlement = self.pipeline.run_messages(messages, deadline)
        metrics.publish(report, self.pipeline.config, batch)
        self.later.schedule(report.second)
        received = {m["MessageId"]: _received(self.queue_url, m) for m in batch}
        redeliver = settle(settlement, received, self.client)
        self._delete([m for m in batch if m["MessageId"] not in redeliver])

    def _second_purge(self, changes: list[Change]) -> None:
        report = self.pipeline.run(changes, time.monotonic() + self.visibility - MARGIN)
        log.info("second purge", extra={"changes": len(changes), "ok": report.ok})

    def _delete(self, done: list[MessageTypeDef]) -> None:
        if not done:
            return
        entries: list[DeleteMessageBatchRequestEntryTypeDef] = [
            {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(done)
        ]
        answer = self.client.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
        for failed in answer.get("Failed", []):
            # The purge happened; a redelivery will only purge again, nothing is lost.
            log.warning("delete failed", extra={"entry": failed.get("Id"), "code": failed.get("Code")})

    def _release(self, received: list[MessageTypeDef]) -> None:
        entries: list[ChangeMessageVisibilityBatchRequestEntryTypeDef] = [
            {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0} for n, m in enumerate(received)
        ]
        self.client.change_message_visibility_batch(QueueUrl=self.queue_url, Entries=entries)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        log.info("stop requested", extra={"signal": signal.Signals(signum).name})
        self.stopping.set()


def _received(queue_url: str, message: MessageTypeDef) -> Received:
    attributes = message.get("Attributes", {})
    carried = message.get("MessageAttributes", {}).get(FIRST_SENT_ATTRIBUTE)
    first = first_sent(carried and carried.get("StringValue"), attributes.get("SentTimestamp"))
    return Received(queue_url, message.get("Body", ""), receives(attributes.get("ApproximateReceiveCount")), first)
