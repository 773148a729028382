"""The StrikeTracker (Highwinds) login as an httpx auth flow: a bearer token, and the account hash.

Logs in with the OAuth password grant, or uses a fixed API token; logs in again when the token
is missing, expired or refused (401). A purge URL names the account as `@me` until
`/api/v1/users/me` has told the flow the hash, once per process.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Generator
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from s3purge.errors import Rejected, Retryable
from s3purge.providers.answers import json_body, judge_status
from s3purge.providers.base import join
from s3purge.secrets import Secret

ME = "@me"
"""Stands for the account hash in a purge URL until /users/me has told us."""
ACCOUNT = re.compile(r"[A-Za-z0-9_-]{1,64}")
MARGIN = 60.0
"""Seconds before a token's stated expiry at which it counts as expired."""
Flow = Generator[httpx.Request, httpx.Response, str]


class Login(Protocol):
    """What the flow reads from the Highwinds options."""

    @property
    def account_hash(self) -> str | None: ...
    @property
    def username(self) -> str | None: ...
    @property
    def password(self) -> Secret | None: ...
    @property
    def api_token(self) -> Secret | None: ...
    @property
    def application_id(self) -> str: ...


def account_segment(account_hash: str | None) -> str:
    """The account as a purge path names it: the hash, quoted, or `@me` for the flow to fill in."""
    return quote(account_hash, safe="") if account_hash else ME


def headers(application_id: str, token: str = "") -> dict[str, str]:
    """Headers on every StrikeTracker call: X-Application-Id, which its support asks for."""
    found = {"Accept": "application/json", "X-Application-Id": application_id}
    if token:
        found["Authorization"] = f"Bearer {token}"
    return found


class StrikeTrackerAuth(httpx.Auth):
    """Bearer auth: logs in when the token is missing, expired or refused (401); finds the account once."""

    requires_response_body = True

    def __init__(self, api: str, options: Login) -> None:
        self.api, self.options = api, options
        self._token: str | None = None
        self._expires = 0.0
        self._account = options.account_hash
        # Held across the yields that fetch a token or the account hash: one thread logs in,
        # the others wait for it and reuse its token (sync client, so the thread is blocked anyway).
        self._lock = threading.Lock()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = yield from self._bearer(request, refused=None)
        if ME.encode() in request.url.raw_path:
            account = yield from self._account_hash(request, token)
            path = request.url.raw_path.replace(ME.encode(), account.encode())
            request.url = request.url.copy_with(raw_path=path)
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401 and self.options.api_token is None:
            request.headers["Authorization"] = f"Bearer {(yield from self._bearer(request, refused=token))}"
            yield request

    def prepare(self, send: Callable[[httpx.Request], httpx.Response]) -> None:
        """Log in and find the account hash now, each request sent with `send`, unless already done:
        the purge calls that follow then go out at once, no round trip before them."""
        like = httpx.Request("GET", self.api)
        token = _driven(self._bearer(like, refused=None), send)
        _driven(self._account_hash(like, token), send)

    def _bearer(self, request: httpx.Request, refused: str | None) -> Flow:
        if self.options.api_token is not None:
            return self.options.api_token.reveal()
        with self._lock:
            if self._token is None or self._token == refused or time.monotonic() >= self._expires:
                self._store((yield self._login(request)))
            assert self._token is not None
            return self._token

    def _login(self, request: httpx.Request) -> httpx.Request:
        assert self.options.username is not None and self.options.password is not None
        form = {"grant_type": "password", "username": self.options.username, "password": self.options.password.reveal()}
        return self._call("POST", "/auth/token", request, data=form)

    def _store(self, response: httpx.Response) -> None:
        judge_status(response, "check username and password")
        body = _field(response, "access_token")
        self._token = str(body["access_token"])
        # Without expires_in, the token is used until StrikeTracker answers 401.
        lifetime = float(body.get("expires_in") or 10**9)
        self._expires = time.monotonic() + max(0.0, lifetime - MARGIN)

    def _account_hash(self, request: httpx.Request, token: str) -> Flow:
        with self._lock:
            if self._account is None:
                response = yield self._call("GET", "/api/v1/users/me", request, token=token)
                if response.status_code == 401 and self.options.api_token is None:
                    self._token = None  # expired between login and now: log in again on retry
                    raise Retryable("StrikeTracker refused the token for /users/me")
                judge_status(response, "check that this login may read its own user (/api/v1/users/me)")
                account = str(_field(response, "accountHash")["accountHash"])
                if not ACCOUNT.fullmatch(account):  # it goes into the purge path: never let it move the path
                    raise Rejected("StrikeTracker answered an account hash that is not one", "check api_base")
                self._account = account
            return self._account

    def _call(
        self, method: str, path: str, like: httpx.Request, token: str = "", data: dict[str, str] | None = None
    ) -> httpx.Request:
        found = headers(self.options.application_id, token)
        # Same timeout as the purge call it serves (a bare Request would have none).
        return httpx.Request(method, join(self.api, path), headers=found, data=data, extensions=dict(like.extensions))


def _driven(flow: Flow, send: Callable[[httpx.Request], httpx.Response]) -> str:
    """What a part of the auth flow returns, run outside httpx: each request it yields goes to `send`."""
    try:
        request = next(flow)
        while True:
            request = flow.send(send(request))
    except StopIteration as done:
        return str(done.value)
    finally:
        flow.close()  # a failed send leaves the flow inside its lock: closing it lets go


def _field(response: httpx.Response, name: str) -> dict[str, Any]:
    """The JSON object of a successful answer, which must carry `name`."""
    body = json_body(response)
    if name not in body:
        raise Rejected(f"StrikeTracker answered {response.request.url.path} without {name}", "check api_base")
    return body
