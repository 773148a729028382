"""Akamai EdgeGrid request signing (EG1-HMAC-SHA256), as an httpx.Auth.

The algorithm Akamai documents and edgegrid-python implements, checked against Akamai's
published test vectors (tests/emulators/specs/edgegrid-*.json). Signed here rather than
with edgegrid-python: that library signs `requests` objects, so bundling it puts
requests, requests-toolbelt and charset-normalizer into the Lambda package and imports
them on every Akamai cold start, for some forty lines of HMAC (figures in docs/deploy.md).
It also logs the signing key at DEBUG; this module never logs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
import uuid
from collections.abc import Generator, Sequence
from typing import Protocol

import httpx

MAX_BODY = 131_072
"""Bytes of a POST body covered by the content hash (edgegrid-python's default max_body)."""
_SPACES = re.compile(r"\s+")


class _Revealable(Protocol):
    def reveal(self) -> str: ...


def timestamp(now: float | None = None) -> str:
    """EdgeGrid's timestamp format, always UTC."""
    return time.strftime("%Y%m%dT%H:%M:%S+0000", time.gmtime(now))


def _hmac(key: str, message: str) -> str:
    return base64.b64encode(hmac.new(key.encode(), message.encode(), hashlib.sha256).digest()).decode()


def content_hash(method: str, body: bytes, max_body: int = MAX_BODY) -> str:
    """Base64 SHA-256 of a POST body's first `max_body` bytes; empty for other methods and empty bodies."""
    if method.upper() != "POST" or not body:
        return ""
    return base64.b64encode(hashlib.sha256(body[:max_body]).digest()).decode()


def data_to_sign(
    request: httpx.Request, unsigned_header: str, headers_to_sign: Sequence[str] = (), max_body: int = MAX_BODY
) -> str:
    """The tab-separated string EdgeGrid signs: method, scheme, host, path?query, headers, body hash, header."""
    url = request.url
    host = request.headers.get("host") or url.netloc.decode("ascii")
    wanted = [name.lower() for name in headers_to_sign]
    canonical = "\t".join(
        f"{name}:{_SPACES.sub(' ', request.headers[name].strip())}" for name in wanted if name in request.headers
    )
    return "\t".join(
        [
            request.method,
            url.scheme,
            host,
            url.raw_path.decode("ascii"),  # path and query exactly as sent
            canonical,
            content_hash(request.method, request.content, max_body),
            unsigned_header,
        ]
    )


def authorization(
    request: httpx.Request,
    client_token: str,
    client_secret: str,
    access_token: str,
    *,
    when: str,
    nonce: str,
    headers_to_sign: Sequence[str] = (),
    max_body: int = MAX_BODY,
) -> str:
    """The Authorization header value for `request`, signed at `when` with `nonce`."""
    unsigned = (
        f"EG1-HMAC-SHA256 client_token={client_token};access_token={access_token};timestamp={when};nonce={nonce};"
    )
    signing_key = _hmac(client_secret, when)
    signature = _hmac(signing_key, data_to_sign(request, unsigned, headers_to_sign, max_body))
    return f"{unsigned}signature={signature}"


class EdgeGridAuth(httpx.Auth):
    """Signs every send, retries included, with a fresh timestamp and nonce; secrets revealed only to sign."""

    requires_request_body = True

    def __init__(self, client_token: _Revealable, client_secret: _Revealable, access_token: _Revealable) -> None:
        self._secrets = (client_token, client_secret, access_token)

    def __repr__(self) -> str:
        return "EdgeGridAuth(<redacted>)"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        client_token, client_secret, access_token = (secret.reveal() for secret in self._secrets)
        request.headers["Authorization"] = authorization(
            request, client_token, client_secret, access_token, when=timestamp(), nonce=str(uuid.uuid4())
        )
        yield request
