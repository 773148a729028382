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
from s3purge.deploy.aws import Aws, Say, doing
from s3purge.deploy.package import Package

Confirm = Callable[[str], bool]
"""Asked before anything is changed; False stops (the CLI asks on a terminal, or --yes)."""
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
    confirm: Confirm = lambda question: True,
) -> None:
    """Check, show the changes, ask, then create or update everything; with dry_run, only show.

    Everything that can be found wrong is found before anything is made; a first deploy
    that fails anyway is removed again (stack, package, artifact bucket).
    """
    refuse_unusable_secrets(config)
    warn_about_secrets(config, say)
    warn_about_shares(config, options, say)
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
    _refuse_missing_secrets(aws, config)
    if stack is None:
        _refuse_leftovers(aws, options.name)

    verb = "would" if dry_run else "will"
    say(f"stack {options.name} in {aws.region}, account {aws.account} ({verb} {'update' if stack else 'create'})")
    say(f"  {verb} upload the package to s3://{code_bucket}/{code_key}")
    if dry_run:
        _preview_stack(aws, plan, say)
        _show_notifications(current, wanted, options.name, say, verb="would")
        say("dry run: nothing was created, changed or removed")
        return
    change_set = _propose(aws, plan, say)
    _show_notifications(current, wanted, options.name, say, verb="will")
    if not confirm("Deploy these changes?"):
        _discard(aws, plan, change_set)
        say("nothing was created, changed or removed")
        return
    _carry_out(aws, plan, change_set, package, ours=artifact_bucket is None, say=say)
    for bucket in current:
        _hook_up(aws, bucket, options.name, wanted.get(bucket), say)
    _summary(options, buckets, target, say)


def _propose(aws: Aws, plan: _Plan, say: Say) -> str | None:
    """A change set for the stack (None when nothing changes), shown."""
    change_set, changes = _change_set(aws, plan)
    old = stack_parameters(plan.stack or {})
    if change_set is None and old.get("CodeKey") == plan.parameters["CodeKey"]:
        say("  stack: no changes")
    _show_changes(changes, old, plan.parameters, say)
    return change_set


def _discard(aws: Aws, plan: _Plan, change_set: str | None) -> None:
    """Drop a change set that will not run (and the empty stack a first change set made)."""
    cloudformation = aws.client("cloudformation")
    if change_set is not None:
        with doing(f"delete the change set of stack {plan.name}"):
            cloudformation.delete_change_set(ChangeSetName=change_set)
    if plan.stack is None:
        _delete_failed_stack(aws, plan.name)


def _carry_out(aws: Aws, plan: _Plan, change_set: str | None, package: Package, *, ours: bool, say: Say) -> None:
    """Upload, run the change set, create what the stack skipped; undo a first deploy that fails."""
    made: list[str] = []
    try:
        made = _upload(aws, package, (plan.parameters["CodeBucket"], plan.parameters["CodeKey"]), ours, say)
        if change_set is not None:
            _execute(aws, plan, change_set, say)
            fallback.create_skipped(aws, plan.name, plan.template, say)
    except DeployError:
        if plan.stack is None:
            _undo_first_deploy(aws, plan, made, say)
        elif change_set is not None and made:
            say(f"  the package stays in s3://{plan.parameters['CodeBucket']}/ (destroy removes it)")
        raise


def _undo_first_deploy(aws: Aws, plan: _Plan, made: list[str], say: Say) -> None:
    """A first deploy failed: remove its stack, its package and the artifact bucket it created."""
    _delete_failed_stack(aws, plan.name)
    bucket, key = plan.parameters["CodeBucket"], plan.parameters["CodeKey"]
    s3 = aws.client("s3")
    if "package" in made:
        with doing(f"delete s3://{bucket}/{key}"):
            s3.delete_object(Bucket=bucket, Key=key, ExpectedBucketOwner=aws.account)
    if "bucket" in made:
        with doing(f"delete the artifact bucket {bucket}"):
            s3.delete_bucket(Bucket=bucket, ExpectedBucketOwner=aws.account)
    say(f"  removed what this deploy had created ({', '.join(['stack', *made])}): nothing is left behind")


def _delete_failed_stack(aws: Aws, name: str) -> None:
    cloudformation = aws.client("cloudformation")
    if describe(aws, name) is None:
        return
    with doing(f"delete the failed stack {name}"):
        cloudformation.delete_stack(StackName=name)
        poll(
            lambda: describe(aws, name),
            lambda s: s is None or not str(s["StackStatus"]).endswith("_IN_PROGRESS"),
            timeout=STACK_TIMEOUT,
        )


def _hook_up(aws: Aws, bucket: str, name: str, ours: tuple[str, dict[str, Any]] | None, say: Say) -> None:
    """Merge our entry into the bucket's notifications as they are now (read right before writing)."""
    with doing(f"update the notification configuration of bucket {bucket}"):
        before = notes.read(aws.client("s3"), bucket, aws.account)
        events = notes.apply(aws.client("s3"), bucket, aws.account, name, ours)
    kept = notes.others(before, name)
    if ours is not None and notes.merged(before, name, ours) != before:
        say(f"  bucket {bucket}: set {notes.describe(*ours)}; {kept} other(s) kept")
    elif ours is None and notes.merged(before, name, None) != before:
        say(f"  bucket {bucket}: removed our notification entry; {kept} other(s) kept")
    for event in events:
        say(f"  bucket {bucket}: {event}")


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
    for where, secret in templates.secret_fields(config):
        if secret.source == "plain":
            say(
                f"warning: {where} is a plaintext secret; it will be inside the Lambda package. "
                "Write {ssm: NAME} or {secretsmanager: ID} instead."
            )


def refuse_unusable_secrets(config: Config) -> None:
    """{env: NAME} cannot resolve on Lambda (deploy sets no such variable): refuse, naming each."""
    unusable = [
        f"{where} reads environment variable {secret.name}"
        for where, secret in templates.secret_fields(config)
        if secret.source == "env"
    ]
    if unusable:
        raise DeployError(
            "the function would fail every invocation: "
            + "; ".join(unusable)
            + ", which it does not have. Store the value in SSM (aws ssm put-parameter --type SecureString "
            "--name /s3purge/NAME --value ...) and write {ssm: /s3purge/NAME}, or use {secretsmanager: ID}"
        )


def _refuse_missing_secrets(aws: Aws, config: Config) -> None:
    """Parameters and secrets the config names must exist in this account and region."""
    from botocore.exceptions import ClientError

    missing = []
    for where, secret in templates.secret_fields(config):
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


def _refuse_leftovers(aws: Aws, name: str) -> None:
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


def package_tag(name: str) -> dict[str, str]:
    """The tag on every package deploy uploads: destroy deletes only keys carrying it."""
    return {"Key": "s3purge:stack", "Value": name}


def _upload(aws: Aws, package: Package, where: tuple[str, str], ours: bool, say: Say) -> list[str]:
    """Upload the package unless it is there; what this made: "bucket" and/or "package"."""
    bucket, key = where
    from botocore.exceptions import ClientError

    s3 = aws.client("s3")
    made = ["bucket"] if ours and _ensure_artifact_bucket(aws, bucket, say) else []
    try:
        s3.head_object(Bucket=bucket, Key=key, ExpectedBucketOwner=aws.account)
        say("  package already uploaded")
        return made
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
            with doing(f"read s3://{bucket}/{key}"):
                raise
    tag = package_tag(key.split("/")[0])
    with doing(f"upload the package to s3://{bucket}/{key}"):
        s3.upload_file(
            str(package.path),
            bucket,
            key,
            ExtraArgs={"ExpectedBucketOwner": aws.account, "Tagging": f"{tag['Key']}={tag['Value']}"},
        )
    say(f"  uploaded {package.path.name} to s3://{bucket}/{key}")
    return [*made, "package"]


def _ensure_artifact_bucket(aws: Aws, bucket: str, say: Say) -> bool:
    """Create the default artifact bucket unless it exists; True when created now."""
    from botocore.exceptions import ClientError

    s3 = aws.client("s3")
    try:
        s3.head_bucket(Bucket=bucket, ExpectedBucketOwner=aws.account)
        return False
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
    return True


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


def _execute(aws: Aws, plan: _Plan, change_set: str, say: Say) -> None:
    """Run the change set to completion."""
    name = plan.name
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
    verb: str,
) -> None:
    for bucket, configuration in current.items():
        kept = notes.others(configuration, name)
        if bucket in wanted:
            kind, entry = wanted[bucket]
            old = [e for e in configuration.get(kind, []) if notes.is_ours(e, name)]
            state = "unchanged" if old == [entry] else f"{verb} set"
            say(f"  bucket {bucket}: {state} {notes.describe(kind, entry)}; {kept} other(s) kept")
        elif notes.merged(configuration, name, None) != configuration:
            say(f"  bucket {bucket}: {verb} remove our notification entry; {kept} other(s) kept")


def _summary(options: Options, buckets: list[str], target: str, say: Say) -> None:
    say(f"deployed {options.name}: function {options.name} ({options.runtime}, {options.arch})")
    say(f"  events of {', '.join(buckets)} -> {target}")
    if options.trigger == "sqs":
        say(f"  failed events end in queue {options.name}-dlq (alarm {options.name}-dead-letters)")
    if options.alarm_email:
        say(f"  alarms mail {options.alarm_email} once the subscription email from AWS is confirmed")
    say(f"  try it: upload a file to s3://{buckets[0]}/, then `aws logs tail /aws/lambda/{options.name} --follow`")
