"""Cloudflare purge_cache emulator: auth checked, bodies validated against the strict local schema.

The operations are those the spec extracts declare: purge_cache (cloudflare-purge.openapi.json)
and the soft purge invalidate_cache (cloudflare-invalidate.openapi.json, same selectors); each
valid call is recorded with its operationId (`operations`). Requests must carry a Bearer token
or the legacy X-Auth-Email + X-Auth-Key pair; wrong credentials are answered 403 in
Cloudflare's envelope (code 10000), missing ones are a violation. Bodies are validated against
`x-local-strict_PurgeRequest` (one purge type, per-request maxima) and the plan's URL cap.
Over the rate limit: 429 + Retry-After, as Cloudflare documents; `flex=(per_second, burst)`
adds the plan's own bucket for tag, host, prefix and everything purges (Pro: 5/s, 25), and
`files_per_second=(per_second, burst)` makes the rate limit the plan's single-file one, in URLs.
"""

from __future__ import annotations

import math
import re
import threading
import time
import uuid
from typing import Any

import jsonschema

from tests.emulators import specs
from tests.emulators.base import Emulator, Invalid, Recorded, Reply

SPEC = specs.load("cloudflare-purge.openapi.json")
STRICT = {**SPEC["components"]["schemas"]["x-local-strict_PurgeRequest"], "components": SPEC["components"]}
ZONE_ID, API_TOKEN = "023e105f4ecef8ad9ca31a8372d0c353", "cf-token-abc123"
SOFT = specs.load("cloudflare-invalidate.openapi.json")
OPERATIONS = {
    path.rpartition("/")[2]: spec["paths"][path]["post"]["operationId"]
    for spec in (SPEC, SOFT)
    for path in spec["paths"]
    if path.startswith("/zones/{zone_id}/") and path.count("/") == 3
}
"""Last path segment -> operationId: purge_cache -> zone-purge, invalidate_cache -> zone-invalidate."""
PATH = re.compile(r"^/client/v4/zones/(?P<zone>[^/]+)/(?P<operation>[a-z_]+)$")


def envelope(status: int, code: int, message: str) -> Reply:
    """A failure in Cloudflare's documented shape."""
    return Reply(
        status, {"success": False, "errors": [{"code": code, "message": message}], "messages": [], "result": None}
    )


class CloudflareEmulator(Emulator):
    def __init__(
        self,
        zone_id: str = ZONE_ID,
        *,
        api_token: str | None = API_TOKEN,
        api_key: str | None = None,
        email: str | None = None,
        max_files: int = 100,
        flex: tuple[float, float] | None = None,
        refuse_files_over: int | None = None,
        files_per_second: tuple[float, float] | None = None,
        **kwargs: Any,
    ) -> None:
        if files_per_second:  # the plan's single-file purge limit: URLs a second, a bucket of URLs
            kwargs["rate"], kwargs["burst"] = files_per_second
        super().__init__(**kwargs)
        self.files_cost = files_per_second is not None
        self.zone_id, self.api_token, self.api_key, self.email = zone_id, api_token, api_key, email
        self.max_files = max_files
        self.flex, self._flex_tokens, self._flex_stamp = flex, flex[1] if flex else 0.0, time.monotonic()
        self._flex_lock = threading.Lock()
        self.refuse_files_over = refuse_files_over
        """Answer 400 above this many files a call, as zones below Enterprise do (30) though the docs say 100."""
        self.operations: list[str] = []
        """The operationId of each valid call, in order."""

    @property
    def api_base(self) -> str:
        return f"{self.url}/client/v4"

    def answer(self, request: Recorded) -> Reply:
        match = PATH.match(request.path)
        if request.method != "POST" or match is None or match["operation"] not in OPERATIONS:
            raise Invalid(f"no such operation: {request.method} {request.path}")
        if not self._authorised(request):
            return envelope(403, 10000, "Authentication error")
        if match["zone"] != self.zone_id:
            return envelope(
                404,
                7003,
                f"Could not route to /zones/{{}}/{match['operation']}, perhaps your object identifier is invalid?",
            )
        if request.headers.get("content-type", "").split(";")[0] != "application/json":
            raise Invalid("Content-Type must be application/json")
        try:
            body = request.json()
            specs.validate(body, STRICT)
        except ValueError as error:
            raise Invalid(f"body is not JSON: {error}") from None
        except jsonschema.ValidationError as error:
            raise Invalid(f"body breaks x-local-strict_PurgeRequest: {error.message}") from None
        refused = self._check_files(body.get("files", []))
        if refused is not None:
            return refused
        for prefix in body.get("prefixes", ()):
            if "://" in prefix:
                raise Invalid(f"prefixes carry no scheme: {prefix!r}")
        wait = self._flex_wait(body)
        if wait:
            self.throttled_count += 1
            return self.throttled(wait)
        self.operations.append(OPERATIONS[match["operation"]])
        return Reply(200, {"success": True, "errors": [], "messages": [], "result": {"id": uuid.uuid4().hex}})

    def cost(self, request: Recorded) -> float:
        """With `files_per_second`, a single-file purge takes one token per URL (other calls one)."""
        if not self.files_cost:
            return 1.0
        try:
            return float(len(request.json()["files"]))
        except (ValueError, KeyError, TypeError):
            return 1.0

    def throttled(self, wait: float) -> Reply:
        reply = envelope(429, 971, "Please wait and consider throttling your request speed")
        reply.headers["Retry-After"] = str(max(1, math.ceil(wait)))  # whole seconds, rounded up
        return reply

    def _check_files(self, files: list[Any]) -> Reply | None:
        if self.refuse_files_over is not None and len(files) > self.refuse_files_over:
            # the emulator's own wording: the zones' 400 over 30 files is reported, not documented
            return envelope(400, 1095, f"Too many files in request: {len(files)}, maximum {self.refuse_files_over}")
        if len(files) > self.max_files:
            raise Invalid(f"{len(files)} files over this plan's {self.max_files} per request")
        for item in files:
            url = item if isinstance(item, str) else item["url"]
            if not re.match(r"^https?://[^/\s]+/\S*$", url):
                raise Invalid(f"not an absolute URL: {url!r}")
        return None

    def _flex_wait(self, body: dict[str, Any]) -> float:
        """0 when a flex purge (tags, hosts, prefixes, everything) has a token; else seconds to wait."""
        if self.flex is None or "files" in body:
            return 0.0
        rate, burst = self.flex
        with self._flex_lock:
            now = time.monotonic()
            self._flex_tokens = min(burst, self._flex_tokens + (now - self._flex_stamp) * rate)
            self._flex_stamp = now
            if self._flex_tokens >= 1:
                self._flex_tokens -= 1
                return 0.0
            return (1 - self._flex_tokens) / rate

    def _authorised(self, request: Recorded) -> bool:
        bearer = request.headers.get("authorization")
        key, email = request.headers.get("x-auth-key"), request.headers.get("x-auth-email")
        if bearer is None and (key is None or email is None):
            raise Invalid("no credentials: Authorization: Bearer, or X-Auth-Email + X-Auth-Key")
        if bearer is not None:
            return self.api_token is not None and bearer == f"Bearer {self.api_token}"
        return self.api_key is not None and (key, email) == (self.api_key, self.email)
