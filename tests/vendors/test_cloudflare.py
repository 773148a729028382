"""Cloudflare purge_cache through the real pipeline, against an emulator using the strict local schema."""

from __future__ import annotations

import logging
import time

import pytest

from s3purge.config import Config, parse
from s3purge.errors import ConfigError
from s3purge.execute import Executor
from s3purge.model import Batch
from s3purge.providers.cloudflare import Cloudflare
from tests.conftest import serving
from tests.emulators.base import Fault
from tests.emulators.cloudflare import CloudflareEmulator
from tests.vendors.helpers import one_cdn, run

ZONE = "023e105f4ecef8ad9ca31a8372d0c353"
TOKEN = "cf-token-abc123"
KEY, EMAIL = "cf-global-key-987", "ops@example.com"


def config(emulator: CloudflareEmulator, account: str = "", route: str = "hosts: [www.example.com]") -> Config:
    return one_cdn(
        "cf",
        f'vendor: cloudflare, api_base: "{emulator.api_base}", zone_id: "{ZONE}", {account or f"api_token: {TOKEN}"}',
        route,
    )


TABLE = [
    (
        "hosts: [www.example.com], schemes: both",
        {
            "files": [
                "https://www.example.com/d/a%20b.css",
                "http://www.example.com/d/a%20b.css",
                "https://www.example.com/d/a+b.css",
                "http://www.example.com/d/a+b.css",
            ]
        },
    ),
    ('tags: ["{dirname}", "k:{basename}"]', {"tags": ["d", "k:a%20b.css"]}),
    (
        "hosts: [www.example.com], index_documents: [a b.css]",
        {
            "files": [
                "https://www.example.com/d/a%20b.css",
                "https://www.example.com/d/a+b.css",
                "https://www.example.com/d/",
                "https://www.example.com/d",
            ]
        },
    ),
]


@pytest.mark.parametrize(("route", "body"), TABLE, ids=["files-both-schemes", "tags", "index-document"])
def test_change_becomes_exact_request(route: str, body: dict[str, list[str]], executor: Executor) -> None:
    with serving(CloudflareEmulator()) as cf:
        report = run(config(cf, route=route), executor, "d/a b.css")
    assert report.ok, report.outcomes
    (request,) = cf.requests
    assert (request.method, request.path, request.json()) == ("POST", f"/client/v4/zones/{ZONE}/purge_cache", body)
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert report.outcomes[0].detail.startswith("id=")


def test_file_headers_send_url_and_header_objects(executor: Executor) -> None:
    with serving(CloudflareEmulator()) as cf:
        account = f'api_token: {TOKEN}, file_headers: {{CF-Device-Type: mobile, Accept-Language: "en"}}'
        assert run(config(cf, account), executor, "a.css").ok
    headers = {"CF-Device-Type": "mobile", "Accept-Language": "en"}
    assert cf.requests[0].json() == {"files": [{"url": "https://www.example.com/a.css", "headers": headers}]}


def test_legacy_key_and_email(executor: Executor) -> None:
    with serving(CloudflareEmulator(api_token=None, api_key=KEY, email=EMAIL)) as cf:
        assert run(config(cf, f"api_key: {KEY}, email: {EMAIL}"), executor, "a.css").ok
    (request,) = cf.requests
    assert (request.headers["x-auth-key"], request.headers["x-auth-email"]) == (KEY, EMAIL)
    assert "authorization" not in request.headers


@pytest.mark.parametrize(
    ("batch", "body"),
    [
        (Batch("cf", "purge", "everything", ("*",), frozenset({"m"})), {"purge_everything": True}),
        (
            Batch(
                "cf", "purge", "prefix", ("https://www.example.com/d/", "http://www.example.com/d/"), frozenset({"m"})
            ),
            {"prefixes": ["www.example.com/d/"]},  # no scheme, per Cloudflare; both schemes are one prefix
        ),
    ],
    ids=["everything", "prefix"],
)
def test_everything_and_prefix_bodies(batch: Batch, body: dict[str, object], executor: Executor) -> None:
    with serving(CloudflareEmulator()) as cf:
        cfg = config(cf)
        (outcome,) = executor.run([batch], cfg.cdns, time.monotonic() + 5)
    assert outcome.ok
    assert [r.json() for r in cf.requests] == [body]


@pytest.mark.parametrize(("account", "max_files"), [("", 100), (", max_items: 30", 30), (", max_items: 500", 500)])
def test_items_per_call_follow_the_declared_or_configured_limit(
    account: str, max_files: int, executor: Executor
) -> None:
    keys = [f"f{i}.js" for i in range(250)]  # 9 calls at most: under the declared burst of 20
    with serving(CloudflareEmulator(max_files=max_files)) as cf:
        cfg = config(cf, f"api_token: {TOKEN}{account}")
        assert run(cfg, executor, *keys).ok
    per_call = cfg.cdns["cf"].limits.max_items
    assert per_call == (max_files if account else Cloudflare.limits.max_items)
    assert sorted(len(r.json()["files"]) for r in cf.requests) == sorted(
        [per_call] * (len(keys) // per_call) + ([len(keys) % per_call] if len(keys) % per_call else [])
    )
    assert sorted(u for r in cf.requests for u in r.json()["files"]) == sorted(
        f"https://www.example.com/{k}" for k in keys
    )


def test_500_urls_a_call_still_sends_tags_100_a_call(executor: Executor) -> None:
    with serving(CloudflareEmulator(max_files=500)) as cf:
        cfg = config(cf, f"api_token: {TOKEN}, max_items: 500", route='hosts: [www.example.com], tags: ["{key}"]')
        assert run(cfg, executor, *(f"k{i}" for i in range(150))).ok
    assert sorted(len(r.json().get("files", r.json().get("tags"))) for r in cf.requests) == [50, 100, 150]


def test_wrong_token_is_rejected_with_a_hint_and_not_retried(executor: Executor) -> None:
    with serving(CloudflareEmulator(api_token="another-token")) as cf:
        (outcome,) = run(config(cf), executor, "a.css").outcomes
    assert not outcome.ok and not outcome.retryable
    assert "10000: Authentication error" in outcome.detail and "Cache Purge permission" in outcome.detail
    assert len(cf.requests) == 1


@pytest.mark.parametrize("status", [200, 400])
def test_success_false_is_a_failure_carrying_cloudflares_messages(status: int, executor: Executor) -> None:
    body = {
        "success": False,
        "errors": [{"code": 1012, "message": "Request must contain one of files, tags"}],
        "messages": [],
        "result": None,
    }
    with serving(CloudflareEmulator()) as cf:
        cf.faults.append(Fault(status=status, body=body))
        (outcome,) = run(config(cf), executor, "a.css").outcomes
    assert not outcome.ok and not outcome.retryable
    assert "1012: Request must contain one of files, tags" in outcome.detail
    assert len(cf.requests) == 1


def test_429_is_retried_after_retry_after(executor: Executor) -> None:
    # one call a second: the url and tag batches of one change collide, the second waits as told
    with serving(CloudflareEmulator(rate=1, burst=1)) as cf:
        report = run(config(cf, route='hosts: [www.example.com], tags: ["t"]'), executor, "a.css")
    assert report.ok and cf.throttled_count == 1
    _, denied, retry = cf.requests
    assert retry.at - denied.at >= 0.95  # Retry-After: 1, not the 0 s test backoff


@pytest.mark.parametrize(
    "fault",
    [
        Fault(status=502),
        Fault(status=500, body={"success": False, "errors": [], "messages": [], "result": None}),
        Fault(drop=True),
    ],
    ids=["502", "500-envelope", "drop"],
)
def test_transient_failures_are_retried(fault: Fault, executor: Executor) -> None:
    with serving(CloudflareEmulator()) as cf:
        cf.faults.append(fault)
        assert run(config(cf), executor, "a.css").ok
    assert len(cf.requests) == 2


@pytest.mark.parametrize(
    ("account", "message"),
    [
        ('zone_id: "example.com", api_token: t', "zone_id: expected a string matching regex"),
        (f"api_token: t, api_key: {KEY}, email: {EMAIL}", "give api_token, or the legacy api_key"),
        (f"api_key: {KEY}", "api_key and email go together"),
    ],
    ids=["zone-name-not-id", "two-auths", "key-without-email"],
)
def test_config_errors_name_the_field(account: str, message: str) -> None:
    text = f"cdns:\n  cf: {{vendor: cloudflare, {account}}}\nbuckets:\n  site: [{{cdn: cf, hosts: [a.example]}}]\n"
    if "zone_id" not in account:
        text = text.replace("vendor: cloudflare,", f'vendor: cloudflare, zone_id: "{ZONE}",')
    with pytest.raises(ConfigError, match=r"<config>:2: cdns\.cf") as error:
        parse(text)
    assert message in str(error.value)
    assert KEY not in str(error.value)


def test_secrets_never_reach_logs_reprs_or_outcomes(caplog: pytest.LogCaptureFixture, executor: Executor) -> None:
    caplog.set_level(logging.DEBUG)
    with serving(CloudflareEmulator(api_token="other")) as bad, serving(CloudflareEmulator()) as good:
        failed = run(config(bad), executor, "a.css")
        legacy = run(config(good, f"api_key: {KEY}, email: {EMAIL}"), executor, "a.css")
        cfg = config(good)
    shown = caplog.text + repr(cfg) + repr(failed) + repr(legacy) + str(cfg.cdns["cf"].provider.options)
    assert "vendor call" in caplog.text
    for secret in (TOKEN, KEY):
        assert secret not in shown


@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("hosts: [www.example.com], action: invalidate", {"files": ["https://www.example.com/d/ab.css"]}),
        ('tags: ["{dirname}"], action: invalidate', {"tags": ["d"]}),
    ],
    ids=["files", "tags"],
)
def test_invalidate_is_the_soft_purge_call(route: str, body: dict[str, list[str]], executor: Executor) -> None:
    with serving(CloudflareEmulator()) as cf:
        report = run(config(cf, route=route), executor, "d/ab.css")
    assert report.ok, report.outcomes
    (request,) = cf.requests
    assert (request.path, request.json()) == (f"/client/v4/zones/{ZONE}/invalidate_cache", body)
    assert cf.operations == ["zone-invalidate"]


def test_purge_and_invalidate_routes_call_each_operation(executor: Executor) -> None:
    with serving(CloudflareEmulator()) as cf:
        cfg = parse(
            f"cdns:\n  cf: {{vendor: cloudflare, api_base: '{cf.api_base}', zone_id: '{ZONE}', api_token: {TOKEN}}}\n"
            "buckets:\n  site:\n"
            "    - {cdn: cf, hosts: [www.example.com], prefix: html/, action: invalidate}\n"
            "    - {cdn: cf, hosts: [www.example.com], prefix: img/}\n"
        )
        assert run(cfg, executor, "html/a.html", "img/b.png").ok
    assert sorted(cf.operations) == ["zone-invalidate", "zone-purge"]
    calls = {r.path.rpartition("/")[2]: r.json() for r in cf.requests}
    assert calls == {
        "invalidate_cache": {"files": ["https://www.example.com/html/a.html"]},
        "purge_cache": {"files": ["https://www.example.com/img/b.png"]},
    }


def test_api_limit_is_a_window_of_1200_calls_per_5_minutes() -> None:
    from s3purge.pacing import SlidingWindow, limiter

    cfg = one_cdn("cf", f'vendor: cloudflare, zone_id: "{ZONE}", api_token: t', "hosts: [a.example]")
    rate = cfg.cdns["cf"].limits.rate
    assert rate is not None and (rate.burst, rate.window) == (1200, 300)
    window = limiter(rate, instances=1)
    assert isinstance(window, SlidingWindow)
    starts = [window.reserve(1000.0, 1) for _ in range(1201)]
    assert starts[:1200] == [1000.0] * 1200  # a burst of 1,200 goes at once (a 4/s bucket took 5 minutes)
    assert starts[1200] is not None and starts[1200] >= 1300.0  # the next waits for the window


@pytest.mark.parametrize("plan", [None, "pro"])
def test_plan_paces_tag_purges_under_its_bucket(plan: str | None, executor: Executor) -> None:
    tags = [f"t{n}" for n in range(30)]
    with serving(CloudflareEmulator(flex=(5, 25))) as cf:
        # Paced one call at a time: each call is taken from the bucket only after the one before was
        # answered, so late threads cannot make two calls arrive closer than the bucket allows.
        account = f"api_token: {TOKEN}, max_items: 1" + (f", plan: {plan}, concurrency: 1" if plan else "")
        cfg = one_cdn(
            "cf", f'vendor: cloudflare, api_base: "{cf.api_base}", zone_id: "{ZONE}", {account}', "tags: ['{key}']"
        )
        assert run(cfg, executor, *tags).ok  # with or without the plan, every tag is purged
    assert sorted(cf.operations) == ["zone-purge"] * 30
    assert (cf.throttled_count == 0) == (plan == "pro")  # Pro: 5 tag calls a second, bucket 25
