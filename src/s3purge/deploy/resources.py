"""The template's resources besides the role: queues, the function, its trigger, the alarms.

Every resource is named after the stack (Options.name), so one account holds several
deployments side by side; iam.py grants the function access to exactly these.
"""

from __future__ import annotations

from typing import Any

from s3purge.deploy import CONFIG_NAME, HANDLER, INSTANCES_ENV, Options
from s3purge.deploy.intrinsics import Json, arn, bucket_arn, literal


def log_group(options: Options) -> str:
    return f"/aws/lambda/{options.name}"


def dead_letters(options: Options) -> Json:
    """The dead-letter queue (TLS only) and the function's log group."""
    return {
        "DeadLetterQueue": _dead_letter_queue(options),
        "DeadLetterQueuePolicy": _tls_only_policy("DeadLetterQueue"),
        "LogGroup": {
            "Type": "AWS::Logs::LogGroup",
            "Properties": {"LogGroupName": log_group(options), "RetentionInDays": options.log_retention_days},
        },
    }


def trigger(options: Options, buckets: list[str]) -> Json:
    """What lets the buckets' events reach the function: a queue, or invoke permissions."""
    return _queue_trigger(options, buckets) if options.trigger == "sqs" else _direct_trigger(buckets)


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
        source = arn("sqs", literal(f"{options.name}-events"))
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


def function(options: Options) -> Json:
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
                                "ArnLike": {"aws:SourceArn": [bucket_arn(b) for b in buckets]},
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
                "SourceArn": bucket_arn(bucket),
                "SourceAccount": {"Ref": "AWS::AccountId"},
            },
        }
        for i, bucket in enumerate(buckets)
    }


def alarms(options: Options) -> Json:
    """Function errors and dead letters, mailed to alarm_email when one is given."""
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
