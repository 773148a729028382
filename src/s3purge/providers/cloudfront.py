"""AWS CloudFront: one SigV4-signed CreateInvalidation per batch and distribution.

Paths are rebuilt from the decoded key by CloudFront's rule: percent-encode non-ASCII and
RFC 1738 "unsafe" characters (space " # % < > [ \\ ] ^ ` { | } ~) and nothing else, or the
cached object is not matched. `*` is a wildcard (last character only) and has no escape, so
a key containing `*` is invalidated as a wildcard cut after its first `*`: that covers it. No
invalidation matches a `~`, raw or encoded, so a key holding one is cut before it the same way.
A pasted URL's query is kept (`/p.html?v=2`: AWS, "What you need to know when invalidating
files", Forwarding query strings), and its bare path is sent too, as a distribution whose
cache key has no query caches that request under it. Prefixes become `/dir/*`, everything
`/*`, a cache tag `#tag` (2026-04-29: tags come from the response header the distribution's
CacheTagConfig names, e.g. S3 metadata `x-amz-meta-cache-tag`; each tag is one path, in the
in-progress limit and the price, and evicts every variant). The CallerReference hashes
distribution, sources and paths: a retried or redriven call gets back the invalidation it
made, never a second.
"""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from typing import Annotated, ClassVar
from urllib.parse import quote, unquote, urlsplit

import httpx
from msgspec import Meta

from s3purge.errors import Rejected, Retryable, TooLarge
from s3purge.model import Batch, Target, TargetKind
from s3purge.providers.answers import retry_after
from s3purge.providers.base import (
    PRINTABLE_ASCII,
    AwsGrant,
    Limits,
    Provider,
    TagRules,
    VendorOptions,
    Wildcards,
)
from s3purge.providers.sigv4 import SigV4

API_BASE = "https://cloudfront.amazonaws.com"
NS = "http://cloudfront.amazonaws.com/doc/2020-05-31/"
MAX_PATHS = 3000
MAX_WILDCARDS = 15
SAFE = "/;:@=&$+!*'(),"
"""RFC 1738 reserved (without '?', which would start a query), safe and extra characters."""
RETRYABLE = {"TooManyInvalidationsInProgress", "Throttling", "ThrottlingException", "RequestLimitExceeded"}
TOO_LARGE = "BatchTooLarge"
"""HTTP 413 "Invalidation batch specified is too large" (botocore model)."""
HINTS = {
    TOO_LARGE: "batches are halved to the size the distribution takes",
    "AccessDenied": "allow cloudfront:CreateInvalidation on this distribution to the function's role",
    "NoSuchDistribution": "check distribution_ids in the config",
    "InvalidArgument": "a path was refused; report the key, it may need another encoding rule",
}


class CloudFrontOptions(VendorOptions, frozen=True):
    distribution_ids: Annotated[list[str], Meta(min_length=1)]
    """Every distribution in front of the bucket; each batch is invalidated on each."""
    wait: bool = False
    """Acknowledge only once CloudFront reports the invalidation completed (minutes)."""


class CloudFront(Provider):
    vendor = "cloudfront"
    supports: ClassVar = {
        "url": frozenset({"purge"}),
        "tag": frozenset({"purge"}),
        "prefix": frozenset({"purge"}),
        "everything": frozenset({"purge"}),
    }
    limits = Limits(max_items=MAX_PATHS, concurrency=4, timeout=15.0)
    Options = CloudFrontOptions
    options: CloudFrontOptions
    secret_headers = frozenset({"authorization", "x-amz-security-token"})
    api = API_BASE
    endpoints: ClassVar = dict.fromkeys(
        ("url", "tag", "prefix", "everything"), ("/2020-05-31/distribution/{distribution_ids}/invalidation",)
    )
    # AWS, "What you need to know when invalidating files": CloudFront does not support '~' in
    # invalidation paths, raw or URL-encoded. A key holding one is invalidated as the prefix
    # before it (named as a widening), else its invalidation would silently match nothing.
    wildcards = Wildcards(unmatchable="~")
    billed_per_item = True  # $0.005 a path past 1,000 a month; a wildcard or a #tag is one path
    throttled = frozenset()  # CloudFront throttles with error codes (RETRYABLE); a bare 429 takes the common rule
    # Cache tags: ASCII 33-126 but ',' (the header's separator), no wildcard, <= 256, case-insensitive,
    # at most 50 on one object (CloudFront drops the rest).
    tag_rules = TagRules(
        allowed=PRINTABLE_ASCII.replace(",", "").replace("*", ""), max_length=256, case_sensitive=False, per_object=50
    )

    def __init__(self, name: str, options: VendorOptions) -> None:
        super().__init__(name, options)
        self._auth = SigV4("cloudfront", "us-east-1")  # CloudFront's API lives in us-east-1

    def identity(self, target: Target) -> str:
        path = invalidation_paths(target.kind, target.value)[0]  # no scheme, no host: one path for all
        return path.lower() if target.kind == "tag" else path

    @property
    def auth(self) -> httpx.Auth:
        return self._auth

    def aws_grants(self) -> list[AwsGrant]:
        """CreateInvalidation on its distributions; GetInvalidation only where `wait` polls it."""
        distributions = tuple(f"distribution/{d}" for d in self.options.distribution_ids)

        def grant(sid: str, action: str) -> AwsGrant:
            return AwsGrant(sid, f"cloudfront:{action}", "cloudfront", distributions, regional=False)

        grants = [grant("InvalidateConfiguredDistributions", "CreateInvalidation")]
        if self.options.wait:
            grants.append(grant("WaitForInvalidations", "GetInvalidation"))
        return grants

    def paths(self, batch: Batch) -> list[str]:
        """The batch's invalidation paths, deduplicated (several hosts share one path)."""
        return list(dict.fromkeys(p for value in batch.values for p in invalidation_paths(batch.kind, value)))

    def paid_paths(self, batch: Batch) -> int:
        """Paths CloudFront bills for this batch (a wildcard counts as one), over all distributions."""
        return len(self.paths(batch)) * len(self.options.distribution_ids)

    def requests(self, batch: Batch) -> list[httpx.Request]:
        chunks = _chunks(self.paths(batch))
        return [
            httpx.Request(
                "POST",
                self.url(f"/2020-05-31/distribution/{quote(dist, safe='')}/invalidation"),
                content=invalidation_batch(paths, caller_reference(dist, batch.sources, paths)),
                headers={"Content-Type": "text/xml"},
            )
            for dist in self.options.distribution_ids
            for paths in chunks
        ]

    def cost(self, batch: Batch) -> int:
        return self.paid_paths(batch)

    def accepted(self, response: httpx.Response) -> str | None:
        root = _xml(response)
        if response.status_code != 201 or root is None:
            return None
        found = {_local(e.tag): (e.text or "") for e in root}
        ident, status = found.get("Id", "?"), found.get("Status", "?")
        if self.options.wait and status.lower() != "completed":  # accepted, but not yet done (moto: COMPLETED)
            raise Retryable(f"invalidation {ident} on {_distribution(response)} still {status}")
        return f"invalidation {ident} on {_distribution(response)} ({status})"

    def rejected(self, response: httpx.Response) -> None:
        root = _xml(response)
        error = {_local(e.tag): (e.text or "") for e in root.iter()} if root is not None else {}
        code = error.get("Code", "")
        if code in RETRYABLE:
            raise Retryable(f"{code} on {_distribution(response)}", retry_after=retry_after(response.headers))
        if code == TOO_LARGE:  # more paths than this call may carry: its halves may pass (adapt.py)
            raise TooLarge(f"HTTP {response.status_code} {code}: {error.get('Message', '')}", HINTS[code])
        if code:
            raise Rejected(f"HTTP {response.status_code} {code}: {error.get('Message', '')}", HINTS.get(code, ""))


def invalidation_paths(kind: TargetKind, value: str) -> list[str]:
    """A target's paths: a URL with a query (only a pasted one has one; a key's `?` is `%3F`) gives
    `/p.html?v=2`, the copy cached under that query, then `/p.html`, where a distribution whose
    cache key ignores the query keeps that request. Each is one paid path."""
    exact = invalidation_path(kind, value)
    if kind != "url":  # a tag's or prefix's '?' is its own character, never a query
        return [exact]
    bare = invalidation_path(kind, value.partition("?")[0])
    return list(dict.fromkeys([exact, bare]))


def invalidation_path(kind: TargetKind, value: str) -> str:
    """A target's CloudFront path: `https://h/a%20b.png` -> `/a%20b.png`, `https://h/a~1.png` -> `/a*`,
    prefix -> `/dir/*`, tag -> `#tag`; `https://h/p.html?v=2` -> `/p.html?v=2` (a `~` there: cut too)."""
    if kind == "everything":
        return "/*"
    if kind == "tag":
        return "#" + value
    parts = urlsplit(value)
    path = quote(unquote(parts.path) or "/", safe=SAFE).replace("~", "%7E")  # quote() never escapes '~'
    if kind == "prefix":
        path += "*"
    elif kind == "url" and parts.query:
        path += "?" + _query(parts.query)
    star = path.find("*")
    tilde = path.find("%7E")  # no invalidation matches a '~' (see `wildcards`): cut before it
    if tilde >= 0 and (star < 0 or tilde < star):
        return path[:tilde] + "*"
    return path if star < 0 else path[: star + 1]


def _query(query: str) -> str:
    """A pasted query as sent, its unsafe characters escaped like the path's; its escapes are kept
    (decoding would merge `%26` with `&`), in upper case (RFC 3986 6.2.2.1), and a stray `%` is `%25`."""
    escaped = quote(query, safe=SAFE + "?%").replace("~", "%7E")
    escaped = re.sub(r"%(?![0-9A-Fa-f]{2})", "%25", escaped)
    return re.sub(r"%[0-9A-Fa-f]{2}", lambda m: m[0].upper(), escaped)


def caller_reference(distribution: str, sources: frozenset[str], paths: list[str]) -> str:
    digest = hashlib.sha256("\n".join([distribution, *sorted(sources), "", *paths]).encode())
    return "s3purge-" + digest.hexdigest()[:40]


def invalidation_batch(paths: list[str], reference: str) -> bytes:
    """The CreateInvalidation body, members in the botocore model's order."""
    root = ET.Element("InvalidationBatch", xmlns=NS)
    holder = ET.SubElement(root, "Paths")
    ET.SubElement(holder, "Quantity").text = str(len(paths))
    items = ET.SubElement(holder, "Items")
    for path in paths:
        ET.SubElement(items, "Path").text = path
    ET.SubElement(root, "CallerReference").text = reference
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return body


def _chunks(paths: list[str]) -> list[list[str]]:
    """At most 3,000 paths and 15 wildcards per invalidation (CloudFront's in-flight caps)."""
    chunks: list[list[str]] = [[]]
    wildcards = 0
    for path in paths:
        star = path.endswith("*")
        if len(chunks[-1]) == MAX_PATHS or (star and wildcards == MAX_WILDCARDS):
            chunks.append([])
            wildcards = 0
        chunks[-1].append(path)
        wildcards += star
    return [c for c in chunks if c]


def _xml(response: httpx.Response) -> ET.Element | None:
    try:
        return ET.fromstring(response.content)  # noqa: S314  (AWS's answer; expat refuses entity bombs)
    except ET.ParseError:
        return None


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _distribution(response: httpx.Response) -> str:
    return response.request.url.path.rpartition("/distribution/")[2].partition("/")[0]
