"""Changed keys -> what to purge: every URL a cache may hold the object under, and tags. Pure.

Each key is spelled as the route's `spellings` say (s3purge.spellings: what a browser sends
for a raw link, what an encoding library builds, `+` for space), only the distinct ones.
Keys are never encoded twice: the events module decodes them exactly once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from posixpath import splitext

from s3purge.config import Config, Route
from s3purge.model import Change, Target
from s3purge.spellings import spell, spellings

SCHEMES = {"http": ("http",), "https": ("https",), "both": ("https", "http")}


def targets(change: Change, config: Config) -> Iterator[Target]:
    """Everything `change` purges, over every route of its bucket."""
    for route in config.routes(change.bucket):
        if applies(route, change):
            yield from route_targets(route, change, config)


def applies(route: Route, change: Change) -> bool:
    return (
        (change.cdns is None or route.cdn in change.cdns)
        and change.event in route.events
        and change.key.startswith(route.prefix)
        and change.key.endswith(route.suffix)
    )


def route_targets(route: Route, change: Change, config: Config) -> Iterator[Target]:
    for path in url_paths(route, change.key):
        for host in route.hosts:
            for scheme in SCHEMES[route.schemes]:
                yield Target(route.cdn, route.action, "url", f"{scheme}://{host}{path}")
    if route.tags:  # the fields spell the key once more: only for routes that use them
        fields = tag_fields(change)
        for template in route.tags:
            tag = template.format(**fields)
            if tag:
                yield Target(route.cdn, route.action, "tag", tag)
    for tag in metadata_tags(route, change, config):
        yield Target(route.cdn, route.action, "tag", tag)


def from_metadata(change: Change, config: Config) -> frozenset[Target]:
    """The change's tag targets read from its object's metadata: the NEW object's tags, which a
    cached old copy need not carry, so they are purged besides its URLs, never instead (choose.py)."""
    if change.metadata is None:
        return NONE
    return frozenset(
        Target(route.cdn, route.action, "tag", tag)
        for route in config.routes(change.bucket)
        if route.tags_from_metadata is not None and applies(route, change)
        for tag in metadata_tags(route, change, config)
    )


NONE: frozenset[Target] = frozenset()


def metadata_tags(route: Route, change: Change, config: Config) -> list[str]:
    """The tags the object carries in the user metadata the route names, split where the route's
    vendor reads separate tags (a comma; whitespace too for Fastly's Surrogate-Key, xkey), at most
    as many as the vendor reads from one object (the first ones)."""
    return stored_tags(route, change, config)[0]


def stored_tags(route: Route, change: Change, config: Config) -> tuple[list[str], int]:
    """(metadata_tags, how many more the object carries than its vendor reads)."""
    if route.tags_from_metadata is None or change.metadata is None:
        return [], 0
    value = dict(change.metadata).get(route.tags_from_metadata, "")
    rules = config.cdns[route.cdn].provider.tag_rules
    found = list(dict.fromkeys(split_tags(value, "," if rules is None else rules.separators)))
    cap = None if rules is None else rules.per_object
    return (found, 0) if cap is None or len(found) <= cap else (found[:cap], len(found) - cap)


def split_tags(value: str, separators: str) -> list[str]:
    """`value` cut at each separator character (a space: at any whitespace), empty parts dropped."""
    pattern = "[" + re.escape(separators.replace(" ", "")) + (r"\s" if " " in separators else "") + "]"
    return [tag for part in re.split(pattern, value) if (tag := part.strip())]


def url_paths(route: Route, key: str) -> list[str]:
    """The object's URL paths (one per distinct spelling), then its directory's if it is an index document."""
    key = key.removeprefix(route.strip_prefix)
    paths = [f"{route.path_prefix}/{spelled}" for spelled in spellings(key, route.spellings)]
    if key.rpartition("/")[2] in route.index_documents:
        directories = [path[: path.rindex("/") + 1] for path in paths]
        paths += directories
        # "/d/" is also served as "/d"; but "/d//" without its last slash is "/d/", another directory
        paths += [d[:-1] for d in directories if d != "/" and not d.endswith("//")]
    return list(dict.fromkeys(paths))


def encode_path(key: str) -> str:
    """Decoded key -> its browser spelling (the `{path}` tag, without the leading '/')."""
    return spell(key, "browser")


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
