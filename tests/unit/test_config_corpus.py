"""Hostile and mistaken configs: each fails with its own clear message, in bounded time and memory,
never a traceback.

The corpus runs in a fresh interpreter that loads each case twice, timed (CPU time), then with
tracemalloc on, and reports the message, the time and the peak memory; `s3purge config check`
shows the user sees the same lines, no traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from s3purge.config import parse
from s3purge.errors import ConfigError
from s3purge.secrets import resolve

GOOD = """\
cdns:
  edge:
    vendor: http
    endpoints: ["http://127.0.0.1:6081"]
    headers: {X-Purge-Token: token-value}
buckets:
  site:
    - cdn: edge
      hosts: [www.example.com]
      tags: ["{dirname}"]
"""
ENDPOINT = '["http://127.0.0.1:6081"]'
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8)
)


def case(old: str, new: str) -> bytes:
    assert old in GOOD
    return GOOD.replace(old, new).encode()


# name -> (file content, what the one line says)
CORPUS: dict[str, tuple[bytes, str]] = {
    "alias bomb": (BOMB.encode(), "c.yml: aliases expand to more than 20,000 YAML nodes; not a config file"),
    "alias to itself": (b"a: &a [1, *a]\n", "c.yml:1: an alias refers to itself"),
    "too large": (b"#" * 1_000_001, "c.yml: larger than 1,000,000 bytes; not a config file"),
    "too many nodes": (b"x: [" + b"1," * 30_000 + b"]\n", "c.yml: more than 20,000 YAML nodes; not a config file"),
    "nested too deep": (b"[" * 5_000 + b"]" * 5_000, "c.yml: nested more than 50 levels deep; not a config file"),
    "nested blocks": (b"".join(b" " * i + b"- \n" for i in range(300)), "c.yml: nested more than 50 levels deep"),
    "not UTF-8": (
        GOOD.encode().replace(b"site", b"s\xffte"),
        f"c.yml: not UTF-8 text (byte 0xff at offset {GOOD.index('site') + 1})",
    ),
    "control character": (
        GOOD.encode().replace(b"site", b"s\x07te"),
        f"c.yml: not valid YAML (character #x0007 at offset {GOOD.index('site') + 1} is not allowed",
    ),
    "empty file": (b"", "c.yml:1: (top): expected a mapping with 'cdns' and 'buckets'"),
    "duplicate key": (
        case("    vendor: http\n", "    vendor: http\n    vendor: http\n"),
        "c.yml:3: cdns.edge.vendor: duplicate key (again on line 4)",
    ),
    "ftp endpoint": (
        case(ENDPOINT, "[ftp://10.0.0.5/]"),
        "c.yml:4: cdns.edge.endpoints[0]: must be an http:// or https://",
    ),
    "not a URL": (case(ENDPOINT, '["not a url"]'), "cdns.edge.endpoints[0]: a URL cannot contain spaces"),
    "endpoint query": (
        case(ENDPOINT, '["http://h/?a=1"]'),
        "endpoints[0]: must not have a query (?…) or fragment (#…)",
    ),
    "endpoint fragment": (case(ENDPOINT, "[http://h/#x]"), "endpoints[0]: must not have a query (?…) or fragment (#…)"),
    "endpoint userinfo": (case(ENDPOINT, "[http://u:hunter2@h/]"), "endpoints[0]: must not contain user:password@"),
    "endpoint no host": (case(ENDPOINT, "[http:///purge]"), "endpoints[0]: has no host"),
    "endpoint bad port": (case(ENDPOINT, "[http://h:99999/]"), "endpoints[0]: is not a valid URL"),
    "api_base clear text": (
        case("    headers:", "    api_base: http://proxy.example.com\n    headers:"),
        "api_base: must be an https:// URL (credentials are sent to it)",
    ),
    "host with port": (case("[www.example.com]", "[www.example.com:8080]"), "hosts[0]: 'www.example.com:8080': a host"),
    "wildcard host": (case("[www.example.com]", "['*.example.com']"), "hosts[0]: '*.example.com': wildcard hosts"),
    "host with scheme": (case("[www.example.com]", "[https://x/]"), "hosts[0]: 'https://x/' is not a host name"),
    "host label": (case("[www.example.com]", "[bad_-.example]"), "hosts[0]: 'bad_-.example' is not a valid host"),
    "bad IDN": (case("[www.example.com]", "['☃.example']"), "hosts[0]: '☃.example' is not a valid international"),
    "tag attribute": (case('["{dirname}"]', '["{key.__class__}"]'), "tags[0]: tag '{key.__class__}' uses an unknown"),
    "tag format spec": (case('["{dirname}"]', '["{key:>999999999}"]'), "tags[0]: tag '{key:>999999999}' uses an"),
    "tag conversion": (case('["{dirname}"]', '["{key!r}"]'), "tags[0]: tag '{key!r}' uses an unknown placeholder"),
    "tag index": (case('["{dirname}"]', '["{0}"]'), "tags[0]: tag '{0}' uses an unknown placeholder"),
    "tag brace": (case('["{dirname}"]', '["{dirname"]'), "tags[0]: tag '{dirname' uses an unknown placeholder"),
    "header name": (case("X-Purge-Token", "X Purge"), "headers.X Purge: 'X Purge' is not a valid HTTP header name"),
    "header value control": (case("token-value", '"tok\\u0001en"'), "X-Purge-Token: the value contains control"),
    "header value not ASCII": (
        case("token-value", "tökén-value"),
        "c.yml:5: cdns.edge.headers.X-Purge-Token: the value is not printable ASCII (it is sent in a header)",
    ),
    "secret whitespace": (
        case("token-value", '"token-value\\n"'),
        "X-Purge-Token: the value starts or ends with white",
    ),
    "secret empty": (case("token-value", '""'), "X-Purge-Token: the value is empty"),
    "empty env name": (case("token-value", '{env: ""}'), "X-Purge-Token: env: the name is empty"),
    "unknown secret source": (case("token-value", "{vault: x}"), "X-Purge-Token: expected a string or one of {env"),
    "path prefix dots": (
        case("      tags:", "      path_prefix: /a/../b\n      tags:"),
        "must not contain '.' or '..'",
    ),
    "max_items one by one": (case("    headers:", "    max_items: 10\n    headers:"), "takes one item per call"),
    "unknown field": (case("    headers:", "    colour: red\n    headers:"), "cdns.edge.colour: unknown field"),
    "wrong type": (case("    headers:", "    concurrency: many\n    headers:"), "expected an integer, got a string"),
}


def run_corpus(tmp_path: Path) -> dict[str, dict[str, object]]:
    for i, (content, _) in enumerate(CORPUS.values()):
        (tmp_path / f"{i}").mkdir()
        (tmp_path / f"{i}" / "c.yml").write_bytes(content)
    script = """
import json, sys, time, tracemalloc
from pathlib import Path
from s3purge import config
from s3purge.errors import ConfigError
def message(path):
    try:
        config.load(path)
    except ConfigError as error:
        return str(error)
    return None
out = {}
for folder in sorted(Path(sys.argv[1]).iterdir(), key=lambda p: int(p.name)):
    # time first, untraced (tracemalloc slows allocation-heavy cases 4x); CPU time, not wall time,
    # so a loaded machine does not fail it
    started = time.process_time()
    message(folder / "c.yml")
    cpu = time.process_time() - started
    tracemalloc.start()
    out[folder.name] = {"message": message(folder / "c.yml"), "peak": tracemalloc.get_traced_memory()[1], "cpu": cpu}
    tracemalloc.stop()
print(json.dumps(out))
"""
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    found: dict[str, dict[str, object]] = json.loads(done.stdout)
    return {name: found[str(i)] for i, name in enumerate(CORPUS)}


def test_every_bad_config_fails_alone_with_one_line_in_bounded_time_and_memory(tmp_path: Path) -> None:
    results = run_corpus(tmp_path)
    for name, (_, expected) in CORPUS.items():
        message, peak, cpu = results[name]["message"], results[name]["peak"], results[name]["cpu"]
        assert isinstance(message, str), f"{name}: loaded without an error"
        assert expected in message, f"{name}: {message}"
        assert "\n" not in message, f"{name}: more than one problem: {message}"
        assert "hunter2" not in message and "token-value" not in message and "tökén" not in message
        assert isinstance(peak, int) and peak < 64 * 2**20, f"{name}: peak {peak / 2**20:.0f} MiB"
        assert isinstance(cpu, float) and cpu < 1.0, f"{name}: {cpu:.2f} s of CPU"


@pytest.mark.parametrize("name", ["alias bomb", "not UTF-8", "nested too deep"])
def test_the_command_line_shows_one_line_and_no_traceback(name: str, tmp_path: Path) -> None:
    (tmp_path / "c.yml").write_bytes(CORPUS[name][0])
    done = subprocess.run(
        [sys.executable, "-m", "s3purge", "config", "check", "c.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert CORPUS[name][1] in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_structure_and_cross_references_come_in_one_report() -> None:
    text = GOOD.replace("vendor: http", "vendor: http\n    concurrency: 0").replace("cdn: edge", "cdn: nope")
    text += "  other:\n    - {cdn: edge, hosts: ['a b']}\n    - {cdn: edge, hosts: [ok.example], action: load}\n"
    with pytest.raises(ConfigError) as caught:
        parse(text, "c.yml")
    assert str(caught.value).splitlines() == [
        "c.yml: 4 problems",
        "  c.yml:4: cdns.edge.concurrency: expected an integer >= 1",
        "  c.yml:9: buckets.site[0].cdn: unknown CDN 'nope' (defined: edge)",
        "  c.yml:13: buckets.other[0].hosts[0]: 'a b' is not a host name (write www.example.com, no scheme)",
        "  c.yml:14: buckets.other[1].action: vendor 'http' cannot load by url (it can: purge)",
    ]


def test_international_hosts_are_purged_by_their_idna_name() -> None:
    config = parse(GOOD.replace("[www.example.com]", "[Bücher.example, www.example.com]"))
    assert config.routes("site")[0].hosts == ["xn--bcher-kva.example", "www.example.com"]


def test_anchors_and_merge_keys_still_work() -> None:
    text = GOOD.replace("  edge:\n", "  edge: &edge\n") + "    - {cdn: other, hosts: [b.example]}\n"
    text = text.replace("buckets:", "  other:\n    <<: *edge\n    concurrency: 2\nbuckets:")
    config = parse(text)
    assert config.cdns["other"].limits.concurrency == 2 and config.cdns["edge"].limits.concurrency == 16


def test_a_fetched_secret_with_whitespace_names_its_reference_never_its_value(monkeypatch: pytest.MonkeyPatch) -> None:
    config = parse(GOOD.replace("token-value", "{env: PURGE_TOKEN}"))
    monkeypatch.setenv("PURGE_TOKEN", "s3cr3t-value\n")
    with pytest.raises(ConfigError) as caught:
        resolve(config.secrets())
    assert "env:PURGE_TOKEN: the value starts or ends with whitespace" in str(caught.value)
    assert "s3cr3t" not in str(caught.value)


def test_a_fetched_header_value_that_is_not_ascii_names_its_reference_never_its_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every request carrying it would fail: refused when resolved, so only this CDN is disabled, with why."""
    config = parse(GOOD.replace("token-value", "{env: PURGE_TOKEN}"))
    monkeypatch.setenv("PURGE_TOKEN", "s3cr3t-välue")
    with pytest.raises(ConfigError) as caught:
        resolve(config.secrets())
    assert str(caught.value).splitlines()[1:] == [
        "  env:PURGE_TOKEN: the value is not printable ASCII (it is sent in a header)"
    ]
    assert "s3cr3t" not in str(caught.value)


def test_secrets_not_sent_in_headers_may_hold_any_printable_text() -> None:
    """Only header secrets must be ASCII: a password posted in a form body (Highwinds) may be any text."""
    text = GOOD.replace(
        "  edge:\n",
        "  hw:\n    vendor: highwinds\n    account_hash: a1b2\n    username: u\n    password: pässwörd\n  edge:\n",
    )
    (password,) = [s for s in parse(text).secrets() if not s.in_header and s.describe() == "(inline value)"]
    assert password.reveal() == "pässwörd"


def test_every_vendor_token_sent_in_a_header_is_refused_unless_ascii() -> None:
    """Fastly, Cloudflare, Edgecast, Akamai and Highwinds send their tokens in headers: a pasted 'smart' character
    would fail every call, so it fails the config check instead, naming the field, never the value."""
    text = (
        "cdns:\n"
        '  f: {vendor: fastly, api_token: "tökén", service_id: s}\n'
        '  c: {vendor: cloudflare, zone_id: "023e105f4ecef8ad9ca31a8372d0c353", api_key: "kéy", email: a@b.c}\n'
        '  e: {vendor: edgecast, account: "A1", token: "tökén"}\n'
        '  a: {vendor: akamai, host: h.example.com, client_token: "tökén", client_secret: s, access_token: t}\n'
        '  h: {vendor: highwinds, account_hash: a1b2, api_token: "tökén"}\n'
        "buckets:\n  b:\n    - {cdn: f, hosts: [a.example.com]}\n"
    )
    with pytest.raises(ConfigError) as caught:
        parse(text, "v.yml")
    assert str(caught.value).splitlines()[1:] == [
        f"  v.yml:{line}: cdns.{field}: the value is not printable ASCII (it is sent in a header)"
        for line, field in (
            (2, "f.api_token"),
            (3, "c.api_key"),
            (4, "e.token"),
            (5, "a.client_token"),
            (6, "h.api_token"),
        )
    ]
    assert "tökén" not in str(caught.value) and "kéy" not in str(caught.value)
