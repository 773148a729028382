"""Destroy: remove what deploy created under a name, and nothing else.

Order: our bucket notification entries first (no event may reach a queue being deleted),
then the stack, then what the stack did not own (alarms made through the API when an
emulator skipped them), then our packages and, if deploy created it and it is empty,
the artifact bucket.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from s3purge.deploy import DeployError
from s3purge.deploy import notifications as notes
from s3purge.deploy.aws import Aws, doing
from s3purge.deploy.stack import (
    ARTIFACT_TAG,
    STACK_TIMEOUT,
    Say,
    deployed_template,
    describe,
    failures,
    poll,
    stack_parameters,
)


@dataclass(frozen=True)
class _Teardown:
    aws: Aws
    name: str
    say: Say
    dry_run: bool

    def did(self, action: str, done: str) -> str:
        return f"would {action}" if self.dry_run else done


def destroy(aws: Aws, name: str, say: Say, *, buckets: tuple[str, ...] = (), dry_run: bool = False) -> None:
    """Remove everything deploy created under `name`, and nothing else."""
    run = _Teardown(aws, name, say, dry_run)
    stack = _stack_for_destroy(aws, name)
    template = deployed_template(aws, name) if stack else {}
    hooked = sorted({*template.get("Metadata", {}).get("s3purge", {}).get("buckets", []), *buckets})
    if stack is None and not hooked:
        say(f"nothing to destroy: no stack named {name} in {aws.region}")
        return
    say(f"destroying {name} in {aws.region}, account {aws.account}")
    _unhook(run, hooked)
    owned = _delete_stack(run) if stack is not None else set()
    _delete_leftover_alarms(run, template, owned)
    code_bucket = stack_parameters(stack or {}).get("CodeBucket")
    if code_bucket:
        _delete_artifacts(run, code_bucket)
    say("dry run: nothing was removed" if dry_run else f"destroyed {name}")


def _stack_for_destroy(aws: Aws, name: str) -> dict[str, Any] | None:
    stack = describe(aws, name)
    return None if stack is None or stack["StackStatus"] == "DELETE_COMPLETE" else stack


def _unhook(run: _Teardown, buckets: list[str]) -> None:
    from botocore.exceptions import ClientError

    s3 = run.aws.client("s3")
    for bucket in buckets:
        try:
            current = notes.read(s3, bucket, run.aws.account)
        except ClientError as error:
            run.say(f"  bucket {bucket}: skipped ({error.response.get('Error', {}).get('Code')})")
            continue
        merged = notes.merged(current, run.name, None)
        if merged == current:
            continue
        kept = notes.others(current, run.name)
        run.say(f"  bucket {bucket}: {run.did('remove', 'removed')} our notification entry; {kept} other(s) kept")
        if not run.dry_run:
            with doing(f"update the notification configuration of bucket {bucket}"):
                notes.write(s3, bucket, run.aws.account, merged)


def _delete_stack(run: _Teardown) -> set[str]:
    """Delete the stack (listing what goes with it); the logical ids it owned."""
    cloudformation = run.aws.client("cloudformation")
    with doing(f"list the resources of stack {run.name}"):
        resources = cloudformation.describe_stack_resources(StackName=run.name)["StackResources"]
    owned = {r["LogicalResourceId"] for r in resources if "LogicalResourceId" in r}
    for r in resources:
        if "LogicalResourceId" in r:
            run.say(f"  - {r['LogicalResourceId']} ({r['ResourceType']}) {r.get('PhysicalResourceId', '')}")
    if run.dry_run:
        run.say(f"  would delete stack {run.name} and the resources above")
        return owned
    with doing(f"delete stack {run.name}"):
        cloudformation.delete_stack(StackName=run.name)
        final = poll(
            lambda: _stack_for_destroy(run.aws, run.name),
            lambda s: s is None or "_IN_PROGRESS" not in s["StackStatus"],
            timeout=STACK_TIMEOUT,
        )
    if final is not None:
        raise DeployError(f"stack {run.name} ended {final['StackStatus']}: {failures(run.aws, run.name)}")
    run.say(f"  deleted stack {run.name}")
    return owned


def _delete_leftover_alarms(run: _Teardown, template: dict[str, Any], owned: set[str]) -> None:
    """Alarms the stack did not own (made by the API fallback) are deleted through the API too."""
    names = [
        r["Properties"]["AlarmName"]
        for logical, r in template.get("Resources", {}).items()
        if r["Type"] == "AWS::CloudWatch::Alarm" and logical not in owned
    ]
    if not names:
        return
    cloudwatch = run.aws.client("cloudwatch")
    with doing("look for alarms the stack did not own"):
        left = [a["AlarmName"] for a in cloudwatch.describe_alarms(AlarmNames=names)["MetricAlarms"]]
    if left:
        run.say(f"  {run.did('delete', 'deleted')} alarm(s) {', '.join(left)}")
        if not run.dry_run:
            with doing(f"delete alarms {', '.join(left)}"):
                cloudwatch.delete_alarms(AlarmNames=left)


def _delete_artifacts(run: _Teardown, bucket: str) -> None:
    from botocore.exceptions import ClientError

    s3, owner = run.aws.client("s3"), run.aws.account
    try:
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"{run.name}/", ExpectedBucketOwner=owner)
    except ClientError:
        return  # the bucket is gone already
    keys = [{"Key": o["Key"]} for o in listed.get("Contents", [])]
    if keys:
        run.say(f"  {run.did('delete', 'deleted')} {len(keys)} package(s) under s3://{bucket}/{run.name}/")
        if not run.dry_run:
            with doing(f"delete packages in s3://{bucket}/{run.name}/"):
                s3.delete_objects(Bucket=bucket, Delete={"Objects": keys}, ExpectedBucketOwner=owner)
    if _ours(s3, bucket, owner) and _object_count(s3, bucket, owner) <= (len(keys) if run.dry_run else 0):
        run.say(f"  {run.did('delete', 'deleted')} artifact bucket {bucket} (now empty)")
        if not run.dry_run:
            with doing(f"delete artifact bucket {bucket}"):
                s3.delete_bucket(Bucket=bucket, ExpectedBucketOwner=owner)


def _ours(s3: Any, bucket: str, owner: str) -> bool:
    """True for an artifact bucket deploy created (tagged), never for one passed by the user."""
    from botocore.exceptions import ClientError

    try:
        tags = s3.get_bucket_tagging(Bucket=bucket, ExpectedBucketOwner=owner)["TagSet"]
    except ClientError:
        return False
    return ARTIFACT_TAG in tags


def _object_count(s3: Any, bucket: str, owner: str) -> int:
    with doing(f"list s3://{bucket}"):
        return int(s3.list_objects_v2(Bucket=bucket, MaxKeys=1000, ExpectedBucketOwner=owner).get("KeyCount", 0))
