"""Limits learned from refusals (adapt.py): a zone's real URL cap, an account's real concurrency."""

from __future__ import annotations

import logging

import pytest
from tenacity import wait_fixed

from s3purge.execute import Executor
from tests.conftest import serving
from tests.emulators.cloudflare import API_TOKEN, ZONE_ID, CloudflareEmulator
from tests.emulators.edgecast import TOKEN, EdgecastEmulator
from tests.vendors.helpers import one_cdn, run


def lowered(caplog: pytest.LogCaptureFixture, message: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == message]


def test_a_zone_refusing_over_30_urls_halves_batches_and_loses_nothing(
    executor: Executor, caplog: pytest.LogCaptureFixture
) -> None:
    first = [f"a/{n}.css" for n in range(100)]
    second = [f"b/{n}.css" for n in range(100)]
    with serving(CloudflareEmulator(refuse_files_over=30)) as cf:
        account = f'vendor: cloudflare, api_base: "{cf.api_base}", zone_id: "{ZONE_ID}", api_token: {API_TOKEN}'
        cfg = one_cdn("cf", account, "hosts: [www.example.com]")
        assert run(cfg, executor, *first).ok
        refused_at_first = len(cf.requests) - len(cf.operations)
        assert run(cfg, executor, *second).ok
    sizes = [len(r.json()["files"]) for r in cf.requests]
    accepted = sorted(f for r in cf.requests if len(r.json()["files"]) <= 30 for f in r.json()["files"])
    assert accepted == sorted(f"https://www.example.com/{key}" for key in first + second)  # each once
    assert sizes[:3] == [100, 50, 25]  # halved until the zone takes it, never a URL split
    assert refused_at_first == 3 and len(cf.requests) - len(cf.operations) == 3  # learned: none refused later
    assert sizes[-4:] == [25, 25, 25, 25]
    assert [r.__dict__["items"] for r in lowered(caplog, "batch size lowered")] == [50, 25]  # once per new low


def test_an_account_allowing_5_in_flight_lowers_its_concurrency(caplog: pytest.LogCaptureFixture) -> None:
    executor = Executor(backoff=wait_fixed(0.01))
    keys = [f"k/{n}.css" for n in range(160)]
    with serving(EdgecastEmulator(max_concurrent=5, latency=0.02)) as edgecast:
        account = f'vendor: edgecast, api_base: "{edgecast.url}", account: "0001", token: {TOKEN}, max_attempts: 8'
        report = run(one_cdn("ec", account, "hosts: [www.example.com]"), executor, *keys)
    executor.close()
    assert report.ok, [o.detail for o in report.failures()]
    assert sorted(path for _, path, _ in edgecast.done) == sorted(f"https://www.example.com/{k}" for k in keys)
    # 16 in flight at first: 11 refused, the concurrency learns 5; raised again slowly, each try costs one refusal
    assert edgecast.over_limit <= 25, edgecast.over_limit
    lows = [r.__dict__["concurrency"] for r in lowered(caplog, "concurrency lowered")]
    assert lows and lows == sorted(set(lows), reverse=True) and min(lows) <= 5


def test_an_akamai_413_halves_the_batch_and_loses_nothing(executor: Executor, caplog: pytest.LogCaptureFixture) -> None:
    from tests.emulators.akamai import ACCESS_TOKEN, CLIENT_SECRET, CLIENT_TOKEN, AkamaiEmulator

    keys = [f"a/{n:03d}.css" for n in range(400)]  # about 14,400 bytes of body; the account takes 4,000
    credentials = f"client_token: {CLIENT_TOKEN}, client_secret: {CLIENT_SECRET}, access_token: {ACCESS_TOKEN}"
    with serving(AkamaiEmulator(body_limit=4000)) as akamai:
        account = f'vendor: akamai, api_base: "{akamai.url}", {credentials}'
        report = run(one_cdn("ak", account, "hosts: [www.example.com]"), executor, *keys)
    assert report.ok, [o.detail for o in report.failures()]
    taken = [r for r in akamai.requests if len(r.body) <= 4000]
    assert sorted(u for r in taken for u in r.json()["objects"]) == [f"https://www.example.com/{k}" for k in keys]
    assert [len(r.json()["objects"]) for r in akamai.requests][:3] == [400, 200, 100]  # halved, never a URL split
    assert akamai.violations == []  # 413s below the documented 50,000 bytes are the account's, not ours
    assert [r.__dict__["items"] for r in lowered(caplog, "batch size lowered")] == [200, 100]
