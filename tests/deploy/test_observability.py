"""The dashboard and the alarms in the template: every CDN graphed and watched, names that resolve."""

from __future__ import annotations

import json
from typing import Any

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
