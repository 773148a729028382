"""Changed keys -> what to purge: URLs exactly as a browser requests them, and tags. Pure.

URL paths are the decoded key percent-encoded per RFC 3986: unreserved characters
(A-Z a-z 0-9 - . _ ~), sub-delimiters (! $ & ' ( ) * + , ; =), ':' and '@' stay as they
are, as browsers send them; everything else (space, %, ?, #, non-ASCII as UTF-8 ...) is
escaped. Keys are never encoded twice: the events module decodes them exactly once.
"""

from __future__ import annotations

from collections.abc import Iterator
from posixpath import splitext
from urllib.parse import quote

from s3purge.config import Config, Route
from s3purge.model import Change, Target

PATH_SAFE = "/!$&'()*+,;=:@"
SCHEMES = {"http": ("http",), "https": ("https",), "both": ("https", "http")}


def targets(change: Change, config: Config) -> Iterator[Target]:
    """Everything `change` purges, over every route of its bucket."""
    for route in config.routes(change.bucket):
        if applies(route, change):
            yield from route_targets(route, change)


def applies(route: Route, change: Change) -> bool:
    return (
        (change.cdns is None or route.cdn in change.cdns)
        and change.event in route.events
        and change.key.startswith(route.prefix)
        and change.key.endswith(route.suffix)
    )


def route_targets(route: Route, change: Change) -> Iterator[Target]:
    for path in url_paths(route, change.key):
        for host in route.hosts:
            for scheme in SCHEMES[route.schemes]:
                yield Target(route.cdn, route.action, "url", f"{scheme}://{host}{path}")
    fields = tag_fields(change)
    for template in route.tags:
        tag = template.format(**fields)
        if tag:
            yield Target(route.cdn, route.action, "tag", tag)


def url_paths(route: Route, key: str) -> list[str]:
    """The object's URL path, plus its directory's when the key is an index document."""
    key = key.removeprefix(route.strip_prefix)
    path = f"{route.path_prefix}/{encode_path(key)}"
    paths = [path]
    if key.rpartition("/")[2] in route.index_documents:
        directory = path[: path.rindex("/") + 1]
        paths.append(directory)
        if directory != "/":
            paths.append(directory.rstrip("/"))
    return paths


def encode_path(key: str) -> str:
    """Decoded key -> RFC 3986 path (UTF-8 percent-escapes, reserved chars kept)."""
    return quote(key, safe=PATH_SAFE, encoding="utf-8", errors="strict")


def tag_fields(change: Change) -> dict[str, str]:
    dirname, _, basename = change.key.rpartition("/")
    stem, ext = splitext(basename)
    return {
        "key": change.key,
        "path": "/" + encode_path(change.key),
        "dirname": dirname,
        "basename": basename,
        "stem": stem,
        "ext": ext.lstrip("."),
        "bucket": change.bucket,
    }
