"""Waits on the moto server: boto3's waiters, each way a wait can end as one clear error."""

from __future__ import annotations

import json
from typing import Any

import pytest

from s3purge.deploy import DeployError
from s3purge.deploy import cloudformation as cfn
from s3purge.deploy.aws import Aws, doing

TEMPLATE = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "waited"}}}}


def test_a_wait_that_runs_out_of_time_says_so_in_one_line(account: Aws, boto: Any) -> None:
    # A change set of type CREATE leaves the stack in REVIEW_IN_PROGRESS until it is executed:
    # the create waiter never sees CREATE_COMPLETE. One attempt, so no time passes.
    boto.cloudformation.create_change_set(
        StackName="waiting", ChangeSetName="never-run", ChangeSetType="CREATE", TemplateBody=json.dumps(TEMPLATE)
    )
    with pytest.raises(DeployError, match=r"^gave up waiting after 0 s$"), doing("wait for stack waiting"):
        cfn.wait(account.client("cloudformation"), "stack_create_complete", timeout=0.0, StackName="waiting")


def test_an_error_answer_while_waiting_names_the_step_and_aws_reason(account: Aws, boto: Any) -> None:
    with pytest.raises(DeployError) as failed, doing("wait for stack nope"):
        cfn.wait(account.client("cloudformation"), "stack_update_complete", timeout=60.0, StackName="nope")
    assert str(failed.value).startswith("cannot wait for stack nope: ValidationError: ")
    assert "\n" not in str(failed.value)


def test_a_failure_state_is_left_to_the_caller_to_explain(account: Aws, boto: Any) -> None:
    boto.cloudformation.create_stack(StackName="done", TemplateBody=json.dumps(TEMPLATE))
    changed = {"Resources": {**TEMPLATE["Resources"], "Other": {"Type": "AWS::SNS::Topic"}}}
    boto.cloudformation.update_stack(StackName="done", TemplateBody=json.dumps(changed))
    # The delete waiter counts UPDATE_COMPLETE (a stack not being deleted) as a failure state:
    # the wait returns at once (one attempt allowed) and the caller reads the state.
    cfn.wait(account.client("cloudformation"), "stack_delete_complete", timeout=cfn.DELAY, StackName="done")
    stack = cfn.describe(account, "done")
    assert stack is not None and stack["StackStatus"] == "UPDATE_COMPLETE"
