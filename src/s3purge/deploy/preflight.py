"""What deploy checks before it makes anything: secrets Lambda can read, names free, entries S3 takes.

Everything found wrong here stops deploy with nothing created; warnings only say what to fix.
"""

from __future__ import annotations

from typing import Any

from s3purge.config import Config
from s3purge.deploy import DeployError, Options
from s3purge.deploy import notifications as notes
from s3purge.deploy.aws import Aws, Say, doing
from s3purge.deploy.iam import secret_fields


def warn_about_shares(config: Config, options: Options, say: Say) -> None:
    """Say where one call may carry more items than an instance's share of an item-counted vendor limit."""
    for name, cdn in sorted(config.cdns.items()):
        rate = cdn.limits.rate
        if rate is None or rate.unit != "item":
            continue
        share = int(rate.burst / options.max_concurrency)
        if cdn.limits.max_items > share:
            say(
                f"warning: cdns.{name}: one call may carry {cdn.limits.max_items} items, more than each of "
                f"{options.max_concurrency} instances' share ({share}) of the vendor's item limit; after a quiet "
                f"spell every instance may send one such call at once. Set max_items: {max(1, share)} to rule it out."
            )


def warn_about_secrets(config: Config, say: Say) -> None:
    for where, secret in secret_fields(config):
        if secret.source == "plain":
            say(
                f"warning: {where} is a plaintext secret; it will be inside the Lambda package. "
                "Write {ssm: NAME} or {secretsmanager: ID} instead."
            )


def refuse_unusable_secrets(config: Config) -> None:
    """{env: NAME} cannot resolve on Lambda (deploy sets no such variable): refuse, naming each."""
    unusable = [
        f"{where} reads environment variable {secret.name}"
        for where, secret in secret_fields(config)
        if secret.source == "env"
    ]
    if unusable:
        raise DeployError(
            "the function would fail every invocation: "
            + "; ".join(unusable)
            + ", which it does not have. Store the value in SSM (aws ssm put-parameter --type SecureString "
            "--name /s3purge/NAME --value ...) and write {ssm: /s3purge/NAME}, or use {secretsmanager: ID}"
        )


def refuse_missing_secrets(aws: Aws, config: Config) -> None:
    """Parameters and secrets the config names must exist in this account and region."""
    from botocore.exceptions import ClientError

    missing = []
    for where, secret in secret_fields(config):
        try:
            if secret.source == "ssm":
                aws.client("ssm").get_parameter(Name=secret.name, WithDecryption=False)
            elif secret.source == "secretsmanager":
                aws.client("secretsmanager").describe_secret(SecretId=secret.name)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in ("ParameterNotFound", "ResourceNotFoundException"):
                missing.append(f"{where}: {secret.source} {secret.name} does not exist in {aws.region}")
            # AccessDenied: this user may not look; the function's role may still read it
    if missing:
        raise DeployError("the function could not read its secrets: " + "; ".join(missing))


def refuse_leftovers(aws: Aws, name: str) -> None:
    """A first deploy fails halfway on a log group or function left from an earlier one: say so first."""
    from botocore.exceptions import ClientError

    group = f"/aws/lambda/{name}"
    with doing(f"look for log group {group}"):
        groups = aws.client("logs").describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    if any(g["logGroupName"] == group for g in groups):
        raise DeployError(
            f"log group {group} already exists (left from an earlier function?); the stack would fail to "
            f"create it. Delete it (aws logs delete-log-group --log-group-name {group}) or pick another --name"
        )
    try:
        aws.client("lambda").get_function(FunctionName=name)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            with doing(f"look for function {name}"):
                raise
        return
    raise DeployError(f"a function named {name} already exists outside any s3purge stack; pick another --name")


def refuse_overlaps(
    current: dict[str, dict[str, Any]], wanted: dict[str, tuple[str, dict[str, Any]]], name: str
) -> None:
    """Stop before creating anything when S3 would refuse our entry next to an existing one."""
    problems = [
        f"bucket {bucket} already sends these events for overlapping keys to: {'; '.join(found)}"
        for bucket, ours in wanted.items()
        if (found := notes.conflicts(current[bucket], name, ours))
    ]
    if problems:
        raise DeployError(
            "S3 allows one destination per event type and key range:\n  "
            + "\n  ".join(problems)
            + "\n  give s3purge routes a narrower prefix/suffix, or fan the events out through an SNS topic "
            "(subscribe the other destination and s3purge's queue) instead of a second bucket entry"
        )
