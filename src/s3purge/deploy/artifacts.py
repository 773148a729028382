"""Where the Lambda package goes: the artifact bucket, the upload, and finding them again.

deploy tags each package it uploads with the stack's name and the artifact bucket it
creates with ARTIFACT_TAG; destroy removes only keys and buckets carrying those tags.
"""

from __future__ import annotations

import re

from s3purge.deploy import DeployError
from s3purge.deploy.aws import Aws, Say, doing
from s3purge.deploy.package import Package

ARTIFACT_TAG = {"Key": "s3purge:purpose", "Value": "artifacts"}


def package_tag(name: str) -> dict[str, str]:
    """The tag on every package deploy uploads: destroy deletes only keys carrying it."""
    return {"Key": "s3purge:stack", "Value": name}


def default_bucket(aws: Aws) -> str:
    return f"s3purge-artifacts-{aws.account}-{aws.region}"


def upload(aws: Aws, package: Package, where: tuple[str, str], ours: bool, say: Say) -> list[str]:
    """Upload the package unless it is there; what this made: "bucket" and/or "package"."""
    bucket, key = where
    from botocore.exceptions import ClientError

    s3 = aws.client("s3")
    made = ["bucket"] if ours and _ensure_bucket(aws, bucket, say) else []
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


def remove_made(aws: Aws, where: tuple[str, str], made: list[str]) -> None:
    """Delete what `upload` reported it made (a failed first deploy leaves nothing behind)."""
    bucket, key = where
    s3 = aws.client("s3")
    if "package" in made:
        with doing(f"delete s3://{bucket}/{key}"):
            s3.delete_object(Bucket=bucket, Key=key, ExpectedBucketOwner=aws.account)
    if "bucket" in made:
        with doing(f"delete the artifact bucket {bucket}"):
            s3.delete_bucket(Bucket=bucket, ExpectedBucketOwner=aws.account)


def _ensure_bucket(aws: Aws, bucket: str, say: Say) -> bool:
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


def uploaded(aws: Aws, bucket: str, name: str) -> list[str]:
    """The keys deploy uploaded for this stack: NAME/<sha256>.zip, tagged with the stack's name."""
    from botocore.exceptions import ClientError

    s3, owner = aws.client("s3"), aws.account
    pattern = re.compile(rf"{re.escape(name)}/[0-9a-f]{{64}}\.zip")
    try:
        pages = s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=f"{name}/", ExpectedBucketOwner=owner
        )
        keys = [o["Key"] for page in pages for o in page.get("Contents", []) if pattern.fullmatch(o["Key"])]
    except ClientError:
        return []  # the bucket is gone already
    found = []
    for key in keys:
        with doing(f"read the tags of s3://{bucket}/{key}"):
            tags = s3.get_object_tagging(Bucket=bucket, Key=key, ExpectedBucketOwner=owner)["TagSet"]
        if package_tag(name) in tags:
            found.append(key)
    return found


def bucket_goes(aws: Aws, bucket: str, ours: int) -> bool:
    """True for an artifact bucket deploy created (tagged) that holds nothing but our packages."""
    from botocore.exceptions import ClientError

    s3, owner = aws.client("s3"), aws.account
    try:
        tags = s3.get_bucket_tagging(Bucket=bucket, ExpectedBucketOwner=owner)["TagSet"]
    except ClientError:
        return False
    if ARTIFACT_TAG not in tags:
        return False
    with doing(f"list s3://{bucket}"):
        return int(s3.list_objects_v2(Bucket=bucket, MaxKeys=1000, ExpectedBucketOwner=owner)["KeyCount"]) <= ours
