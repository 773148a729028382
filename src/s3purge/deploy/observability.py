"""The CloudWatch dashboard and the metric alarms of a deployment (template.py adds them).

The dashboard graphs the function's EMF metrics (s3purge.metrics) per CDN: purge items,
calls, 429s and retries, failures by class, time to fresh, the age of the oldest queued
change and the dead-letter queue. Alarms, beside template.py's own (function errors, dead
letters waiting): each CDN's failure rate, and the age of the oldest message in the queue.
"""

from __future__ import annotations

import json
import re
from typing import Any

from s3purge.config import Config
from s3purge.deploy import Options

Json = dict[str, Any]
NAMESPACE = "s3purge"  # s3purge.metrics.NAMESPACE, not imported: deploy never loads the runtime's modules
FAILURE_RATE_PERCENT = 10
"""Alarm when more than this share of a CDN's calls ended in a failed batch over 5 minutes."""
FAILURE_RATE = "IF(calls > 0, 100 * failures / calls, IF(failures > 0, 100, 0))"
"""Failures per call, in percent; failures without any call count as 100 %: a CDN can fail without
calling at all (its secret cannot be fetched, its targets are refused), and failures / 0 is no value."""
SERVICE_COUNTS = ("Skipped", "BadMessages")
OLDEST_MESSAGE_SECONDS = 900
"""Alarm when a change has waited this long in the queue (purges are falling behind)."""


def resources(config: Config, options: Options) -> Json:
    """Dashboard and alarms for this deployment's CDNs."""
    actions = [{"Ref": "AlarmTopic"}] if options.alarm_email else []
    found: Json = {"Dashboard": _dashboard(config, options)}
    for n, cdn in enumerate(sorted(config.cdns)):
        found[f"FailureRateAlarm{n}{_logical(cdn)}"] = _failure_rate(options, cdn, actions)
    if options.trigger == "sqs":
        found["OldestMessageAlarm"] = _oldest_message(options, actions)
    return found


def dashboard_name(options: Options) -> str:
    return options.name


def _logical(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", name)[:40]


def _failure_rate(options: Options, cdn: str, actions: list[Any]) -> Json:
    def metric(ident: str, name: str) -> Json:
        stat = {
            "Metric": {
                "Namespace": NAMESPACE,
                "MetricName": name,
                "Dimensions": [{"Name": "Service", "Value": options.name}, {"Name": "CDN", "Value": cdn}],
            },
            "Period": 300,
            "Stat": "Sum",
        }
        return {"Id": ident, "MetricStat": stat, "ReturnData": False}

    properties: Json = {
        "AlarmName": f"{options.name}-failure-rate-{cdn}",
        "AlarmDescription": f"More than {FAILURE_RATE_PERCENT}% of purges on CDN {cdn} failed in 5 minutes",
        "Metrics": [
            metric("failures", "Failures"),
            metric("calls", "Calls"),
            {"Id": "rate", "Expression": FAILURE_RATE, "Label": "failure %", "ReturnData": True},
        ],
        "EvaluationPeriods": 1,
        "Threshold": FAILURE_RATE_PERCENT,
        "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "notBreaching",
    }
    if actions:
        properties["AlarmActions"] = actions
    return {"Type": "AWS::CloudWatch::Alarm", "Properties": properties}


def _oldest_message(options: Options, actions: list[Any]) -> Json:
    properties: Json = {
        "AlarmName": f"{options.name}-oldest-message",
        "AlarmDescription": f"A change has waited over {OLDEST_MESSAGE_SECONDS} s in the queue: purges fall behind",
        "Namespace": "AWS/SQS",
        "MetricName": "ApproximateAgeOfOldestMessage",
        "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["Queue", "QueueName"]}}],
        "Statistic": "Maximum",
        "Period": 300,
        "EvaluationPeriods": 1,
        "Threshold": OLDEST_MESSAGE_SECONDS,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "TreatMissingData": "notBreaching",
    }
    if actions:
        properties["AlarmActions"] = actions
    return {"Type": "AWS::CloudWatch::Alarm", "Properties": properties}


def _dashboard(config: Config, options: Options) -> Json:
    cdns = sorted(config.cdns)
    widgets = [
        _graph(
            "Changes and purge items per CDN",
            [_per_cdn(name, options, cdn) for cdn in cdns for name in ("Changes", "PurgeItems")],
            0,
            0,
        ),
        _graph("Calls per CDN", [_per_cdn("Calls", options, cdn) for cdn in cdns], 12, 0),
        _graph(
            "429s and retries",
            [_per_cdn(name, options, cdn) for cdn in cdns for name in ("Throttled", "Retries")],
            0,
            6,
        ),
        _graph(
            "Failures by class",
            [
                _per_cdn(name, options, cdn)
                for cdn in cdns
                for name in (
                    "Failures",
                    "FailuresPermanent",
                    "CallErrors4xx",
                    "CallErrors5xx",
                    "CallErrorsNetwork",
                    "Stale",
                    "Unverified",
                )
            ],
            12,
            6,
        ),
        _graph(
            "Time to fresh (p50, p99)",
            [_per_cdn("TimeToFresh", options, cdn, stat) for cdn in cdns for stat in ("p50", "p99")],
            0,
            12,
        ),
        _graph("Oldest message age (ms)", [_service("OldestMessageAge", options, "Maximum")], 12, 12),
        _graph(
            "Dead-letter queue",
            [["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", f"{options.name}-dlq"]],
            0,
            18,
        ),
        _graph("Skipped changes, unreadable messages", [_service(n, options) for n in SERVICE_COUNTS], 12, 18),
    ]
    body = json.dumps({"widgets": widgets}, separators=(",", ":"))
    return {
        "Type": "AWS::CloudWatch::Dashboard",
        "Properties": {"DashboardName": dashboard_name(options), "DashboardBody": {"Fn::Sub": body}},
    }


def _per_cdn(name: str, options: Options, cdn: str, stat: str = "Sum") -> list[Any]:
    return [NAMESPACE, name, "Service", options.name, "CDN", cdn, {"stat": stat, "label": f"{cdn} {name} {stat}"}]


def _service(name: str, options: Options, stat: str = "Sum") -> list[Any]:
    return [NAMESPACE, name, "Service", options.name, {"stat": stat}]


def _graph(title: str, metrics: list[list[Any]], x: int, y: int) -> Json:
    return {
        "type": "metric",
        "x": x,
        "y": y,
        "width": 12,
        "height": 6,
        "properties": {
            "title": title,
            "metrics": metrics,
            "region": "${AWS::Region}",
            "period": 60,
            "view": "timeSeries",
            "stacked": False,
        },
    }
