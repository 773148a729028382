"""The CloudFormation template of a deployment: built from the config, nothing else.

`deploy` turns this template into a stack and `template` prints it, so both always
describe the same resources. The function's code is a parameter (an S3 object), so the
template itself is the same for every build of the package. The resources are made in
resources.py, the role in iam.py, the dashboard and the per-CDN alarms in observability.py.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from s3purge.config import Config
from s3purge.deploy import DeployError, Options, check_name, iam, observability
from s3purge.deploy import resources as parts
from s3purge.deploy.intrinsics import Json

FORMAT_VERSION = "2010-09-09"


def build(config: Config, options: Options) -> Json:
    """The whole template for this config and these options."""
    check_name(options.name)
    buckets = selected_buckets(config, options)
    resources: Json = {
        **parts.dead_letters(options),
        "Role": iam.role(config, options),
        "Function": parts.function(options),
        **parts.trigger(options, buckets),
        **parts.alarms(options),
        **observability.resources(config, options),  # dashboard, failure-rate and queue-age alarms
    }
    return {
        "AWSTemplateFormatVersion": FORMAT_VERSION,
        "Description": f"s3purge: purge CDN caches when objects change in {', '.join(buckets)}",
        "Metadata": {"s3purge": {"buckets": buckets, "trigger": options.trigger}},
        "Parameters": {
            "CodeBucket": {"Type": "String", "Description": "S3 bucket holding the Lambda package"},
            "CodeKey": {"Type": "String", "Description": "Key of the package zip built by s3purge"},
        },
        "Resources": resources,
        "Outputs": _outputs(options, buckets),
    }


def dump(template: Json, fmt: str = "json") -> str:
    if fmt == "yaml":
        return yaml.dump(template, Dumper=_NoAliases, sort_keys=False, default_flow_style=False)
    return json.dumps(template, indent=2) + "\n"


class _NoAliases(yaml.SafeDumper):
    """CloudFormation rejects YAML aliases, which PyYAML writes for values used twice."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def selected_buckets(config: Config, options: Options) -> list[str]:
    """The buckets to hook up: those asked for (each must have routes), else all in the config."""
    if not options.buckets:
        return sorted(config.buckets)
    unknown = [b for b in options.buckets if not config.routes(b)]
    if unknown:
        raise DeployError(
            f"bucket(s) {', '.join(unknown)} have no routes in {config.path} "
            f"(configured: {', '.join(sorted(config.buckets))})"
        )
    return sorted(set(options.buckets))


def _outputs(options: Options, buckets: list[str]) -> Json:
    outputs: Json = {
        "FunctionName": {"Value": {"Ref": "Function"}},
        "FunctionArn": {"Value": {"Fn::GetAtt": ["Function", "Arn"]}},
        "DeadLetterQueueUrl": {"Value": {"Ref": "DeadLetterQueue"}},
        "LogGroup": {"Value": {"Ref": "LogGroup"}},
        "Buckets": {"Value": ",".join(buckets), "Description": "Buckets whose notifications point here"},
        "Trigger": {"Value": options.trigger},
    }
    if options.trigger == "sqs":
        outputs["QueueUrl"] = {"Value": {"Ref": "Queue"}}
        outputs["QueueArn"] = {"Value": {"Fn::GetAtt": ["Queue", "Arn"]}}
        outputs["NotificationTarget"] = {"Value": {"Fn::GetAtt": ["Queue", "Arn"]}}
    else:
        outputs["NotificationTarget"] = {"Value": {"Fn::GetAtt": ["Function", "Arn"]}}
    if options.alarm_email:
        outputs["AlarmTopicArn"] = {"Value": {"Ref": "AlarmTopic"}}
    return outputs
