"""Resources a stack reports as created but never made: created here through their APIs.

moto's CloudFormation skips AWS::SQS::QueuePolicy and AWS::CloudWatch::Alarm while the
stack still reaches CREATE_COMPLETE. A skipped resource is missing from the stack's
resource list; on AWS every resource is listed, so nothing here runs there.
"""

from __future__ import annotations

import json
import re
from typing import Any

from s3purge.deploy import DeployError
from s3purge.deploy.aws import Aws, Say, doing

SKIPPED_BY_SOME_EMULATORS = ("AWS::SQS::QueuePolicy", "AWS::CloudWatch::Alarm")


def create_skipped(aws: Aws, name: str, template: dict[str, Any], say: Say) -> None:
    """Create through the service API what the stack skipped (moto skips these types silently)."""
    with doing(f"list the resources of stack {name}"):
        listed = aws.client("cloudformation").describe_stack_resources(StackName=name)["StackResources"]
    physical = {r["LogicalResourceId"]: r.get("PhysicalResourceId", "") for r in listed if "LogicalResourceId" in r}
    resolver = _Resolver(aws, physical)
    for logical, resource in template["Resources"].items():
        if resource["Type"] not in SKIPPED_BY_SOME_EMULATORS or logical in physical:
            continue
        properties = resolver.resolve(resource["Properties"])
        say(f"  note: the stack did not create {logical} ({resource['Type']}); created it through the API")
        with doing(f"create {logical} ({resource['Type']})"):
            if resource["Type"] == "AWS::CloudWatch::Alarm":
                aws.client("cloudwatch").put_metric_alarm(**properties)
            else:
                for url in properties["Queues"]:
                    aws.client("sqs").set_queue_attributes(
                        QueueUrl=url, Attributes={"Policy": json.dumps(properties["PolicyDocument"])}
                    )


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
        raise DeployError(f"cannot resolve {logical}.{attribute}")
