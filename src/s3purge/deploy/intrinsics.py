"""CloudFormation intrinsics the template writes: Fn::Sub ARNs in this stack's partition and account."""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]


def sub(text: str) -> Json:
    return {"Fn::Sub": text}


def arn(service: str, resource: str, region: bool = True) -> Json:
    where = "${AWS::Region}" if region else ""
    return sub(f"arn:${{AWS::Partition}}:{service}:{where}:${{AWS::AccountId}}:{resource}")


def literal(text: str) -> str:
    """Escape `${` so Fn::Sub leaves a user's name as written."""
    return text.replace("${", "${!")


def bucket_arn(bucket: str, keys: str = "") -> Json:
    """The bucket's ARN; with `keys` (e.g. "/*"), of those objects in it."""
    return sub(f"arn:${{AWS::Partition}}:s3:::{literal(bucket)}{keys}")
