"""Akamai Fast Purge through the real pipeline, against an emulator that verifies EdgeGrid signatures."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import httpx
import pytest

from s3purge.config import Config
from s3purge.errors import ConfigError
from s3purge.execute import Executor
from s3purge.model import Batch
from s3purge.providers.akamai import BODY_LIMIT, rate_wait
from tests.conftest import serving
from tests.emulators.akamai import ACCESS_TOKEN, CLIENT_SECRET, CLIENT_TOKEN, AkamaiEmulator
from tests.emulators.base import Fault
from tests.vendors.helpers import one_cdn, run

SECRET, CLIENT, ACCESS = CLIENT_SECRET, CLIENT_TOKEN, ACCESS_TOKEN
CREDENTIALS = f"client_token: {CLIENT}, client_secret: {SECRET}, access_token: {ACCESS}"


def config(emulator: AkamaiEmulator, account: str = "", route: str = "hosts: [www.example.com]") -> Config:
    return one_cdn("ak", f'vendor: akamai, api_base: "{emulator.url}", {account or CREDENTIALS}', route)


TABLE = [
    (
        "",
        "hosts: [www.example.com], schemes: both",
        "/ccu/v3/invalidate/url/production",
        # each spelling once (Akamai purges both schemes): as a browser sends it, and '+' for the space
        ["https://www.example.com/docs/a%20b.html", "https://www.example.com/docs/a+b.html"],
    ),
    (
        ", network: staging",
        "hosts: [www.example.com], action: delete",
        "/ccu/v3/delete/url/staging",
        ["https://www.example.com/docs/a%20b.html", "https://www.example.com/docs/a+b.html"],
    ),
    (
        ", scheme_in_cache_key: true",
        "hosts: [www.example.com], schemes: both, action: invalidate",
        "/ccu/v3/invalidate/url/production",
        [
            "https://www.example.com/docs/a%20b.html",
            "http://www.example.com/docs/a%20b.html",
            "https://www.example.com/docs/a+b.html",
            "http://www.example.com/docs/a+b.html",
        ],
    ),
    (
        "",
        'tags: ["{dirname}", "obj:{key}"]',
        "/ccu/v3/invalidate/tag/production",
        ["docs", "obj%3Adocs%2Fa%20b.html"],  # Akamai tags are tokens: the rest is %-encoded
    ),
]


@pytest.mark.parametrize(("extra", "route", "path", "objects"), TABLE, ids=["url", "delete-staging", "both", "tags"])
def test_change_becomes_exact_request(
    extra: str, route: str, path: str, objects: list[str], executor: Executor
) -> None:
    with serving(AkamaiEmulator()) as akamai:
        report = run(config(akamai, CREDENTIALS + extra, route), executor, "docs/a b.html")
    assert report.ok, report.outcomes
    (request,) = akamai.requests
    assert (request.method, request.path, request.json()) == ("POST", path, {"objects": objects})
    assert request.headers["authorization"].startswith(f"EG1-HMAC-SHA256 client_token={CLIENT};")
    assert report.outcomes[0].detail.startswith("purgeId=edcp-")
    assert "estimatedSeconds=5 supportId=edcp-" in report.outcomes[0].detail


def test_everything_purges_the_configured_cp_codes(executor: Executor) -> None:
    with serving(AkamaiEmulator()) as akamai:
        cfg = config(akamai, CREDENTIALS + ", cp_codes: [12345, 98765]")
        (outcome,) = executor.run(
            [Batch("ak", "delete", "everything", ("*",), frozenset({"m"}))], cfg.cdns, time.monotonic() + 5
        )
    assert outcome.ok
    assert [(r.path, r.json()) for r in akamai.requests] == [
        ("/ccu/v3/delete/cpcode/production", {"objects": [12345, 98765]})
    ]


def test_everything_without_cp_codes_is_rejected_without_a_call(executor: Executor) -> None:
    with serving(AkamaiEmulator()) as akamai:
        cfg = config(akamai)
        (outcome,) = executor.run(
            [Batch("ak", "purge", "everything", ("*",), frozenset({"m"}))], cfg.cdns, time.monotonic() + 5
        )
    assert not outcome.ok and not outcome.retryable and "cp_codes" in outcome.detail
    assert akamai.requests == []


def test_credentials_from_edgerc_section(tmp_path: Path, executor: Executor) -> None:
    edgerc = tmp_path / ".edgerc"
    edgerc.write_text(
        f"[default]\nhost = wrong\n\n[ccu]\nclient_secret = {SECRET}\nhost = akab-x.purge.akamaiapis.net\n"
        f"access_token = {ACCESS}\nclient_token = {CLIENT}\n"
    )
    with serving(AkamaiEmulator()) as akamai:
        assert run(config(akamai, f'edgerc: "{edgerc}", section: ccu'), executor, "a.css").ok
    assert len(akamai.requests) == 1


def test_missing_edgerc_section_fails_the_batch_clearly(tmp_path: Path, executor: Executor) -> None:
    edgerc = tmp_path / ".edgerc"
    edgerc.write_text(f"[default]\nclient_secret = {SECRET}\n")
    with serving(AkamaiEmulator()) as akamai:
        report = run(config(akamai, f'edgerc: "{edgerc}", section: ccu'), executor, "a.css")
    (outcome,) = report.outcomes
    assert not outcome.ok and not outcome.retryable
    assert "has no [ccu] section" in outcome.detail and akamai.requests == []


@pytest.mark.parametrize(
    "account",
    ["client_token: x", f'edgerc: "~/.edgerc", host: h, client_token: {CLIENT}'],
    ids=["incomplete-inline", "edgerc-and-inline"],
)
def test_credential_config_errors_name_the_field(account: str) -> None:
    with serving(AkamaiEmulator()) as akamai, pytest.raises(ConfigError, match=r"<config>:2: cdns\.ak: .*edgerc"):
        config(akamai, account)


def test_packing_keeps_every_body_under_50000_bytes_in_the_fewest_calls(executor: Executor) -> None:
    # 100 bytes per object ("url" plus comma): exactly 499 fit in one 50,000-byte body, 500 do not
    keys = [f"assets/{'x' * 57}-{i:05d}.js" for i in range(499 * 4)]
    per_object = len(f'"https://www.example.com/{keys[0]}",')
    assert per_object == 100
    with serving(AkamaiEmulator()) as akamai:
        report = run(config(akamai), executor, *keys)
    assert report.ok
    bodies = [r.body for r in akamai.requests]
    assert all(len(body) <= BODY_LIMIT for body in bodies)
    sent = [url for r in akamai.requests for url in r.json()["objects"]]
    assert sorted(sent) == sorted(f"https://www.example.com/{key}" for key in keys)
    per_call = (BODY_LIMIT - len('{"objects":[]}') + 1) // per_object  # the last object has no comma
    assert len(bodies) == -(-len(keys) // per_call) == 4


def test_wrong_secret_is_rejected_with_a_hint_and_not_retried(executor: Executor) -> None:
    with serving(AkamaiEmulator(client_secret="b3RoZXItc2VjcmV0")) as akamai:
        report = run(config(akamai), executor, "a.css")
    (outcome,) = report.outcomes
    assert not outcome.ok and not outcome.retryable
    assert "signature does not match" in outcome.detail and "clock" in outcome.detail
    assert len(akamai.requests) == 1


def test_unauthorized_arl_is_rejected_with_a_hint(executor: Executor) -> None:
    problem = {
        "title": "unauthorized arl",
        "detail": "https://www.example.com/a.css",
        "httpStatus": 403,
        "supportId": "edcp-1",
        "describedBy": "https://techdocs.akamai.com/purge-cache/reference/api-errors",
    }
    with serving(AkamaiEmulator()) as akamai:
        akamai.faults.append(Fault(status=403, body=problem))
        (outcome,) = run(config(akamai), executor, "a.css").outcomes
    assert not outcome.ok and not outcome.retryable
    assert "unauthorized arl" in outcome.detail and "Fast Purge (CCU) access" in outcome.detail
    assert len(akamai.requests) == 1


def test_429_waits_as_long_as_the_ratelimit_headers_say(executor: Executor) -> None:
    # bucket of 3 objects refilling 20/s: the second call (3 objects) must wait 150 ms
    with serving(AkamaiEmulator(objects_per_second=20, objects_burst=3)) as akamai:
        report = run(
            config(akamai, route='hosts: [a.example, b.example, c.example], tags: ["t1", "t2", "t3"]'), executor, "x"
        )
    assert report.ok and akamai.throttled_count >= 1
    _, denied, retry = akamai.requests[:3]
    assert retry.at - denied.at >= 0.14  # derived from X-Ratelimit-*-Objects, not the 0 s test backoff
    assert denied.headers["authorization"] != retry.headers["authorization"]  # signed afresh: new nonce


def test_rate_wait_falls_back_to_akamais_five_seconds() -> None:
    response = httpx.Response(429, json={"title": "Rate Limit exceeded"})
    assert rate_wait(response) == 5.0
    refresh = httpx.Response(429, headers={"X-Ratelimit-Seconds-To-Refresh-Limit-Objects": "0.5"})
    assert rate_wait(refresh) == 0.5


@pytest.mark.parametrize("fault", [Fault(status=507), Fault(status=503), Fault(drop=True)], ids=["507", "503", "drop"])
def test_transient_failures_are_retried(fault: Fault, executor: Executor) -> None:
    fault.headers = {"X-Ratelimit-Seconds-To-Refresh-Limit": "0.01"} if fault.status == 507 else {}
    with serving(AkamaiEmulator()) as akamai:
        akamai.faults.append(fault)
        assert run(config(akamai), executor, "a.css").ok
    assert len(akamai.requests) == 2


def test_secrets_never_reach_logs_reprs_or_outcomes(caplog: pytest.LogCaptureFixture, executor: Executor) -> None:
    caplog.set_level(logging.DEBUG)
    with serving(AkamaiEmulator(client_secret="b3RoZXItc2VjcmV0")) as bad, serving(AkamaiEmulator()) as good:
        failed = run(config(bad), executor, "a.css")
        passed = run(config(good), executor, "a.css")
        cfg = config(good)
    shown = caplog.text + repr(cfg) + repr(failed) + repr(passed) + str(cfg.cdns["ak"].provider.options)
    assert "vendor call" in caplog.text  # the executor did log the calls
    for secret in (SECRET, ACCESS, CLIENT):
        assert secret not in shown
