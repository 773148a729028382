"""Keys -> the exact URLs a browser requests, and tags; pure."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from s3purge.config import parse
from s3purge.mapping import encode_path, targets
from s3purge.model import Change

CONFIG = """
cdns:
  edge: {vendor: http, endpoints: ["http://127.0.0.1:1"], scheme_in_cache_key: true}
  tagged: {vendor: http, endpoints: ["http://127.0.0.1:2"]}
buckets:
  site:
    - cdn: edge
      hosts: [www.example.com, example.com]
      schemes: both
      strip_prefix: public/
      path_prefix: /static
      prefix: public/
      index_documents: [index.html]
    - cdn: tagged
      hosts: [cdn.example.com]
      suffix: .html
      events: [removed]
      tags: ["{dirname}", "file:{basename}", "{ext}"]
"""


def urls(key: str, event: str = "created", cdns: frozenset[str] | None = None) -> list[str]:
    change = Change("site", key, event, "m", cdns=cdns)  # type: ignore[arg-type]
    return [t.value for t in targets(change, parse(CONFIG)) if t.kind == "url"]


@pytest.mark.parametrize(
    ("key", "path"),
    [
        ("a.html", "/a.html"),
        ("dir/My File+ünï~(1).html", "/dir/My%20File+%C3%BCn%C3%AF~(1).html"),
        ("100%.txt", "/100%25.txt"),
        ("q?x&y#z.txt", "/q%3Fx&y%23z.txt"),
        ("a b/c d", "/a%20b/c%20d"),
        ("it's!*;=,$@:.txt", "/it's!*;=,$@:.txt"),
        ('quote"<>`{}|\\^[].txt', "/quote%22%3C%3E%60%7B%7D%7C%5C%5E%5B%5D.txt"),
        ("tab\tnew\nline", "/tab%09new%0Aline"),
        ("日本語/ファイル.png", "/%E6%97%A5%E6%9C%AC%E8%AA%9E/%E3%83%95%E3%82%A1%E3%82%A4%E3%83%AB.png"),
        ("double//slash", "/double//slash"),
        ("%2F-already-looks-encoded", "/%252F-already-looks-encoded"),
    ],
)
def test_encode_path(key: str, path: str) -> None:
    assert "/" + encode_path(key) == path


def test_every_host_and_scheme_with_prefix_rewrites() -> None:
    assert urls("public/docs/My File.css") == [
        "https://www.example.com/static/docs/My%20File.css",
        "http://www.example.com/static/docs/My%20File.css",
        "https://example.com/static/docs/My%20File.css",
        "http://example.com/static/docs/My%20File.css",
    ]


def test_index_documents_also_purge_their_directory() -> None:
    got = [u for u in urls("public/docs/index.html") if u.startswith("https://www.")]
    assert got == [
        "https://www.example.com/static/docs/index.html",
        "https://www.example.com/static/docs/",
        "https://www.example.com/static/docs",
    ]


def test_root_index_document() -> None:
    change = Change("site", "index.html", "created", "m")
    config = parse(CONFIG.replace("path_prefix: /static", "path_prefix: ''"))
    got = [t.value for t in targets(change, config) if t.value.startswith("https://www.")]
    assert got == []  # filtered: the route only takes keys under public/
    got = [t.value for t in targets(Change("site", "public/index.html", "created", "m"), config)]
    assert got[:2] == ["https://www.example.com/index.html", "http://www.example.com/index.html"]
    assert "https://www.example.com/" in got and "https://www.example.com" not in got


def test_filters_and_events() -> None:
    assert urls("other/a.html") == []  # prefix filter
    removed = [t for t in targets(Change("site", "a/b/page.html", "removed", "m"), parse(CONFIG))]
    assert [(t.cdn, t.kind, t.value) for t in removed] == [
        ("tagged", "url", "https://cdn.example.com/a/b/page.html"),
        ("tagged", "tag", "a/b"),
        ("tagged", "tag", "file:page.html"),
        ("tagged", "tag", "html"),
    ]
    assert [t.cdn for t in targets(Change("site", "a/b/page.html", "created", "m"), parse(CONFIG))] == []


def test_a_retry_narrowed_to_some_cdns_only_targets_them() -> None:
    assert urls("public/a.css", cdns=frozenset({"tagged"})) == []
    assert len(urls("public/a.css", cdns=frozenset({"edge"}))) == 4


def test_other_buckets_route_nowhere() -> None:
    assert list(targets(Change("unknown", "a", "created", "m"), parse(CONFIG))) == []


@given(st.text(min_size=1, max_size=200).filter(lambda k: "\x00" not in k))
def test_paths_are_valid_and_decode_back_to_the_key(key: str) -> None:
    path = "/" + encode_path(key)
    assert unquote(path, errors="strict") == "/" + key
    assert all(33 <= ord(c) < 127 for c in path)  # ASCII, no spaces or controls
    assert urlsplit("https://h" + path).path == path  # no '?' or '#' leaks into query/fragment
