"""Destroy: remove what deploy created under a name, and nothing else.

What deploy made is what it recorded: the stack (and the buckets in its metadata), the
packages it uploaded (tagged with the stack's name), the artifact bucket if it created it.
Destroy shows all of that, refuses while a queue still holds messages (unless forced), asks,
and then removes it in order: our bucket notification entries first (no event may reach a
queue being deleted), the stack, the packages, the artifact bucket once empty. With
buckets named, only our entries in those buckets are removed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from s3purge.deploy import DeployError, artifacts, check_name
from s3purge.deploy import cloudformation as cfn
from s3purge.deploy import notifications as notes
from s3purge.deploy.aws import Aws, Say, doing

Confirm = Callable[[str], bool]
COUNTS = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed")


@dataclass
class _Removal:
    """Everything destroy would remove, found before anything is removed."""

    buckets: list[str] = field(default_factory=list)
    """Buckets holding an entry of ours."""
    stack: dict[str, Any] | None = None
    resources: list[dict[str, Any]] = field(default_factory=list)
    code_bucket: str | None = None
    packages: list[str] = field(default_factory=list)
    artifact_bucket: bool = False
    """The artifact bucket goes too: deploy created it and nothing else is in it."""

    @property
    def empty(self) -> bool:
        return not (self.buckets or self.stack or self.packages or self.artifact_bucket)


def destroy(
    aws: Aws,
    name: str,
    say: Say,
    *,
    buckets: tuple[str, ...] = (),
    dry_run: bool = False,
    force: bool = False,
    confirm: Confirm = lambda question: True,
) -> None:
    """Remove everything deploy created under `name` (or only our entries in `buckets`), nothing else."""
    check_name(name)
    removal = _only_entries(aws, name, buckets) if buckets else _everything(aws, name)
    if removal.empty:
        say(f"nothing to destroy: no stack named {name} in {aws.region}" if not buckets else "nothing to remove")
        return
    if removal.stack is not None:
        _refuse_queued_messages(aws, removal, force=force, dry_run=dry_run, say=say)
    say(f"{'would remove' if dry_run else 'will remove'} from {aws.region}, account {aws.account}:")
    _show(removal, name, say)
    if dry_run:
        say("dry run: nothing was removed")
        return
    if not confirm(f"Remove {'these entries' if buckets else name}?"):
        say("nothing was removed")
        return
    _remove(aws, name, removal, say)
    say(f"destroyed {name}" if not buckets else f"removed our notification entries from {', '.join(buckets)}")


def _only_entries(aws: Aws, name: str, buckets: tuple[str, ...]) -> _Removal:
    return _Removal(buckets=[b for b in sorted(set(buckets)) if _holds_ours(aws, b, name)])


def _everything(aws: Aws, name: str) -> _Removal:
    stack = cfn.describe(aws, name)
    if stack is not None and stack["StackStatus"] == "DELETE_COMPLETE":
        stack = None
    if stack is None:
        return _Removal()
    recorded = cfn.deployed_buckets(aws, name)
    with doing(f"list the resources of stack {name}"):
        listed = aws.client("cloudformation").describe_stack_resources(StackName=name)["StackResources"]
    resources = [r for r in listed if "LogicalResourceId" in r]  # moto lists some skipped resources bare
    removal = _Removal(
        buckets=[b for b in recorded if _holds_ours(aws, b, name)],
        stack=stack,
        resources=resources,
        code_bucket=cfn.stack_parameters(stack).get("CodeBucket"),
    )
    if removal.code_bucket:
        removal.packages = artifacts.uploaded(aws, removal.code_bucket, name)
        removal.artifact_bucket = artifacts.bucket_goes(aws, removal.code_bucket, len(removal.packages))
    return removal


def _holds_ours(aws: Aws, bucket: str, name: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        current = notes.read(aws.client("s3"), bucket, aws.account)
    except ClientError:
        return False  # gone, or not ours to read: nothing of ours to remove there
    return notes.merged(current, name, None) != current


def _refuse_queued_messages(aws: Aws, removal: _Removal, *, force: bool, dry_run: bool, say: Say) -> None:
    """Deleting a queue deletes its messages: refuse while any queue of the stack holds some."""
    holding = []
    for resource in removal.resources:
        if resource["ResourceType"] != "AWS::SQS::Queue" or not resource.get("PhysicalResourceId"):
            continue
        url = resource["PhysicalResourceId"]
        with doing(f"count the messages in {url}"):
            attributes = aws.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=list(COUNTS))["Attributes"]
        count = sum(int(attributes.get(a, 0)) for a in COUNTS)
        if count:
            holding.append(f"{url.rsplit('/', 1)[-1]} holds {count} message(s)")
    refusal = (
        "; ".join(holding) + ": destroying would lose them. Replay what needs purging "
        "(receive the messages, then `s3purge replay`), or pass --force to destroy anyway"
    )
    if holding and not (force or dry_run):
        raise DeployError(refusal)
    if holding:
        say(f"warning: {refusal}" if not force else f"warning: {'; '.join(holding)}; --force: lost with the queue")


def _show(removal: _Removal, name: str, say: Say) -> None:
    for bucket in removal.buckets:
        say(f"  - bucket {bucket}: our notification entry {notes.our_id(name)} (every other entry stays)")
    if removal.stack is not None:
        say(f"  - stack {name} ({removal.stack['StackStatus']}) and its resources:")
        for r in removal.resources:
            say(f"      - {r['LogicalResourceId']} ({r['ResourceType']}) {r.get('PhysicalResourceId', '')}")
    for key in removal.packages:
        say(f"  - package s3://{removal.code_bucket}/{key}")
    if removal.artifact_bucket:
        say(f"  - artifact bucket {removal.code_bucket} (created by deploy; nothing else in it)")


def _remove(aws: Aws, name: str, removal: _Removal, say: Say) -> None:
    for bucket in removal.buckets:
        notes.apply(aws.client("s3"), bucket, aws.account, name, None)
        say(f"  bucket {bucket}: removed our notification entry")
    if removal.stack is not None:
        _delete_stack(aws, name, say)
    s3, owner = aws.client("s3"), aws.account
    if removal.packages:
        with doing(f"delete packages in s3://{removal.code_bucket}/{name}/"):
            s3.delete_objects(
                Bucket=removal.code_bucket,
                Delete={"Objects": [{"Key": key} for key in removal.packages]},
                ExpectedBucketOwner=owner,
            )
        say(f"  deleted {len(removal.packages)} package(s) under s3://{removal.code_bucket}/{name}/")
    if removal.artifact_bucket:
        with doing(f"delete artifact bucket {removal.code_bucket}"):
            s3.delete_bucket(Bucket=removal.code_bucket, ExpectedBucketOwner=owner)
        say(f"  deleted artifact bucket {removal.code_bucket}")


def _delete_stack(aws: Aws, name: str, say: Say) -> None:
    final = cfn.delete(aws, name, f"delete stack {name}")
    if final is not None and final["StackStatus"] != "DELETE_COMPLETE":
        raise DeployError(f"stack {name} ended {final['StackStatus']}: {cfn.failures(aws, name)}")
    say(f"  deleted stack {name}")
