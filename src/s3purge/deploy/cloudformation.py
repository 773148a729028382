"""The CloudFormation calls of deploy and destroy: the stack as it is, change sets, waits.

Waits use boto3's waiters, checking every DELAY seconds: a stack that ends in a failure
state is read and explained by the caller, running out of time is one DeployError.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Any

from s3purge.deploy import DeployError
from s3purge.deploy.aws import Aws, Say, doing

DELAY = 3
"""Seconds between checks (the waiters' own default is 30, slow for a command someone watches)."""
STACK_TIMEOUT = 1800.0
CHANGE_SET_TIMEOUT = 300.0
DONE = ("CREATE_COMPLETE", "UPDATE_COMPLETE")
CHANGE_SET_PAGES = 20
"""DescribeChangeSet pages read at most: 100 changes a page, four times a 500-resource stack."""
SYMBOLS = {"Add": "+", "Modify": "~", "Remove": "-", "Import": "+", "Dynamic": "?"}


@dataclass(frozen=True)
class Plan:
    """The stack as it is and as it should be."""

    name: str
    stack: dict[str, Any] | None
    template: dict[str, Any]
    parameters: dict[str, str]


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


def live(aws: Aws, name: str) -> dict[str, Any] | None:
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


def deployed_buckets(aws: Aws, name: str) -> list[str]:
    """The buckets the deployed stack hooked up, as its template's metadata records them."""
    metadata = deployed_template(aws, name).get("Metadata", {}).get("s3purge", {})
    return list(metadata.get("buckets", []))


def stack_parameters(stack: dict[str, Any]) -> dict[str, str]:
    return {p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters", [])}


def propose(aws: Aws, plan: Plan, say: Say) -> str | None:
    """A change set for the stack (None when nothing changes), shown."""
    change_set, changes = _change_set(aws, plan)
    old = stack_parameters(plan.stack or {})
    if change_set is None and old.get("CodeKey") == plan.parameters["CodeKey"]:
        say("  stack: no changes")
    _show_changes(changes, old, plan.parameters, say)
    return change_set


def preview(aws: Aws, plan: Plan, say: Say) -> None:
    """Show what a deploy would change, leaving no change set behind."""
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


def discard(aws: Aws, plan: Plan, change_set: str | None) -> None:
    """Drop a change set that will not run (and the empty stack a first change set made)."""
    if change_set is not None:
        with doing(f"delete the change set of stack {plan.name}"):
            aws.client("cloudformation").delete_change_set(ChangeSetName=change_set)
    if plan.stack is None:
        delete_failed(aws, plan.name)


def execute(aws: Aws, plan: Plan, change_set: str, say: Say) -> None:
    """Run the change set to completion."""
    name = plan.name
    cloudformation = aws.client("cloudformation")
    waiter = "stack_update_complete" if plan.stack else "stack_create_complete"
    with doing(f"execute the change set of stack {name}"):
        cloudformation.execute_change_set(ChangeSetName=change_set)
        wait(cloudformation, waiter, timeout=STACK_TIMEOUT, StackName=name)
        final = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
    if final["StackStatus"] not in DONE:
        raise DeployError(f"stack {name} ended {final['StackStatus']}: {failures(aws, name)}")
    say(f"  stack {name}: {final['StackStatus']}")


def delete(aws: Aws, name: str, what: str) -> dict[str, Any] | None:
    """Delete the stack and wait for it: the stack as it ended (None once gone)."""
    cloudformation = aws.client("cloudformation")
    with doing(what):
        cloudformation.delete_stack(StackName=name)
        wait(cloudformation, "stack_delete_complete", timeout=STACK_TIMEOUT, StackName=name)
    return describe(aws, name)


def delete_failed(aws: Aws, name: str) -> None:
    """Remove the stack a failed (or abandoned) first deploy left, if there is one."""
    if describe(aws, name) is not None:
        delete(aws, name, f"delete the failed stack {name}")


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


def wait(client: Any, waiter: str, *, timeout: float, **request: Any) -> None:
    """Wait with a boto3 waiter until it succeeds or fails; an error answer is raised as AWS gave it.

    A failure state returns like success: the caller reads the state and explains it.
    """
    from botocore.exceptions import ClientError, WaiterError

    found = client.get_waiter(waiter)
    config = {"Delay": DELAY, "MaxAttempts": max(1, math.ceil(timeout / DELAY))}
    try:
        found.wait(**request, WaiterConfig=config)
    except WaiterError as error:
        if "Max attempts exceeded" in str(error):
            raise DeployError(f"gave up waiting after {timeout:.0f} s") from None
        answer = error.last_response or {}
        if "Error" in answer:  # so `doing` names the call and AWS's reason, as for any other call
            raise ClientError(answer, found.config.operation) from None


def _parameters(values: dict[str, str]) -> list[dict[str, str]]:
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]


def _change_set(aws: Aws, plan: Plan) -> tuple[str | None, list[dict[str, Any]]]:
    """Create a change set and wait for it: (its id, its changes); (None, []) when nothing changes."""
    from botocore.exceptions import ClientError

    name = plan.name
    cloudformation = aws.client("cloudformation")
    try:
        created = cloudformation.create_change_set(
            StackName=name,
            ChangeSetName=f"s3purge-{int(time.time())}",
            ChangeSetType="UPDATE" if plan.stack else "CREATE",
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
        wait(cloudformation, "change_set_create_complete", timeout=CHANGE_SET_TIMEOUT, ChangeSetName=change_set)
        described = read_change_set(cloudformation, change_set)
    if described["Status"] == "FAILED":
        reason = str(described.get("StatusReason", ""))
        if "didn't contain changes" in reason or "No updates" in reason:
            with doing(f"delete the empty change set of stack {name}"):
                cloudformation.delete_change_set(ChangeSetName=change_set)
            return None, []
        raise DeployError(f"CloudFormation refused the change set for stack {name}: {reason}")
    return change_set, list(described.get("Changes", []))


def read_change_set(cloudformation: Any, change_set: str) -> dict[str, Any]:
    """DescribeChangeSet with the Changes of every page (boto3 has no paginator for it)."""
    pages = [cloudformation.describe_change_set(ChangeSetName=change_set)]
    while token := pages[-1].get("NextToken"):
        if len(pages) == CHANGE_SET_PAGES:  # a token that never ends would loop forever
            raise DeployError(f"change set {change_set}: more than {CHANGE_SET_PAGES} pages of changes")
        pages.append(cloudformation.describe_change_set(ChangeSetName=change_set, NextToken=token))
    first = {key: value for key, value in pages[0].items() if key != "NextToken"}
    return first | {"Changes": [change for page in pages for change in page.get("Changes", [])]}


def _show_changes(changes: list[dict[str, Any]], old: dict[str, str], new: dict[str, str], say: Say) -> None:
    for change in changes:
        resource = change["ResourceChange"]
        replace = " (replaced)" if resource.get("Replacement") == "True" else ""
        symbol = SYMBOLS.get(resource["Action"], "?")
        say(f"  {symbol} {resource['LogicalResourceId']} ({resource['ResourceType']}){replace}")
    if old and old.get("CodeKey") != new["CodeKey"]:
        say(f"  ~ Function code: new package {new['CodeKey']}")
