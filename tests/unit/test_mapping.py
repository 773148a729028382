"""Keys -> every URL path a cache may hold the object under (spellings), and tags; pure."""

from __future__ import annotations

from urllib.parse import quote, quote_plus, urlsplit

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from s3purge.config import Config, parse
from s3purge.errors import ConfigError
from s3purge.events import read_lambda_event
from s3purge.mapping import targets
from s3purge.model import Change
from s3purge.spellings import _RAW, SPELLINGS, decode, spell, spellings
from tests.fixtures import s3_event

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


SPELLING_TABLE = [
    # key, then its distinct spellings: browser, encoded, plus (only for spaces)
    ("a.html", ["/a.html"]),
    ("docs/runtime~main-1.js", ["/docs/runtime~main-1.js"]),
    ("ünï/日本.png", ["/%C3%BCn%C3%AF/%E6%97%A5%E6%9C%AC.png"]),
    ("hello+world.txt", ["/hello%2Bworld.txt"]),  # S3 reads a raw '+' as a space
    ("c++ guide.html", ["/c%2B%2B%20guide.html", "/c%2B%2B+guide.html"]),
    ("report (1).pdf", ["/report%20(1).pdf", "/report%20%281%29.pdf", "/report+%281%29.pdf"]),
    ("a;b=c.txt", ["/a;b=c.txt", "/a%3Bb%3Dc.txt"]),
    ("me@host:80.txt", ["/me@host:80.txt", "/me%40host%3A80.txt"]),
    ("it's!*,$&.txt", ["/it's!*,$&.txt", "/it%27s%21%2A%2C%24%26.txt"]),
    ("[x]|y.txt", ["/[x]|y.txt", "/%5Bx%5D%7Cy.txt"]),
    ('q?x#z "<>`{}\\.txt', ["/q%3Fx%23z%20%22%3C%3E%60%7B%7D%5C.txt", "/q%3Fx%23z+%22%3C%3E%60%7B%7D%5C.txt"]),
    ("a^b.txt", ["/a%5Eb.txt", "/a^b.txt"]),  # the URL Standard since 2024, then older engines (Node 20)
    ("x ^.txt", ["/x%20%5E.txt", "/x%20^.txt", "/x+%5E.txt"]),
    ("100%.txt", ["/100%25.txt"]),
    ("%20 already.txt", ["/%2520%20already.txt", "/%2520+already.txt"]),  # never decoded twice
    ("tab\tnew\nline", ["/tab%09new%0Aline"]),
    ("a/./b/../c.txt", ["/a/%2E/b/%2E%2E/c.txt"]),  # never /a/c.txt, another object
    ("double//slash", ["/double//slash"]),
]


@pytest.mark.parametrize(("key", "paths"), SPELLING_TABLE)
def test_each_key_has_its_distinct_spellings(key: str, paths: list[str]) -> None:
    assert ["/" + path for path in spellings(key)] == paths
    assert all(decode(path) == "/" + key for path in paths)  # what S3 serves there: this object


def test_why_dot_segments_are_escaped() -> None:
    # clients (httpx here; curl and browsers too) resolve raw dot segments: another object's URL
    assert httpx.URL("https://h/a/./b/../c.txt").raw_path == b"/a/c.txt"
    # escaped, httpx and curl send them as they are, and S3 serves the key there
    assert httpx.URL("https://h/a/%2E/b/%2E%2E/c.txt").raw_path == b"/a/%2E/b/%2E%2E/c.txt"
    assert decode("/a/%2E/b/%2E%2E/c.txt") == "/a/./b/../c.txt"


def test_a_route_may_choose_its_spellings() -> None:
    config = parse(CONFIG.replace("index_documents: [index.html]", "spellings: [encoded]"))
    change = Change("site", "public/report (1).pdf", "created", "m")
    assert {t.value for t in targets(change, config) if t.cdn == "edge"} == {
        f"{scheme}://{host}/static/report%20%281%29.pdf"
        for scheme in ("https", "http")
        for host in ("www.example.com", "example.com")
    }
    assert "spellings[0]: expected one of" in _problem(CONFIG.replace("schemes: both", "spellings: [raw]"))
    assert "spellings: expected a list with at least 1" in _problem(CONFIG.replace("schemes: both", "spellings: []"))


def test_a_route_with_the_plus_spelling_only_still_purges_keys_without_a_space() -> None:
    config = parse(CONFIG.replace("index_documents: [index.html]", "spellings: [plus]"))
    for key, path in (("a(1).css", "a%281%29.css"), ("a (1).css", "a+%281%29.css")):  # no space: as encoded
        got = {t.value for t in targets(Change("site", f"public/{key}", "created", "m"), config) if t.cdn == "edge"}
        assert {url.rpartition("/")[2] for url in got} == {path}


def _problem(text: str) -> str:
    with pytest.raises(ConfigError) as error:
        parse(text)
    return str(error.value)


def test_every_host_and_scheme_with_prefix_rewrites() -> None:
    assert urls("public/docs/My File.css") == [
        "https://www.example.com/static/docs/My%20File.css",
        "http://www.example.com/static/docs/My%20File.css",
        "https://example.com/static/docs/My%20File.css",
        "http://example.com/static/docs/My%20File.css",
        "https://www.example.com/static/docs/My+File.css",
        "http://www.example.com/static/docs/My+File.css",
        "https://example.com/static/docs/My+File.css",
        "http://example.com/static/docs/My+File.css",
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


def test_index_documents_default_to_index_html_and_empty_turns_them_off() -> None:
    bare = CONFIG.partition("  tagged:")[0] + "buckets:\n  site:\n    - {cdn: edge, hosts: [h]}\n"
    change = Change("site", "my docs/index.html", "created", "m")
    assert [t.value for t in targets(change, parse(bare))] == [
        f"https://h/my{space}docs{form}" for form in ("/index.html", "/", "") for space in ("%20", "+")
    ]
    off = parse(bare.replace("hosts: [h]", "hosts: [h], index_documents: []"))
    assert [t.value for t in targets(change, off)] == ["https://h/my%20docs/index.html", "https://h/my+docs/index.html"]


def test_a_directory_ending_in_two_slashes_is_not_purged_as_its_parent() -> None:
    config = parse(CONFIG.replace("path_prefix: /static", "path_prefix: ''"))
    got = {u for u in urls_in(config, "public/x//index.html") if u.startswith("https://www.")}
    assert got == {"https://www.example.com/x//index.html", "https://www.example.com/x//"}  # "/x/" is another


def urls_in(config: Config, key: str) -> list[str]:
    return [t.value for t in targets(Change("site", key, "created", "m"), config) if t.kind == "url"]


# Keys as anyone may upload them: any Unicode (astral too), controls, dot segments, and
# the characters spellings treat differently.
SEGMENTS = st.one_of(
    st.sampled_from([".", "..", "", "+", "%", "%2E", " ", "a b", "(1)", ";=@:", "~", "index.html"]),
    st.text(min_size=1, max_size=12),
    st.text(alphabet=" +%()!$&'*,;=:@[]|^`{}<>\"#?/.~", min_size=1, max_size=8),
)
KEYS = st.lists(SEGMENTS, min_size=1, max_size=6).map("/".join).filter(lambda key: 0 < len(key.encode()) <= 1024)
WHATWG_DOT_SEGMENTS = {".", "%2e", "..", ".%2e", "%2e.", "%2e%2e"}
"""Segments a browser's URL parser (WHATWG) removes or resolves, compared case-insensitively."""


@given(KEYS)
def test_every_spelling_is_this_object_and_only_it(key: str) -> None:
    for spelled in spellings(key):  # every spelling, the pre-2024 browser one of a '^' too
        path = "/" + spelled
        assert decode(path) == "/" + key  # S3's rule ('+' is a space) gives back this key
        assert all(0x21 <= ord(c) <= 0x7E for c in path)  # no space, control or non-ASCII byte
        assert httpx.URL("https://h" + path).raw_path.decode() == path  # the client sends it as is:
        # no dot segment removed, nothing re-encoded, no '?' or '#' starting a query or fragment
        for part, spelled in zip(key.split("/"), path[1:].split("/"), strict=True):
            # a segment a browser resolves is only ever the key's own dot segment, never a raw one
            assert spelled not in (".", "..")
            assert (spelled.lower() in WHATWG_DOT_SEGMENTS) == (part in (".", ".."))


@given(KEYS)
def test_spellings_are_distinct_and_ordinary_names_have_one(key: str) -> None:
    found = spellings(key)
    assert len(found) == len(set(found)) >= 1
    assert found[0] == spell(key, "browser")
    if all(c.isascii() and (c.isalnum() or c in "-._~/") for c in key):
        assert len(found) == 1  # ordinary names cost nothing extra
    assert (" " in key) == (spell(key, "plus") not in (spell(key, "browser"), spell(key, "encoded")))


@given(KEYS)
def test_route_urls_are_spellings_of_the_key(key: str) -> None:
    config = parse(CONFIG)
    for url in urls_in(config, "public/" + key):
        path = httpx.URL(url).raw_path.decode()
        assert path.startswith("/static") and urlsplit(url).path == path
        decoded, full = decode(path), "/static/" + key
        if decoded != full:  # only an index document's directory, with or without its slash
            rest = full.removeprefix(decoded)
            assert rest == "index.html" or (rest == "/index.html" and not decoded.endswith("/"))


@given(st.lists(st.sampled_from(["a", "Z9", "-", "_", "~", ".", "..", ".a", "a.", "", "b c", "é", "%"]), max_size=6))
def test_keys_with_nothing_to_escape_skip_quoting_and_spell_the_same(parts: list[str]) -> None:
    key = "/".join(parts)
    for spelling in SPELLINGS:
        quoted = "/".join({".": "%2E", "..": "%2E%2E"}.get(p) or quote(p, safe=_RAW[spelling]) for p in parts)
        assert spell(key, spelling) == (quoted.replace("%20", "+") if spelling == "plus" else quoted)
    assert spellings(key) == list(dict.fromkeys(spell(key, s) for s in SPELLINGS))


@given(KEYS)
def test_a_caret_is_purged_escaped_and_raw(key: str) -> None:
    found = spellings(key)
    assert any("%5E" in path for path in found) == ("^" in key)
    # engines that follow the URL Standard before 2024 (Node 20) send '^' raw: that copy is purged too
    assert any("^" in path for path in found) == ("^" in key)
    assert found[:1] == [spell(key, "browser")]


@given(st.tuples(KEYS, KEYS).map("?".join).filter(lambda key: len(key.encode()) <= 1017))
def test_a_question_mark_in_an_event_key_is_its_path_never_a_query(key: str) -> None:
    """A pasted URL may carry a query; a key from S3 never does: its '?' is a character of the name."""
    _, messages = read_lambda_event(s3_event(quote_plus("public/" + key)))  # as S3 writes it
    (change,) = messages[0].changes
    found = [t.value for t in targets(change, parse(CONFIG)) if t.kind == "url"]
    assert found
    for url in found:
        parts = urlsplit(url)
        assert parts.query == "" and parts.fragment == "" and "?" not in url and "#" not in url
        assert decode(parts.path).startswith("/static/" + key.partition("?")[0])  # '?' is spelled %3F
