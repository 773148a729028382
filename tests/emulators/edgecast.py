"""Edgecast's media-management API (no published spec: shaped from developer.edgecast.com).

`PUT /v2/mcc/customers/{AccountNumber}/edge/purge|load` with `Authorization: TOK:<token>`
and a JSON body {"MediaPath": absolute URL, "MediaType": 2|3|8|14, "EdgeNodeRegionIds"?}.
An unknown account number is answered 400 (as documented); more than `max_concurrent`
requests in flight (Edgecast: 50 per account) is answered 400 with OVER_LIMIT, not 429.
Hold requests in flight with `latency` to exercise that.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from tests.emulators.base import Emulator, Invalid, Recorded, Reply

MEDIA_TYPES = {2, 3, 8, 14}
PATH = re.compile(r"^/v2/mcc/customers/(?P<account>[^/]+)/edge/(?P<op>purge|load)$")
OVER_LIMIT = "Concurrent purge request limit of 50 exceeded."
"""Edgecast documents the 400 but not its message; this wording is the emulator's own."""
FIELDS = {"MediaPath", "MediaType", "EdgeNodeRegionIds"}
TOKEN = "edgecast-test-token"


class EdgecastEmulator(Emulator):
    def __init__(self, *, token: str = TOKEN, account: str = "0001", max_concurrent: int = 50, **kwargs: Any):
        super().__init__(**kwargs)
        self.token, self.account, self.max_concurrent = token, account, max_concurrent
        self.done: list[tuple[str, str, int]] = []
        """(operation, MediaPath, MediaType) of every accepted request."""
        self.over_limit = 0

    def answer(self, request: Recorded) -> Reply:
        found = PATH.match(request.path)
        if request.method != "PUT" or not found:
            raise Invalid(f"no such operation: {request.method} {request.path} (purge and load are PUT)")
        if not re.fullmatch(r"TOK:\s?" + re.escape(self.token), request.headers.get("authorization", ""), re.I):
            return Reply(401, {"Message": "Access Denied"})
        body = self._body(request, found["op"])
        if found["account"] != self.account:
            return Reply(400, {"Message": f"Invalid customer account number {found['account']}"})
        with self._lock:
            if self.in_flight > self.max_concurrent:
                self.over_limit += 1
                return Reply(400, {"Message": OVER_LIMIT})
            self.done.append((found["op"], body["MediaPath"], body["MediaType"]))
        return Reply(200, {"Id": uuid.uuid4().hex[:12]})

    def _body(self, request: Recorded, op: str) -> dict[str, Any]:
        if not request.headers.get("content-type", "").lower().startswith("application/json"):
            raise Invalid("Content-Type must be application/json")
        if "json" not in request.headers.get("accept", "").lower():
            raise Invalid("Accept must ask for application/json")
        body = request.json()
        if not isinstance(body, dict) or set(body) - FIELDS or not {"MediaPath", "MediaType"} <= set(body):
            raise Invalid(f"body must be {{MediaPath, MediaType[, EdgeNodeRegionIds]}}, got {body!r}")
        path, media = body["MediaPath"], body["MediaType"]
        if not isinstance(path, str) or not re.match(r"^https?://[^/]+/", path):
            raise Invalid(f"MediaPath must be an absolute http(s) URL, got {path!r}")
        if media not in MEDIA_TYPES or isinstance(media, bool):
            raise Invalid(f"MediaType must be one of {sorted(MEDIA_TYPES)}, got {media!r}")
        if op == "load" and "*" in path:
            raise Invalid("load takes one asset, not a wildcard")
        return body
