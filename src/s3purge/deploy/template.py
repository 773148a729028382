"""The CloudFormation template of a deployment: built from the config, nothing else.

`deploy` turns this template into a stack and `template` prints it, so both always
describe the same resources. The function's code is a parameter (an S3 object), so the
template itself is the same for every build of the package.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from s3purge.config import Config
from s3purge.deploy import CONFIG_NAME, HANDLER, INSTANCES_ENV, DeployError, Options, check_name, observability
from s3purge.secrets import Secret

Json = dict[str, Any]
FORMAT_VERSION = "2010-09-09"
SKIPPED_BY_SOME_EMULATORS = ("AWS::SQS::QueuePolicy", "AWS::CloudWatch::Alarm")
"""Types that stack.py creates through the service API when the stack did not."""


def build(config: Config, options: Options) -> Json:
    """The whole template for this config and these options."""
    check_name(options.name)
    buckets = selected_buckets(config, options)
    resources: Json = {
        "DeadLetterQueue": _dead_letter_queue(options),
        "DeadLetterQueuePolicy": _tls_only_policy("DeadLetterQueue"),
        "LogGroup": {
            "Type": "AWS::Logs::LogGroup",
            "Properties": {"LogGroupName": log_group(options), "RetentionInDays": options.log_retention_days},
        },
        "Role": _role(config, options),
        "Function": _function(options),
    }
    if options.trigger == "sqs":
        resources |= _queue_trigger(options, buckets)
    else:
        resources |= _direct_trigger(buckets)
    resources |= _alarms(options)
    resources |= observability.resources(config, options)  # dashboard, failure-rate and queue-age alarms
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
    import json

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


def log_group(options: Options) -> str:
    return f"/aws/lambda/{options.name}"


def _sub(text: str) -> Json:
    return {"Fn::Sub": text}


def _arn(service: str, resource: str, region: bool = True) -> Json:
    where = "${AWS::Region}" if region else ""
    return _sub(f"arn:${{AWS::Partition}}:{service}:{where}:${{AWS::AccountId}}:{resource}")


def _literal(text: str) -> str:
    """Escape `${` so Fn::Sub leaves a user's name as written."""
    return text.replace("${", "${!")


def _queue(name: str, retention: int | None = None, visibility: int | None = None) -> Json:
    properties: Json = {"QueueName": name, "SqsManagedSseEnabled": True}
    if retention:
        properties["MessageRetentionPeriod"] = retention
    if visibility:
        properties["VisibilityTimeout"] = visibility
    return {"Type": "AWS::SQS::Queue", "Properties": properties}


def _dead_letter_queue(options: Options) -> Json:
    queue = _queue(f"{options.name}-dlq", retention=14 * 24 * 3600)
    # Only our own events queue may use it as its dead-letter queue. Its ARN is written out,
    # not referenced: the events queue already refers to this one (a reference would be a cycle).
    allow: Json = {"redrivePermission": "denyAll"}
    if options.trigger == "sqs":
        source = _arn("sqs", _literal(f"{options.name}-events"))
        allow = {"redrivePermission": "byQueue", "sourceQueueArns": [source]}
    queue["Properties"]["RedriveAllowPolicy"] = allow
    return queue


def _deny_plain_http(queue: str) -> Json:
    return {
        "Sid": "TlsOnly",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "sqs:*",
        "Resource": {"Fn::GetAtt": [queue, "Arn"]},
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def _tls_only_policy(queue: str) -> Json:
    return {
        "Type": "AWS::SQS::QueuePolicy",
        "Properties": {
            "Queues": [{"Ref": queue}],
            "PolicyDocument": {"Version": "2012-10-17", "Statement": [_deny_plain_http(queue)]},
        },
    }


def _function(options: Options) -> Json:
    properties: Json = {
        "FunctionName": options.name,
        "Description": "s3purge: purge CDN caches on S3 changes",
        "Runtime": options.runtime,
        "Architectures": [options.arch],
        "Handler": HANDLER,
        "Code": {"S3Bucket": {"Ref": "CodeBucket"}, "S3Key": {"Ref": "CodeKey"}},
        "Role": {"Fn::GetAtt": ["Role", "Arn"]},
        "MemorySize": options.memory,
        "Timeout": options.timeout,
        "Environment": {
            "Variables": {
                "config_file": CONFIG_NAME,
                "debug": str(options.debug).lower(),
                INSTANCES_ENV: str(options.max_concurrency),
            }
        },
    }
    if options.trigger == "direct":
        # Asynchronous S3 invocations that fail every retry land here instead of vanishing.
        properties["DeadLetterConfig"] = {"TargetArn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}}
        # No event source mapping to cap: reserve exactly the instances the vendor limits were shared by.
        properties["ReservedConcurrentExecutions"] = options.max_concurrency
    # The log group first: otherwise Lambda may create it itself, without retention.
    return {"Type": "AWS::Lambda::Function", "DependsOn": "LogGroup", "Properties": properties}


def _queue_trigger(options: Options, buckets: list[str]) -> Json:
    queue = _queue(f"{options.name}-events", retention=4 * 24 * 3600, visibility=6 * options.timeout)
    queue["Properties"]["RedrivePolicy"] = {
        "deadLetterTargetArn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]},
        "maxReceiveCount": options.max_receive_count,
    }
    return {
        "Queue": queue,
        "QueuePolicy": {
            "Type": "AWS::SQS::QueuePolicy",
            "Properties": {
                "Queues": [{"Ref": "Queue"}],
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        _deny_plain_http("Queue"),
                        {
                            "Sid": "BucketEvents",
                            "Effect": "Allow",
                            "Principal": {"Service": "s3.amazonaws.com"},
                            "Action": "sqs:SendMessage",
                            "Resource": {"Fn::GetAtt": ["Queue", "Arn"]},
                            "Condition": {
                                "ArnLike": {"aws:SourceArn": [_bucket_arn(b) for b in buckets]},
                                "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
                            },
                        },
                    ],
                },
            },
        },
        "EventSourceMapping": {
            "Type": "AWS::Lambda::EventSourceMapping",
            "Properties": {
                "EventSourceArn": {"Fn::GetAtt": ["Queue", "Arn"]},
                "FunctionName": {"Ref": "Function"},
                "BatchSize": options.batch_size,
                "MaximumBatchingWindowInSeconds": options.batch_window,
                "FunctionResponseTypes": ["ReportBatchItemFailures"],
                # At most this many instances, each pacing at its share of every vendor limit.
                "ScalingConfig": {"MaximumConcurrency": options.max_concurrency},
            },
        },
    }


def _direct_trigger(buckets: list[str]) -> Json:
    return {
        f"InvokePermission{i}": {
            "Type": "AWS::Lambda::Permission",
            "Properties": {
                "Action": "lambda:InvokeFunction",
                "FunctionName": {"Fn::GetAtt": ["Function", "Arn"]},
                "Principal": "s3.amazonaws.com",
                "SourceArn": _bucket_arn(bucket),
                "SourceAccount": {"Ref": "AWS::AccountId"},
            },
        }
        for i, bucket in enumerate(buckets)
    }


def _bucket_arn(bucket: str) -> Json:
    return _sub(f"arn:${{AWS::Partition}}:s3:::{_literal(bucket)}")


def _alarms(options: Options) -> Json:
    resources: Json = {}
    actions: list[Any] = []
    if options.alarm_email:
        resources["AlarmTopic"] = {
            "Type": "AWS::SNS::Topic",
            "Properties": {
                "TopicName": f"{options.name}-alarms",
                "Subscription": [{"Protocol": "email", "Endpoint": options.alarm_email}],
            },
        }
        actions = [{"Ref": "AlarmTopic"}]
    resources["ErrorsAlarm"] = _alarm(
        {
            "AlarmName": f"{options.name}-function-errors",
            "AlarmDescription": "s3purge failed to purge (see the function's log group)",
            "Namespace": "AWS/Lambda",
            "MetricName": "Errors",
            "Dimensions": [{"Name": "FunctionName", "Value": {"Ref": "Function"}}],
            "Statistic": "Sum",
        },
        actions,
    )
    resources["DeadLetterAlarm"] = _alarm(
        {
            "AlarmName": f"{options.name}-dead-letters",
            "AlarmDescription": "S3 events s3purge gave up on are waiting in the dead-letter queue",
            "Namespace": "AWS/SQS",
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}}],
            "Statistic": "Maximum",
        },
        actions,
    )
    return resources


def _alarm(metric: Json, actions: list[Any]) -> Json:
    """Alarm as soon as one error (or dead letter) shows up within five minutes."""
    properties: Json = {
        **metric,
        "Period": 300,
        "EvaluationPeriods": 1,
        "Threshold": 1,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "TreatMissingData": "notBreaching",
    }
    if actions:
        properties["AlarmActions"] = actions
    return {"Type": "AWS::CloudWatch::Alarm", "Properties": properties}


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


# --- the role: every statement scoped to this deployment's own resources ---


def _role(config: Config, options: Options) -> Json:
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "Description": f"s3purge function {options.name}: only what it needs",
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            },
            "Policies": [
                {
                    "PolicyName": "s3purge",
                    "PolicyDocument": {"Version": "2012-10-17", "Statement": list(statements(config, options))},
                }
            ],
        },
    }


def statements(config: Config, options: Options) -> Iterator[Json]:
    """The function's permissions; no statement has Resource "*"."""
    yield {
        "Sid": "WriteOwnLogs",
        "Effect": "Allow",
        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": _arn("logs", f"log-group:{log_group(options)}:*"),
    }
    if options.trigger == "sqs":
        queue = {"Fn::GetAtt": ["Queue", "Arn"]}
        yield {
            "Sid": "ConsumeOwnQueue",
            "Effect": "Allow",
            "Action": [
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:ChangeMessageVisibility",
                "sqs:GetQueueAttributes",
            ],
            "Resource": queue,
        }
        # Failed CDNs are retried by re-enqueueing only their changes (entry/sqs.py).
        yield {
            "Sid": "RequeueNarrowedRetries",
            "Effect": "Allow",
            "Action": ["sqs:SendMessage", "sqs:GetQueueUrl"],
            "Resource": queue,
        }
        # A message that can never succeed goes straight to the dead-letter queue, which the
        # function finds through the events queue's RedrivePolicy (GetQueueAttributes, above).
        yield {
            "Sid": "DeadLetterPermanentFailures",
            "Effect": "Allow",
            "Action": "sqs:SendMessage",
            "Resource": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]},
        }
    else:
        yield {
            "Sid": "DeadLetterFailedEvents",
            "Effect": "Allow",
            "Action": "sqs:SendMessage",
            "Resource": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]},
        }
    yield from _secret_statements([s for _, s in secret_fields(config)])
    verified = sorted(b for b, routes in config.buckets.items() if any(r.verify is not None for r in routes))
    if verified:
        # Verification asks S3 whether a key changed since its event (HeadObject needs s3:GetObject).
        yield {
            "Sid": "ReadVerifiedObjectsState",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": [_sub(f"arn:${{AWS::Partition}}:s3:::{_literal(b)}/*") for b in verified],
        }
    tagged = sorted(b for b, routes in config.buckets.items() if any(r.tags_from_metadata for r in routes))
    if tagged:
        # Tags from object metadata are read with HeadObject, which needs s3:GetObject.
        yield {
            "Sid": "ReadObjectTagsFromMetadata",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": [_sub(f"arn:${{AWS::Partition}}:s3:::{_literal(b)}/*") for b in tagged],
        }
    yield from _cloudfront_statements(config)


def _cloudfront_statements(config: Config) -> Iterator[Json]:
    """CreateInvalidation on the configured distributions; GetInvalidation only where `wait` polls it."""
    distributions = cloudfront_distributions(config)
    waited = cloudfront_distributions(config, waiting=True)
    if distributions:
        yield {
            "Sid": "InvalidateConfiguredDistributions",
            "Effect": "Allow",
            "Action": "cloudfront:CreateInvalidation",
            "Resource": [_arn("cloudfront", f"distribution/{_literal(d)}", region=False) for d in distributions],
        }
    if waited:
        yield {
            "Sid": "WaitForInvalidations",
            "Effect": "Allow",
            "Action": "cloudfront:GetInvalidation",
            "Resource": [_arn("cloudfront", f"distribution/{_literal(d)}", region=False) for d in waited],
        }


def _secret_statements(secrets: list[Secret]) -> Iterator[Json]:
    parameters = sorted({s.name for s in secrets if s.source == "ssm"})
    stored = sorted({s.name for s in secrets if s.source == "secretsmanager"})
    if parameters:
        yield {
            "Sid": "ReadConfiguredParameters",
            "Effect": "Allow",
            "Action": "ssm:GetParameters",
            "Resource": [_parameter_arn(p) for p in parameters],
        }
    if stored:
        yield {
            "Sid": "ReadConfiguredSecrets",
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": [_secret_arn(s) for s in stored],
        }
    services = ["ssm.${AWS::Region}.amazonaws.com"] * bool(parameters)
    services += ["secretsmanager.${AWS::Region}.amazonaws.com"] * bool(stored)
    if services:
        # Which KMS key encrypts a SecureString or secret is not in the config, so the grant
        # covers this account's keys in this region, usable only through those two services.
        yield {
            "Sid": "DecryptConfiguredSecrets",
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": _arn("kms", "key/*"),
            "Condition": {"StringEquals": {"kms:ViaService": [_sub(s) for s in services]}},
        }


def _parameter_arn(name: str) -> Any:
    if name.startswith("arn:"):
        return name
    return _arn("ssm", "parameter/" + _literal(name.lstrip("/")))


def _secret_arn(secret_id: str) -> Any:
    if secret_id.startswith("arn:"):
        return secret_id
    # Secrets Manager appends "-" and six random characters to a secret's name in its ARN.
    return _arn("secretsmanager", f"secret:{_literal(secret_id)}-??????")


def secret_fields(config: Config) -> list[tuple[str, Secret]]:
    """Every secret in the config with where it is written, e.g. ("cdns.cf.token", Secret)."""
    found = []
    for name, cdn in sorted(config.cdns.items()):
        for option, value in cdn.provider.options.fields().items():
            if isinstance(value, Secret):
                found.append((f"cdns.{name}.{option}", value))
            elif isinstance(value, dict):
                found += [(f"cdns.{name}.{option}.{k}", v) for k, v in value.items() if isinstance(v, Secret)]
    return found


def cloudfront_distributions(config: Config, waiting: bool = False) -> list[str]:
    """Distribution ids of the config's CloudFront accounts (with `waiting`: of those that set `wait`)."""
    raw = _raw_cdns(config)
    ids: set[str] = set()
    for name, cdn in config.cdns.items():
        if cdn.provider.vendor != "cloudfront" or (waiting and not getattr(cdn.provider.options, "wait", False)):
            continue
        options = raw.get(name) or cdn.provider.options.fields()
        listed = options.get("distribution_ids") or []
        single = options.get("distribution_id")
        ids.update(str(i) for i in ([*listed, single] if single else listed))
    return sorted(ids)


def _raw_cdns(config: Config) -> dict[str, Any]:
    try:
        document = yaml.safe_load(Path(config.path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    cdns = document.get("cdns") if isinstance(document, dict) else None
    return cdns if isinstance(cdns, dict) else {}
