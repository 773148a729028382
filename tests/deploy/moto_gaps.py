"""What moto's CloudFormation skips, made after deploy through the service APIs: tests only.

moto skips AWS::SQS::QueuePolicy and AWS::CloudWatch::Alarm while the stack still reaches
CREATE_COMPLETE; a skipped resource is missing from the stack's resource list. On AWS the stack
makes every resource, so deploy has no such path. A test that inspects these resources calls
`fill` after the real deploy: it makes them from the template deploy gave the stack.
"""

from __future__ import annotations

import json
import re
from typing import Any

from s3purge.deploy import cloudformation as cfn
from s3purge.deploy.aws import Aws

SKIPPED_BY_MOTO = ("AWS::SQS::QueuePolicy", "AWS::CloudWatch::Alarm")


def fill(aws: Aws, name: str = "s3purge") -> list[str]:
    """Create what the stack skipped, as its deployed template describes it; the logical ids made."""
    listed = aws.client("cloudformation").describe_stack_resources(StackName=name)["StackResources"]
    physical = {r["LogicalResourceId"]: r.get("PhysicalResourceId", "") for r in listed if "LogicalResourceId" in r}
    resolver = _Resolver(aws, physical)
    made = []
    for logical, resource in cfn.deployed_template(aws, name)["Resources"].items():
        if resource["Type"] not in SKIPPED_BY_MOTO or logical in physical:
            continue
        properties = resolver.resolve(resource["Properties"])
        if resource["Type"] == "AWS::CloudWatch::Alarm":
            aws.client("cloudwatch").put_metric_alarm(**properties)
        else:
            policy = json.dumps(properties["PolicyDocument"])
            for url in properties["Queues"]:
                aws.client("sqs").set_queue_attributes(QueueUrl=url, Attributes={"Policy": policy})
        made.append(logical)
    return made


class _Resolver:
    """Ref / Fn::GetAtt / Fn::Sub against a stack's resources, for the few types used above."""

    def __init__(self, aws: Aws, physical: dict[str, str]) -> None:
        self.aws = aws
        self.refs = {
            **physical,
            "AWS::AccountId": aws.account,
            "AWS::Region": aws.region,
            "AWS::Partition": aws.partition,
        }

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Ref"}:
            return self.refs[value["Ref"]]
        if set(value) == {"Fn::GetAtt"}:
            return self.attribute(*value["Fn::GetAtt"])
        if set(value) == {"Fn::Sub"}:
            return re.sub(r"\$\{([^!}][^}]*)\}", lambda m: self._sub(m.group(1)), value["Fn::Sub"]).replace("${!", "${")
        return {k: self.resolve(v) for k, v in value.items()}

    def _sub(self, name: str) -> str:
        logical, _, attribute = name.partition(".")
        return str(self.attribute(logical, attribute) if attribute else self.refs[logical])

    def attribute(self, logical: str, attribute: str) -> str:
        ref = self.refs[logical]
        if ref.startswith("https://") or ref.startswith("http://"):  # an SQS queue's URL
            queue = ref.rstrip("/").rsplit("/", 1)[1]
            return {"QueueName": queue, "Arn": self.aws.arn("sqs", queue)}[attribute]
        if attribute == "Arn":
            return self.aws.arn("lambda", f"function:{ref}")
        raise ValueError(f"cannot resolve {logical}.{attribute}")
