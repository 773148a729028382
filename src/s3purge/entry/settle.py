"""One settle path for Lambda and the worker: what a batch's Settlement asks of SQS.

    ack      nothing to send; the entry point acknowledges it
    retry    its changes narrowed to the CDNs that failed retryably are enqueued, then it is acknowledged
    dead     moved to its queue's dead-letter queue with its reason, then acknowledged
    fail     left for SQS to redeliver; on its last delivery (ApproximateReceiveCount has reached the
             RedrivePolicy's maxReceiveCount) it is dead-lettered like `dead` instead, as received,
             because SQS's own move would drop the reason ("still stale after 2 purges: serves ETag X")

A message whose retry or dead letter could not be sent is left for redelivery too. The
entry point turns the ids returned into batchItemFailures (Lambda) or keeps them from
DeleteMessageBatch (the worker).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from s3purge.pipeline import Dead, Settlement

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

    from s3purge.entry.sqs import Redrive

log = logging.getLogger("s3purge")


@dataclass(frozen=True)
class Received:
    """An SQS message as the entry point received it."""

    queue: str | None
    """Its queue's URL (the worker) or ARN (Lambda's records; its URL is asked once per process)."""
    body: str
    receives: int = 1
    """ApproximateReceiveCount: this is its n-th delivery."""
    first_sent: str | None = None
    """Epoch ms its change first entered the queue (events.first_sent), kept by its retry or dead letter."""


def receives(count: object) -> int:
    """ApproximateReceiveCount from a message's system attributes (1 when absent or unreadable)."""
    return int(count) if isinstance(count, str) and count.isdigit() else 1


def settle(settlement: Settlement, received: Mapping[str, Received], client: SQSClient | None = None) -> set[str]:
    """Send the batch's narrowed retries and dead letters to their queues; the ids SQS must redeliver.

    `client` defaults to the process's own (sqs.sqs_client()), made only when something is sent."""
    redeliver: set[str] = set()
    for queue, part in _per_queue(settlement, received).items():
        redeliver |= _nowhere(part) if queue is None else _settle(client, queue, part, received)
    log.info(
        "batch settled",
        extra={
            "acked": len(settlement.ack),
            "narrowed": len(set(settlement.retry) - redeliver),
            "dead_lettered": len((set(settlement.dead) | set(settlement.fail)) - redeliver),
            "failed": len(redeliver),
        },
    )
    return redeliver


def _per_queue(settlement: Settlement, received: Mapping[str, Received]) -> dict[str | None, Settlement]:
    """The settlement split by the queue each message came from (acks need no queue: left out)."""
    parts: dict[str | None, Settlement] = {}
    for name in ("retry", "fail", "dead"):
        for message_id, value in getattr(settlement, name).items():
            part = parts.setdefault(received[message_id].queue, Settlement())
            getattr(part, name)[message_id] = value
    return parts


def _settle(client: SQSClient | None, queue: str, part: Settlement, received: Mapping[str, Received]) -> set[str]:
    """One queue's share: narrowed retries, dead letters, last deliveries; the ids to redeliver."""
    from s3purge.entry import sqs  # only when something goes to a queue: not at a clean cold start

    try:
        client = client or sqs.sqs_client()  # no region or endpoint: like SQS unreachable
        url = sqs.queue_url(client, queue) if queue.startswith("arn:") else queue
    except Exception as error:  # noqa: BLE001 - SQS unreachable: let it redeliver them
        log.warning("queue not found", extra={"queue": queue, "error": str(error)})
        return {*part.retry, *part.fail, *part.dead}
    unsent = sqs.send_retries(client, url, part.retry, first_sent=_first_sent(part.retry, received))
    return unsent | _dead_letter(client, url, part, received) if part.dead or part.fail else unsent


def _dead_letter(client: SQSClient, url: str, part: Settlement, received: Mapping[str, Received]) -> set[str]:
    """Dead letters and last deliveries to the queue's DLQ; the ids to redeliver (the other failures too)."""
    from s3purge.entry import sqs

    try:
        redrive = sqs.redrive(client, url)
    except Exception as error:  # noqa: BLE001 - then they go back to the queue (SQS's own redrive applies)
        log.warning("dead-letter queue not found", extra={"queue_url": url, "error": str(error)})
        _log(Settlement(fail=part.fail), {}, None)
        return {*part.fail, *part.dead}
    last = _last_deliveries(part.fail, received, redrive)
    _log(part, last, redrive)
    if redrive is None:
        return set(part.fail)  # the dead ones are logged above and acknowledged
    bodies = {message_id: received[message_id].body for message_id in [*part.dead, *last]}
    first_sent = _first_sent([*part.dead, *last], received)
    unsent = sqs.send_dead(client, redrive.dead_letter_url, part.dead | last, bodies, first_sent)
    return unsent | (set(part.fail) - set(last))


def _first_sent(ids: Iterable[str], received: Mapping[str, Received]) -> dict[str, str]:
    return {i: stamp for i in ids if (stamp := received[i].first_sent) is not None}


def _last_deliveries(
    fail: dict[str, str], received: Mapping[str, Received], redrive: Redrive | None
) -> dict[str, Dead]:
    """The failed messages SQS would move to the DLQ rather than deliver again, with their reasons."""
    if redrive is None:
        return {}
    # No narrowed changes: the body goes as received, as SQS's own move would keep it.
    return {i: Dead(why, []) for i, why in fail.items() if received[i].receives >= redrive.max_receives}


def _log(part: Settlement, last: dict[str, Dead], redrive: Redrive | None) -> None:
    where = "; sent to the dead-letter queue" if redrive else "; no dead-letter queue"
    for message_id, why in part.dead.items():
        log.error("purge failed permanently" + where, extra={"message_id": message_id, "reason": why.reason})
    for message_id, reason in part.fail.items():
        message = (
            "purge failed on its last delivery" + where if message_id in last else "purge failed; left for redelivery"
        )
        log.error(message, extra={"message_id": message_id, "reason": reason})


def _nowhere(part: Settlement) -> set[str]:
    """Messages without a queue (a record lacking its eventSourceARN): nowhere to narrow or dead-letter."""
    for message_id, why in part.dead.items():
        log.error("purge failed permanently", extra={"message_id": message_id, "reason": why.reason})
    for message_id, reason in part.fail.items():
        log.error("purge failed; left for redelivery", extra={"message_id": message_id, "reason": reason})
    return {*part.retry, *part.fail}  # a retry repeats every CDN
