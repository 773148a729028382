"""URLs as people type or paste them, read as a browser sends them and as S3 reads the path."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import click
import httpx

from s3purge.model import Target
from s3purge.providers.base import Provider
from s3purge.spellings import decode, spellings

_HOST = re.compile(r"[a-z0-9.-]+|[0-9a-f:.]*:[0-9a-f:.]*")
"""A host name (IDNA-encoded, lower case) or an IPv6 address, as httpx hands them back."""
_BROKEN_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def pasted_url(url: str) -> tuple[list[str], str]:
    """A URL as a user typed or pasted it -> the URLs to purge, and the fragment it dropped.

    Read as a browser reads a typed URL (IDNA host, `\\` as `/`, dot segments resolved,
    space and non-ASCII escaped), and as S3 reads the path (a raw `+` is a space): first
    that exact request, then every spelling of the object S3 serves there.
    """
    head, _, fragment = url.strip().partition("#")
    parsed = _typed(url, head)
    typed = parsed.raw_path.decode("ascii").partition("?")[0]
    try:
        key = decode(typed.removeprefix("/"))
    except UnicodeDecodeError as error:
        raise click.BadParameter(f"{url!r}: its path is not UTF-8 once decoded ({error})") from None
    origin, tail = _origin(url, parsed), f"?{parsed.query.decode('ascii')}" if parsed.query else ""
    exact = [] if _BROKEN_ESCAPE.search(typed) else [f"{origin}{typed}{tail}"]  # '100%.txt': S3 refuses it
    return list(dict.fromkeys([*exact, *(f"{origin}/{path}{tail}" for path in spellings(key))])), fragment


def dropped_query(provider: Provider, url: str) -> str:
    """Why `provider` purges `url` without its query, and what it purges instead ('' when it keeps it).

    Read off the vendor's cache identity, which is what it sends for a target: two URLs that differ
    only in their query are one identity for a vendor whose purge cannot carry a query (none today:
    CloudFront invalidation paths carry it too). So no vendor module declares it a second time."""
    query = urlsplit(url).query
    if not query:
        return ""
    bare = url.partition("?")[0]
    instead = provider.identity(Target(provider.name, "purge", "url", bare))
    if provider.identity(Target(provider.name, "purge", "url", url)) != instead:
        return ""
    wider = f"; --prefix {bare} purges every query variant" if "prefix" in provider.supports else ""
    return (
        f"CDN {provider.name!r} ({provider.vendor}) purges URLs without their query: it purges {instead},"
        f" and a copy cached under ?{query} may stay{wider}"
    )


def _typed(url: str, head: str) -> httpx.URL:
    path_part, question, query = head.partition("?")
    if not path_part.lower().startswith(("http://", "https://")):
        raise click.BadParameter(f"{url!r}: give an absolute http:// or https:// URL, as browsers request it")
    try:  # httpx escapes space and non-ASCII, IDNA-encodes the host and resolves dot segments, as browsers do
        return httpx.URL(path_part.replace("\\", "/") + question + query)
    except httpx.InvalidURL as error:
        raise click.BadParameter(f"{url!r}: not a URL a browser can request ({error})") from None


def _origin(url: str, parsed: httpx.URL) -> str:
    host = parsed.raw_host.decode("ascii")
    if parsed.userinfo or not _HOST.fullmatch(host) or (parsed.port or 0) > 65535:
        raise click.BadParameter(f"{url!r}: give a URL with a plain host (no user:password@) and a valid port")
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{f'[{host}]' if ':' in host else host}{port}"
