"""Fastly through the real pipeline, against an emulator that validates every call against the spec."""

from __future__ import annotations

import logging
import math
import time

import pytest

from s3purge.config import Config, parse
from s3purge.errors import ConfigError
from s3purge.execute import Executor
from s3purge.model import Action, Batch, Outcome
from s3purge.providers.fastly import Fastly
from tests.conftest import serving
from tests.emulators.base import Fault
from tests.emulators.fastly import TOKEN, FastlyEmulator
from tests.vendors.helpers import one_cdn, run

SERVICE = "SU1Z0isxPaozGVKXdv0eY"


def config(emulator: FastlyEmulator, route: str, extra: str = "") -> Config:
    return one_cdn(
        "fy", f'vendor: fastly, api_base: "{emulator.url}", api_token: {TOKEN}, service_id: {SERVICE}{extra}', route
    )


def everything(cfg: Config, executor: Executor, action: Action = "purge", copies: int = 1) -> list[Outcome]:
    """Purge-all batches straight into the executor (no route maps a change to everything)."""
    root = ("https://www.example.com/",)
    batches = [Batch("fy", action, "everything", root, frozenset({f"m{i}"})) for i in range(copies)]
    return executor.run(batches, cfg.cdns, time.monotonic() + 15)


TABLE = [
    (  # one call for both schemes: Fastly's cache key is host + path
        "hosts: [www.example.com], schemes: both",
        [("/purge/www.example.com/docs/a%20b.html", None, b""), ("/purge/www.example.com/docs/a+b.html", None, b"")],
    ),
    (
        "hosts: [www.example.com, cdn.example.com], action: invalidate",
        [
            ("/purge/cdn.example.com/docs/a%20b.html", "1", b""),
            ("/purge/cdn.example.com/docs/a+b.html", "1", b""),
            ("/purge/www.example.com/docs/a%20b.html", "1", b""),
            ("/purge/www.example.com/docs/a+b.html", "1", b""),
        ],
    ),
    (  # one key: the bulk form too, so that no key needs escaping into a path
        'tags: ["obj:{key}"]',
        [(f"/service/{SERVICE}/purge", None, b'{"surrogate_keys":["obj:docs/a%20b.html"]}')],
    ),
    (
        'tags: ["{dirname}", "obj:{key}"], action: invalidate',
        [(f"/service/{SERVICE}/purge", "1", b'{"surrogate_keys":["docs","obj:docs/a%20b.html"]}')],
    ),
]


@pytest.mark.parametrize(("route", "expected"), TABLE, ids=["url-both-schemes", "url-soft", "one-key", "keys-soft"])
def test_changes_become_exactly_these_api_calls(route: str, expected: list[object], executor: Executor) -> None:
    with serving(FastlyEmulator()) as fastly:
        report = run(config(fastly, route), executor, "docs/a b.html")
    assert report.ok, [o.detail for o in report.outcomes]
    sent = sorted((r.path, r.headers.get("fastly-soft-purge"), r.body) for r in fastly.requests)
    assert sent == expected
    assert all(r.method == "POST" and r.headers["fastly-key"] == TOKEN for r in fastly.requests)


def test_keys_are_sent_in_the_documented_tag_spelling(executor: Executor) -> None:
    # Surrogate-Key separates keys by spaces: a space or non-ASCII byte is %-encoded, as objects are tagged
    with serving(FastlyEmulator()) as fastly:
        assert run(config(fastly, 'tags: ["obj:{key}"]'), executor, "docs/a b+ü.html").ok
    assert fastly.purged_keys == ["obj:docs/a%20b+%C3%BC.html"]


def test_a_url_purge_names_host_path_and_query_on_the_api_host(executor: Executor) -> None:
    with serving(FastlyEmulator()) as fastly:
        cfg = config(fastly, "hosts: [www.example.com]")
        urls = ("https://www.example.com/a.css?v=2", "https://cdn.example.com/b%C3%BC.js")
        (outcome,) = executor.run(
            [Batch("fy", "purge", "url", urls, frozenset({"m"}))], cfg.cdns, time.monotonic() + 15
        )
    assert outcome.ok and outcome.detail.count("purge ids") == 2
    assert sorted(fastly.purged_urls) == ["cdn.example.com/b%C3%BC.js", "www.example.com/a.css?v=2"]


def test_surrogate_keys_go_256_per_call_in_the_fewest_calls(executor: Executor) -> None:
    keys = [f"k/{i:04}" for i in range(600)]
    with serving(FastlyEmulator()) as fastly:
        report = run(config(fastly, 'tags: ["{key}"]'), executor, *keys)
    assert report.ok
    sizes = sorted(len(r.json()["surrogate_keys"]) for r in fastly.requests)
    assert len(sizes) == math.ceil(len(keys) / Fastly.limits.max_items) == 3
    assert max(sizes) <= 256
    assert sorted(fastly.purged_keys) == keys


def test_purge_all_is_one_call_per_service_and_never_soft(executor: Executor) -> None:
    with serving(FastlyEmulator()) as fastly:
        cfg = config(fastly, "hosts: [www.example.com]")
        (done,) = everything(cfg, executor)
        (refused,) = everything(cfg, executor, action="invalidate")
    assert done.ok
    assert [(r.path, r.headers.get("fastly-soft-purge")) for r in fastly.requests] == [
        (f"/service/{SERVICE}/purge_all", None)
    ]
    assert not refused.ok and not refused.retryable and "surrogate key" in refused.detail


def test_purge_all_waits_for_fastly_ratelimit_reset(executor: Executor) -> None:
    with serving(FastlyEmulator(purge_all_budget=1, budget_window=0.4)) as fastly:
        cfg = config(fastly, "hosts: [www.example.com]", ", concurrency: 1, max_attempts: 3")
        outcomes = everything(cfg, executor, copies=2)
    assert [o.ok for o in outcomes] == [True, True]
    assert fastly.purged_all == 2
    first, _limited, retried = fastly.requests
    # The 429 said "reset in ~0.4 s"; the 0 s backoff alone would have retried at once.
    assert retried.at - first.at >= 0.35


def test_bad_token_is_rejected_with_a_hint_and_not_retried(executor: Executor) -> None:
    with serving(FastlyEmulator(token="another-token")) as fastly:
        report = run(config(fastly, "hosts: [www.example.com]"), executor, "a.html")
    (outcome,) = report.outcomes
    assert not outcome.ok and not outcome.retryable
    assert "HTTP 401" in outcome.detail and "purge_select" in outcome.detail
    assert len(fastly.requests) == 1


def test_unknown_service_points_at_service_id(executor: Executor) -> None:
    with serving(FastlyEmulator(service_id="other")) as fastly:
        report = run(config(fastly, 'tags: ["{key}"]'), executor, "a.html")
    (outcome,) = report.outcomes
    assert not outcome.ok and "service_id" in outcome.detail


@pytest.mark.parametrize("fault", [Fault(status=503), Fault(drop=True), Fault(status=429)], ids=["503", "drop", "429"])
def test_transient_failures_are_retried(fault: Fault, executor: Executor) -> None:
    with serving(FastlyEmulator()) as fastly:
        fastly.faults.append(fault)
        report = run(config(fastly, "hosts: [www.example.com]"), executor, "a.html")
    assert report.ok
    assert [r.path for r in fastly.requests] == ["/purge/www.example.com/a.html"] * 2


def test_key_and_purge_all_need_a_service_id(executor: Executor) -> None:
    with serving(FastlyEmulator()) as fastly:
        text = f'cdns:\n  fy: {{vendor: fastly, api_base: "{fastly.url}", api_token: {TOKEN}}}\n'
        cfg = parse(text + 'buckets:\n  site:\n    - {cdn: fy, tags: ["{key}"]}\n')
        (outcome,) = run(cfg, executor, "a.html").outcomes
    assert not outcome.ok and "set service_id" in outcome.detail
    assert fastly.requests == []


def test_token_never_goes_to_a_plain_http_api() -> None:
    text = "cdns:\n  fy: {vendor: fastly, api_base: 'http://api.fastly.com', api_token: t}\n"
    with pytest.raises(ConfigError, match=r"cdns\.fy\.api_base: must be an https:// URL"):
        parse(text + "buckets:\n  site:\n    - {cdn: fy, hosts: [www.example.com]}\n")


def test_the_token_appears_in_no_repr_log_or_error(executor: Executor, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with serving(FastlyEmulator()) as fastly:
        cfg = config(fastly, "hosts: [www.example.com]")
        fastly.faults.append(Fault(status=401, body={"msg": "bad"}))
        failed = run(cfg, executor, "a.html")
        passed = run(cfg, executor, "a.html")
    assert not failed.ok and passed.ok
    shown = [repr(cfg.cdns["fy"].provider.options), caplog.text, *(o.detail for o in failed.outcomes)]
    shown += [str(record.__dict__) for record in caplog.records]
    assert caplog.records and not [text for text in shown if TOKEN in text]
