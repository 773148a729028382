"""Fastly's purge API, validated against the reconstructed spec in tests/emulators/specs.

Every request must reach one of the spec's four operations with POST (anything else, such
as the old script's `PURGE /key` at an object URL, is a violation) and carry the service's
Fastly-Key. Bulk bodies are validated with jsonschema against the spec's PurgeKeys schema
(256 keys at most), and every answer against the operation's response schema. Purge-all
counts against an hourly budget (Fastly's 1,000 non-read requests per hour), answered with
429 and the Fastly-RateLimit-* headers; `budget_window` scales that hour down for tests.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from typing import Any
from urllib.parse import unquote

import jsonschema

from tests.emulators import specs
from tests.emulators.base import Emulator, Invalid, Recorded, Reply

SPEC = specs.load("fastly-purge.openapi.json")
SCHEMAS = SPEC["components"]["schemas"]
MAX_KEYS = SCHEMAS["PurgeKeys"]["properties"]["surrogate_keys"]["maxItems"]
KEY_BYTES = 1024
HEADER_BYTES = 16384
TOKEN = "fastly-test-token"
OPERATIONS = [
    (re.compile(r"^/purge/(?P<cached_url>[^/]+/.*)$"), "/purge/{cached_url}", "PurgeResponse"),
    (re.compile(r"^/service/(?P<service_id>[^/]+)/purge_all$"), "/service/{service_id}/purge_all", "InlineResponse200"),
    (re.compile(r"^/service/(?P<service_id>[^/]+)/purge$"), "/service/{service_id}/purge", "PurgeKeysResponse"),
    (
        re.compile(r"^/service/(?P<service_id>[^/]+)/purge/(?P<surrogate_key>[^/]+)$"),
        "/service/{service_id}/purge/{surrogate_key}",
        "PurgeResponse",
    ),
]


class FastlyEmulator(Emulator):
    def __init__(
        self,
        *,
        token: str = TOKEN,
        service_id: str = "SU1Z0isxPaozGVKXdv0eY",
        purge_all_budget: int = 1000,
        budget_window: float = 3600.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.token, self.service_id = token, service_id
        self.purge_all_budget, self.budget_window = purge_all_budget, budget_window
        self.purged_urls: list[str] = []
        self.purged_keys: list[str] = []
        self.purged_all = 0
        self.soft: list[bool] = []
        self._spent: list[float] = []
        self._budget_lock = threading.Lock()

    def answer(self, request: Recorded) -> Reply:
        if request.method != "POST":
            raise Invalid(f"method {request.method} is not in the spec (only POST; the token leaks on PURGE)")
        for pattern, template, schema in OPERATIONS:
            found = pattern.match(request.path)
            if found:
                reply = self._operation(template, found.groupdict(), request)
                if reply.status == 200:
                    specs.validate(reply.body, SCHEMAS[schema])
                return reply
        raise Invalid(f"no operation in the spec for path {request.path}")

    def _operation(self, template: str, params: dict[str, str], request: Recorded) -> Reply:
        soft = self._soft(request)
        if request.headers.get("fastly-key") != self.token:
            return Reply(401, {"msg": "Provided credentials are missing or invalid"})
        if "service_id" in params and params["service_id"] != self.service_id:
            return Reply(404, {"msg": "Record not found", "detail": "Cannot find service"})
        if template == "/purge/{cached_url}":
            cached = request.path.removeprefix("/purge/") + (f"?{request.query}" if request.query else "")
            self._record([cached], soft, self.purged_urls)
            return Reply(200, {"status": "ok", "id": _id()})
        if template == "/service/{service_id}/purge_all":
            if soft:
                raise Invalid("purge_all cannot be soft (Fastly-Soft-Purge sent)")
            return self._purge_all()
        if template == "/service/{service_id}/purge":
            keys = self._bulk_keys(request)
            self._record(keys, soft, self.purged_keys)
            return Reply(200, {key: _id() for key in keys})
        key = unquote(params["surrogate_key"])
        self._check_key(key)
        self._record([key], soft, self.purged_keys)
        return Reply(200, {"status": "ok", "id": _id()})

    def _soft(self, request: Recorded) -> bool:
        value = request.headers.get("fastly-soft-purge")
        if value is None:
            return False
        if not value.strip().lstrip("-").isdigit():
            raise Invalid(f"Fastly-Soft-Purge must be an integer per the spec, got {value!r}")
        return True

    def _bulk_keys(self, request: Recorded) -> list[str]:
        header = request.headers.get("surrogate-key")
        if request.body:
            if request.headers.get("content-type", "").split(";")[0] != "application/json":
                raise Invalid("bulk purge body must be application/json")
            try:
                specs.validate(request.json(), SCHEMAS["PurgeKeys"])
            except jsonschema.ValidationError as error:
                raise Invalid(f"PurgeKeys: {error.message}") from None
            keys = list(request.json().get("surrogate_keys", []))
        elif header is not None:
            if len(header.encode()) > HEADER_BYTES:
                raise Invalid(f"Surrogate-Key header over {HEADER_BYTES} bytes")
            keys = header.split()
        else:
            raise Invalid("bulk purge without surrogate_keys body or Surrogate-Key header")
        if not keys or len(keys) > MAX_KEYS:
            raise Invalid(f"{len(keys)} surrogate keys (1..{MAX_KEYS} allowed)")
        for key in keys:
            self._check_key(key)
        return keys

    def _check_key(self, key: str) -> None:
        if not key or len(key.encode()) > KEY_BYTES:
            raise Invalid(f"surrogate key of {len(key.encode())} bytes (1..{KEY_BYTES})")

    def _purge_all(self) -> Reply:
        with self._budget_lock:
            now = time.time()
            self._spent = [t for t in self._spent if t > now - self.budget_window]
            reset = (self._spent[0] if self._spent else now) + self.budget_window
            headers = {"Fastly-RateLimit-Reset": f"{reset:.3f}"}
            if len(self._spent) >= self.purge_all_budget:
                headers["Fastly-RateLimit-Remaining"] = "0"
                return Reply(429, {"msg": "Too many requests"}, headers)
            self._spent.append(now)
            self.purged_all += 1
            headers["Fastly-RateLimit-Remaining"] = str(self.purge_all_budget - len(self._spent))
            return Reply(200, {"status": "ok"}, headers)

    def _record(self, items: list[str], soft: bool, into: list[str]) -> None:
        with self._budget_lock:
            into.extend(items)
            self.soft.extend([soft] * len(items))


def _id() -> str:
    return uuid.uuid4().hex[:20]
