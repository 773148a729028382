"""A bad config fails at load with one message naming file, line, field and what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from s3purge.config import load, parse
from s3purge.errors import ConfigError
from s3purge.logs import parse_debug
from s3purge.secrets import Secret, resolve

GOOD = """\
cdns:
  edge:
    vendor: http
    endpoints: ["http://127.0.0.1:6081"]
    concurrency: 4
    headers:
      X-Purge-Token: {env: PURGE_TOKEN}
buckets:
  site:
    - cdn: edge
      hosts: [www.example.com]
"""


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse(text, "multicdn.config.yml")
    return str(caught.value)


def test_good_config_loads_with_overridden_limits() -> None:
    config = parse(GOOD)
    assert config.cdns["edge"].limits.concurrency == 4
    assert config.routes("site")[0].schemes == "https"
    assert [s.describe() for s in config.secrets()] == ["env:PURGE_TOKEN"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("      hosts: [www.example.com]", "      hosts: [www.example.com]\n      colour: red"),
            "multicdn.config.yml:12: buckets.site[0].colour: unknown field (known: action, cdn,",
        ),
        (
            ("    - cdn: edge", "    - cdn: nope"),
            "multicdn.config.yml:10: buckets.site[0].cdn: unknown CDN 'nope' (defined: edge)",
        ),
        (
            ("vendor: http", "vendor: carrier-pigeon"),
            "multicdn.config.yml:3: cdns.edge.vendor: unknown vendor 'carrier-pigeon'",
        ),
        (
            ("concurrency: 4", "concurrency: 0"),
            "multicdn.config.yml:5: cdns.edge.concurrency: expected an integer >= 1",
        ),
        (
            ('endpoints: ["http://127.0.0.1:6081"]', "endpoints: []"),
            "multicdn.config.yml:4: cdns.edge.endpoints: expected a list with at least 1 item",
        ),
        (
            ("      hosts: [www.example.com]", "      hosts: [https://www.example.com/]"),
            "multicdn.config.yml:11: buckets.site[0].hosts[0]: 'https://www.example.com/' is not a host name",
        ),
        (
            ("      hosts: [www.example.com]", "      hosts: [a]\n      action: load"),
            "multicdn.config.yml:12: buckets.site[0].action: vendor 'http' cannot load by url",
        ),
        (
            ("      hosts: [www.example.com]", "      tags: ['{nope}']"),
            "multicdn.config.yml:11: buckets.site[0].tags[0]: tag '{nope}' uses an unknown placeholder",
        ),
        (
            ("      hosts: [www.example.com]", "      hosts: []"),
            "multicdn.config.yml:10: buckets.site[0]: purges nothing",
        ),
        (
            ("X-Purge-Token: {env: PURGE_TOKEN}", "X-Purge-Token: {vault: x}"),
            "multicdn.config.yml:7: cdns.edge.headers.X-Purge-Token: expected a string or one of {env: NAME}",
        ),
    ],
)
def test_errors_name_file_line_field_and_problem(change: tuple[str, str], expected: str) -> None:
    assert expected in error_of(GOOD.replace(*change))


def test_several_problems_in_one_message() -> None:
    message = error_of(
        GOOD.replace("concurrency: 4", "concurrency: -1").replace("hosts: [", "schemes: ftp\n      hosts: [")
    )
    assert message.startswith("multicdn.config.yml: 2 problems")
    assert ":5: cdns.edge.concurrency" in message and ":11: buckets.site[0].schemes" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cdns: [\n", "multicdn.config.yml:2: not valid YAML"),
        ("- just\n- a list\n", "multicdn.config.yml:1: (top): expected a mapping with 'cdns' and 'buckets'"),
        ("cdns: {}\nbuckets: {}\n", "2 problems"),
    ],
)
def test_structural_errors(text: str, expected: str) -> None:
    assert expected in error_of(text)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yml: cannot read config file"):
        load(tmp_path / "nope.yml")


def test_an_inline_secret_never_appears_in_errors_or_reprs() -> None:
    text = GOOD.replace("{env: PURGE_TOKEN}", "{env: [hunter2-secret]}")
    assert "hunter2" not in error_of(text)
    config = parse(GOOD.replace("{env: PURGE_TOKEN}", "hunter2-secret"))
    (secret,) = config.secrets()
    assert "hunter2" not in repr(secret) and "hunter2" not in str(config.cdns["edge"])
    assert "hunter2" not in repr(config.cdns["edge"].provider.options)
    assert secret.reveal() == "hunter2-secret"


def test_env_secrets_resolve_once_and_report_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    config = parse(GOOD)
    with pytest.raises(ConfigError, match="env:PURGE_TOKEN: environment variable is not set"):
        resolve(config.secrets())
    monkeypatch.setenv("PURGE_TOKEN", "s3cr3t-value")
    resolve(config.secrets())
    assert config.secrets()[0].reveal() == "s3cr3t-value"


def test_unresolved_secret_refuses_to_reveal() -> None:
    with pytest.raises(ConfigError, match="was not resolved"):
        Secret.parse({"ssm": "/x"}).reveal()


@pytest.mark.parametrize(
    ("value", "on"), [("true", True), ("TRUE", True), ("false", False), ("False", False), (None, False), ("", False)]
)
def test_debug_flag(value: str | None, on: bool) -> None:
    assert parse_debug(value) is on


def test_debug_flag_rejects_anything_else() -> None:
    with pytest.raises(ConfigError, match="debug: expected true or false, got 'maybe'"):
        parse_debug("maybe")


def test_a_config_of_many_routes_reads_each_struct_type_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """msgspec evaluates a Struct's annotations at each fields() call: per route, 200 routes cost 50 ms."""
    import msgspec

    asked: list[type] = []
    fields = msgspec.structs.fields

    def counted(cls: type) -> tuple[msgspec.structs.FieldInfo, ...]:
        asked.append(cls)
        return fields(cls)

    monkeypatch.setattr(msgspec.structs, "fields", counted)
    routes = "".join(f"    - {{cdn: edge, hosts: [h{i}.example.com], prefix: p{i}/}}\n" for i in range(50))
    config = parse(GOOD + routes)
    assert len(config.routes("site")) == 51
    assert len(asked) == len(set(asked))  # none twice (none at all once this process has seen each type)


AKAMAI = """\
cdns:
  ak:
    vendor: akamai
    host: akab-x.purge.akamaiapis.net
    client_token: {env: AK_CLIENT}
    client_secret: {env: AK_SECRET}
    access_token: {env: AK_ACCESS}
    everything_threshold: 1000
buckets:
  site:
    - {cdn: ak, hosts: [www.example.com], concurrency: 0}
"""


def test_akamai_everything_without_cp_codes_is_a_config_error_in_the_one_report() -> None:
    """Akamai purges "everything" by CP code: without any, the first burst over the threshold
    would be refused and dead-letter whole; the route's own problem comes in the same report."""
    assert error_of(AKAMAI).splitlines() == [
        "multicdn.config.yml: 2 problems",
        "  multicdn.config.yml:8: cdns.ak.everything_threshold: vendor 'akamai' has no purge-all:"
        " list the account's CP codes under cp_codes",
        "  multicdn.config.yml:11: buckets.site[0].concurrency: unknown field (known: action, cdn, events, hosts,"
        " index_documents, path_prefix, prefix, schemes, spellings, strip_prefix, suffix, tags, tags_from_metadata,"
        " verify)",
    ]
    fixed = AKAMAI.replace(", concurrency: 0", "").replace(
        "    everything_threshold:", "    cp_codes: [1]\n    everything_threshold:"
    )
    assert parse(fixed).cdns["ak"].escalation.everything == 1000
