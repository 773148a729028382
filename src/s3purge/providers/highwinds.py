"""Highwinds StrikeTracker (-> StackPath): purge lists of URLs, recursively or as invalidation.

Service status: StackPath, which owned Highwinds, closed its CDN in 2024 (its customer
contracts went to Akamai). This module is kept for users migrating from the old scripts
and works against StrikeTracker's documented API; expect failures against the real host.

`POST /api/v1/accounts/{hash}/purge` takes up to 100 URIs; the account may purge 100 URIs
per 60 s, so the declared rate counts items. Login (OAuth password grant, or a fixed API
token) and the account hash (`/users/me`) live in an httpx auth flow kept on the provider:
a warm process logs in once and discovers the hash once, not twice per record as before.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Generator
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

import httpx

from s3purge.errors import Rejected, Retryable
from s3purge.model import Batch
from s3purge.providers.answers import judge_status
from s3purge.providers.base import Limits, Provider, Rate, VendorOptions
from s3purge.secrets import Secret

API = "https://striketracker.highwinds.com"
ME = "@me"
"""Stands for the account hash in a purge URL until /users/me has told us."""
ACCOUNT = re.compile(r"[A-Za-z0-9_-]{1,64}")
MARGIN = 60.0
"""Seconds before a token's stated expiry at which it counts as expired."""
Flow = Generator[httpx.Request, httpx.Response, str]


class HighwindsOptions(VendorOptions, frozen=True):
    account_hash: str | None = None
    """Account to purge; discovered from /api/v1/users/me (once per process) when absent."""
    username: str | None = None
    password: Secret | None = None
    api_token: Secret | None = None
    """A long-lived StrikeTracker API token, instead of username and password."""
    application_id: str = "s3purge"
    """X-Application-Id header, which StrikeTracker's support asks every client to send."""

    def __post_init__(self) -> None:
        password_grant = self.username is not None or self.password is not None
        if self.api_token is not None and password_grant:
            raise ValueError("give either username and password, or api_token, not both")
        if self.api_token is None and (self.username is None or self.password is None):
            raise ValueError("give username and password, or api_token")


class Highwinds(Provider):
    vendor = "highwinds"
    supports: ClassVar = {
        "url": frozenset({"purge", "invalidate"}),
        "prefix": frozenset({"purge", "invalidate"}),
        "everything": frozenset({"purge", "invalidate"}),
    }
    # 100 URIs per 60 s per account (sliding window). The bucket lets a full call of 100 go
    # at once; if a partial burst still trips the window, the 429's Retry-After pauses us.
    limits = Limits(max_items=100, concurrency=4, rate=Rate(100 / 60, 100, "item", window=60))
    Options = HighwindsOptions
    options: HighwindsOptions

    api = API
    endpoints: ClassVar = dict.fromkeys(("url", "prefix", "everything"), ("/api/v1/accounts/{account_hash}/purge",))

    def __init__(self, name: str, options: VendorOptions) -> None:
        super().__init__(name, options)
        self._auth = StrikeTrackerAuth(self.options.api_base or API, self.options)

    def endpoint_fields(self) -> dict[str, tuple[str, ...]]:
        return {"account_hash": (_account(self.options.account_hash),)}

    @property
    def auth(self) -> httpx.Auth:
        return self._auth

    def requests(self, batch: Batch) -> list[httpx.Request]:
        recursive = batch.kind != "url"
        values = batch.values if batch.kind != "everything" else tuple(_root(v) for v in batch.values)
        # Real JSON booleans: the old script sent "false" as a string.
        items = [{"url": v, "recursive": recursive, "invalidateOnly": batch.action == "invalidate"} for v in values]
        account = _account(self.options.account_hash)  # the auth flow fills in the discovered hash
        url = f"{(self.options.api_base or API).rstrip('/')}/api/v1/accounts/{account}/purge"
        headers = {"Accept": "application/json", "X-Application-Id": self.options.application_id}
        return [httpx.Request("POST", url, headers=headers, json={"list": items})]

    def judge(self, response: httpx.Response) -> str:
        hint = "check that this login may purge account_hash" if response.status_code in (401, 403, 404) else ""
        judge_status(response, hint)
        try:
            job = response.json().get("id", "?")
        except (ValueError, AttributeError):
            job = "?"
        return f"job {job}"


class StrikeTrackerAuth(httpx.Auth):
    """Bearer auth: logs in when the token is missing, expired or refused (401); finds the account once."""

    requires_response_body = True

    def __init__(self, api: str, options: HighwindsOptions) -> None:
        self.api, self.options = api.rstrip("/"), options
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
        headers = {"Accept": "application/json", "X-Application-Id": self.options.application_id}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        # Same timeout as the purge call it serves (a bare Request would have none).
        return httpx.Request(method, self.api + path, headers=headers, data=data, extensions=dict(like.extensions))


def _field(response: httpx.Response, name: str) -> dict[str, Any]:
    """The JSON object of a successful answer, which must carry `name`."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or name not in body:
        raise Rejected(f"StrikeTracker answered {response.request.url.path} without {name}", "check api_base")
    return body


def _account(account_hash: str | None) -> str:
    return quote(account_hash, safe="") if account_hash else ME


def _root(url: str) -> str:
    """Everything on a host is a recursive purge of its root."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/"
