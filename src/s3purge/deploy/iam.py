"""The function's role: every statement scoped to this deployment's own resources.

Vendors that call AWS themselves declare what they need (Provider.aws_grants); the role
asks each configured CDN's provider, so nothing here names a vendor.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from s3purge.capabilities import AwsGrant
from s3purge.config import Config
from s3purge.deploy import Options
from s3purge.deploy.intrinsics import Json, arn, bucket_arn, literal, sub
from s3purge.deploy.resources import log_group
from s3purge.secrets import Secret


def role(config: Config, options: Options) -> Json:
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
        "Resource": arn("logs", f"log-group:{log_group(options)}:*"),
    }
    yield from _queue_statements(options)
    yield from _secret_statements([s for _, s in secret_fields(config)])
    yield from _object_statements(config)
    yield from _vendor_statements(config)


def _queue_statements(options: Options) -> Iterator[Json]:
    if options.trigger == "direct":
        yield {
            "Sid": "DeadLetterFailedEvents",
            "Effect": "Allow",
            "Action": "sqs:SendMessage",
            "Resource": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]},
        }
        return
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


def _object_statements(config: Config) -> Iterator[Json]:
    """HeadObject (which needs s3:GetObject) on the buckets whose routes read an object's state."""
    verified = sorted(b for b, routes in config.buckets.items() if any(r.verify is not None for r in routes))
    if verified:
        # Verification asks S3 whether a key changed since its event.
        yield {
            "Sid": "ReadVerifiedObjectsState",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": [bucket_arn(b, "/*") for b in verified],
        }
    tagged = sorted(b for b, routes in config.buckets.items() if any(r.tags_from_metadata for r in routes))
    if tagged:
        # Tags from object metadata are read with HeadObject.
        yield {
            "Sid": "ReadObjectTagsFromMetadata",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": [bucket_arn(b, "/*") for b in tagged],
        }


def _vendor_statements(config: Config) -> Iterator[Json]:
    """What each configured CDN's provider declares it needs, one statement per Sid over all accounts."""
    merged: dict[str, tuple[AwsGrant, set[str]]] = {}
    for _, cdn in sorted(config.cdns.items()):
        for grant in cdn.provider.aws_grants():
            merged.setdefault(grant.sid, (grant, set()))[1].update(grant.resources)
    for sid, (grant, resources) in merged.items():
        yield {
            "Sid": sid,
            "Effect": "Allow",
            "Action": grant.action,
            "Resource": [arn(grant.service, literal(r), region=grant.regional) for r in sorted(resources)],
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
            "Resource": arn("kms", "key/*"),
            "Condition": {"StringEquals": {"kms:ViaService": [sub(s) for s in services]}},
        }


def _parameter_arn(name: str) -> Any:
    if name.startswith("arn:"):
        return name
    return arn("ssm", "parameter/" + literal(name.lstrip("/")))


def _secret_arn(secret_id: str) -> Any:
    if secret_id.startswith("arn:"):
        return secret_id
    # Secrets Manager appends "-" and six random characters to a secret's name in its ARN.
    return arn("secretsmanager", f"secret:{literal(secret_id)}-??????")


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
