"""`s3purge purge` and `s3purge config migrate`, run as a user runs them (click's CliRunner)."""

from __future__ import annotations

import uuid
from pathlib import Path
from textwrap import dedent
from typing import Any

import click
import httpx
import pytest
import yaml
from click.testing import CliRunner, Result
from hypothesis import given
from hypothesis import strategies as st

from s3purge import config
from s3purge.demo.bed import Varnish
from s3purge.entry.cli import main
from s3purge.entry.cli.urls import pasted_url
from tests.conftest import serving
from tests.emulators import http_cache
from tests.emulators.base import Emulator, Invalid, Recorded, Reply
from tests.emulators.http_cache import HttpCacheEmulator

SAMPLE = Path(__file__).parents[2] / "examples" / "legacy.multicdn.config.yml"
TOKEN = "purge-token-SECRET-42"
HOST = "www.example.test"


class Cache(Emulator):
    """A self-hosted cache that accepts PURGE for known hosts when the shared token is right."""

    def answer(self, request: Recorded) -> Reply:
        if request.method != "PURGE":
            raise Invalid(f"unexpected {request.method}")
        if request.headers.get("x-purge-token") != TOKEN:
            return Reply(403, b"forbidden")
        return Reply(200, b"Purged")


def http_config(tmp_path: Path, endpoint: str) -> Path:
    path = tmp_path / "s3purge.yml"
    path.write_text(
        dedent(f"""
        cdns:
          edge:
            vendor: http
            endpoints: [{endpoint}]
            headers: {{X-Purge-Token: {{env: PURGE_TOKEN}}}}
        buckets:
          site:
            - {{cdn: edge, hosts: [{HOST}], prefix: public/, strip_prefix: public/}}
        """)
    )
    return path


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_dry_run_shows_the_exact_requests_and_sends_nothing(tmp_path: Path) -> None:
    with serving(Cache()) as cache:
        path = http_config(tmp_path, cache.url)

        result = run(
            "purge", "--config", str(path), "--cdn", "edge", f"https://{HOST}/a b.html",
            "--key", "site/public/docs/my file+1.html", env={"PURGE_TOKEN": TOKEN},
        )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert f"PURGE {cache.url}/a%20b.html\n  x-purge-token: ***\n  host: {HOST}\n" in result.output
    for spelled in ("a+b.html", "docs/my%20file%2B1.html", "docs/my+file%2B1.html"):
        assert f"PURGE {cache.url}/{spelled}\n" in result.output
    assert "dry run: nothing sent" in result.output
    assert TOKEN not in result.output
    assert cache.requests == []


def test_send_purges_through_the_emulator(tmp_path: Path) -> None:
    with serving(Cache()) as cache:
        path = http_config(tmp_path, cache.url)

        result = run(
            "purge", "--config", str(path), "--cdn", "edge", "--send",
            "--key", "site/public/docs/my file+1.html", "--key", "site/public/ünï.css",
            env={"PURGE_TOKEN": TOKEN},
        )  # fmt: skip

    assert result.exit_code == 0, result.output
    sent = sorted((r.method, r.path, r.headers["host"], r.headers["x-purge-token"]) for r in cache.requests)
    assert sent == [
        ("PURGE", "/%C3%BCn%C3%AF.css", HOST, TOKEN),
        ("PURGE", "/docs/my%20file%2B1.html", HOST, TOKEN),
        ("PURGE", "/docs/my+file%2B1.html", HOST, TOKEN),
    ]
    assert result.output.count("ok ") == 3
    assert TOKEN not in result.output


def test_a_refused_purge_fails_the_command(tmp_path: Path) -> None:
    with serving(Cache()) as cache:
        path = http_config(tmp_path, cache.url)

        result = run(
            "purge", "--config", str(path), "--cdn", "edge", "--send", f"https://{HOST}/x",
            env={"PURGE_TOKEN": "wrong-token"},
        )  # fmt: skip

    assert result.exit_code == 1
    assert "FAILED edge purge 1 item(s) HTTP 403" in result.output
    assert len(cache.requests) == 1  # a rejection is not retried


def test_a_pasted_url_is_purged_under_every_spelling_and_never_sent_raw(tmp_path: Path) -> None:
    with serving(Cache()) as cache:
        path = http_config(tmp_path, cache.url)

        result = run(
            "purge", "--config", str(path), "--cdn", "edge", "--send",
            "https://WWW.example.test/docs/../my docs/report (1)+ü.pdf#page=2",
            env={"PURGE_TOKEN": TOKEN},
        )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert "#page=2 dropped" in result.output
    # what a browser sends for it (dot segments resolved, space and ü escaped, '+' as typed), then
    # every spelling of the object S3 serves there: "my docs/report (1) ü.pdf" ('+' is a space)
    assert sorted(r.path for r in cache.requests) == [
        "/my%20docs/report%20%281%29%20%C3%BC.pdf",
        "/my%20docs/report%20(1)%20%C3%BC.pdf",
        "/my%20docs/report%20(1)+%C3%BC.pdf",
        "/my+docs/report+%281%29+%C3%BC.pdf",
    ]
    assert {r.headers["host"] for r in cache.requests} == {HOST}


def test_a_pasted_url_keeps_its_port_and_query_and_gets_an_idna_host() -> None:
    assert pasted_url("http://café.example:8080/a b?v=2 é&x=a+b") == (
        [
            "http://xn--caf-dma.example:8080/a%20b?v=2%20%C3%A9&x=a+b",
            "http://xn--caf-dma.example:8080/a+b?v=2%20%C3%A9&x=a+b",
        ],
        "",
    )
    assert pasted_url("https://h/100%.txt") == (["https://h/100%25.txt"], "")  # a lone '%' is a percent sign


def test_a_pasted_query_is_shown_then_purged_on_the_strict_cache(tmp_path: Path) -> None:
    """The cache-busted copy (`?v=2`) is its own cache object in Varnish and nginx: purge that, not /p.html."""
    with serving(HttpCacheEmulator()) as cache:
        path = http_config(tmp_path, cache.url)
        args = ("purge", "--config", str(path), "--cdn", "edge", f"https://{HOST}/p.html?v=2&x=a+b")
        env = {"PURGE_TOKEN": http_cache.TOKEN}

        shown = run(*args, "--dry-run", env=env)
        assert cache.requests == []
        sent = run(*args, "--yes", env=env)

    assert shown.exit_code == 0, shown.output
    assert f"PURGE {cache.url}/p.html?v=2&x=a+b\n" in shown.output
    assert sent.exit_code == 0, sent.output
    assert cache.purged == [("PURGE", HOST, "/p.html?v=2&x=a+b")] and cache.violations == []
    assert "query" not in shown.output + sent.output  # nothing dropped, nothing to warn about


def test_a_pasted_query_is_served_fresh_from_real_varnish(
    tmp_path: Path, boto: Any, site: str, varnish: Varnish
) -> None:
    """Varnish keeps the cache-busted copy apart (its hash holds the query): only its own purge evicts it."""
    key = f"p-{uuid.uuid4().hex[:8]}.html"
    path = tmp_path / "varnish.yml"
    path.write_text(
        f"cdns:\n  v: {{vendor: http, endpoints: ['{varnish.url}']}}\n"
        f"buckets:\n  {site}:\n    - {{cdn: v, hosts: [{HOST}]}}\n"
    )
    with httpx.Client(base_url=varnish.url, headers={"Host": HOST}) as cache:
        boto.s3.put_object(Bucket=site, Key=key, Body=b"v1")
        assert cache.get(f"/{key}?v=2").content == cache.get(f"/{key}?v=2").content == b"v1"  # now cached
        boto.s3.put_object(Bucket=site, Key=key, Body=b"v2")
        assert cache.get(f"/{key}?v=2").headers["X-Cache"] == "HIT"  # stale until purged

        result = run("purge", "--config", str(path), "--cdn", "v", "--yes", f"https://{HOST}/{key}?v=2")

        assert result.exit_code == 0, result.output
        fresh = cache.get(f"/{key}?v=2")
    assert (fresh.content, fresh.headers["X-Cache"]) == (b"v2", "MISS")


@pytest.mark.parametrize("cdn", ["ak", "cf", "fa", "ec", "hw"])
def test_every_vendor_sends_the_query(tmp_path: Path, cdn: str) -> None:
    path = tmp_path / "five.yml"
    path.write_text(FIVE)

    result = run("purge", "--config", str(path), "--cdn", cdn, "--dry-run", "https://www.acme.co/p.html?v=2")

    assert result.exit_code == 0, result.output
    assert "/p.html?v=2" in result.output and "without their query" not in result.output


def test_cloudfront_invalidates_the_pasted_query_and_the_bare_path(tmp_path: Path) -> None:
    """AWS: with query strings in the cache key, the invalidation path must carry the query; without,
    the request is cached under its bare path. Both are sent, one paid path each, and nothing is warned."""
    path = tmp_path / "cloudfront.yml"
    path.write_text(
        "cdns:\n  dist:\n    vendor: cloudfront\n    distribution_ids: [E2QWRUHAPOMQZL]\n"
        "buckets:\n  site:\n    - {cdn: dist, hosts: [www.acme.co]}\n"
    )

    result = run("purge", "--config", str(path), "--cdn", "dist", "--dry-run", "https://www.acme.co/p.html?v=2&x={1}")

    assert result.exit_code == 0, result.output
    sent = "".join(result.output.split())
    assert "<Quantity>2</Quantity><Items><Path>/p.html?v=2&amp;x=%7B1%7D</Path><Path>/p.html</Path></Items>" in sent
    assert "query" not in result.output


@given(st.text(max_size=60))
def test_whatever_is_pasted_no_raw_space_or_non_ascii_is_sent(typed: str) -> None:
    try:
        urls, _ = pasted_url("https://www.example.test/" + typed)
    except click.BadParameter:
        return  # refused with a reason: nothing sent
    for url in urls:
        assert all(0x21 <= ord(c) <= 0x7E for c in url) and "#" not in url
        assert httpx.URL(url).raw_path.decode().startswith("/")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cdn", "edge", "https://user:secret@www.example.test/x"], "no user:password@"),
        (["--cdn", "edge", "https://www.example.test/%FF.html"], "its path is not UTF-8"),
        (["--cdn", "nope", "https://www.example.test/x"], "'nope' is not a CDN"),
        (["--cdn", "edge", "--key", "site/private/x"], "matches no route of bucket 'site' (edge: prefix 'public/')"),
        (["--cdn", "edge", "--action", "load", "https://www.example.test/x"], "cannot load by url"),
        (["--cdn", "edge", "www.example.test/x"], "give an absolute http:// or https:// URL"),
        (["--cdn", "edge"], "give URLs, --key, --tag"),
    ],
)
def test_mistakes_are_explained(tmp_path: Path, args: list[str], message: str) -> None:
    path = http_config(tmp_path, "http://127.0.0.1:9")

    result = run("purge", "--config", str(path), *args)

    assert result.exit_code == 2
    assert message in result.output


# --- the five vendors of the old scripts: requests as their APIs document them --------
FIVE = """
cdns:
  ak:
    vendor: akamai
    host: akab-abc.purge.akamaiapis.net
    client_token: ct-SECRET-1
    client_secret: cs-SECRET-2
    access_token: at-SECRET-3
  cf:
    vendor: cloudflare
    zone_id: 023e105f4ecef8ad9ca31a8372d0c353
    api_token: cf-SECRET-4
  fa:
    vendor: fastly
    service_id: SU1Z0isxPaozGVKXdv0eY
    api_token: fa-SECRET-5
  ec:
    vendor: edgecast
    account: ABCDEF
    token: ec-SECRET-6
    platform: http-large
  hw:
    vendor: highwinds
    account_hash: a1b2c3d4
    api_token: hw-SECRET-7
buckets:
  site:
    - {cdn: ak, hosts: [www.acme.co], schemes: both}
    - {cdn: cf, hosts: [www.acme.co], schemes: both}
    - {cdn: fa, hosts: [www.acme.co], schemes: both}
    - {cdn: ec, hosts: [www.acme.co], schemes: both}
    - {cdn: hw, hosts: [www.acme.co], schemes: both}
"""
URL = "https://www.acme.co/docs/my%20file.html"
HTTP_URL = "http://www.acme.co/docs/my%20file.html"
PLUS_URL, HTTP_PLUS_URL = URL.replace("%20", "+"), HTTP_URL.replace("%20", "+")
"""The spelling S3 also serves "docs/my file.html" under (S3 reads a raw '+' in a path as a space)."""


@pytest.mark.parametrize(
    ("cdn", "vendor", "expected"),
    [
        ("ak", "akamai", [
            "POST https://akab-abc.purge.akamaiapis.net/ccu/v3/invalidate/url/production",
            f'{{"objects":["{URL}","{PLUS_URL}"]}}',
        ]),
        ("cf", "cloudflare", [
            "POST https://api.cloudflare.com/client/v4/zones/023e105f4ecef8ad9ca31a8372d0c353/purge_cache",
            "authorization: ***", URL, HTTP_URL,
        ]),
        ("fa", "fastly", ["POST https://api.fastly.com/purge/www.acme.co/docs/my%20file.html", "fastly-key: ***"]),
        ("ec", "edgecast", [
            "PUT https://api.edgecast.com/v2/mcc/customers/ABCDEF/edge/purge", "authorization: ***",
            f'"MediaPath":"{URL}","MediaType":3',  # a purge covers both schemes: sent once
        ]),
        ("hw", "highwinds", ["/api/v1/accounts/a1b2c3d4/purge", f'"url":"{URL}"', '"recursive":false']),
    ],
)  # fmt: skip
def test_dry_run_of_each_vendor_shows_its_documented_request(
    tmp_path: Path, cdn: str, vendor: str, expected: list[str]
) -> None:
    path = tmp_path / "five.yml"
    path.write_text(FIVE)

    result = run("purge", "--config", str(path), "--cdn", cdn, "--key", "site/docs/my file.html")

    assert result.exit_code == 0, result.output
    for fragment in expected:
        assert fragment in result.output
    assert "SECRET" not in result.output


# --- the legacy file, unchanged but for where the vendors' APIs are ------------------
def legacy_with(tmp_path: Path, extra: dict[str, dict[str, str]]) -> Path:
    raw = yaml.safe_load(SAMPLE.read_text())
    for vendor, options in extra.items():
        raw["cdnConfigurations"][vendor].update(options)
    path = tmp_path / "multicdn.config.yml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_the_legacy_sample_loads_edgecast_on_both_schemes(tmp_path: Path) -> None:
    from tests.emulators.edgecast import EdgecastEmulator

    with serving(EdgecastEmulator(token="xxxxx-yyyyyyyyy-zzzzzzzzzz", account="ABCDEF")) as edgecast:
        path = legacy_with(tmp_path, {"edgecast": {"api_base": edgecast.url}})

        result = run(
            "purge", "--config", str(path), "--cdn", "edgecast", "--key", "mybucket/docs/my file.html", "--send"
        )

    assert result.exit_code == 0, result.output
    assert sorted(edgecast.done) == sorted(("load", url, 8) for url in (URL, HTTP_URL, PLUS_URL, HTTP_PLUS_URL))


def test_the_legacy_sample_purges_cloudflare_with_the_old_key_and_email(tmp_path: Path) -> None:
    from tests.emulators.cloudflare import CloudflareEmulator

    emulator = CloudflareEmulator(api_token=None, api_key="aaaaaaaaaaaaaaaaaaaaa", email="shalom@acme.net")
    with serving(emulator) as cloudflare:
        path = legacy_with(tmp_path, {"cloudflare": {"api_base": cloudflare.api_base}})

        result = run(
            "purge", "--config", str(path), "--cdn", "cloudflare", "--key", "mybucket/docs/my file.html", "--send"
        )

    assert result.exit_code == 0, result.output
    assert [r.json() for r in cloudflare.requests] == [{"files": [URL, HTTP_URL, PLUS_URL, HTTP_PLUS_URL]}]
    assert "aaaaaaaaaaaaaaaaaaaaa" not in result.output


def test_the_legacy_akamai_section_takes_an_edgerc_file(tmp_path: Path) -> None:
    edgerc = tmp_path / "edgerc"
    edgerc.write_text(
        "[ccu]\nhost = akab-xyz.purge.akamaiapis.net\nclient_token = ct-SECRET\n"
        "client_secret = cs-SECRET\naccess_token = at-SECRET\n"
    )
    path = legacy_with(tmp_path, {"akamai": {"edgerc": str(edgerc), "section": "ccu"}})

    result = run("purge", "--config", str(path), "--cdn", "akamai-staging", "--key", "mybucket/docs/my file.html")

    assert result.exit_code == 0, result.output
    assert "POST https://akab-xyz.purge.akamaiapis.net/ccu/v3/invalidate/url/staging" in result.output
    assert f'{{"objects":["{URL}","{PLUS_URL}"]}}' in result.output
    assert "SECRET" not in result.output


# --- config migrate -------------------------------------------------------------------
def test_migrate_writes_a_file_that_loads_and_refuses_to_overwrite(tmp_path: Path) -> None:
    new = tmp_path / "s3purge.yml"

    first = run("config", "migrate", str(SAMPLE), str(new))
    second = run("config", "migrate", str(SAMPLE), str(new))

    assert first.exit_code == 0, first.output
    loaded = config.load(new)
    assert sorted(loaded.cdns) == sorted(config.load(SAMPLE).cdns)
    assert "cdnDomains" not in yaml.safe_load(new.read_text())
    assert "# note: cdnConfigurations.akamai.user: ignored" in new.read_text()
    assert second.exit_code == 2 and "exists (add --force" in second.output
    assert run("config", "migrate", "--force", str(SAMPLE), str(new)).exit_code == 0


def test_migrate_reports_a_bad_legacy_file_at_its_line(tmp_path: Path) -> None:
    old = tmp_path / "multicdn.config.yml"
    old.write_text("cdnDomains:\n  edgecast:\n    b:\n      - {host: a.example.com, platform: huge}\n")

    result = run("config", "migrate", str(old), "-")

    assert result.exit_code == 2
    assert f"{old}:4: cdnDomains.edgecast.b[0].platform: unknown edgecast platform 'huge'" in result.output


def test_migrate_refuses_a_new_format_file(tmp_path: Path) -> None:
    path = http_config(tmp_path, "http://127.0.0.1:9")

    result = run("config", "migrate", str(path), "-")

    assert result.exit_code == 2
    assert "already in the s3purge format" in result.output
