"""What an operator watches: EMF metrics per CDN, purge receipts, and changes skipped with the reason.

After each Lambda invocation and each worker batch, `publish()` writes, on the "s3purge"
logger (JSON lines on stdout, which CloudWatch Logs reads):
  - one CloudWatch Embedded Metric Format line per CDN (namespace "s3purge", dimensions
    Service and CDN): Changes, PurgeItems, Calls, Retries, Throttled (HTTP 429 answers),
    CallErrors4xx (but 429) / CallErrors5xx / CallErrorsNetwork (failed attempts by reason class),
    Failures (batches that failed in the end), FailuresPermanent (those of them dead-lettered at
    once, not retried: a refused key, a vendor 4xx), and with verification on: Stale (still
    stale after its purges), Unverified (no proof either way: no answer, probe budget spent) and
    TimeToFresh (first purge to the probe that saw the new object);
  - one line for the service: OldestMessageAge (SQS SentTimestamp), Skipped, BadMessages;
  - a "purge receipt" per accepted batch: the vendor's purge id with the changes it covers;
  - a "change skipped" line per change no route applies to, with the reason.
Calls, retries and 429s are counted from the executor's own "vendor call" log lines, so
the executor stays unaware of metrics. Our own EMF lines, not Powertools' Metrics: the
same JSON for a fraction of the import (bench/metrics_cost.py).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from s3purge.config import Config
from s3purge.model import Report
from s3purge.unrouted import why_unrouted

log = logging.getLogger("s3purge")

NAMESPACE = "s3purge"
CDN_METRICS = {
    "Changes": "Count",
    "PurgeItems": "Count",
    "Calls": "Count",
    "Retries": "Count",
    "Throttled": "Count",
    "CallErrors4xx": "Count",
    "CallErrors5xx": "Count",
    "CallErrorsNetwork": "Count",
    "Failures": "Count",
    "FailuresPermanent": "Count",
    "Stale": "Count",
    "Unverified": "Count",
    "TimeToFresh": "Milliseconds",
}
SERVICE_METRICS = {"OldestMessageAge": "Milliseconds", "Skipped": "Count", "BadMessages": "Count"}
MAX_OBJECTS = 20
"""Objects named in one receipt line; the rest are counted (a receipt must stay one line)."""


class _CallCounter(logging.Handler):
    """Counts the executor's "vendor call" lines per CDN: calls, retries, 429s, errors by class."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.counts: dict[str, Counter[str]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg != "vendor call":
            return
        fields = vars(record)
        counts = self.counts.setdefault(str(fields.get("cdn")), Counter())
        counts["Calls"] += 1
        counts["Retries"] += int(fields.get("attempt") or 1) > 1
        status = fields.get("status")
        counts["Throttled"] += status == 429
        if fields.get("result") == "failed" and status != 429:  # a 429 counts as Throttled only
            counts[_error_class(status)] += 1

    def drain(self) -> dict[str, Counter[str]]:
        with self.lock or threading.Lock():
            counts, self.counts = self.counts, {}
        return counts


def _error_class(status: object) -> str:
    if not isinstance(status, int):
        return "CallErrorsNetwork"  # timeout, connection refused, deadline
    return "CallErrors5xx" if status >= 500 else "CallErrors4xx"


_counter = _CallCounter()
_fresh: dict[str, list[float]] = {}
_fresh_lock = threading.Lock()


def watch() -> None:
    """Start counting vendor calls (once per process: Lambda cold start, worker start)."""
    logger = logging.getLogger("s3purge")
    if _counter not in logger.handlers:
        logger.addHandler(_counter)


def time_to_fresh(cdn: str, seconds: float) -> None:
    """Record how long CDN `cdn` took to serve the new content, for the next publish() (verify calls it)."""
    with _fresh_lock:
        _fresh.setdefault(cdn, []).append(round(seconds * 1000, 1))


def publish(report: Report, config: Config, received: Any = None, now_ms: int | None = None) -> None:
    """Log receipts, skipped changes and the EMF lines of one invocation or worker batch.

    `received`: the Lambda event, or the worker's list of SQS messages (for the oldest age).
    """
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    for receipt in receipts(report, config):
        log.info("purge receipt", extra=receipt)
    skipped = 0
    for change in report.changes:
        reason = why_unrouted(change, config)
        if reason is not None:
            skipped += 1
            log.info(
                "change skipped",
                extra={"message_id": change.source, "bucket": change.bucket, "key": change.key, "reason": reason},
            )
    with _fresh_lock:
        fresh = {cdn: values for cdn, values in _fresh.items() if values}
        _fresh.clear()
    service = {"Skipped": skipped, "BadMessages": len(report.bad_sources)}
    oldest = oldest_age_ms(sqs_records(received), now_ms)
    if oldest is not None:
        service["OldestMessageAge"] = oldest
    for doc in documents(cdn_values(report, _counter.drain(), fresh), service, service_name(), now_ms):
        log.info("metrics", extra=doc)


def cdn_values(
    report: Report, calls: Mapping[str, Counter[str]], fresh: Mapping[str, list[float]]
) -> dict[str, dict[str, float | list[float]]]:
    """CDN -> metric name -> value, for every CDN this run touched."""
    values: dict[str, Counter[str]] = {}
    for change in report.changes:
        routed = report.routed.get(change.source, set())
        for cdn in routed if change.cdns is None else routed & change.cdns:
            values.setdefault(cdn, Counter())["Changes"] += 1
    for outcome in report.outcomes:
        counts = values.setdefault(outcome.batch.cdn, Counter())
        counts["PurgeItems"] += len(outcome.batch.values)
        counts["Failures"] += not outcome.ok
        counts["FailuresPermanent"] += not outcome.ok and not outcome.retryable
    for proof in report.proofs:
        counts = values.setdefault(proof.cdn, Counter())
        counts["Stale"] += proof.result == "stale"
        counts["Unverified"] += proof.result == "unverified"
    for cdn, counted in calls.items():
        values.setdefault(cdn, Counter()).update(counted)
    out: dict[str, dict[str, float | list[float]]] = {}
    for cdn in sorted({*values, *fresh}):
        counted = values.get(cdn, Counter())
        out[cdn] = {name: counted[name] for name in CDN_METRICS if name != "TimeToFresh"}
        if cdn in fresh:
            out[cdn]["TimeToFresh"] = fresh[cdn][:100]  # EMF: at most 100 values per metric
    return out


def documents(
    per_cdn: Mapping[str, Mapping[str, float | list[float]]],
    service: Mapping[str, float],
    name: str,
    now_ms: int,
) -> list[dict[str, Any]]:
    """EMF documents: one per CDN, one for the service (spec: CloudWatch_Embedded_Metric_Format)."""
    docs = [
        _document(now_ms, ["Service", "CDN"], {"Service": name, "CDN": cdn}, values, CDN_METRICS)
        for cdn, values in per_cdn.items()
    ]
    docs.append(_document(now_ms, ["Service"], {"Service": name}, service, SERVICE_METRICS))
    return docs


def _document(
    now_ms: int,
    dimensions: list[str],
    members: dict[str, str],
    values: Mapping[str, float | list[float]],
    units: Mapping[str, str],
) -> dict[str, Any]:
    metrics = [{"Name": metric, "Unit": units[metric]} for metric in values]
    directive = {"Namespace": NAMESPACE, "Dimensions": [dimensions], "Metrics": metrics}
    return {"_aws": {"Timestamp": now_ms, "CloudWatchMetrics": [directive]}, **members, **values}


def service_name() -> str:
    """The Service dimension: the Lambda function's name (the stack's), or S3PURGE_SERVICE for a worker."""
    return os.environ.get("AWS_LAMBDA_FUNCTION_NAME") or os.environ.get("S3PURGE_SERVICE") or "s3purge-worker"


def sqs_records(received: Any) -> list[Mapping[str, Any]]:
    """SQS messages from a Lambda event (Records[].attributes) or a receive_message answer (Attributes)."""
    if isinstance(received, Mapping):
        received = received.get("Records")
    if not isinstance(received, list):
        return []
    return [r for r in received if isinstance(r, Mapping)]


def oldest_age_ms(records: Iterable[Mapping[str, Any]], now_ms: int) -> int | None:
    """Age of the oldest message: now minus its SentTimestamp (when it entered the queue)."""
    sent = []
    for record in records:
        attributes = record.get("attributes") or record.get("Attributes") or {}
        stamp = attributes.get("SentTimestamp") if isinstance(attributes, Mapping) else None
        if isinstance(stamp, str) and stamp.isdigit():
            sent.append(int(stamp))
    return max(0, now_ms - min(sent)) if sent else None


def receipts(report: Report, config: Config) -> list[dict[str, Any]]:
    """Per accepted batch: the vendor's purge id(s) and the changes (message, bucket/key) it covers."""
    objects: dict[str, list[str]] = {}
    for change in report.changes:
        objects.setdefault(change.source, []).append(f"{change.bucket}/{change.key}")
    found = []
    for outcome in report.outcomes:
        if not outcome.ok:
            continue
        batch = outcome.batch
        covered = sorted({o for source in batch.sources for o in objects.get(source, [])})
        cdn = config.cdns.get(batch.cdn)
        found.append(
            {
                "cdn": batch.cdn,
                "vendor": cdn.provider.vendor if cdn is not None else None,
                "action": batch.action,
                "kind": batch.kind,
                "items": len(batch.values),
                "receipt": outcome.detail,
                "message_ids": sorted(batch.sources),
                "objects": covered[:MAX_OBJECTS],
                "more_objects": max(0, len(covered) - MAX_OBJECTS),
            }
        )
    return found
