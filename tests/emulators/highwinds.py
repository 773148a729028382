"""StrikeTracker's auth and purge API (no published spec: shaped from Highwinds' docs and client).

- `POST /auth/token`, form `grant_type=password&username&password` -> {"access_token",
  "token_type", "expires_in"}; tokens live `token_ttl` seconds, `expire_tokens()` ends
  them all at once, and an expired or unknown token is answered 401.
- `GET /api/v1/users/me` -> {"accountHash", ...}.
- `POST /api/v1/accounts/{hash}/purge` {"list": [{"url", "recursive"?, "purgeAllDynamic"?,
  "invalidateOnly"?}]}, the options real JSON booleans. 100 URIs per `window` seconds per
  account (60 s in production), sliding: a call that would exceed it fails whole with 429,
  StrikeTracker's message and Retry-After.
"""

from __future__ import annotations

import math
import re
import time
import uuid
from typing import Any
from urllib.parse import parse_qs

from tests.emulators.base import Emulator, Invalid, Recorded, Reply

BUDGET = 100
PASSWORD = "hw-test-password"
OPTIONS = {"recursive", "purgeAllDynamic", "invalidateOnly"}
PURGE = re.compile(r"^/api/v1/accounts/(?P<hash>[^/]+)/purge$")


class HighwindsEmulator(Emulator):
    def __init__(
        self,
        *,
        username: str = "purger",
        password: str = PASSWORD,
        account_hash: str = "a1b2c3d4",
        api_tokens: tuple[str, ...] = (),
        token_ttl: float = 3600.0,
        window: float = 60.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.username, self.password, self.account_hash = username, password, account_hash
        self.api_tokens, self.token_ttl, self.window = set(api_tokens), token_ttl, window
        self.tokens: dict[str, float] = {}
        """Issued access token -> when it expires (time.monotonic())."""
        self.purged: list[dict[str, Any]] = []
        self.statuses: list[tuple[str, int]] = []
        """(path, status) of every answer given by `answer` (not faults)."""
        self._window: list[tuple[float, int]] = []

    def expire_tokens(self) -> None:
        with self._lock:
            self.tokens = dict.fromkeys(self.tokens, 0.0)

    def answer(self, request: Recorded) -> Reply:
        reply = self._answer(request)
        with self._lock:
            self.statuses.append((request.path, reply.status))
        return reply

    def _answer(self, request: Recorded) -> Reply:
        if (request.method, request.path) == ("POST", "/auth/token"):
            return self._token(request)
        if not self._authorised(request):
            return Reply(401, {"error": "Invalid or expired access token", "code": 401})
        if (request.method, request.path) == ("GET", "/api/v1/users/me"):
            return Reply(200, {"accountHash": self.account_hash, "id": 42, "username": self.username})
        found = PURGE.match(request.path)
        if request.method != "POST" or not found:
            raise Invalid(f"no such operation: {request.method} {request.path}")
        if found["hash"] != self.account_hash:
            return Reply(403, {"error": "Forbidden", "code": 403})
        return self._purge(self._list(request))

    def _token(self, request: Recorded) -> Reply:
        if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            raise Invalid("/auth/token takes a form-encoded body")
        form = {k: v[0] for k, v in parse_qs(request.body.decode(), keep_blank_values=True).items()}
        if form.get("grant_type") != "password" or not {"username", "password"} <= set(form):
            raise Invalid(f"password grant needs grant_type=password, username, password; got {sorted(form)}")
        if (form["username"], form["password"]) != (self.username, self.password):
            return Reply(401, {"error": "invalid_grant", "error_description": "Bad credentials"})
        token = uuid.uuid4().hex
        with self._lock:
            self.tokens[token] = time.monotonic() + self.token_ttl
        return Reply(200, {"access_token": token, "token_type": "bearer", "expires_in": self.token_ttl})

    def _authorised(self, request: Recorded) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return False
        with self._lock:
            return token in self.api_tokens or self.tokens.get(token, 0.0) > time.monotonic()

    def _list(self, request: Recorded) -> list[dict[str, Any]]:
        body = request.json()
        if (
            not isinstance(body, dict)
            or set(body) != {"list"}
            or not isinstance(body["list"], list)
            or not body["list"]
        ):
            raise Invalid(f'body must be {{"list": [ ... ]}} with at least one entry, got {body!r}')
        for item in body["list"]:
            if not isinstance(item, dict) or "url" not in item or set(item) - {"url"} - OPTIONS:
                raise Invalid(f"list entry must be {{url, {', '.join(sorted(OPTIONS))}}}, got {item!r}")
            if not isinstance(item["url"], str) or not re.match(r"^(https?:)?//[^/]+", item["url"]):
                raise Invalid(f"url must be absolute or scheme-relative, got {item['url']!r}")
            for name in OPTIONS & set(item):
                if not isinstance(item[name], bool):
                    raise Invalid(f"{name} must be a JSON boolean, got {item[name]!r}")
        return list(body["list"])

    def _purge(self, items: list[dict[str, Any]]) -> Reply:
        with self._lock:
            now = time.monotonic()
            self._window = [(at, n) for at, n in self._window if at > now - self.window]
            used = sum(n for _, n in self._window)
            if used + len(items) > BUDGET:
                return self._limited(used + len(items), self._until_room(used + len(items) - BUDGET, now))
            self._window.append((now, len(items)))
            self.purged.extend(items)
        return Reply(200, {"id": uuid.uuid4().hex[:16]})

    def _until_room(self, excess: int, now: float) -> float:
        """Seconds until enough earlier URIs leave the window for this call to fit."""
        freed = 0
        for at, count in self._window:
            freed += count
            if freed >= excess:
                return at + self.window - now
        return self.window  # more than the whole budget in one call: it never fits

    def _limited(self, received: int, wait: float) -> Reply:
        # Whole seconds as in production; fractions when the window is scaled down for tests.
        shown = str(math.ceil(wait)) if self.window >= 60 else f"{wait:.3f}"
        message = (
            f"Account URL purge limit warning. You have exceeded your rate limit. Your allowed limit is {BUDGET}, "
            f"but we received {received} in less than a {self.window:g} second window. "
            f"You may retry this request in {shown} seconds."
        )
        self.throttled_count += 1
        return Reply(429, {"error": message, "code": 429}, {"Retry-After": shown})
