"""Akamai Fast Purge (CCU v3) emulator: EdgeGrid signatures verified, bodies checked against the spec.

The signature is recomputed here from the documented algorithm (not with edgegrid-python,
so a misuse of the library by the code under test cannot hide). Bodies are validated
against akamai-ccu-v3.openapi.json; bodies over 50,000 bytes are answered 413 and count
as violations (the client must pack below the limit). The rate limit is the account's
object bucket: a denied request gets 429 with Akamai's X-Ratelimit-* headers and body.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import time
import uuid
from calendar import timegm
from typing import Any

import jsonschema

from tests.emulators import specs
from tests.emulators.base import Emulator, Invalid, Recorded, Reply

SPEC = specs.load("akamai-ccu-v3.openapi.json")
BODY_LIMIT = 50_000
CLIENT_TOKEN, CLIENT_SECRET, ACCESS_TOKEN = "akab-client-token", "c2VjcmV0LWNsaWVudC1zZWNyZXQ=", "akab-access-token"
PATH = re.compile(r"^/ccu/v3/(invalidate|delete)/(url|tag|cpcode)(?:/(staging|production))?$")
AUTH = re.compile(
    r"^EG1-HMAC-SHA256 client_token=(?P<client_token>[^;]+);access_token=(?P<access_token>[^;]+);"
    r"timestamp=(?P<timestamp>\d{8}T\d\d:\d\d:\d\d\+0000);nonce=(?P<nonce>[^;]+);signature=(?P<signature>\S+)$"
)


def _b64_hmac(key: str, message: str) -> str:
    return base64.b64encode(hmac.new(key.encode(), message.encode(), hashlib.sha256).digest()).decode()


def signature(secret: str, request: Recorded, unsigned_header: str, timestamp: str) -> str:
    """EG1-HMAC-SHA256 as documented: no headers_to_sign, body hash for POST."""
    content_hash = base64.b64encode(hashlib.sha256(request.body).digest()).decode() if request.body else ""
    path = request.path + (f"?{request.query}" if request.query else "")
    data = "\t".join([request.method, "http", request.headers["host"], path, "", content_hash, unsigned_header])
    return _b64_hmac(_b64_hmac(secret, timestamp), data)


@functools.cache  # one object per path: specs.validate builds its validator once
def _schema(path: str) -> dict[str, Any]:
    operation = SPEC["paths"][path]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    return {**schema, "components": SPEC["components"]}


class AkamaiEmulator(Emulator):
    def __init__(
        self,
        client_token: str = CLIENT_TOKEN,
        client_secret: str = CLIENT_SECRET,
        access_token: str = ACCESS_TOKEN,
        objects_per_second: float | None = None,
        objects_burst: float | None = None,
        *,
        body_limit: int = BODY_LIMIT,
        **kwargs: Any,
    ) -> None:
        super().__init__(rate=objects_per_second, burst=objects_burst, **kwargs)
        self.credentials = (client_token, client_secret, access_token)
        self.body_limit = body_limit
        """An account answering 413 below the documented 50,000 bytes (only those above it are violations)."""
        self.nonces: set[str] = set()

    def cost(self, request: Recorded) -> float:
        """A request takes one object token per object (the request bucket is not the limit here)."""
        try:
            return float(len(request.json()["objects"]))
        except (ValueError, KeyError, TypeError):
            return 1.0

    def answer(self, request: Recorded) -> Reply:
        denied = self._authenticate(request)
        if denied is not None:
            return denied
        match = PATH.match(request.path)
        if request.method != "POST" or match is None:
            raise Invalid(f"no such operation: {request.method} {request.path}")
        if request.headers.get("content-type", "").split(";")[0] != "application/json":
            raise Invalid("Content-Type must be application/json")
        if len(request.body) > min(BODY_LIMIT, self.body_limit):
            if len(request.body) > BODY_LIMIT:
                self.violations.append(f"{request.path}: body of {len(request.body)} bytes over {BODY_LIMIT}")
            return self._problem(413, "Request Entity Too Large", f"{len(request.body)} bytes")
        action, kind, _network = match.groups()
        try:
            body = request.json()
        except ValueError as error:
            raise Invalid(f"body is not JSON: {error}") from None
        try:
            specs.validate(body, _schema(f"/{action}/{kind}/{{network}}"))
        except jsonschema.ValidationError as error:
            raise Invalid(f"body breaks the spec: {error.message}") from None
        if kind == "url":
            for item in body["objects"]:
                if not re.match(r"^https?://[^/\s]+/\S*$", item):
                    raise Invalid(f"not an absolute URL: {item!r}")
        purge_id = f"edcp-{uuid.uuid4().hex[:22]}"
        reply = {
            "httpStatus": 201,
            "detail": "Request accepted",
            "estimatedSeconds": 5,
            "purgeId": purge_id,
            "supportId": purge_id,
        }
        return Reply(201, reply, self._rate_headers())

    def throttled(self, wait: float) -> Reply:
        assert self.rate is not None
        remaining = int(max(0.0, self._tokens))
        size = round(remaining + wait * self.rate)  # wait = (size - tokens) / rate
        reply = self._problem(429, "URL Rate Limit exceeded", "")
        reply.body.update(
            rateLimit=int(self.burst or 0), rateLimitCurrentRequestSize=size, rateLimitRemaining=remaining
        )
        reply.headers.update(self._rate_headers())
        return reply

    def _rate_headers(self) -> dict[str, str]:
        if self.rate is None:
            return {}
        return {
            "X-Ratelimit-Limit": "100",
            "X-Ratelimit-Remaining": "99",
            "X-Ratelimit-Limit-Per-Second": "50",
            "X-Ratelimit-Limit-Objects": str(int(self.burst or 0)),
            "X-Ratelimit-Remaining-Objects": str(int(max(0.0, self._tokens))),
            "X-Ratelimit-Limit-Per-Second-Objects": str(self.rate),
        }

    def _authenticate(self, request: Recorded) -> Reply | None:
        header = request.headers.get("authorization")
        if header is None:
            raise Invalid("no Authorization header (EdgeGrid)")
        parts = AUTH.match(header)
        if parts is None:
            raise Invalid(f"malformed EdgeGrid header: {header[:40]}…")
        if parts["nonce"] in self.nonces:
            raise Invalid("nonce reused: every send must be signed afresh")
        self.nonces.add(parts["nonce"])
        client_token, client_secret, access_token = self.credentials
        if (parts["client_token"], parts["access_token"]) != (client_token, access_token):
            return self._problem(401, "Not authorized", "Invalid authorization client token")
        signed = timegm(time.strptime(parts["timestamp"], "%Y%m%dT%H:%M:%S+0000"))
        if abs(time.time() - signed) > 300:
            return self._problem(401, "Not authorized", "Invalid timestamp")
        unsigned = header[: header.index("signature=")]
        if not hmac.compare_digest(parts["signature"], signature(client_secret, request, unsigned, parts["timestamp"])):
            return self._problem(401, "Not authorized", "The signature does not match")
        return None

    @staticmethod
    def _problem(status: int, title: str, detail: str) -> Reply:
        body = {
            "type": "https://problems.purge.akamaiapis.net/-/pep-authn/request-error",
            "title": title,
            "detail": detail,
            "httpStatus": status,
            "supportId": f"edcp-{uuid.uuid4().hex[:22]}",
            "describedBy": "https://techdocs.akamai.com/purge-cache/reference/api-errors",
        }
        return Reply(status, body, {"Content-Type": "application/api-problem+json"})
