"""Asking without credentials: HEAD requests through the CDN, and S3 for the key's state now.

Probes are HEAD requests: no body is sent back, and CDNs (Varnish, CloudFront, Fastly,
Cloudflare, Akamai) answer HEAD from the same cache entry as GET with the same ETag and
Last-Modified. They go out on their own HTTP client with no auth, no .netrc, no proxy
credentials: a probe never carries a credential. A probe ends by the invocation's deadline, and
whatever goes wrong building or sending it is an answer (none, with the reason), never an exception.
"""

from __future__ import annotations

import email.utils
import logging
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import httpx

from s3purge.deadline import BoundedTransport, within
from s3purge.freshness import Current, Probe, Seen
from s3purge.model import Change
from s3purge.origin import s3_client

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger("s3purge")

USER_AGENT = "s3purge-verify/1"


class Prober:
    """One HTTP client for probes (no credentials of any kind) and an S3 client, each made when first asked."""

    def __init__(self, client: httpx.Client | None = None, s3: S3Client | None = None) -> None:
        self._client = client
        self._s3 = s3
        self._lock = threading.Lock()

    @property
    def client(self) -> httpx.Client:
        """Made at the first probe, not at cold start: its TLS context loads the CA bundle (~40 ms),
        which a Lambda whose routes never verify would pay at every cold start for nothing."""
        with self._lock:  # probes run on a pool: one client for all of them
            if self._client is None:
                # Its own client: no auth, no .netrc or proxy credentials from the environment; on
                # sockets that end each probe by the deadline however slowly the CDN answers.
                transport = BoundedTransport(httpx.create_ssl_context())
                self._client = httpx.Client(follow_redirects=False, trust_env=False, timeout=5.0, transport=transport)
            return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def probe(self, probe: Probe, deadline: float) -> Seen:
        """What the CDN serves at `probe` (its status, ETag, version id, Last-Modified), by `deadline`."""
        sent = {"Host": probe.host, "User-Agent": USER_AGENT}
        if probe.scheme is not None:
            sent["X-Forwarded-Proto"] = probe.scheme
        try:
            with within(deadline):
                response = self.client.head(probe.url, headers=sent)
        except Exception as error:  # noqa: BLE001 - any of them (InvalidURL too) stays with this (change, CDN)
            return Seen(None, error=_reason(error))
        headers = response.headers
        return Seen(
            response.status_code,
            headers.get("etag"),
            headers.get("x-amz-version-id"),
            _http_time(headers.get("last-modified")),
        )

    def current(self, change: Change) -> Current | None:
        """The key's state in S3 now; None when S3 cannot say (logged)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            head = self._s3_client().head_object(Bucket=change.bucket, Key=change.key)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchKey", "NotFound"):
                return Current(exists=False)
            log.warning("origin check failed", extra={"bucket": change.bucket, "key": change.key, "error": code})
            return None
        except BotoCoreError as error:
            log.warning("origin check failed", extra={"bucket": change.bucket, "error": type(error).__name__})
            return None
        return Current(True, head.get("ETag"), head.get("VersionId"), head.get("LastModified"))

    def _s3_client(self) -> S3Client:
        with self._lock:  # origin checks run on the probe pool
            if self._s3 is None:
                self._s3 = s3_client()
            return self._s3


def _reason(error: Exception) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text[:200]}" if text else type(error).__name__


def _http_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    # "-0000" (no zone said) parses naive: taken as UTC, the zone HTTP dates are in, so that it
    # compares with the event's and S3's aware times instead of raising.
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
