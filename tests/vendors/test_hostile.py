"""Hostile keys and values through the real pipeline: each case of issue #9, against the vendors' emulators.

A request that breaks the request boundary is never sent (the emulator sees nothing) and fails
its batch permanently with a reason; every other batch goes on.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from s3purge.config import Cdn, Config, parse
from s3purge.entry.cli import main
from s3purge.errors import ConfigError, Unsafe
from s3purge.execute import Executor
from s3purge.model import Batch, Change, Report
from s3purge.plan import plan
from s3purge.providers.http_purge import HttpPurge, HttpPurgeOptions
from s3purge.secrets import Secret, resolve
from tests.conftest import serving
from tests.emulators import edgecast, fastly
from tests.emulators.base import Emulator
from tests.vendors.helpers import one_cdn, run

SERVICE = "SU1Z0isxPaozGVKXdv0eY"


def fastly_config(emulator: Emulator, route: str = "hosts: [www.example.com]") -> Config:
    account = f'vendor: fastly, api_base: "{emulator.url}", api_token: {fastly.TOKEN}, service_id: {SERVICE}'
    return one_cdn("fy", account, route)


def failures(report: Report) -> list[tuple[bool, str]]:
    return [(o.retryable, o.detail) for o in report.failures()]


def test_dot_segments_never_reach_another_fastly_endpoint(executor: Executor) -> None:
    key = "uploads/../../../service/SVC/purge_all"
    with serving(fastly.FastlyEmulator()) as api:
        report = run(fastly_config(api), executor, key, "uploads/fine.html")
    assert [r.path for r in api.requests] == ["/purge/www.example.com/uploads/fine.html"]
    ((retryable, detail),) = failures(report)
    assert not retryable and "'..' segment" in detail


def test_dot_segments_never_leave_the_purge_location_with_the_token(
    executor: Executor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PURGE_TOKEN", "tok-1")
    with serving(Emulator()) as cache:
        account = (
            f'vendor: http, endpoints: ["{cache.url}"], path_prefix: /purge, headers: {{X-Token: {{env: PURGE_TOKEN}}}}'
        )
        cfg = one_cdn("ngx", account, "hosts: [www.example.com]")
        resolve(cfg.secrets())
        report = run(cfg, executor, "x/../../admin/secret", "a/./b/../c.txt", "ok.txt")
    assert [r.path for r in cache.requests] == ["/purge/ok.txt"]  # never /admin/secret, never /purge/a/c.txt
    assert [retryable for retryable, _ in failures(report)] == [False, False]


def test_a_non_ascii_dirname_tag_is_encoded_not_a_crash(executor: Executor) -> None:
    with serving(fastly.FastlyEmulator()) as api:
        report = run(fastly_config(api, 'tags: ["{dirname}"]'), executor, "café/menu.html", "My Photos/a.jpg")
    assert report.ok, failures(report)
    assert sorted(api.purged_keys) == ["My%20Photos", "caf%C3%A9"]


def test_cr_lf_in_a_tag_is_encoded_not_retried(executor: Executor) -> None:
    with serving(Emulator()) as cache:
        cfg = one_cdn("x", f'vendor: http, endpoints: ["{cache.url}"]', 'tags: ["{dirname}"]')
        report = run(cfg, executor, "a\r\nX-Injected: 1/b.html")
    assert report.ok and [r.headers["xkey-purge"] for r in cache.requests] == ["a%0D%0AX-Injected:%201"]
    assert "x-injected" not in cache.requests[0].headers


def test_a_secret_with_a_trailing_newline_is_a_config_error_naming_the_reference(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PURGE_TOKEN", "tok-1\n")
    cfg = one_cdn(
        "x", 'vendor: http, endpoints: ["http://127.0.0.1:1"], headers: {X-T: {env: PURGE_TOKEN}}', "hosts: [h]"
    )
    with pytest.raises(ConfigError, match=r"env:PURGE_TOKEN: the value starts or ends with whitespace") as raised:
        resolve(cfg.secrets())
    assert "tok-1" not in str(raised.value)


def test_the_boundary_refuses_a_header_with_cr_lf_whatever_let_it_through() -> None:
    # The config refuses such values; the request boundary is the last line of defence.
    options = HttpPurgeOptions(
        endpoints=["http://127.0.0.1:1"], headers={"X-T": Secret("plain", value="t\r\nX-Evil: 1")}
    )
    batch = Batch("x", "purge", "url", ("https://h/a",), frozenset({"m"}))
    with pytest.raises(Unsafe, match="header X-T has a control or non-ASCII character") as raised:
        HttpPurge("x", options).build(batch)
    assert "Evil" not in str(raised.value)


@pytest.mark.parametrize(("value", "why"), [("tökén", "cannot build the request")], ids=["non-ascii"])
def test_a_bad_header_value_fails_permanently_and_is_never_sent(
    value: str, why: str, executor: Executor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PURGE_TOKEN", value)
    with serving(Emulator()) as bad, serving(Emulator()) as good:
        cfg = parse(
            f"""
cdns:
  bad: {{vendor: http, endpoints: ["{bad.url}"], headers: {{X-Purge-Token: {{env: PURGE_TOKEN}}}}}}
  good: {{vendor: http, endpoints: ["{good.url}"]}}
buckets:
  site:
    - {{cdn: bad, hosts: [www.example.com]}}
    - {{cdn: good, hosts: [www.example.com]}}
"""
        )
        with pytest.raises(ConfigError, match="env:PURGE_TOKEN: the value is not printable ASCII"):
            resolve(cfg.secrets())  # refused at resolve time; the request boundary is the last line of defence
        (secret,) = cfg.secrets()
        secret._value = value  # as if resolution had let it through
        report = run(cfg, executor, "a.html")
    assert bad.requests == [] and [r.path for r in good.requests] == ["/a.html"]
    ((retryable, detail),) = failures(report)
    assert not retryable and why in detail and value.strip() not in detail


def test_a_huge_key_fails_alone(executor: Executor) -> None:
    with serving(Emulator()) as cache:
        report = run(
            one_cdn("x", f'vendor: http, endpoints: ["{cache.url}"]', "hosts: [h]"), executor, "k" * 10_000_000, "a"
        )
    assert [r.path for r in cache.requests] == ["/a"]
    ((retryable, detail),) = failures(report)
    assert not retryable and "longer than" in detail


def test_a_star_key_is_never_a_whole_site_edgecast_purge(executor: Executor) -> None:
    with serving(edgecast.EdgecastEmulator()) as api:
        account = f'vendor: edgecast, api_base: "{api.url}", account: "0001", token: {edgecast.TOKEN}'
        report = run(one_cdn("ec", account, "hosts: [www.example.com]"), executor, "*", "img/a*b.png")
    assert [r.json()["MediaPath"] for r in api.requests] == ["https://www.example.com/img/a*"]  # widened, named
    assert {(retryable, "whole site" in detail) for retryable, detail in failures(report)} == {(False, True)}


def test_a_star_key_purges_everything_only_where_escalation_allows_it(executor: Executor) -> None:
    with serving(edgecast.EdgecastEmulator()) as api:
        account = f'vendor: edgecast, api_base: "{api.url}", account: "0001", token: {edgecast.TOKEN}'
        cfg = one_cdn("ec", account + ", everything_threshold: 100", "hosts: [www.example.com]")
        assert run(cfg, executor, "*").ok
    assert [r.json()["MediaPath"] for r in api.requests] == ["https://www.example.com/*"]


@pytest.mark.parametrize(
    ("vendor", "key", "widened", "refused"),
    [
        ("cloudfront", "img/a*b.png", "https://www.example.com/img/a", False),
        ("cloudfront", "*.png", "", True),
        ("http", "img/all*", "https://www.example.com/img/all", False),
        ("http", "img/a*b.png", "", False),  # nginx reads only a final '*' as a wildcard
        ("http", "*", "", True),
        ("fastly", "img/*", "", False),  # Fastly purges exact URLs: '*' is just a character
    ],
)
def test_every_widening_is_named_in_the_plan(vendor: str, key: str, widened: str, refused: bool) -> None:
    accounts = {
        "cloudfront": "vendor: cloudfront, distribution_ids: [E1]",
        "http": 'vendor: http, endpoints: ["http://127.0.0.1:1"]',
        "fastly": f"vendor: fastly, api_token: t, service_id: {SERVICE}",
    }
    planned = plan([Change("site", key, "created", "m")], one_cdn("c", accounts[vendor], "hosts: [www.example.com]"))
    assert [(d.rule, d.reason.rpartition(" ")[2]) for d in planned.decisions] == (
        [("wildcard", widened)] if widened else []
    )
    assert {r.sources for r in planned.refused} == ({frozenset({"m"})} if refused else set())


def test_max_items_on_an_http_account_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"cdns\.x\.max_items: vendor .http. takes one item per call"):
        one_cdn("x", 'vendor: http, endpoints: ["http://127.0.0.1:1"], max_items: 10', "hosts: [h]")


class BuggyBuild(HttpPurge):
    """A (third-party) vendor module with a bug while building some requests."""

    def requests(self, batch: Batch) -> list[httpx.Request]:
        if batch.values[0].endswith("/boom"):
            raise ZeroDivisionError("bug")
        return super().requests(batch)


class BuggyJudge(HttpPurge):
    """A vendor module that cannot read any answer."""

    def judge(self, response: httpx.Response) -> str:
        raise ValueError("unexpected answer")


def with_provider(cfg: Config, cls: type[HttpPurge]) -> dict[str, Cdn]:
    cdn = cfg.cdns["x"]
    return {"x": dataclasses.replace(cdn, provider=cls("x", cdn.provider.options))}


def test_any_exception_while_building_fails_that_batch_only(executor: Executor) -> None:
    with serving(Emulator()) as cache:
        cdns = with_provider(one_cdn("x", f'vendor: http, endpoints: ["{cache.url}"]', "hosts: [h]"), BuggyBuild)
        batches = [Batch("x", "purge", "url", (f"https://h/{name}",), frozenset({name})) for name in ("boom", "fine")]
        outcomes = executor.run(batches, cdns, time.monotonic() + 10)
    assert [(o.ok, o.retryable) for o in outcomes] == [(False, False), (True, False)]
    assert "ZeroDivisionError" in outcomes[0].detail
    assert [r.path for r in cache.requests] == ["/fine"]


def test_a_judge_that_raises_fails_the_batch_retryably(executor: Executor) -> None:
    with serving(Emulator()) as cache:
        cfg = one_cdn("x", f'vendor: http, endpoints: ["{cache.url}"], max_attempts: 2', "hosts: [h]")
        batch = Batch("x", "purge", "url", ("https://h/a",), frozenset({"m"}))
        (outcome,) = executor.run([batch], with_provider(cfg, BuggyJudge), time.monotonic() + 10)
    assert (outcome.ok, outcome.retryable) == (False, True)
    assert "could not read the vendor's answer (ValueError)" in outcome.detail
    assert len(cache.requests) == 2


def test_plan_and_dry_run_name_every_widening_and_refusal(tmp_path: Path) -> None:
    config = tmp_path / "multicdn.config.yml"
    config.write_text(
        "cdns:\n  cf: {vendor: cloudfront, distribution_ids: [E1]}\n"
        "buckets:\n  site:\n    - {cdn: cf, hosts: [www.example.com]}\n"
    )
    runner = CliRunner()
    planned = runner.invoke(main, ["plan", "site/img/a*b.png", "site/*", "--config", str(config)])
    dry = runner.invoke(
        main, ["purge", "--cdn", "cf", "--key", "site/img/a*b.png", "--key", "site/*", "--config", str(config)]
    )
    for result in (planned, dry):
        assert result.exit_code == 0, result.output
        assert "[cf] wildcard rule: https://www.example.com/img/a*b.png" in result.output
        assert "purges every URL starting with https://www.example.com/img/a" in result.output
        assert (
            "[cf] REFUSED url https://www.example.com/*: its '*' is a wildcard here and would purge the whole site"
            in (result.output)
        )
