"""The original scripts' multicdn.config.yml: loads unchanged, converts faithfully, errors at its own lines."""

from __future__ import annotations

import logging
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest
import yaml

from s3purge import config, legacy
from s3purge.errors import ConfigError
from s3purge.locations import dotted
from s3purge.model import Change
from s3purge.plan import plan

SAMPLE = Path(__file__).parents[2] / "examples" / "legacy.multicdn.config.yml"
ZONE = "023e105f4ecef8ad9ca31a8372d0c353"

ODD_KEYS = [
    "index.html",
    "docs/my file.html",  # S3 sends my+file.html: the old scripts purged that literal URL
    "docs/a+b.html",
    "docs/100%.html",
    "docs/what?.html",
    "docs/#1.html",
    "ünï/çødé.css",
    "docs/index.html",
]


def sample() -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load(SAMPLE.read_text())
    return raw


def changes() -> list[Change]:
    found = []
    for bucket in ("mybucket", "mybucket-02", "mybucket-03", "not-configured"):
        for i, key in enumerate(ODD_KEYS):
            found.append(Change(bucket, key, "created", source=f"{bucket}/c{i}"))
            found.append(Change(bucket, key, "removed", source=f"{bucket}/r{i}"))
    return found


def routes(document: dict[str, Any], bucket: str) -> list[tuple[str, list[str], str]]:
    return [(r["cdn"], r["hosts"], r["action"]) for r in document["buckets"][bucket]]


def test_the_sample_becomes_one_account_per_platform_and_routes_per_bucket() -> None:
    document = legacy.convert(sample()).document

    cdns = document["cdns"]
    assert list(cdns) == [
        "edgecast",
        "edgecast-http-large",
        "akamai",
        "akamai-staging",
        "highwinds",
        "cloudflare",
        "fastly",
    ]
    assert cdns["edgecast"] == {
        "vendor": "edgecast",
        "token": "xxxxx-yyyyyyyyy-zzzzzzzzzz",
        "account": "ABCDEF",
        "platform": "http-small",  # cdnConfigurations.edgecast.platform: small
    }
    assert cdns["edgecast-http-large"]["platform"] == "http-large"
    assert cdns["akamai"]["network"] == "production"
    assert cdns["akamai-staging"]["network"] == "staging"
    assert "user" not in cdns["akamai"] and "password" not in cdns["akamai"]
    assert cdns["cloudflare"] == {
        "vendor": "cloudflare",
        "email": "shalom@acme.net",
        "api_key": "aaaaaaaaaaaaaaaaaaaaa",
        "zone_id": ZONE,  # the item's platform
    }
    assert cdns["fastly"] == {"vendor": "fastly", "api_token": "xxxxxxxxxxxxxxxxxxxx"}
    assert cdns["highwinds"] == {"vendor": "highwinds", "api_token": {"env": "HIGHWINDS_API_TOKEN"}}

    assert routes(document, "mybucket") == [
        ("edgecast", ["www.acme.co"], "load"),  # the {action: load} item of the same list
        ("akamai-staging", ["www.acme.co"], "invalidate"),
        ("akamai", ["www.acme.co"], "invalidate"),
        ("highwinds", ["www.acme.co"], "purge"),
        ("cloudflare", ["www.acme.co"], "purge"),
        ("fastly", ["www.acme.co"], "purge"),
    ]
    assert routes(document, "mybucket-02") == [
        ("edgecast-http-large", ["www.acme.it", "www.acme.fr"], "purge"),
        ("akamai", ["www.acme.it"], "invalidate"),
    ]
    assert routes(document, "mybucket-03") == [("akamai", ["www.xx.co"], "invalidate")]
    every = [r for bucket in document["buckets"].values() for r in bucket]
    assert {r["schemes"] for r in every} == {"both"}
    assert document["buckets"]["mybucket"][0]["events"] == ["created"]  # a load after a delete caches a 404


def test_the_sample_loads_unchanged_and_says_what_it_assumed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="s3purge")

    loaded = config.load(SAMPLE)

    assert {name: cdn.provider.vendor for name, cdn in loaded.cdns.items()} == {
        "edgecast": "edgecast",
        "edgecast-http-large": "edgecast",
        "akamai": "akamai",
        "akamai-staging": "akamai",
        "highwinds": "highwinds",
        "cloudflare": "cloudflare",
        "fastly": "fastly",
    }
    warned = caplog.text
    assert f"{SAMPLE}:48: cdnConfigurations.akamai.password: ignored" in warned
    assert "cdnDomains.highwinds: no credentials given" in warned and "HIGHWINDS_API_TOKEN" in warned
    for value in ("secret", "aaaaaaaaaaaaaaaaaaaaa", "xxxxxxxxxxxxxxxxxxxx", "zzzzzzzzzz"):
        assert value not in warned


def test_urls_are_decoded_and_cover_https_unlike_the_old_scripts() -> None:
    loaded = config.load(SAMPLE)
    key = Change("mybucket", "docs/my file.html", "created", source="s")

    urls: dict[tuple[str, str], list[str]] = {}
    for batch in plan([key], loaded).batches:
        urls[(batch.cdn, batch.action)] = sorted([*urls.get((batch.cdn, batch.action), []), *batch.values])

    # the browser's spelling, and the form-encoded one S3 serves too (the only one the old scripts purged)
    one = ["https://www.acme.co/docs/my%20file.html", "https://www.acme.co/docs/my+file.html"]
    both = sorted([*one, *(url.replace("https:", "http:") for url in one)])
    assert urls[("cloudflare", "purge")] == both  # the zone's cache key may include the scheme
    assert urls[("edgecast", "load")] == both  # a load is per protocol
    assert urls[("akamai", "invalidate")] == one  # one purge covers both
    assert urls[("fastly", "purge")] == one


def test_index_documents_purge_their_directory_unlike_the_old_scripts() -> None:
    loaded = config.load(SAMPLE)
    index = Change("mybucket", "docs/index.html", "created", source="s")

    urls = {v for b in plan([index], loaded).batches if b.cdn == "fastly" for v in b.values}

    assert urls == {f"https://www.acme.co/docs{tail}" for tail in ("/index.html", "/", "")}


def test_removals_purge_but_never_load() -> None:
    loaded = config.load(SAMPLE)
    removed = Change("mybucket", "gone.css", "removed", source="s")

    cdns = {b.cdn for b in plan([removed], loaded).batches}

    assert "edgecast" not in cdns
    assert {"akamai", "akamai-staging", "cloudflare", "fastly", "highwinds"} <= cdns


def test_legacy_and_migrated_configs_plan_exactly_the_same_purges() -> None:
    old = config.load(SAMPLE)
    converted = legacy.convert(sample())
    text = legacy.dump(converted.document, ["a note"])
    new = config.parse(text, "migrated.yml")
    assert "cdnDomains" not in yaml.safe_load(text)

    before, after = plan(changes(), old), plan(changes(), new)

    assert before.batches == after.batches
    assert before.routed == after.routed
    assert sum(len(b.values) for b in before.batches) > 50  # the comparison is not vacuous
    assert "https://www.acme.it/%C3%BCn%C3%AF/%C3%A7%C3%B8d%C3%A9.css" in {
        v for b in before.batches if b.cdn == "akamai" for v in b.values
    }


def test_migrated_file_reads_back_as_the_same_document_with_secrets_as_written() -> None:
    raw = {
        "cdnDomains": {"fastly": {"site": [{"host": "www.example.com"}]}},
        "cdnConfigurations": {"fastly": {"token": {"ssm": "/cdn/fastly"}, "service_id": "SU1Z0isxPaozGVKXdv0eY"}},
    }
    document = legacy.convert(raw).document

    text = legacy.dump(document)

    assert yaml.safe_load(text) == document
    assert "api_token: {ssm: /cdn/fastly}" in text
    assert "hosts: [www.example.com]" in text
    loaded = config.parse(text, "new.yml")
    assert not loaded.cdns["fastly"].provider.options.secrets()[0].resolved


def convert(text: str) -> dict[str, Any]:
    document: dict[str, Any] = legacy.convert(yaml.safe_load(dedent(text))).document
    return document


def test_an_action_only_item_sets_the_action_of_its_platform_and_a_hosts_own_action_wins() -> None:
    document = convert("""
        cdnDomains:
          edgecast:
            site:
              - {action: load, platform: large}
              - {host: big.example.com, platform: large}
              - {host: small.example.com}
              - {host: own.example.com, platform: large, action: purge}
        cdnConfigurations:
          edgecast: {token: t, hex: 1234}
        """)

    assert routes(document, "site") == [
        ("edgecast-http-large", ["big.example.com"], "load"),
        ("edgecast", ["small.example.com"], "purge"),
        ("edgecast-http-large", ["own.example.com"], "purge"),
    ]
    assert document["cdns"]["edgecast"]["account"] == "1234"  # unquoted in YAML, still an id
    assert document["cdns"]["edgecast"]["platform"] == "http-small"  # the old client's default


def test_an_action_only_item_without_platform_sets_the_action_of_the_whole_list() -> None:
    document = convert("""
        cdnDomains:
          edgecast:
            site:
              - {host: big.example.com, platform: large}
              - action: load
              - {host: small.example.com, platform: small}
        cdnConfigurations:
          edgecast: {token: t, hex: ABCD}
        """)

    assert routes(document, "site") == [
        ("edgecast-http-large", ["big.example.com"], "load"),
        ("edgecast", ["small.example.com"], "load"),
    ]


def test_hosts_with_a_path_bare_names_and_akamai_remove() -> None:
    document = convert("""
        cdnDomains:
          akamai:
            site:
              - www.example.com
              - {host: cdn.example.com/static/, action: remove}
        cdnConfigurations:
          akamai: {edgerc: /etc/s3purge/edgerc, section: ccu}
        """)

    assert document["buckets"]["site"] == [
        {"cdn": "akamai", "hosts": ["www.example.com"], "schemes": "both", "action": "invalidate"},
        {
            "cdn": "akamai",
            "hosts": ["cdn.example.com"],
            "schemes": "both",
            "path_prefix": "/static",  # the old URL was http://{host}/{key}
            "action": "delete",
        },
    ]
    assert document["cdns"]["akamai"] == {
        "vendor": "akamai",
        "edgerc": "/etc/s3purge/edgerc",
        "section": "ccu",
        "network": "production",
    }


def test_notes_cover_what_means_nothing_any_more() -> None:
    converted = legacy.convert(
        yaml.safe_load(
            dedent("""
            cdnDomains:
              fastly:
                site:
                  - {host: www.example.com, platform: whatever}
                  - {platform: whatever}
            cdnConfigurations:
              fastly: {token: t}
              chinacache: {token: t}
            """)
        )
    )

    assert [(dotted(at), note.split(":")[0]) for at, note in converted.notes] == [
        ("cdnDomains.fastly.site[0].platform", "ignored"),
        ("cdnDomains.fastly.site[1].platform", "ignored"),
        ("cdnDomains.fastly.site[1]", "ignored"),
        ("cdnConfigurations.chinacache", "ignored"),
    ]


BAD = [
    pytest.param(
        """
        cdnDomains:
          edgecast:
            site:
              - {host: a.example.com, platform: huge}
        """,
        "legacy.yml:5: cdnDomains.edgecast.site[0].platform: unknown edgecast platform 'huge'",
        id="edgecast-platform",
    ),
    pytest.param(
        """
        cdnDomains:
          cloudflare:
            site:
              - host: a.example.com
        cdnConfigurations:
          cloudflare: {api_token: t}
        """,
        "legacy.yml:5: cdnDomains.cloudflare.site[0]: platform: give the zone_id here",
        id="cloudflare-without-zone",
    ),
    pytest.param(
        """
        cdnDomains:
          cloudflare:
            site:
              - {host: a.example.com, platform: my-zone}
        cdnConfigurations:
          cloudflare: {api_token: t}
        """,
        "legacy.yml:5: cdnDomains.cloudflare.site[0].platform: expected a string matching regex '^[0-9a-f]{32}$'",
        id="cloudflare-zone-shape",
    ),
    pytest.param(
        """
        cdnDomains:
          chinacache:
            site: [a.example.com]
        """,
        "legacy.yml:3: cdnDomains.chinacache: vendor 'chinacache' is not supported",
        id="unknown-vendor",
    ),
    pytest.param(
        """
        cdnDomains:
          fastly:
            site:
              - {hots: a.example.com}
        """,
        "legacy.yml:5: cdnDomains.fastly.site[0].hots: unknown field",
        id="typo-in-item",
    ),
    pytest.param(
        """
        cdnDomains:
          fastly:
            site:
              - host: a.example.com
        cdnConfigurations:
          fastly:
            token: t
            tokn: t
        """,
        "legacy.yml:9: cdnConfigurations.fastly.tokn: unknown field (known: api_base, api_token",
        id="unknown-credential",
    ),
    pytest.param(
        """
        cdnDomains:
          fastly:
            site:
              - host: a.example.com
              - host: "http://b.example.com"
        cdnConfigurations:
          fastly: {token: t}
        """,
        "legacy.yml:6: cdnDomains.fastly.site[1].host: 'http://b.example.com' is not a host name",
        id="bad-host",
    ),
    pytest.param(
        """
        cdnDomains:
          cloudflare:
            site:
              - {host: a.example.com, platform: 023e105f4ecef8ad9ca31a8372d0c353}
              - action: load
        cdnConfigurations:
          cloudflare: {api_token: t}
        """,
        "legacy.yml:6: cdnDomains.cloudflare.site[1].action: vendor 'cloudflare' cannot load by url",
        id="load-on-cloudflare",
    ),
    pytest.param(
        """
        cdnDomains:
          fastly:
            site:
              - {host: a.example.com, action: explode}
        cdnConfigurations:
          fastly: {token: t}
        """,
        "legacy.yml:5: cdnDomains.fastly.site[0].action: expected one of 'purge', 'invalidate', 'delete', 'load'",
        id="unknown-action",
    ),
    pytest.param(
        """
        cdnDomains:
          edgecast:
            site:
              - host: a.example.com
        """,
        "legacy.yml:3: cdnDomains.edgecast: account: required",
        id="edgecast-without-hex",
    ),
    pytest.param(
        """
        cdnDomains:
          akamai:
            site: []
        """,
        "legacy.yml:4: cdnDomains.akamai.site: expected a list",
        id="empty-list",
    ),
]


@pytest.mark.parametrize(("text", "expected"), BAD)
def test_bad_legacy_configs_name_file_line_and_field(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config.parse(dedent(text), "legacy.yml")

    assert expected in str(caught.value)
    assert "tokn: t" not in str(caught.value)


def test_a_secret_in_a_bad_field_is_not_echoed() -> None:
    text = """
        cdnDomains:
          fastly:
            site: [a.example.com]
        cdnConfigurations:
          fastly: {token: [hunter2-SECRET]}
        """
    with pytest.raises(ConfigError) as caught:
        config.parse(dedent(text), "legacy.yml")

    assert "legacy.yml:6: cdnConfigurations.fastly.token" in str(caught.value)
    assert "hunter2" not in str(caught.value)
