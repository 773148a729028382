"""Tags that belong with the object: read from its S3 user metadata (HeadObject).

A route with `tags_from_metadata: cache-tag` purges, besides its URLs and tag templates,
the tags the object carries in `x-amz-meta-cache-tag` (separated as its vendor's TagRules
say: commas, and whitespace for Fastly and xkey): the same metadata
CloudFront, Cloudflare (Cache-Tag), Fastly (Surrogate-Key) and Akamai (Edge-Cache-Tag) can
be set up to serve as the object's tags, so a tag such as `product-123` that no key template
can derive is purged too.

- **Created objects:** one HeadObject per changed key, run concurrently (`WORKERS`) before
  the plan. A key gone since its event has no tags to read (its URLs are still purged); any
  other failure (access denied, throttling, the deadline) fails that change on that route's
  CDNs retryably, so its message comes back and nothing is lost.
- **Too many tags:** a vendor that reads at most N tags from one object (TagRules.per_object:
  CloudFront 50, Akamai 128) is sent the first N; a warning names the object and the rest.
- **Removed objects:** their metadata is gone with them, so only their URLs and template
  tags are purged. A cached copy still carrying a metadata tag is evicted by its URL; other
  objects sharing that tag did not change and keep their copies. (On versioned buckets the
  previous version's metadata could be read; that is not done.)
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import msgspec

from s3purge.config import Config
from s3purge.mapping import applies, stored_tags
from s3purge.model import Batch, Change, Outcome
from s3purge.origin import s3_client

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger("s3purge")

WORKERS = 16
"""HeadObject calls in flight: S3 takes thousands a second per prefix; this bounds threads."""


@dataclass
class MetadataReader:
    """Reads user metadata for the changes whose routes take tags from it; reused across invocations."""

    s3: S3Client | None = None
    heads: int = 0
    """HeadObject calls made by this process (the bench reads it)."""
    _pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(WORKERS, "s3purge-head"))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def read(self, changes: list[Change], config: Config, deadline: float) -> tuple[list[Change], list[Outcome]]:
        """`changes` with `metadata` filled where a route needs it, and a retryable failure per
        (change, CDN) whose metadata could not be read."""
        wanted = {i: cdns for i, change in enumerate(changes) if (cdns := _cdns_needing(change, config))}
        if not wanted:
            return changes, []
        futures = {i: self._pool.submit(self._head, changes[i]) for i in wanted}
        wait(futures.values(), timeout=max(0.0, deadline - time.monotonic()))
        read, failed = list(changes), []
        for i, future in futures.items():
            change = changes[i]
            if not future.done():
                future.cancel()
                problem = "deadline reached while reading the object's metadata"
            else:
                metadata, problem = future.result()
                read[i] = msgspec.structs.replace(change, metadata=metadata)
                _warn_over_cap(read[i], config)
            if problem:
                failed += [_failure(change, cdn, problem) for cdn in sorted(wanted[i])]
        return read, failed

    def _head(self, change: Change) -> tuple[tuple[tuple[str, str], ...], str]:
        """(metadata, '') or ((), why it could not be read); a key gone since has none."""
        from botocore.exceptions import BotoCoreError, ClientError

        with self._lock:
            self.heads += 1
        try:
            head = self._client().head_object(Bucket=change.bucket, Key=change.key)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchKey", "NotFound"):
                return (), ""
            log.warning("metadata read failed", extra={"bucket": change.bucket, "key": change.key, "error": code})
            return (), f"could not read the object's metadata ({code or 'error'})"
        except BotoCoreError as error:
            return (), f"could not read the object's metadata ({type(error).__name__})"
        return tuple(sorted((k.lower(), v) for k, v in (head.get("Metadata") or {}).items())), ""

    def _client(self) -> S3Client:
        with self._lock:
            if self.s3 is None:
                self.s3 = s3_client()
            return self.s3


def _cdns_needing(change: Change, config: Config) -> set[str]:
    """CDNs of the routes that take tags from this created object's metadata."""
    if change.event != "created" or change.metadata is not None:
        return set()
    return {
        route.cdn
        for route in config.routes(change.bucket)
        if route.tags_from_metadata is not None and applies(route, change)
    }


def _warn_over_cap(change: Change, config: Config) -> None:
    """Name the object whose metadata holds more tags than its CDN reads: only the first are purged."""
    for route in config.routes(change.bucket):
        if route.tags_from_metadata is None or not applies(route, change):
            continue
        kept, dropped = stored_tags(route, change, config)
        if dropped:
            where = {"bucket": change.bucket, "key": change.key, "cdn": route.cdn}
            log.warning("metadata tags over the vendor's cap", extra={**where, "kept": len(kept), "ignored": dropped})


def _failure(change: Change, cdn: str, problem: str) -> Outcome:
    batch = Batch(cdn, "purge", "tag", (), frozenset({change.source}))
    return Outcome(batch, False, problem, retryable=True)
