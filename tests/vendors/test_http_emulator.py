"""The self-hosted cache emulator refuses what a purge-enabled Varnish would not accept."""

from __future__ import annotations

import httpx
import pytest

from tests.emulators.http_cache import TOKEN, TOKEN_HEADER, HttpCacheEmulator

PUBLIC = {"Host": "www.example.com", TOKEN_HEADER: TOKEN}


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("GET", "/a.html", PUBLIC),  # not a purge method
        ("DELETE", "/a.html", PUBLIC),
        ("PURGE", "/a.html", {TOKEN_HEADER: TOKEN}),  # the cache's own address as Host
        ("PURGE", "/a.html", PUBLIC | {"X-Ban-Url": "^/"}),  # a ban header on a purge
        ("BAN", "/dir/", PUBLIC | {"X-Ban-Url": "^/dir/"}),  # BAN goes to /
        ("BAN", "/", PUBLIC | {"X-Ban-Url": "/dir/"}),  # an unanchored regex bans too much
        ("BAN", "/", PUBLIC | {"X-Ban-Url": "^/dir/("}),  # not a regex
        ("BAN", "/", PUBLIC),  # nothing to ban
        ("PURGEKEYS", "/", PUBLIC),  # no tags
        ("PURGEKEYS", "/", PUBLIC | {"Xkey-Purge": "t", "Xkey-Soft": "yes"}),
    ],
)
def test_a_request_off_the_convention_is_a_violation(method: str, path: str, headers: dict[str, str]) -> None:
    with HttpCacheEmulator() as emulator:
        response = httpx.request(method, emulator.url + path, headers=headers)
    assert response.status_code == 400
    assert len(emulator.violations) == 1 and emulator.purged == []


def test_a_request_without_the_token_is_refused_and_purges_nothing() -> None:
    with HttpCacheEmulator() as emulator:
        wrong = httpx.request("PURGE", emulator.url + "/a.html", headers=PUBLIC | {TOKEN_HEADER: "guess"})
        missing = httpx.request("PURGE", emulator.url + "/a.html", headers={"Host": "www.example.com"})
    assert (wrong.status_code, missing.status_code) == (403, 403)
    assert emulator.purged == [] and emulator.violations == []


def test_requests_on_the_convention_are_purged() -> None:
    with HttpCacheEmulator() as emulator:
        sent = [
            httpx.request("PURGE", emulator.url + "/a.html", headers=PUBLIC),
            httpx.request("BAN", emulator.url + "/", headers=PUBLIC | {"X-Ban-Url": "^/dir/"}),
            httpx.request("PURGEKEYS", emulator.url + "/", headers=PUBLIC | {"Xkey-Purge": "t1 t2", "Xkey-Soft": "1"}),
        ]
    assert [r.status_code for r in sent] == [200, 200, 200] and emulator.violations == []
    assert [(m, p) for m, _, p in emulator.purged] == [("PURGE", "/a.html"), ("BAN", "^/dir/"), ("PURGEKEYS", "t1 t2")]
