"""Deploy: the template as a CloudFormation stack, plus the bucket notifications.

check (preflight.py) -> upload the package (artifacts.py) -> change set, printed; dry-run
stops here -> ask -> execute and wait (cloudformation.py) -> merge notifications. Every
AWS error becomes one DeployError naming what was being done and AWS's reason. destroy
lives in teardown.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from s3purge.config import Config
from s3purge.deploy import DeployError, Options, artifacts, preflight
from s3purge.deploy import cloudformation as cfn
from s3purge.deploy import notifications as notes
from s3purge.deploy import template as templates
from s3purge.deploy.aws import Aws, Say, doing
from s3purge.deploy.package import Package

Confirm = Callable[[str], bool]
"""Asked before anything is changed; False stops (the CLI asks on a terminal, or --yes)."""


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
    preflight.refuse_unusable_secrets(config)
    preflight.warn_about_secrets(config, say)
    preflight.warn_about_shares(config, options, say)
    template = templates.build(config, options)
    buckets: list[str] = template["Metadata"]["s3purge"]["buckets"]
    stack = cfn.live(aws, options.name)
    previous = cfn.deployed_buckets(aws, options.name) if stack else []
    current = {b: _read_notifications(aws, b) for b in sorted({*buckets, *previous})}
    code_bucket = artifact_bucket or artifacts.default_bucket(aws)
    code_key = f"{options.name}/{package.sha256}.zip"
    target = _notification_target(aws, options)
    plan = cfn.Plan(options.name, stack, template, {"CodeBucket": code_bucket, "CodeKey": code_key})
    wanted = {b: notes.entry_for(options.name, options.trigger, target, config.routes(b)) for b in buckets}
    preflight.refuse_overlaps(current, wanted, options.name)
    preflight.refuse_missing_secrets(aws, config)
    if stack is None:
        preflight.refuse_leftovers(aws, options.name)

    verb = "would" if dry_run else "will"
    say(f"stack {options.name} in {aws.region}, account {aws.account} ({verb} {'update' if stack else 'create'})")
    say(f"  {verb} upload the package to s3://{code_bucket}/{code_key}")
    if dry_run:
        cfn.preview(aws, plan, say)
        _show_notifications(current, wanted, options.name, say, verb="would")
        say("dry run: nothing was created, changed or removed")
        return
    change_set = cfn.propose(aws, plan, say)
    _show_notifications(current, wanted, options.name, say, verb="will")
    if not _ask(confirm, aws, plan, change_set, say):
        cfn.discard(aws, plan, change_set)
        say("nothing was created, changed or removed")
        return
    _carry_out(aws, plan, change_set, package, ours=artifact_bucket is None, say=say)
    for bucket in current:
        _hook_up(aws, bucket, options.name, wanted.get(bucket), say)
    _summary(options, buckets, target, say)


def _ask(confirm: Confirm, aws: Aws, plan: cfn.Plan, change_set: str | None, say: Say) -> bool:
    """The question; Ctrl-C or end of input there (KeyboardInterrupt, click's Abort) discards the proposal.

    Else a first deploy would leave its change set and an empty REVIEW_IN_PROGRESS stack,
    which the next deploy then refuses as a leftover.
    """
    try:
        return confirm("Deploy these changes?")
    except (KeyboardInterrupt, RuntimeError):  # click.Abort is a RuntimeError; deploy does not import click
        cfn.discard(aws, plan, change_set)
        made = "the change set and the empty stack it made" if plan.stack is None else "the change set"
        say(f"interrupted: discarded {made}; nothing was created, changed or removed")
        raise


def _carry_out(aws: Aws, plan: cfn.Plan, change_set: str | None, package: Package, *, ours: bool, say: Say) -> None:
    """Upload, run the change set; undo a first deploy that fails."""
    where = (plan.parameters["CodeBucket"], plan.parameters["CodeKey"])
    made: list[str] = []
    try:
        made = artifacts.upload(aws, package, where, ours, say)
        if change_set is not None:
            cfn.execute(aws, plan, change_set, say)
    except DeployError:
        if plan.stack is None:
            cfn.delete_failed(aws, plan.name)
            artifacts.remove_made(aws, where, made)
            say(f"  removed what this deploy had created ({', '.join(['stack', *made])}): nothing is left behind")
        elif change_set is not None and made:
            say(f"  the package stays in s3://{plan.parameters['CodeBucket']}/ (destroy removes it)")
        raise


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


def _read_notifications(aws: Aws, bucket: str) -> dict[str, Any]:
    with doing(f"read the notification configuration of bucket {bucket} (owned by account {aws.account}?)"):
        return notes.read(aws.client("s3"), bucket, aws.account)


def _notification_target(aws: Aws, options: Options) -> str:
    if options.trigger == "sqs":
        return aws.arn("sqs", f"{options.name}-events")
    return aws.arn("lambda", f"function:{options.name}")


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
