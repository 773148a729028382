"""Edgecast purge and load through the real pipeline, against an emulator of its REST API."""

from __future__ import annotations

import json
import logging
import time
from contextlib import closing

import pytest
from tenacity import wait_fixed

from s3purge.config import Config, parse
from s3purge.errors import ConfigError
from s3purge.execute import Executor
from s3purge.model import Batch
from s3purge.providers.edgecast import Edgecast
from tests.conftest import serving
from tests.emulators.base import Fault
from tests.emulators.edgecast import OVER_LIMIT, TOKEN, EdgecastEmulator
from tests.vendors.helpers import one_cdn, run

PURGE, LOAD = "/v2/mcc/customers/0001/edge/purge", "/v2/mcc/customers/0001/edge/load"


def config(emulator: EdgecastEmulator, route: str = "hosts: [www.example.com]", extra: str = "") -> Config:
    return one_cdn("ec", f'vendor: edgecast, api_base: "{emulator.url}", account: "0001", token: {TOKEN}{extra}', route)


def purged(media_type: int) -> list[tuple[str, str, int]]:
    """One purge per spelling: as browsers send the key, and '+' for its space."""
    return [(PURGE, f"https://www.example.com/img/a{space}b.png", media_type) for space in ("%20", "+")]


TABLE = [
    ("hosts: [www.example.com]", "", purged(8)),
    ("hosts: [www.example.com]", ", platform: http-large", purged(3)),
    ("hosts: [www.example.com]", ", platform: adn", purged(14)),
    ("hosts: [www.example.com]", ", platform: flash", purged(2)),
    (  # load (prefetch) is per scheme, so both schemes are loaded
        "hosts: [www.example.com], schemes: both, action: load",
        ", platform: http-large",
        [
            (LOAD, f"{scheme}://www.example.com/img/a{space}b.png", 3)
            for scheme in ("http", "https")
            for space in ("%20", "+")
        ],
    ),
]


@pytest.mark.parametrize(
    ("route", "extra", "expected"), TABLE, ids=["default-small", "large", "adn", "flash", "load-both-schemes"]
)
def test_changes_become_exactly_these_api_calls(
    route: str, extra: str, expected: list[tuple[str, str, int]], executor: Executor
) -> None:
    with serving(EdgecastEmulator()) as edgecast:
        report = run(config(edgecast, route, extra), executor, "img/a b.png")
    assert report.ok, [o.detail for o in report.outcomes]
    sent = sorted((r.path, r.json()["MediaPath"], r.json()["MediaType"]) for r in edgecast.requests)
    assert sent == expected
    for request in edgecast.requests:
        assert (request.method, request.headers["authorization"]) == ("PUT", f"TOK:{TOKEN}")
        assert set(request.json()) == {"MediaPath", "MediaType"}
    assert [o.detail.startswith("id ") for o in report.outcomes] == [True] * len(expected)


def test_a_prefix_is_a_recursive_wildcard_purge(executor: Executor) -> None:
    with serving(EdgecastEmulator()) as edgecast:
        cfg = config(edgecast)
        batch = Batch("ec", "purge", "prefix", ("https://www.example.com/img/",), frozenset({"m"}))
        (outcome,) = executor.run([batch], cfg.cdns, time.monotonic() + 15)
    assert outcome.ok
    assert edgecast.done == [("purge", "https://www.example.com/img/*", 8)]


def test_concurrency_stays_under_edgecasts_cap(executor: Executor) -> None:
    keys = [f"k{i}.css" for i in range(40)]
    with serving(EdgecastEmulator(latency=0.05)) as edgecast:
        report = run(config(edgecast), executor, *keys)
    assert report.ok
    assert len(edgecast.done) == 40 and edgecast.over_limit == 0
    assert 1 < edgecast.max_in_flight <= Edgecast.limits.concurrency < 50


def test_over_the_concurrency_cap_edgecast_answers_400_and_the_call_is_retried() -> None:
    executor = Executor(backoff=wait_fixed(0.05))  # the other call must finish before a retry can pass
    with closing(executor), serving(EdgecastEmulator(max_concurrent=1, latency=0.1)) as edgecast:
        cfg = config(edgecast, extra=", concurrency: 2, max_attempts: 10")
        report = run(cfg, executor, "a.css", "b.css")
    assert report.ok, [o.detail for o in report.outcomes]
    assert edgecast.over_limit >= 1
    assert sorted(path for _, path, _ in edgecast.done) == [
        "https://www.example.com/a.css",
        "https://www.example.com/b.css",
    ]


def test_the_over_limit_400_is_retryable(executor: Executor) -> None:
    with serving(EdgecastEmulator()) as edgecast:
        edgecast.faults.append(Fault(status=400, body={"Message": OVER_LIMIT}))
        report = run(config(edgecast), executor, "a.css")
    assert report.ok
    assert len(edgecast.requests) == 2


def test_other_400s_are_rejected_with_a_hint(executor: Executor) -> None:
    with serving(EdgecastEmulator(account="0002")) as edgecast:
        report = run(config(edgecast), executor, "a.css")
    (outcome,) = report.outcomes
    assert not outcome.ok and not outcome.retryable
    assert "Invalid customer account number" in outcome.detail and "check account" in outcome.detail
    assert len(edgecast.requests) == 1


def test_bad_token_is_rejected(executor: Executor) -> None:
    with serving(EdgecastEmulator(token="other")) as edgecast:
        (outcome,) = run(config(edgecast), executor, "a.css").outcomes
    assert not outcome.ok and not outcome.retryable and "HTTP 401" in outcome.detail
    assert len(edgecast.requests) == 1


@pytest.mark.parametrize("fault", [Fault(status=503), Fault(drop=True), Fault(status=429)], ids=["503", "drop", "429"])
def test_transient_failures_are_retried(fault: Fault, executor: Executor) -> None:
    with serving(EdgecastEmulator()) as edgecast:
        edgecast.faults.append(fault)
        assert run(config(edgecast), executor, "a.css").ok
    assert len(edgecast.requests) == 2


def test_unknown_platform_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"cdns\.ec\.platform"):
        parse(
            "cdns:\n  ec: {vendor: edgecast, account: '0001', token: t, platform: small}\n"
            "buckets:\n  site:\n    - {cdn: ec, hosts: [www.example.com]}\n"
        )


def test_load_cannot_take_tags() -> None:
    with pytest.raises(ConfigError, match="cannot load by tag"):
        parse(
            "cdns:\n  ec: {vendor: edgecast, account: '0001', token: t}\n"
            "buckets:\n  site:\n    - {cdn: ec, tags: ['{key}'], action: load}\n"
        )


def test_the_token_appears_in_no_repr_log_or_error(executor: Executor, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with serving(EdgecastEmulator(token="other")) as edgecast:
        cfg = config(edgecast)
        failed = run(cfg, executor, "a.css")
    assert not failed.ok
    shown = [repr(cfg.cdns["ec"].provider.options), caplog.text, *(o.detail for o in failed.outcomes)]
    shown += [json.dumps(record.__dict__, default=str) for record in caplog.records]
    assert caplog.records and not [text for text in shown if TOKEN in text]
