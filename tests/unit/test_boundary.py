"""The request boundary's URL checks: their shortcuts for ordinary URLs decide as the full checks do."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from hypothesis import given, settings
from hypothesis import strategies as st

from s3purge.providers.boundary import has_dot_segment, url_problem


def full_dot_segment(path: str) -> bool:
    """has_dot_segment without its shortcut: every segment decoded and compared."""
    slashed = re.sub("%2f", "/", path, flags=re.IGNORECASE)
    return any(re.sub("%2e", ".", s, flags=re.IGNORECASE) in (".", "..") for s in slashed.split("/"))


def full_url_problem(url: str) -> bool:
    """Whether url_problem must refuse `url`, always through urlsplit (its check before the shortcut)."""
    if len(url) > 8192 or not url.isascii() or not url.isprintable():
        return True
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or not parts.path.startswith("/"):
        return True
    return bool(parts.fragment or "#" in url or full_dot_segment(parts.path))


pieces = st.sampled_from(["/", ".", "..", "%2e", "%2E", "%2f", "%2F", "%20", "a", "Z", "9", "-", "?", "#", " ", "@"])
pieces |= st.sampled_from([":", "[", "]", "%", "+", "*", "é", "\t", "\x00", ".a", "a.", "//", "..%2F"])
paths = st.lists(pieces, max_size=12).map("".join)
hosts = st.sampled_from(["h", "www.example.com", "h:8080", "u@h", "[::1]", "[::1", "", "H.", "h h"])
schemes = st.sampled_from(["http://", "https://", "HTTPS://", "ftp://", "http:/", "http:", " http://", ""])
urls = st.tuples(schemes, hosts, paths).map("".join)


@settings(max_examples=2000, deadline=None)
@given(paths)
def test_the_dot_segment_shortcut_agrees_with_decoding_every_segment(path: str) -> None:
    assert has_dot_segment(path) == full_dot_segment(path)


@settings(max_examples=2000, deadline=None)
@given(urls)
def test_url_problem_without_urlsplit_agrees_with_urlsplit(url: str) -> None:
    try:
        expected = full_url_problem(url)
    except ValueError:  # urlsplit refuses it (e.g. an unclosed IPv6 bracket): so must url_problem
        expected = None
    try:
        found: bool | None = bool(url_problem(url))
    except ValueError:
        found = None
    assert found == expected, url


def test_ordinary_and_hostile_urls() -> None:
    assert url_problem("https://www.example.com/dir/page-1.html") == ""
    assert url_problem("https://h/a%20b/caf%C3%A9.html") == ""
    assert "'..' segment" in url_problem("https://h/a/%2E%2e/b")
    assert "'..' segment" in url_problem("https://h/a/..%2Fb")
    assert "#fragment" in url_problem("https://h/a#b")
    assert url_problem("https://h/a?x=/../") == ""  # a query is not the path
    assert url_problem("HTTPS://h/a") == ""  # urlsplit lower-cases the scheme
    assert "absolute" in url_problem("https:///a")
