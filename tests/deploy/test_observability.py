"""The dashboard and the alarms in the template: every CDN graphed and watched, names that resolve."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pytest

from s3purge import config as config_module
from s3purge.deploy import Options, template
from s3purge.metrics import CDN_METRICS, NAMESPACE, SERVICE_METRICS


def resources(loaded: config_module.Config, options: Options) -> dict[str, Any]:
    built: dict[str, Any] = template.build(loaded, options)["Resources"]
    return built


def test_the_dashboard_graphs_every_metric_of_every_cdn(loaded: config_module.Config) -> None:
    built = resources(loaded, Options(name="purger"))
    body = built["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    widgets = json.loads(body.replace("${AWS::Region}", "eu-west-1"))["widgets"]

    ours = [m for w in widgets for m in w["properties"]["metrics"] if m[0] == NAMESPACE]
    assert {m[1] for m in ours} == {*CDN_METRICS, *SERVICE_METRICS}
    assert {m[5] for m in ours if m[4:5] == ["CDN"]} == {"edge", "cf", "fast"}
    assert all(m[2:4] == ["Service", "purger"] for m in ours)  # the function's name, as the EMF lines say
    assert ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", "purger-dlq"] in [
        m for w in widgets for m in w["properties"]["metrics"]
    ]
    assert {w["properties"]["region"] for w in widgets} == {"eu-west-1"}


def test_alarms_watch_each_cdns_failure_rate_and_the_oldest_message(loaded: config_module.Config) -> None:
    built = resources(loaded, Options(name="purger", alarm_email="ops@example.test"))
    alarms = {r["Properties"]["AlarmName"]: r["Properties"] for r in built.values() if r["Type"].endswith("Alarm")}

    assert set(alarms) >= {
        "purger-failure-rate-edge", "purger-failure-rate-cf", "purger-failure-rate-fast",
        "purger-oldest-message", "purger-dead-letters",
    }  # fmt: skip
    rate = alarms["purger-failure-rate-cf"]
    stats = {m["Id"]: m["MetricStat"]["Metric"] for m in rate["Metrics"] if "MetricStat" in m}
    assert {k: (v["MetricName"], v["Dimensions"][1]["Value"]) for k, v in stats.items()} == {
        "failures": ("Failures", "cf"),
        "calls": ("Calls", "cf"),
    }
    assert rate["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    oldest = alarms["purger-oldest-message"]
    assert (oldest["MetricName"], oldest["Dimensions"][0]["Value"]) == (
        "ApproximateAgeOfOldestMessage",
        {"Fn::GetAtt": ["Queue", "QueueName"]},
    )


def test_a_direct_trigger_has_no_queue_to_watch(loaded: config_module.Config) -> None:
    built = resources(loaded, Options(trigger="direct"))

    assert "OldestMessageAlarm" not in built
    assert "Dashboard" in built


@pytest.mark.parametrize(
    ("failures", "calls", "fires"),
    [(3, 0, True), (0, 0, False), (1, 100, False), (5, 10, True), (0, 7, False)],
)
def test_the_failure_rate_alarm_fires_on_failures_without_calls(
    loaded: config_module.Config, failures: int, calls: int, fires: bool
) -> None:
    # A CDN whose secret cannot be fetched fails every batch without a single call.
    built = resources(loaded, Options(name="purger"))
    rate = built["FailureRateAlarm0cf"]["Properties"]
    (expression,) = [m["Expression"] for m in rate["Metrics"] if m.get("ReturnData")]

    value = metric_math(expression, failures=failures, calls=calls)

    assert rate["ComparisonOperator"] == "GreaterThanThreshold"
    assert (value > rate["Threshold"]) is fires  # NaN (no value: x / 0) never breaches


def metric_math(expression: str, **values: float) -> float:
    """The subset of CloudWatch metric math the alarms use, on one data point: IF, + - * /, comparisons.

    As in CloudWatch, x / 0 is no value (NaN here) and IF picks its branch per data point.
    """

    class Point(float):
        def __truediv__(self, other: float) -> float:
            return Point(math.nan if other == 0 else float(self) / other)

        def __rtruediv__(self, other: float) -> float:
            return Point(math.nan if self == 0 else other / float(self))

        def __mul__(self, other: float) -> float:
            return Point(float(self) * other)

        __rmul__ = __mul__

    def if_(condition: float, then: float, otherwise: float) -> float:
        return then if condition else otherwise

    names = {name: Point(value) for name, value in values.items()}
    assert set(re.findall(r"[A-Za-z_]+", expression)) <= {"IF", *names}, expression
    result: float = eval(expression.replace("IF(", "if_("), {"__builtins__": {}, "if_": if_}, names)  # noqa: S307
    return result
