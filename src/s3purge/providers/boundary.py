"""The request boundary: what may leave s3purge for a vendor, checked on every request. Pure.

Object keys are chosen by whoever can upload to the bucket, so every request is checked
after it is built and before it is sent, whatever the vendor module did:

- its final URL (after httpx's own normalisation, which removes dot segments) lies inside the
  vendor's purge endpoint for the batch's kind, and its path has no dot segment left that a
  server could still resolve (`%2E%2E`, `..%2F`): whatever the server decodes, the path stays put;
- every header name is a token and every value printable ASCII (no CR, LF, NUL), at most 8 KB;
- every URL it purges is an absolute http(s) URL without dot segments: it names the changed
  object itself, never another object after a normalising cache or API resolves it.

Problems are returned as short sentences that never quote a header value (it may be a secret).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import httpx

MAX_HEADER = 8192
"""Bytes per header value: Varnish's default limit, and common to most servers."""
MAX_URL = 8192
"""Characters of a URL to purge: far above a 1,024-byte key fully escaped, below servers' limits."""
TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
"""RFC 9110 header field names."""
PRINTABLE = re.compile(rb"[\t\x20-\x7e]*")
"""Header values: visible ASCII, space and tab; no CR, LF, NUL or other controls, no obs-text."""
SLASH = re.compile(r"%2f", re.IGNORECASE)
DOT = re.compile(r"%2e", re.IGNORECASE)
STAR = re.compile(r"\*|%2a", re.IGNORECASE)
PLAIN_URL = re.compile(r"https?://[A-Za-z0-9.:-]+(/[^?#\s]*)")
"""A URL `urlsplit` would split trivially: lower-case http(s), a plain host[:port] (no userinfo, no
IPv6 brackets), a path and no query or fragment. `url_problem` skips `urlsplit` for it."""
ESCAPED_DOT_OR_SLASH = re.compile(r"%2[ef]", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One URL a vendor's purge calls may go to, or with `below` every URL under it."""

    url: httpx.URL
    below: bool

    @classmethod
    def of(cls, text: str) -> Endpoint:
        """`https://api/purge` is that URL only; `https://api/purge/*` anything under `/purge/`."""
        return cls(httpx.URL(text.removesuffix("*")), text.endswith("*"))

    def holds(self, url: httpx.URL) -> bool:
        if (url.scheme, url.host, url.port) != (self.url.scheme, self.url.host, self.url.port):
            return False
        path, mine = url.raw_path.partition(b"?")[0], self.url.raw_path.partition(b"?")[0]
        return path.startswith(mine) if self.below else path == mine


def request_problems(request: httpx.Request, endpoints: Iterable[Endpoint]) -> list[str]:
    """Why `request` must not be sent (empty when it may)."""
    problems = list(header_problems(request.headers))
    path = request.url.raw_path.partition(b"?")[0].decode("ascii", "replace")
    if has_dot_segment(path):
        problems.append("its path has a dot segment a server may resolve ('.', '..', or escaped as %2E)")
    elif not any(endpoint.holds(request.url) for endpoint in endpoints):
        problems.append(f"{request.method} {_origin(request.url)}{path[:120]} is outside the vendor's purge endpoint")
    return problems


def header_problems(headers: httpx.Headers) -> Iterator[str]:
    for name, value in headers.raw:
        shown = name.decode("ascii", "replace")[:60]
        if not TOKEN.fullmatch(name):
            yield f"header name {shown!r} is not a token"
        elif not PRINTABLE.fullmatch(value):
            yield f"header {shown} has a control or non-ASCII character (a secret with a trailing newline?)"
        elif len(value) > MAX_HEADER:
            yield f"header {shown} is longer than {MAX_HEADER} bytes"


def url_problem(url: str) -> str:
    """Why `url` cannot be purged as the changed object's own URL ('' when it can)."""
    if len(url) > MAX_URL:
        return f"its URL is longer than {MAX_URL} characters"
    if not url.isascii() or not url.isprintable():
        return "its URL has a control, space or non-ASCII character"
    plain = PLAIN_URL.fullmatch(url)  # every URL mapping builds: urlsplit is most of the cost here
    if plain:
        path = plain[1]
    else:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc or not parts.path.startswith("/"):
            return "not an absolute http(s) URL"
        if parts.fragment or "#" in url:
            return "its URL has a #fragment, which is never sent to a cache"
        path = parts.path
    if has_dot_segment(path):
        return (
            "its path has a '.' or '..' segment: no browser requests that URL, and a cache or API that"
            " resolves it would purge another object"
        )
    return ""


def has_dot_segment(path: str) -> bool:
    """True when a segment is '.' or '..', also as %2E and across %2F (servers that decode them)."""
    if "/." not in "/" + path and not ESCAPED_DOT_OR_SLASH.search(path):
        return False  # no segment can start with a dot: the common case, without splitting
    return any(DOT.sub(".", segment) in (".", "..") for segment in SLASH.sub("/", path).split("/"))


def wildcard_cut(url: str, trailing_only: bool = False, unmatchable: str = "") -> str | None:
    """`https://h/a*b` -> `https://h/a`: the URL before its first `*` (or `%2A`); None without one.

    With `trailing_only` (nginx partial keys) only a final `*` is a wildcard. `unmatchable`
    characters (raw or percent-encoded) cut the URL too, wherever they are."""
    parts = urlsplit(url)
    found = STAR.search(parts.path)
    if found is not None and trailing_only and found.end() != len(parts.path):
        found = None
    cuts = [found.start()] if found else []
    for char in unmatchable:  # an ASCII character, raw or as its escape (`~`, `%7E`)
        hit = re.search(f"{re.escape(char)}|%{ord(char):02X}", parts.path, re.IGNORECASE)
        cuts += [hit.start()] if hit else []
    if not cuts:
        return None
    return f"{parts.scheme}://{parts.netloc}{parts.path[: min(cuts)]}"


def encode_tag(value: str, allowed: str) -> str:
    """The documented tag rule: UTF-8 percent-encode every character a vendor does not allow raw.

    Letters, digits, `-._~` and the vendor's `allowed` ASCII punctuation stay as they are; `%` is
    always escaped, so two different values never meet in one tag. `My Photos` -> `My%20Photos`,
    `café` -> `caf%C3%A9`. Raises UnicodeEncodeError for a lone surrogate (not text)."""
    return quote(value, safe=allowed.replace("%", ""), encoding="utf-8", errors="strict")


def _origin(url: httpx.URL) -> str:
    port = f":{url.port}" if url.port else ""
    return f"{url.scheme}://{url.host}{port}"
