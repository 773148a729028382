"""Highwinds StrikeTracker through the real pipeline: login, account discovery, purge lists, budget."""

from __future__ import annotations

import json
import logging
import math
import time

import pytest

from s3purge.config import Config, parse
from s3purge.errors import ConfigError
from s3purge.execute import GRACE, Executor
from s3purge.model import Batch, Change, TargetKind
from s3purge.pipeline import Pipeline
from s3purge.providers.highwinds import Highwinds
from s3purge.providers.striketracker import MARGIN
from tests.conftest import serving
from tests.emulators.base import Fault
from tests.emulators.highwinds import PASSWORD, HighwindsEmulator
from tests.vendors.helpers import one_cdn, run

TOKEN_PATH, ME_PATH, PURGE_PATH = "/auth/token", "/api/v1/users/me", "/api/v1/accounts/a1b2c3d4/purge"
LOGIN = f"username: purger, password: {PASSWORD}"


def config(emulator: HighwindsEmulator, route: str = "hosts: [www.example.com]", extra: str = "") -> Config:
    return one_cdn("hw", f'vendor: highwinds, api_base: "{emulator.url}", {extra or LOGIN}', route)


def paths(emulator: HighwindsEmulator) -> list[str]:
    return [request.path for request in emulator.requests]


TABLE = [
    (
        "hosts: [www.example.com], schemes: both",
        [
            {"url": f"{scheme}://www.example.com/a{space}b.css", "recursive": False, "invalidateOnly": False}
            for scheme in ("http", "https")
            for space in ("%20", "+")
        ],
    ),
    (
        "hosts: [www.example.com], action: invalidate",
        [
            {"url": f"https://www.example.com/a{space}b.css", "recursive": False, "invalidateOnly": True}
            for space in ("%20", "+")
        ],
    ),
]


@pytest.mark.parametrize(("route", "expected"), TABLE, ids=["purge-both-schemes", "invalidate"])
def test_changes_become_exactly_this_purge_list(route: str, expected: list[object], executor: Executor) -> None:
    with serving(HighwindsEmulator()) as highwinds:
        report = run(config(highwinds, route), executor, "a b.css")
    assert report.ok, [o.detail for o in report.outcomes]
    assert paths(highwinds) == [TOKEN_PATH, ME_PATH, PURGE_PATH]
    purge = highwinds.requests[-1]
    assert sorted(purge.json()["list"], key=lambda item: item["url"]) == expected
    assert purge.headers["x-application-id"] == "s3purge"
    assert report.outcomes[0].detail.startswith("job ")


@pytest.mark.parametrize(
    ("kind", "value", "url"),
    [
        ("prefix", "https://www.example.com/img/", "https://www.example.com/img/"),
        ("everything", "https://www.example.com/any/where", "https://www.example.com/"),
    ],
)
def test_prefix_and_everything_are_recursive(kind: TargetKind, value: str, url: str, executor: Executor) -> None:
    with serving(HighwindsEmulator()) as highwinds:
        cfg = config(highwinds, extra=f"{LOGIN}, account_hash: a1b2c3d4")
        batch = Batch("hw", "invalidate", kind, (value,), frozenset({"m"}))
        (outcome,) = executor.run([batch], cfg.cdns, time.monotonic() + 15)
    assert outcome.ok
    assert paths(highwinds) == [TOKEN_PATH, PURGE_PATH]  # a configured hash needs no /users/me
    assert highwinds.purged == [{"url": url, "recursive": True, "invalidateOnly": True}]


def test_login_and_account_discovery_happen_once_across_invocations(executor: Executor) -> None:
    with serving(HighwindsEmulator()) as highwinds:
        pipeline = Pipeline(config(highwinds, extra=f"{LOGIN}, max_items: 2"), executor)
        first = pipeline.run([Change("site", f"k{i}", "created", "m") for i in range(6)], time.monotonic() + 15)
        second = pipeline.run([Change("site", "again", "created", "m")], time.monotonic() + 15)
    assert first.ok and second.ok
    assert paths(highwinds).count(TOKEN_PATH) == 1  # three concurrent calls, one login
    assert paths(highwinds).count(ME_PATH) == 1
    assert paths(highwinds).count(PURGE_PATH) == 4
    assert len({r.headers["authorization"] for r in highwinds.requests if r.path == PURGE_PATH}) == 1


def test_an_expiring_token_is_renewed_before_use(executor: Executor) -> None:
    with serving(HighwindsEmulator(token_ttl=MARGIN / 2)) as highwinds:
        cfg = config(highwinds)
        assert run(cfg, executor, "a.css").ok and run(cfg, executor, "b.css").ok
    # A token that lives less than MARGIN is expiring as soon as it is issued: the login before
    # pacing (prepare) gets one and the call, finding it expiring, another; none is used late.
    assert paths(highwinds) == [TOKEN_PATH, ME_PATH, TOKEN_PATH, PURGE_PATH, TOKEN_PATH, TOKEN_PATH, PURGE_PATH]
    assert 401 not in [status for _, status in highwinds.statuses]


def test_a_refused_token_is_renewed_and_the_call_repeated(executor: Executor) -> None:
    with serving(HighwindsEmulator()) as highwinds:
        cfg = config(highwinds)
        assert run(cfg, executor, "a.css").ok
        highwinds.expire_tokens()
        report = run(cfg, executor, "b.css")
    assert report.ok
    assert highwinds.statuses[3:] == [(PURGE_PATH, 401), (TOKEN_PATH, 200), (PURGE_PATH, 200)]
    assert [item["url"] for item in highwinds.purged] == [
        "https://www.example.com/a.css",
        "https://www.example.com/b.css",
    ]


def test_an_api_token_needs_no_login(executor: Executor) -> None:
    with serving(HighwindsEmulator(api_tokens=("hw-api-token",))) as highwinds:
        assert run(config(highwinds, extra="api_token: hw-api-token"), executor, "a.css").ok
    assert paths(highwinds) == [ME_PATH, PURGE_PATH]
    assert highwinds.requests[-1].headers["authorization"] == "Bearer hw-api-token"


def test_bad_password_is_rejected_with_a_hint(executor: Executor) -> None:
    with serving(HighwindsEmulator(password="another")) as highwinds:
        (outcome,) = run(config(highwinds), executor, "a.css").outcomes
    assert not outcome.ok and not outcome.retryable
    assert "HTTP 401" in outcome.detail and "check username and password" in outcome.detail
    assert paths(highwinds) == [TOKEN_PATH]


@pytest.mark.parametrize("fault", [Fault(status=503), Fault(drop=True)], ids=["503", "drop"])
def test_transient_failures_of_login_and_purge_are_retried(fault: Fault, executor: Executor) -> None:
    with serving(HighwindsEmulator()) as highwinds:
        highwinds.faults.extend([fault, Fault(status=502)])  # the login, then the purge
        assert run(config(highwinds), executor, "a.css").ok
    assert len(highwinds.purged) == 1


def test_the_budget_of_100_uris_per_window_is_respected(executor: Executor) -> None:
    window, budget = 0.25, 100
    keys = [f"k{i:03}.css" for i in range(300)]
    declared = Highwinds.limits.rate
    assert declared is not None and declared.unit == "item" and declared.per_second * 60 == budget
    # The declared rate with StrikeTracker's 60 s window scaled down, at half of it: calls are
    # taken 0.5 s apart for a 0.25 s window, so a call may reach the vendor up to 0.25 s late
    # (the login before the first one, threads on a loaded machine) without two in one window.
    rate = budget / window * 0.5
    with serving(HighwindsEmulator(window=window)) as highwinds:
        report = run(config(highwinds, extra=f"{LOGIN}, rate: {rate}"), executor, *keys)
    assert report.ok
    purges = [r for r in highwinds.requests if r.path == PURGE_PATH]
    assert [len(r.json()["list"]) for r in purges] == [budget] * math.ceil(len(keys) / Highwinds.limits.max_items)
    assert highwinds.throttled_count == 0
    started = highwinds.requests[0].at  # the login, sent right after the first call took its tokens
    assert purges[-1].at - started >= (len(keys) - budget) / rate * 0.95
    assert sorted(item["url"] for item in highwinds.purged) == [f"https://www.example.com/{k}" for k in keys]


def test_a_window_filling_burst_logs_in_before_the_window_counts(executor: Executor) -> None:
    # Paced at the full declared rate: the second call of 100 goes one window (plus HEADROOM,
    # 93 ms here) after the first. Two round trips of login and /users/me inside the first call
    # would make it reach the vendor 0.2 s late, and the second then lands inside its window.
    window = 3.0
    with serving(HighwindsEmulator(window=window, latency=0.1)) as highwinds:
        cfg = config(highwinds, extra=f"{LOGIN}, rate: {100 / window}, burst: 100")
        report = run(cfg, executor, *[f"k{i:03}.css" for i in range(200)])
    assert report.ok
    assert highwinds.statuses == [(TOKEN_PATH, 200), (ME_PATH, 200), (PURGE_PATH, 200), (PURGE_PATH, 200)]
    first, second = (r.at for r in highwinds.requests if r.path == PURGE_PATH)
    assert second - first >= window


def two_accounts(bad: HighwindsEmulator, good: HighwindsEmulator) -> Config:
    account = "vendor: highwinds, max_items: 1, " + LOGIN
    return parse(
        f'cdns:\n  bad: {{api_base: "{bad.url}", {account}}}\n  good: {{api_base: "{good.url}", {account}}}\n'
        "buckets:\n  site:\n    - {cdn: bad, hosts: [www.example.com]}\n    - {cdn: good, hosts: [www.example.com]}\n"
    )


def test_a_failed_login_fails_that_cdn_only_and_is_tried_once(executor: Executor) -> None:
    with serving(HighwindsEmulator(password="another")) as bad, serving(HighwindsEmulator()) as good:
        report = run(two_accounts(bad, good), executor, "a.css", "b.css", "c.css")
    by_cdn = {cdn: [o for o in report.outcomes if o.batch.cdn == cdn] for cdn in ("bad", "good")}
    assert len(by_cdn["bad"]) == len(by_cdn["good"]) == 3
    assert all(o.ok for o in by_cdn["good"])
    assert not [o for o in by_cdn["bad"] if o.ok or o.retryable or "check username and password" not in o.detail]
    assert paths(bad) == [TOKEN_PATH]  # one login for the three batches, no purge sent
    assert len(good.purged) == 3


def test_a_login_that_hangs_ends_at_the_deadline_and_fails_that_cdn_only(executor: Executor) -> None:
    with serving(HighwindsEmulator()) as bad, serving(HighwindsEmulator()) as good:
        bad.faults.append(Fault(hang=30))
        changes = [Change("site", f"k{i}.css", "created", f"m{i}") for i in range(3)]
        started = time.monotonic()
        report = Pipeline(two_accounts(bad, good), executor).run(changes, started + 1.0)
        took = time.monotonic() - started
    assert took < 1.0 + GRACE
    assert all(o.ok for o in report.outcomes if o.batch.cdn == "good")
    assert not [o for o in report.outcomes if o.batch.cdn == "bad" and (o.ok or not o.retryable)]
    assert len(good.purged) == 3 and bad.purged == []


def test_a_429_waits_for_retry_after(executor: Executor) -> None:
    window = 0.4
    with serving(HighwindsEmulator(window=window)) as highwinds:
        cfg = config(highwinds, extra=f"{LOGIN}, rate: 100000, burst: 100000")  # no pacing: trip the budget
        report = run(cfg, executor, *[f"k{i:03}.css" for i in range(150)])
    assert report.ok
    assert highwinds.throttled_count >= 1 and len(highwinds.purged) == 150
    purges = [r for r in highwinds.requests if r.path == PURGE_PATH]
    assert purges[-1].at - purges[0].at >= window * 0.9  # waited as told; a 0 s backoff would not


@pytest.mark.parametrize(
    ("login", "message"),
    [("username: purger", "give username and password, or api_token"), (f"{LOGIN}, api_token: t", "not both")],
)
def test_exactly_one_way_to_log_in(login: str, message: str) -> None:
    text = f"cdns:\n  hw: {{vendor: highwinds, {login}}}\nbuckets:\n  site:\n    - {{cdn: hw, hosts: [h.example]}}\n"
    with pytest.raises(ConfigError, match=message):
        parse(text)


def test_no_secret_appears_in_a_repr_log_or_error(executor: Executor, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with serving(HighwindsEmulator()) as highwinds:
        cfg = config(highwinds)
        passed = run(cfg, executor, "a.css")
        highwinds.password = "changed"
        highwinds.expire_tokens()
        failed = run(cfg, executor, "b.css")
    assert passed.ok and not failed.ok
    secrets = [PASSWORD, *highwinds.tokens]
    provider = cfg.cdns["hw"].provider
    shown = [repr(provider.options), repr(provider.auth), caplog.text, *(o.detail for o in failed.outcomes)]
    shown += [json.dumps(record.__dict__, default=str) for record in caplog.records]
    assert len(secrets) == 2 and caplog.records
    assert not [(secret, text) for secret in secrets for text in shown if secret in text]
