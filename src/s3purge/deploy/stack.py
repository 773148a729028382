"""Deploy: the template as a CloudFormation stack, plus the bucket notifications.

upload the package -> change set (printed; dry-run stops here) -> execute -> wait
-> resources this CloudFormation skipped, through their APIs -> merge notifications.
Every AWS error becomes one DeployError naming what was being done and AWS's reason.
destroy lives in teardown.py.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from s3purge.config import Config
from s3purge.deploy import DeployError, Options, fallback
from s3purge.deploy import notifications as notes
from s3purge.deploy import template as templates
from s3purge.deploy.aws import Aws, doing
from s3purge.deploy.package import Package

Say = Callable[[str], None]
POLL_SECONDS = 3.0
STACK_TIMEOUT = 1800.0
ARTIFACT_TAG = {"Key": "s3purge:purpose", "Value": "artifacts"}
DONE = ("CREATE_COMPLETE", "UPDATE_COMPLETE")
SYMBOLS = {"Add": "+", "Modify": "~", "Remove": "-", "Import": "+", "Dynamic": "?"}


# --- deploy ---


def deploy(
    config: Config,
    options: Options,
    package: Package,
    aws: Aws,
    say: Say,
    *,
    artifact_bucket: str | None = None,
    dry_run: bool = False,
) -> None:
    """Create or update everything; with dry_run, only print what would change."""
    warn_about_secrets(config, say)
    template = templates.build(config, options)
    buckets: list[str] = template["Metadata"]["s3purge"]["buckets"]
    stack = _stack(aws, options.name)
    previous = _deployed_buckets(aws, options.name) if stack else []
    current = {b: _read_notifications(aws, b) for b in sorted({*buckets, *previous})}
    code_bucket = artifact_bucket or _default_artifacts(aws)
    code_key = f"{options.name}/{package.sha256}.zip"
    target = _notification_target(aws, options)
    plan = _Plan(options.name, stack, template, {"CodeBucket": code_bucket, "CodeKey": code_key})
    wanted = {b: notes.entry_for(options.name, options.trigger, target, config.routes(b)) for b in buckets}
    _refuse_overlaps(current, wanted, options.name)

    verb = "would" if dry_run else "will"
    say(f"stack {options.name} in {aws.region}, account {aws.account} ({verb} {'update' if stack else 'create'})")
    if dry_run:
        say(f"  would upload the package to s3://{code_bucket}/{code_key}")
        _preview_stack(aws, plan, say)
        _show_notifications(current, wanted, options.name, say, dry_run=True)
        say("dry run: nothing was created, changed or removed")
        return

    _upload(aws, package, (code_bucket, code_key), created=artifact_bucket is None, say=say)
    changed = _apply(aws, plan, say)
    if changed:
        fallback.create_skipped(aws, options.name, template, say)
    _show_notifications(current, wanted, options.name, say, dry_run=False)
    for bucket, configuration in current.items():
        merged = notes.merged(configuration, options.name, wanted.get(bucket))
        if merged != configuration:
            with doing(f"update the notification configuration of bucket {bucket}"):
                notes.write(aws.client("s3"), bucket, aws.account, merged)
    _summary(options, buckets, target, say)


def _refuse_overlaps(
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


def warn_about_secrets(config: Config, say: Say) -> None:
    for where, secret in templates.secret_fields(config):
        if secret.source == "plain":
            say(
                f"warning: {where} is a plaintext secret; it will be inside the Lambda package. "
                "Write {ssm: NAME} or {secretsmanager: ID} instead."
            )
        elif secret.source == "env":
            say(
                f"warning: {where} reads environment variable {secret.name}, which deploy does not set "
                "on the function; use {ssm: NAME} or {secretsmanager: ID}."
            )


def describe(aws: Aws, name: str) -> dict[str, Any] | None:
    """The stack as CloudFormation describes it, or None if there is none."""
    from botocore.exceptions import ClientError

    try:
        stacks = aws.client("cloudformation").describe_stacks(StackName=name)["Stacks"]
    except ClientError as error:
        if "does not exist" in str(error):
            return None
        raise DeployError(f"cannot read stack {name}: {error}") from None
    stack: dict[str, Any] = stacks[0]
    return stack


def _stack(aws: Aws, name: str) -> dict[str, Any] | None:
    """The live stack, or None; refuses stacks that cannot be updated."""
    stack = describe(aws, name)
    if stack is None:
        return None
    status = str(stack["StackStatus"])
    if status in ("REVIEW_IN_PROGRESS", "DELETE_COMPLETE"):
        return None  # never executed: create it again
    if status in ("ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_FAILED"):
        raise DeployError(
            f"stack {name} is {status} after a failed deploy; run `s3purge destroy --name {name}`, then deploy again"
        )
    if status.endswith("_IN_PROGRESS"):
        raise DeployError(f"stack {name} is busy ({status}); wait for it to finish and try again")
    return stack


def deployed_template(aws: Aws, name: str) -> dict[str, Any]:
    with doing(f"read the template of stack {name}"):
        body = aws.client("cloudformation").get_template(StackName=name)["TemplateBody"]
    return body if isinstance(body, dict) else dict(json.loads(body))


def _deployed_buckets(aws: Aws, name: str) -> list[str]:
    metadata = deployed_template(aws, name).get("Metadata", {}).get("s3purge", {})
    return list(metadata.get("buckets", []))


def _read_notifications(aws: Aws, bucket: str) -> dict[str, Any]:
    with doing(f"read the notification configuration of bucket {bucket} (owned by account {aws.account}?)"):
        return notes.read(aws.client("s3"), bucket, aws.account)


def _notification_target(aws: Aws, options: Options) -> str:
    if options.trigger == "sqs":
        return aws.arn("sqs", f"{options.name}-events")
    return aws.arn("lambda", f"function:{options.name}")


def _default_artifacts(aws: Aws) -> str:
    return f"s3purge-artifacts-{aws.account}-{aws.region}"


def _upload(aws: Aws, package: Package, where: tuple[str, str], *, created: bool, say: Say) -> None:
    bucket, key = where
    from botocore.exceptions import ClientError

    s3 = aws.client("s3")
    if created:
        _ensure_artifact_bucket(aws, bucket, say)
    try:
        s3.head_object(Bucket=bucket, Key=key, ExpectedBucketOwner=aws.account)
        say("  package already uploaded")
        return
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
            with doing(f"read s3://{bucket}/{key}"):
                raise
    with doing(f"upload the package to s3://{bucket}/{key}"):
        s3.upload_file(str(package.path), bucket, key, ExtraArgs={"ExpectedBucketOwner": aws.account})
    say(f"  uploaded {package.path.name} to s3://{bucket}/{key}")


def _ensure_artifact_bucket(aws: Aws, bucket: str, say: Say) -> None:
    from botocore.exceptions import ClientError

    s3 = aws.client("s3")
    try:
        s3.head_bucket(Bucket=bucket, ExpectedBucketOwner=aws.account)
        return
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise DeployError(
                f"artifact bucket {bucket} exists but is not usable ({error}); pass --artifact-bucket"
            ) from None
    where = {} if aws.region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": aws.region}}
    with doing(f"create the artifact bucket {bucket}"):
        s3.create_bucket(Bucket=bucket, **where)
        s3.put_public_access_block(
            Bucket=bucket,
            PublicAccessBlockConfiguration=dict.fromkeys(
                ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
            ),
        )
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [ARTIFACT_TAG]})
    say(f"  created artifact bucket {bucket} (private; destroy removes it when empty)")


@dataclass(frozen=True)
class _Plan:
    """The stack as it is and as it should be."""

    name: str
    stack: dict[str, Any] | None
    template: dict[str, Any]
    parameters: dict[str, str]


def _parameters(values: dict[str, str]) -> list[dict[str, str]]:
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]


def _change_set(aws: Aws, plan: _Plan) -> tuple[str | None, list[dict[str, Any]]]:
    """Create a change set and wait for it: (its id, its changes); (None, []) when nothing changes."""
    from botocore.exceptions import ClientError

    name, stack = plan.name, plan.stack

    cloudformation = aws.client("cloudformation")
    try:
        created = cloudformation.create_change_set(
            StackName=name,
            ChangeSetName=f"s3purge-{int(time.time())}",
            ChangeSetType="UPDATE" if stack else "CREATE",
            TemplateBody=json.dumps(plan.template),
            Parameters=_parameters(plan.parameters),
            Capabilities=["CAPABILITY_IAM"],
            Tags=[{"Key": "s3purge:stack", "Value": name}],
        )
    except ClientError as error:
        if "No updates are to be performed" in str(error):
            return None, []
        with doing(f"create a change set for stack {name}"):
            raise
    change_set = str(created["Id"])
    with doing(f"wait for change set of stack {name}"):
        described = poll(
            lambda: cloudformation.describe_change_set(ChangeSetName=change_set),
            lambda d: d["Status"] in ("CREATE_COMPLETE", "FAILED"),
        )
    if described["Status"] == "FAILED":
        reason = str(described.get("StatusReason", ""))
        if "didn't contain changes" in reason or "No updates" in reason:
            with doing(f"delete the empty change set of stack {name}"):
                cloudformation.delete_change_set(ChangeSetName=change_set)
            return None, []
        raise DeployError(f"CloudFormation refused the change set for stack {name}: {reason}")
    return change_set, list(described.get("Changes", []))


def _show_changes(changes: list[dict[str, Any]], old: dict[str, str], new: dict[str, str], say: Say) -> None:
    for change in changes:
        resource = change["ResourceChange"]
        replace = " (replaced)" if resource.get("Replacement") == "True" else ""
        symbol = SYMBOLS.get(resource["Action"], "?")
        say(f"  {symbol} {resource['LogicalResourceId']} ({resource['ResourceType']}){replace}")
    if old and old.get("CodeKey") != new["CodeKey"]:
        say(f"  ~ Function code: new package {new['CodeKey']}")


def _preview_stack(aws: Aws, plan: _Plan, say: Say) -> None:
    if plan.stack is None:
        # Nothing exists yet, so every resource is an addition; no change set needed
        # (creating one would leave an empty stack behind to clean up).
        for logical, resource in plan.template["Resources"].items():
            say(f"  + {logical} ({resource['Type']})")
        return
    change_set, changes = _change_set(aws, plan)
    if change_set is not None:
        with doing(f"delete the preview change set of stack {plan.name}"):
            aws.client("cloudformation").delete_change_set(ChangeSetName=change_set)
    old = stack_parameters(plan.stack)
    if not changes and old.get("CodeKey") == plan.parameters["CodeKey"]:
        say("  stack: no changes")
    _show_changes(changes, old, plan.parameters, say)


def stack_parameters(stack: dict[str, Any]) -> dict[str, str]:
    return {p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters", [])}


def _apply(aws: Aws, plan: _Plan, say: Say) -> bool:
    """Run the change set to completion; False when the stack was already up to date."""
    name = plan.name
    change_set, changes = _change_set(aws, plan)
    if change_set is None:
        say("  stack: no changes")
        return False
    _show_changes(changes, stack_parameters(plan.stack or {}), plan.parameters, say)
    cloudformation = aws.client("cloudformation")
    with doing(f"execute the change set of stack {name}"):
        cloudformation.execute_change_set(ChangeSetName=change_set)
        final = poll(
            lambda: cloudformation.describe_stacks(StackName=name)["Stacks"][0],
            lambda s: not str(s["StackStatus"]).endswith("_IN_PROGRESS"),
            timeout=STACK_TIMEOUT,
        )
    if final["StackStatus"] not in DONE:
        raise DeployError(f"stack {name} ended {final['StackStatus']}: {failures(aws, name)}")
    say(f"  stack {name}: {final['StackStatus']}")
    return True


def failures(aws: Aws, name: str) -> str:
    """The first resource failures of the stack's latest operation, oldest first."""
    with doing(f"read the events of stack {name}"):
        events = aws.client("cloudformation").describe_stack_events(StackName=name)["StackEvents"]
    failed = [
        f"{e['LogicalResourceId']} ({e['ResourceType']}): {e.get('ResourceStatusReason', '')}"
        for e in reversed(events)
        if str(e.get("ResourceStatus", "")).endswith("_FAILED") and e["LogicalResourceId"] != name
    ]
    return "; ".join(failed[:3]) or "no resource reported a reason (see the CloudFormation console)"


def poll(fetch: Callable[[], Any], done: Callable[[Any], bool], timeout: float = 300.0) -> Any:
    """Fetch until done(); waits between attempts only while AWS is still working."""
    deadline = time.monotonic() + timeout
    while True:
        answer = fetch()
        if done(answer):
            return answer
        if time.monotonic() > deadline:
            raise DeployError(f"gave up waiting after {timeout:.0f} s")
        time.sleep(POLL_SECONDS)


# --- notifications and output ---


def _show_notifications(
    current: dict[str, dict[str, Any]],
    wanted: dict[str, tuple[str, dict[str, Any]]],
    name: str,
    say: Say,
    *,
    dry_run: bool,
) -> None:
    for bucket, configuration in current.items():
        kept = notes.others(configuration, name)
        if bucket in wanted:
            kind, entry = wanted[bucket]
            old = [e for e in configuration.get(kind, []) if notes.is_ours(e, name)]
            state = "unchanged" if old == [entry] else ("would set" if dry_run else "set")
            say(f"  bucket {bucket}: {state} {notes.describe(kind, entry)}; {kept} other(s) kept")
        elif notes.merged(configuration, name, None) != configuration:
            state = "would remove" if dry_run else "removed"
            say(f"  bucket {bucket}: {state} our notification entry; {kept} other(s) kept")


def _summary(options: Options, buckets: list[str], target: str, say: Say) -> None:
    say(f"deployed {options.name}: function {options.name} ({options.runtime}, {options.arch})")
    say(f"  events of {', '.join(buckets)} -> {target}")
    if options.trigger == "sqs":
        say(f"  failed events end in queue {options.name}-dlq (alarm {options.name}-dead-letters)")
    if options.alarm_email:
        say(f"  alarms mail {options.alarm_email} once the subscription email from AWS is confirmed")
    say(f"  try it: upload a file to s3://{buckets[0]}/, then `aws logs tail /aws/lambda/{options.name} --follow`")
