"""AWS Lambda handler: `s3purge.entry.aws_lambda.handler`.

Event sources: S3 notifications, SNS, SQS (partial batch failures) and EventBridge.
From SQS, one message never fails another: each is acknowledged, retried narrowed to its
failed CDNs, left for redelivery, or (failed permanently, or on its last delivery) moved to
the dead-letter queue with its reason (entry/settle.py, shared with the worker). A direct
invocation raises only for failures a retry can fix; permanent ones are logged at error
level, since Lambda's async retry would only repeat them.

Last resort (a bug: an exception no stage expected): an SQS batch whose run raises is run again
one message at a time, so the message that raises fails alone: it is left for redelivery with
the error as its reason, and on its last delivery dead-lettered with it; the others are settled
as usual (those purged before the exception are purged twice: harmless, and better than failing
a whole batch over and over until maxReceiveCount dead-letters the good messages too). A direct
invocation raises it: Lambda's async retry and its failure destination apply.

Environment (read once per cold start, with the config and its secrets):
    config_file  path of the config, relative to the function root (multicdn.config.yml)
    debug        true | false
"""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from s3purge import logs
from s3purge.errors import EventError, PurgeError
from s3purge.events import FIRST_SENT_ATTRIBUTE, Message, first_sent, read_lambda_event

if TYPE_CHECKING:  # imported by the cold start, inside the first invocation (see _cold_start)
    from s3purge.entry.settle import Received
    from s3purge.model import Change, Report
    from s3purge.pipeline import Pipeline, Settlement

log = logging.getLogger("s3purge")

SAFETY_MARGIN = 1.5
"""Seconds kept back from the invocation's deadline to report and enqueue retries."""

_pipeline: Pipeline | None = None


class PurgeFailed(PurgeError):
    """Raised on direct (S3/SNS/EventBridge) invocations so Lambda's async retry applies."""


def handler(event: Any, context: Any) -> dict[str, Any]:
    pipeline = _cold_start()
    logs.CONTEXT["request_id"] = getattr(context, "aws_request_id", None)
    deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000 - SAFETY_MARGIN
    try:
        from_sqs, messages = read_lambda_event(event)
    except EventError as error:  # permanent: a retry would read the same event
        log.error("event not read", extra={"reason": str(error)})
        return {"changes": 0, "batches": 0, "error": str(error)}
    report, settlement = _run(pipeline, messages, deadline) if from_sqs else pipeline.run_messages(messages, deadline)
    from s3purge import metrics  # already loaded by the cold start

    metrics.publish(report, pipeline.config, event)
    _send_second_purges(messages if from_sqs else [], report)
    if from_sqs:
        failed = _settle(messages, settlement, event)
        return {"batchItemFailures": [{"itemIdentifier": m.id} for m in messages if m.id in failed]}
    for message_id, reason in settlement.fail.items():
        log.error("purge failed", extra={"message_id": message_id, "reason": reason})
    for message_id, dead in settlement.dead.items():
        log.error("purge failed permanently", extra={"message_id": message_id, "reason": dead.reason})
    if settlement.retry or settlement.fail:
        # Direct invocations have no queue to narrow through: the retry repeats every CDN.
        reasons = sorted({f"{o.batch.cdn}: {o.detail}" for o in report.failures() if o.retryable})
        raise PurgeFailed("; ".join(reasons))
    return {"changes": len(report.changes), "batches": len(report.outcomes)}


def _run(pipeline: Pipeline, messages: list[Message], deadline: float) -> tuple[Report, Settlement]:
    """The batch through the pipeline; if that raises, each message alone (see the module's docstring)."""
    try:
        return pipeline.run_messages(messages, deadline)
    except Exception:
        log.exception("batch failed unexpectedly: each message again alone", extra={"messages": len(messages)})
    from s3purge.model import Report
    from s3purge.pipeline import Settlement

    report, settlement = Report(routed={}), Settlement()
    for message in messages:
        try:
            one, part = pipeline.run_messages([message], deadline)
        except Exception as error:  # this message alone: left for redelivery, with why
            log.exception("message failed unexpectedly", extra={"message_id": message.id})
            settlement.fail[message.id] = f"unexpected error: {type(error).__name__}: {str(error)[:500]}"
            continue
        _merge(report, one)
        settlement.ack += part.ack
        settlement.retry |= part.retry
        settlement.fail |= part.fail
        settlement.dead |= part.dead
    return report, settlement


def _merge(into: Report, report: Report) -> None:
    into.changes += report.changes
    into.outcomes += report.outcomes
    into.routed = {**into.routed, **report.routed}
    into.bad_sources |= report.bad_sources
    into.proofs += report.proofs
    for delay, changes in report.second.items():
        into.second.setdefault(delay, []).extend(changes)


def _settle(messages: list[Message], settlement: Settlement, event: Any) -> set[str]:
    """The ids SQS must redeliver, after sending narrowed retries and dead letters (entry/settle.py)."""
    from s3purge.entry import settle

    records = {r.get("messageId"): r for r in event["Records"] if isinstance(r, dict)}
    received = {m.id: _received(m, records.get(m.id, {})) for m in messages}
    return settle.settle(settlement, received)  # the SQS client is made only if something is sent


def _received(message: Message, record: dict[str, Any]) -> Received:
    from s3purge.entry.settle import Received, receives

    body = str(record["body"]) if "body" in record else ""  # a dead letter keeps the body as received
    attributes = record.get("attributes")
    attributes = attributes if isinstance(attributes, dict) else {}
    first = first_sent(_carried_first_sent(record), attributes.get("SentTimestamp"))
    return Received(message.queue, body, receives(attributes.get("ApproximateReceiveCount")), first)


def _carried_first_sent(record: dict[str, Any]) -> object:
    """The record's s3purge-first-sent attribute (Lambda spells it {"stringValue": ..., "dataType": ...})."""
    carried = record.get("messageAttributes")
    carried = carried.get(FIRST_SENT_ATTRIBUTE) if isinstance(carried, dict) else None
    return carried.get("stringValue") if isinstance(carried, dict) else None


def _send_second_purges(messages: list[Message], report: Report) -> None:
    """Shielded CDNs' second purges go back to the queue with DelaySeconds (a Lambda cannot wait)."""
    queues = {m.id: m.queue for m in messages}
    for delay, changes in report.second.items():
        per_queue: dict[str, list[Change]] = {}
        for change in changes:
            arn = queues.get(change.source)
            if arn is None or arn.endswith(".fifo"):  # no queue, or one refusing per-message delays
                log.warning("second purge skipped: needs a standard SQS queue", extra={"key": change.key})
            else:
                per_queue.setdefault(arn, []).append(change)
        for arn, group in per_queue.items():
            from s3purge.entry import sqs  # only needed when a CDN is shielded

            client = sqs.sqs_client()
            sqs.send_retries(client, sqs.queue_url(client, arn), {"second purge": group}, delay=math.ceil(delay))


def _cold_start() -> Pipeline:
    """The pipeline, built at the first invocation: config, vendors, HTTP, retries and metrics are
    imported here, so importing the handler stays cheap (bench/coldstart.py measures both)."""
    global _pipeline  # noqa: PLW0603 - built once per container, reused while warm
    if _pipeline is None:
        from s3purge import config as config_module
        from s3purge import metrics
        from s3purge.pipeline import Pipeline

        logs.setup(debug=logs.parse_debug(os.environ.get("debug")))
        root = Path(os.environ.get("LAMBDA_TASK_ROOT", "."))
        path = root / os.environ.get("config_file", "multicdn.config.yml")
        loaded = config_module.load(path)
        _pipeline = Pipeline(loaded)  # fetches secrets in the background; a CDN whose secret fails waits alone
        metrics.watch()
        log.info("cold start", extra={"config": str(path), "cdns": sorted(loaded.cdns)})
    return _pipeline
