"""CloudFront's API as a strict gate in front of the moto server.

The gate validates each CreateInvalidation body with botocore's ParamValidator on
specs/cloudfront-invalidation.botocore.json, checks CloudFront's documented limits
(3,000 paths and 15 wildcards per call, path syntax, SigV4 for cloudfront/us-east-1; `#tag`
cache-tag paths by the rules in specs/cloudfront-cache-tags.json, each counted as one path),
can answer AWS's XML errors (moto cannot be told to), and otherwise proxies to moto.
"""

from __future__ import annotations

import json
import re
import time
import xml.etree.ElementTree as ET
from typing import Any

import httpx

from tests.emulators import specs
from tests.emulators.base import Emulator, Invalid, Recorded, Reply

SPEC = specs.HERE / "cloudfront-invalidation.botocore.json"
NS = "{http://cloudfront.amazonaws.com/doc/2020-05-31/}"
UNSAFE = set(' "#<>[\\]^`{|}~')
TAGS = specs.load("cloudfront-cache-tags.json")


class CloudFrontGate(Emulator):
    """Strict CloudFront front: validate, optionally answer an AWS error or InProgress, else proxy to moto."""

    def __init__(self, upstream: str, max_paths: int = 3000) -> None:
        super().__init__()
        self.max_paths = max_paths
        """An account refusing more paths a call than the documented 3,000: 413 BatchTooLarge, as AWS answers."""
        from botocore.model import ServiceModel

        self.upstream = upstream
        self.operation = ServiceModel(json.loads(SPEC.read_text()), "cloudfront").operation_model("CreateInvalidation")
        self.busy = 0
        """Answer this many valid calls with TooManyInvalidationsInProgress."""
        self.in_progress = 0
        """Report this many created invalidations as InProgress (moto says COMPLETED at once)."""

    def answer(self, request: Recorded) -> Reply:
        self.validate(request)
        if len(parse_batch(request.body)["Paths"]["Items"]) > self.max_paths:
            return aws_error(413, "BatchTooLarge", "Invalidation batch specified is too large.")
        if self.busy:
            self.busy -= 1
            return aws_error(400, "TooManyInvalidationsInProgress", "Processing your request will cause you to exceed")
        forwarded = httpx.post(self.upstream + request.path, content=request.body, headers=_signed(request))
        body = forwarded.content
        if self.in_progress and forwarded.status_code == 201:
            self.in_progress -= 1
            body = body.replace(b"<Status>COMPLETED</Status>", b"<Status>InProgress</Status>")
        return Reply(forwarded.status_code, body, {"Content-Type": "text/xml"})

    def validate(self, request: Recorded) -> None:
        match = re.fullmatch(r"/2020-05-31/distribution/([^/]+)/invalidation", request.path)
        if request.method != "POST" or match is None:
            raise Invalid("only CreateInvalidation is expected")
        auth = request.headers.get("authorization", "")
        if not auth.startswith("AWS4-HMAC-SHA256 Credential=") or "/us-east-1/cloudfront/aws4_request" not in auth:
            raise Invalid(f"not SigV4 for cloudfront/us-east-1: {auth[:40]!r}")
        if "x-amz-date" not in request.headers:
            raise Invalid("x-amz-date missing")
        batch = parse_batch(request.body)
        params = {"DistributionId": match[1], "InvalidationBatch": batch}
        from botocore.validate import ParamValidator

        assert self.operation.input_shape is not None
        report = ParamValidator().validate(params, self.operation.input_shape)
        if report.has_errors():
            raise Invalid(report.generate_report())
        paths = batch["Paths"]["Items"]
        if batch["Paths"]["Quantity"] != len(paths):
            raise Invalid("InconsistentQuantities")
        if len(paths) > 3000 or sum(p.endswith("*") for p in paths) > 15:
            raise Invalid("BatchTooLarge: more than 3,000 paths or 15 wildcards in progress")
        for path in paths:
            check_path(path)


def check_path(path: str) -> None:
    """CloudFront's documented path rules: rooted, `*` last only, non-ASCII and RFC 1738 unsafe escaped;
    or a cache tag."""
    if path.startswith(TAGS["path_prefix"]):
        check_tag(path.removeprefix(TAGS["path_prefix"]))
        return
    if not path.startswith("/") or len(path) > 4000:
        raise Invalid(f"InvalidArgument: {path!r}")
    if "*" in path[:-1]:
        raise Invalid(f"InvalidArgument: '*' only as the last character: {path!r}")
    if any(c in UNSAFE or not c.isascii() or not c.isprintable() for c in path):
        raise Invalid(f"InvalidArgument: unescaped character in {path!r}")
    if re.search(r"%(?![0-9A-F]{2})", path):
        raise Invalid(f"InvalidArgument: bad escape in {path!r}")


def check_tag(tag: str) -> None:
    """A `#tag` path's tag: 1 to 256 characters of ASCII 33-126, no comma, no wildcard."""
    rules = TAGS["tag"]
    if not 0 < len(tag) <= rules["max_length"]:
        raise Invalid(f"InvalidArgument: a cache tag holds 1 to {rules['max_length']} characters: {tag[:40]!r}")
    bad = [c for c in tag if not rules["min_codepoint"] <= ord(c) <= rules["max_codepoint"] or c in rules["forbidden"]]
    if bad:
        raise Invalid(f"InvalidArgument: cache tag {tag[:40]!r} holds {bad[0]!r}")


def parse_batch(body: bytes) -> dict[str, Any]:
    root = ET.fromstring(body)  # noqa: S314
    if root.tag != NS + "InvalidationBatch" or [_name(c) for c in root] != ["Paths", "CallerReference"]:
        raise Invalid(f"not an InvalidationBatch in the model's member order: {body[:120]!r}")
    holder = root.find(NS + "Paths")
    assert holder is not None
    items = holder.find(NS + "Items")
    return {
        "Paths": {
            "Quantity": int(holder.findtext(NS + "Quantity") or -1),
            "Items": [item.text or "" for item in (items if items is not None else [])],
        },
        "CallerReference": root.findtext(NS + "CallerReference"),
    }


def aws_error(status: int, code: str, message: str) -> Reply:
    body = (
        f'<?xml version="1.0"?><ErrorResponse xmlns="{NS[1:-1]}"><Error><Type>Sender</Type>'
        f"<Code>{code}</Code><Message>{message}</Message></Error><RequestId>r-1</RequestId></ErrorResponse>"
    )
    return Reply(status, body.encode(), {"Content-Type": "text/xml"})


def _name(element: ET.Element) -> str:
    return element.tag.rpartition("}")[2]


def _signed(request: Recorded) -> dict[str, str]:
    return {k: v for k, v in request.headers.items() if k in ("authorization", "x-amz-date", "content-type")}


def distribution(cloudfront: Any) -> str:
    """A new distribution in the (moto) account of this boto3 CloudFront client; its id."""
    answer = cloudfront.create_distribution(
        DistributionConfig={
            "CallerReference": f"test-{time.monotonic_ns()}",
            "Comment": "",
            "Enabled": True,
            "Origins": {
                "Quantity": 1,
                "Items": [
                    {"Id": "s3", "DomainName": "site.s3.amazonaws.com", "S3OriginConfig": {"OriginAccessIdentity": ""}}
                ],
            },
            "DefaultCacheBehavior": {"TargetOriginId": "s3", "ViewerProtocolPolicy": "allow-all"},
        }
    )
    dist_id: str = answer["Distribution"]["Id"]
    return dist_id
