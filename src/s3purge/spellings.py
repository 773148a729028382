"""Every URL path under which S3 serves an object and a client plausibly requests it. Pure.

S3 decodes a request path once: a raw `+` is a space, `%XX` a UTF-8 byte, any other
character itself. So one object answers under many paths, and a byte-exact cache (Varnish,
Fastly, Cloudflare's cache key) keeps one copy per path that was requested. The spellings:

- `browser`: what a browser sends for a link that names the key as it is: the WHATWG URL
  path percent-encode set (space, controls, non-ASCII, `" # < > ? ^ ` { }`) is escaped,
  and so are `%`, `\\` and `+`, which a raw link cannot carry (S3 would read them as an
  escape, a `/` and a space); `! $ & ' ( ) * , ; = : @ [ ] |` stay raw. A key with `^`
  has a second browser spelling with `^` raw: the URL Standard escapes it only since 2024,
  and older engines (Node 20's URL among them) still send it raw.
- `encoded`: what a percent-encoding library builds: only RFC 3986 unreserved characters
  (letters, digits, `- . _ ~`) stay raw.
- `plus`: the `encoded` spelling with `+` for each space (form encoding, as the S3 console
  writes object URLs); the same as `encoded` for a key without a space.

`/` separates segments in every spelling. A `.` or `..` segment is spelled `%2E` / `%2E%2E`:
raw, every HTTP client (httpx, curl, browsers) would remove it and name another object;
encoded, httpx, curl and RFC 3986 normalisers keep it, browsers (WHATWG) cannot request it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal
from urllib.parse import quote, unquote

Spelling = Literal["browser", "encoded", "plus"]
SPELLINGS: tuple[Spelling, ...] = ("browser", "encoded", "plus")
"""The default set of a route, in the order targets are listed."""

_RAW = {"browser": "!$&'()*,;=:@[]|", "encoded": "", "plus": ""}
"""Characters besides RFC 3986 unreserved (which `quote` never escapes) each spelling keeps raw."""
_PRE_2024_BROWSER = _RAW["browser"] + "^"
"""The browser spelling before the URL Standard added `^` to the path percent-encode set (2024)."""
_DOT_SEGMENTS = {".": "%2E", "..": "%2E%2E"}
_PLAIN = re.compile(r"[A-Za-z0-9._~/-]*")
"""Unreserved characters and '/': a key of only these is its own path in every spelling."""


def spellings(key: str, chosen: Iterable[Spelling] = SPELLINGS) -> list[str]:
    """The distinct paths of decoded `key` (no leading '/'), in the order of `chosen`."""
    if _plain(key):  # most keys: nothing to escape, so `quote` per segment and spelling is skipped
        return list(dict.fromkeys(key for _ in chosen))
    found: list[str] = []
    for spelling in chosen:  # `plus` differs only with a space
        found.append(spell(key, spelling))
        if spelling == "browser" and "^" in key:  # older engines send '^' raw: a copy of its own
            found.append(_spelled(key, _PRE_2024_BROWSER))
    return list(dict.fromkeys(found))


def spell(key: str, spelling: Spelling) -> str:
    """Decoded `key` as one spelling's URL path, without the leading '/'."""
    if _plain(key):
        return key
    path = _spelled(key, _RAW[spelling])
    # '%' is always escaped, so every "%20" left is a whole escape of a space
    return path.replace("%20", "+") if spelling == "plus" else path


def decode(path: str) -> str:
    """The key S3 serves at `path`: a raw '+' is a space, then %XX escapes as UTF-8."""
    return unquote(path.replace("+", " "), encoding="utf-8", errors="strict")


def _plain(key: str) -> bool:
    """True when no spelling escapes anything in `key`: only unreserved characters and '/', and no
    segment starting with '.' (which may be a dot segment, spelled escaped)."""
    return _PLAIN.fullmatch(key) is not None and "/." not in "/" + key


def _spelled(key: str, raw: str) -> str:
    return "/".join(_segment(part, raw) for part in key.split("/"))


def _segment(part: str, raw: str) -> str:
    return _DOT_SEGMENTS.get(part) or quote(part, safe=raw, encoding="utf-8", errors="strict")
