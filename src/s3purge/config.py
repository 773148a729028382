"""Load and validate the YAML config before any I/O; every error names file, line and field.

cdns:                      # named CDN accounts
  edge:
    vendor: http           # a name from providers/__init__.py (or an entry point)
    endpoints: [http://10.0.0.5:6081]
    concurrency: 8         # optional overrides of the vendor's declared limits
buckets:                   # routing rules per bucket
  my-site:
    - cdn: edge
      hosts: [www.example.com]
      schemes: https       # http | https | both
      prefix: public/      # only keys under this prefix ...
      suffix: .html        # ... and ending like this
      strip_prefix: public/
      path_prefix: /static
      index_documents: [index.html]  # the default; [] turns it off
      spellings: [browser, encoded, plus]  # the default: see s3purge.spellings
      tags: ["{dirname}"]  # cache tags derived from the key
      tags_from_metadata: cache-tag  # and the tags in x-amz-meta-cache-tag (metadata.py)
      action: purge        # purge | invalidate | delete | load
      verify: {via: [http://10.0.0.5:6081], within: 5, purges: 3}  # prove fresh (verify.py)
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec
from msgspec import Meta

from s3purge import accounts, configfile
from s3purge.accounts import Cdn
from s3purge.checks import TAG_FIELDS, Checker, EndpointUrl, Host, TagTemplate, UrlPath
from s3purge.errors import ConfigError
from s3purge.locations import Loc, Problems, dotted, is_legacy
from s3purge.model import Action, EventKind, TargetKind
from s3purge.secrets import Secret
from s3purge.spellings import SPELLINGS, Spelling

if TYPE_CHECKING:  # the pure core imports config: the provider layer (and httpx) loads only in accounts
    from s3purge.providers.base import Provider

__all__ = ["TAG_FIELDS", "Cdn", "Config", "Route", "load", "parse"]


class Verify(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Prove a route's purges by what the CDN serves (s3purge.verify); off unless given."""

    via: list[EndpointUrl] = []
    """Probe addresses (each cache node, a shield), sent the public Host; default: the public URL."""
    within: Annotated[float, Meta(gt=0, le=300)] = 5.0
    """Seconds to poll, with backoff, for the new object after each purge."""
    purges: Annotated[int, Meta(ge=1, le=10)] = 3
    """Purges in all (the first included) before the (change, CDN) fails as still stale."""


class Probes(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What verification may spend per invocation: probes are paced and capped."""

    rate: Annotated[float, Meta(gt=0, le=1000)] = 200.0
    """Probes per second, over all routes."""
    max_per_run: Annotated[int, Meta(ge=1)] = 2000
    """Probes per invocation; past it, purges are accepted unverified (and logged)."""


class Route(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How the changed keys of one bucket become what one CDN purges."""

    cdn: str
    hosts: list[Host] = []
    schemes: Literal["http", "https", "both"] = "https"
    prefix: str = ""
    suffix: str = ""
    strip_prefix: str = ""
    path_prefix: UrlPath = ""
    index_documents: list[str] = msgspec.field(default_factory=lambda: ["index.html"])
    spellings: Annotated[list[Spelling], Meta(min_length=1)] = msgspec.field(default_factory=lambda: list(SPELLINGS))
    tags: list[TagTemplate] = []
    tags_from_metadata: Annotated[str, Meta(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=128)] | None = None
    """User metadata (without `x-amz-meta-`, lower case) holding the object's comma-separated tags,
    e.g. `cache-tag`: read with HeadObject on created events and purged as tags (metadata.py)."""
    action: Action = "purge"
    events: list[EventKind] = msgspec.field(default_factory=lambda: ["created", "removed"])
    verify: Verify | None = None


class Document(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The file's top level; each account's mapping is split into Account and vendor options."""

    cdns: Annotated[dict[str, Any], Meta(min_length=1)]
    buckets: Annotated[dict[str, Any], Meta(min_length=1)]
    probes: Probes = msgspec.field(default_factory=Probes)


@dataclass(frozen=True)
class Config:
    path: str
    cdns: dict[str, Cdn]
    buckets: dict[str, list[Route]]
    probes: Probes = dataclasses.field(default_factory=Probes)

    def secrets(self) -> list[Secret]:
        return [s for cdn in self.cdns.values() for s in cdn.provider.options.secrets()]

    def routes(self, bucket: str) -> list[Route]:
        return self.buckets.get(bucket, [])


def load(path: str | Path) -> Config:
    """Read, parse and validate a config file (no network, no secrets resolved yet)."""
    text = configfile.read_text(path)
    tree = configfile.shipped_tree(Path(path), text)  # deployed: parsed at deploy, no YAML parser here
    return _checked(tree or _yaml_tree(text, str(path)), str(path))


def parse(text: str, name: str = "<config>") -> Config:
    return _checked(_yaml_tree(text, name), name)


def _yaml_tree(text: str, name: str) -> configfile.Tree:
    from s3purge import yamlfile  # PyYAML: not imported where deploy shipped the parsed tree (cold start)

    return yamlfile.parse(text, name)


def _checked(tree: configfile.Tree, name: str) -> Config:
    """The config in `tree`, or a ConfigError naming every problem at its line in file `name`."""
    raw, origins = tree.data, None
    if is_legacy(raw):  # the original scripts' format: errors point at its lines
        raw, origins = _from_legacy(raw, name, tree.lines)
    cdns, buckets, problems = _validated(raw)
    problems = tree.problems + problems
    if problems:
        if origins:
            from s3purge.legacy import relocate

            problems = relocate(problems, origins)
        raise ConfigError(_report(name, tree.lines, problems))
    probes = msgspec.convert(raw.get("probes", {}), Probes)  # checked above, with the document
    return Config(path=name, cdns=cdns, buckets=buckets, probes=probes)


def _from_legacy(raw: Any, name: str, lines: dict[Loc, int]) -> tuple[dict[str, Any], dict[Loc, Loc]]:
    from s3purge import legacy  # imported only for legacy files: Lambda cold start

    try:
        converted = legacy.convert(raw)
    except legacy.LegacyError as error:
        raise ConfigError(_report(name, lines, error.problems)) from None
    for at, note in converted.notes:
        logging.getLogger("s3purge").warning(f"{name}:{_line_of(lines, at)}: {dotted(at)}: {note}")
    return converted.document, converted.origins


def _validated(raw: Any) -> tuple[dict[str, Cdn], dict[str, list[Route]], Problems]:
    """The CDNs, the routes, and every problem: structure and cross-references in one pass."""
    if not isinstance(raw, dict):
        return {}, {}, [((), "expected a mapping with 'cdns' and 'buckets'")]
    checker = Checker()
    checker.struct(raw, Document, ())  # the top level; then every part that can be checked is
    cdns: dict[str, Cdn] = {}
    classes: dict[str, type[Provider]] = {}
    raw_cdns = _mapping(raw.get("cdns"))
    for name, entry in raw_cdns.items():
        cdn, cls = accounts.account(name, entry, checker)
        if cls is not None:
            classes[name] = cls  # routes are checked against the vendor even when its account has problems
        if cdn is not None:
            cdns[name] = cdn
    buckets: dict[str, list[Route]] = {}
    for bucket, entries in _mapping(raw.get("buckets")).items():
        routes = checker.value(entries, list[Any], ("buckets", bucket))
        if routes is Checker.INVALID:
            continue
        buckets[bucket] = []
        for i, entry in enumerate(routes):
            at = ("buckets", bucket, i)
            route = checker.struct(entry, Route, at)
            if route is not Checker.INVALID:
                buckets[bucket].append(route)
                checker.problems += _route_checks(at, route, set(map(str, raw_cdns)), classes)
    return cdns, buckets, checker.problems


def _mapping(value: Any) -> dict[Any, Any]:
    return value if isinstance(value, dict) else {}


def _route_checks(at: Loc, route: Route, defined: set[str], classes: dict[str, type[Provider]]) -> Problems:
    if route.cdn not in defined:
        return [((*at, "cdn"), f"unknown CDN {route.cdn!r} (defined: {', '.join(sorted(defined)) or 'none'})")]
    problems: Problems = []
    if not route.hosts and not route.tags and route.tags_from_metadata is None:
        problems.append((at, "purges nothing: give hosts (URLs) and/or tags"))
    if route.verify is not None and not route.hosts:
        problems.append(((*at, "verify"), "verification probes URLs: give hosts"))
    cls = classes.get(route.cdn)
    if cls is None:
        return problems
    kinds: dict[TargetKind, bool] = {"url": bool(route.hosts), "tag": bool(route.tags or route.tags_from_metadata)}
    for kind in (k for k, used in kinds.items() if used):
        if route.action not in cls.supports.get(kind, frozenset()):
            can = sorted(cls.supports.get(kind, frozenset()))
            problems.append(
                (
                    (*at, "action"),
                    f"vendor {cls.vendor!r} cannot {route.action} by {kind} (it can: {', '.join(can) or 'nothing'})",
                )
            )
    return problems


def _report(name: str, lines: dict[Loc, int], problems: Iterable[tuple[Loc, str]]) -> str:
    located = sorted(((_line_of(lines, loc), loc, msg) for loc, msg in problems), key=lambda p: p[0])
    rows = [f"{name}:{line}: {dotted(loc) or '(top)'}: {msg}" for line, loc, msg in located]
    if len(rows) == 1:
        return rows[0]
    return f"{name}: {len(rows)} problems\n  " + "\n  ".join(rows)


def _line_of(lines: dict[Loc, int], loc: Loc) -> int:
    """The line of the deepest part of `loc` that exists in the file."""
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 1
