"""Waits on the moto server: boto3's waiters, each way a wait can end as one clear error.

Reading a change set's pages: moto never pages DescribeChangeSet, so those tests give a real
boto3 client a page sequence with botocore's Stubber (the AWS answers are stubbed, not our code).
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

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


CHANGE_SET = "arn:aws:cloudformation:eu-west-1:123456789012:changeSet/s3purge-1/0a1b"


def change(n: int) -> dict[str, Any]:
    resource = {"Action": "Add", "LogicalResourceId": f"Topic{n}", "ResourceType": "AWS::SNS::Topic"}
    return {"Type": "Resource", "ResourceChange": resource}


def page(first: int, count: int, token: str | None) -> dict[str, Any]:
    answer = {
        "ChangeSetId": CHANGE_SET,
        "Status": "CREATE_COMPLETE",
        "Changes": [change(first + n) for n in range(count)],
    }
    return answer | ({"NextToken": token} if token else {})


def stubbed() -> tuple[Any, Stubber]:
    client = boto3.client(
        "cloudformation", region_name="eu-west-1", aws_access_key_id="stub", aws_secret_access_key="stub"
    )
    return client, Stubber(client)


class OneClient:
    """A session handing out the one stubbed client (deploy asks its session for each client)."""

    region_name = "eu-west-1"

    def __init__(self, client: Any) -> None:
        self._client = client

    def client(self, service: str) -> Any:
        return self._client


def test_deploy_shows_every_change_of_a_change_set_longer_than_a_page() -> None:
    client, stub = stubbed()
    stub.add_response("create_change_set", {"Id": CHANGE_SET, "StackId": "stack"})
    stub.add_response("describe_change_set", page(0, 100, "page-2"), {"ChangeSetName": CHANGE_SET})  # the waiter
    stub.add_response("describe_change_set", page(0, 100, "page-2"), {"ChangeSetName": CHANGE_SET})
    stub.add_response(
        "describe_change_set", page(100, 100, "page-3"), {"ChangeSetName": CHANGE_SET, "NextToken": "page-2"}
    )
    stub.add_response("describe_change_set", page(200, 7, None), {"ChangeSetName": CHANGE_SET, "NextToken": "page-3"})
    plan = cfn.Plan("big", {"Parameters": []}, TEMPLATE, {"CodeKey": "code.zip"})
    shown: list[str] = []

    with stub:
        change_set = cfn.propose(Aws(OneClient(client), "123456789012", "aws"), plan, shown.append)

    stub.assert_no_pending_responses()
    assert change_set == CHANGE_SET
    assert shown == [f"  + Topic{n} (AWS::SNS::Topic)" for n in range(207)]


def test_a_change_set_whose_pages_never_end_is_one_error() -> None:
    client, stub = stubbed()
    stub.add_response("describe_change_set", page(0, 1, "again"), {"ChangeSetName": CHANGE_SET})
    for _ in range(cfn.CHANGE_SET_PAGES - 1):
        stub.add_response(
            "describe_change_set", page(0, 1, "again"), {"ChangeSetName": CHANGE_SET, "NextToken": "again"}
        )

    with stub, pytest.raises(DeployError, match=rf"more than {cfn.CHANGE_SET_PAGES} pages of changes$"):
        cfn.read_change_set(client, CHANGE_SET)

    stub.assert_no_pending_responses()  # it asked exactly CHANGE_SET_PAGES times
