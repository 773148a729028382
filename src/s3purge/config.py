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
      action: purge        # purge | invalidate | delete | load
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from s3purge.errors import ConfigError
from s3purge.escalate import Thresholds
from s3purge.model import Action, EventKind, TargetKind
from s3purge.providers import known_vendors, provider_class
from s3purge.providers.base import Limits, Provider, Rate, VendorOptions
from s3purge.secrets import Secret
from s3purge.spellings import SPELLINGS, Spelling

TAG_FIELDS = ("key", "path", "dirname", "basename", "stem", "ext", "bucket")
"""Placeholders a tag template may use, e.g. "{dirname}" or "obj:{key}"."""

Loc = tuple[str | int, ...]
LEGACY_MARK = "cdnDomains"
"""Top-level key of the original scripts' config format (converted by s3purge.legacy)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Route(_Strict):
    """How the changed keys of one bucket become what one CDN purges."""

    cdn: str
    hosts: list[str] = []
    schemes: Literal["http", "https", "both"] = "https"
    prefix: str = ""
    suffix: str = ""
    strip_prefix: str = ""
    path_prefix: str = ""
    index_documents: list[str] = ["index.html"]
    spellings: list[Spelling] = Field(list(SPELLINGS), min_length=1)
    tags: list[str] = []
    action: Action = "purge"
    events: list[EventKind] = ["created", "removed"]

    @field_validator("hosts")
    @classmethod
    def _bare_hosts(cls, hosts: list[str]) -> list[str]:
        for host in hosts:
            if not host or "/" in host or " " in host:
                raise ValueError(f"{host!r} is not a host name (write www.example.com, no scheme)")
        return hosts

    @field_validator("path_prefix")
    @classmethod
    def _rooted(cls, prefix: str) -> str:
        if prefix and not prefix.startswith("/"):
            raise ValueError("must start with '/'")
        return prefix.rstrip("/")

    @field_validator("tags")
    @classmethod
    def _known_placeholders(cls, tags: list[str]) -> list[str]:
        sample = dict.fromkeys(TAG_FIELDS, "x")
        for tag in tags:
            try:
                tag.format(**sample)
            except (KeyError, IndexError, ValueError):
                raise ValueError(
                    f"tag {tag!r} uses an unknown placeholder; use {{{'}, {'.join(TAG_FIELDS)}}}"
                ) from None
        return tags


class Account(BaseModel):
    """A named CDN account; fields other than these are the vendor's own options."""

    model_config = ConfigDict(extra="allow", frozen=True)

    vendor: str
    concurrency: int | None = Field(None, ge=1, le=256)
    rate: float | None = Field(None, gt=0)
    """Calls (or items, per vendor) per second; overrides the vendor's declared rate."""
    burst: float | None = Field(None, gt=0)
    timeout: float | None = Field(None, gt=0, le=120)
    max_attempts: int = Field(4, ge=1, le=20)
    max_items: int | None = Field(None, ge=1)
    """Items per call; overrides the vendor's declared maximum where plans differ (Cloudflare)."""
    prefix_threshold: int | None = Field(None, ge=0)
    """Purge a directory by prefix when more of its URLs than this changed (off by default)."""
    everything_threshold: int | None = Field(None, ge=0)
    """Purge the whole CDN when more URL paths than this changed (off by default)."""

    def vendor_options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class Document(_Strict):
    cdns: dict[str, Account] = Field(min_length=1)
    buckets: dict[str, list[Route]] = Field(min_length=1)


@dataclass(frozen=True)
class Cdn:
    """One CDN account, ready to use: its provider, effective limits and retry budget."""

    name: str
    provider: Provider
    limits: Limits
    max_attempts: int
    escalation: Thresholds = dataclasses.field(default_factory=Thresholds)


@dataclass(frozen=True)
class Config:
    path: str
    cdns: dict[str, Cdn]
    buckets: dict[str, list[Route]]

    def secrets(self) -> list[Secret]:
        return [s for cdn in self.cdns.values() for s in cdn.provider.options.secrets()]

    def routes(self, bucket: str) -> list[Route]:
        return self.buckets.get(bucket, [])


def load(path: str | Path) -> Config:
    """Read, parse and validate a config file (no network, no secrets resolved yet)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read config file ({error.strerror})") from None
    return parse(text, str(path))


def parse(text: str, name: str = "<config>") -> Config:
    loader = yaml.SafeLoader(text)
    try:  # one parse: the node tree gives line numbers, the same tree the data
        root = loader.get_single_node()
        raw = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{name}{line}: not valid YAML ({getattr(error, 'problem', error)})") from None
    finally:
        loader.dispose()
    lines = dict(_lines(root, ())) if root is not None else {}
    origins = None
    if isinstance(raw, dict) and LEGACY_MARK in raw:  # the original scripts' format: errors point at its lines
        raw, origins = _from_legacy(raw, name, lines)
    document, problems = _validated(raw)
    if document is None or problems:
        if origins:
            from s3purge.legacy import relocate

            problems = relocate(problems, origins)
        raise ConfigError(_report(name, lines, problems))
    return _build(name, document)


def _from_legacy(raw: Any, name: str, lines: dict[Loc, int]) -> tuple[dict[str, Any], dict[Loc, Loc]]:
    from s3purge import legacy  # imported only for legacy files: Lambda cold start

    try:
        converted = legacy.convert(raw)
    except legacy.LegacyError as error:
        raise ConfigError(_report(name, lines, error.problems)) from None
    for at, note in converted.notes:
        logging.getLogger("s3purge").warning(f"{name}:{_line_of(lines, at)}: {legacy.dotted(at)}: {note}")
    return converted.document, converted.origins


def _validated(raw: Any) -> tuple[Document | None, list[tuple[Loc, str]]]:
    """The document and its problems: structure first, then cross-references."""
    if not isinstance(raw, dict):
        return None, [((), "expected a mapping with 'cdns' and 'buckets'")]
    try:
        document = Document.model_validate(raw)
    except ValidationError as error:
        problems = error.errors(include_input=False, include_url=False)
        return None, [(tuple(item["loc"]), _message(item)) for item in problems]
    return document, list(_cross_checks(document))


def _cross_checks(document: Document) -> Iterator[tuple[Loc, str]]:
    classes: dict[str, type[Provider]] = {}
    for name, account in document.cdns.items():
        cls = provider_class(account.vendor)
        if cls is None:
            known = ", ".join(known_vendors())
            yield ("cdns", name, "vendor"), f"unknown vendor {account.vendor!r} (known: {known})"
            continue
        classes[name] = cls
        thresholds: dict[TargetKind, int | None] = {
            "prefix": account.prefix_threshold,
            "everything": account.everything_threshold,
        }
        for kind, threshold in thresholds.items():
            if threshold is not None and not cls.supports.get(kind):
                yield ("cdns", name, f"{kind}_threshold"), f"vendor {cls.vendor!r} cannot purge by {kind}"
        try:
            cls.Options.model_validate(account.vendor_options())
        except ValidationError as error:
            for item in error.errors(include_input=False, include_url=False):
                yield ("cdns", name, *item["loc"]), _message(item)
    for bucket, routes in document.buckets.items():
        for i, route in enumerate(routes):
            yield from _route_checks(("buckets", bucket, i), route, document, classes)


def _route_checks(
    at: Loc, route: Route, document: Document, classes: dict[str, type[Provider]]
) -> Iterator[tuple[Loc, str]]:
    if route.cdn not in document.cdns:
        yield (*at, "cdn"), f"unknown CDN {route.cdn!r} (defined: {', '.join(document.cdns)})"
        return
    if not route.hosts and not route.tags:
        yield at, "purges nothing: give hosts (URLs) and/or tags"
    cls = classes.get(route.cdn)
    if cls is None:
        return
    kinds: dict[TargetKind, bool] = {"url": bool(route.hosts), "tag": bool(route.tags)}
    for kind in (k for k, used in kinds.items() if used):
        if route.action not in cls.supports.get(kind, frozenset()):
            can = sorted(cls.supports.get(kind, frozenset()))
            yield (
                (*at, "action"),
                f"vendor {cls.vendor!r} cannot {route.action} by {kind} (it can: {', '.join(can) or 'nothing'})",
            )


def _build(name: str, document: Document) -> Config:
    cdns = {}
    for cdn_name, account in document.cdns.items():
        cls = provider_class(account.vendor)
        assert cls is not None  # checked in _cross_checks
        options: VendorOptions = cls.Options.model_validate(account.vendor_options())
        cdns[cdn_name] = Cdn(
            name=cdn_name,
            provider=cls(cdn_name, options),
            limits=_limits(cls.limits, account),
            max_attempts=account.max_attempts,
            escalation=Thresholds(account.prefix_threshold, account.everything_threshold),
        )
    return Config(path=name, cdns=cdns, buckets=dict(document.buckets))


def _limits(declared: Limits, account: Account) -> Limits:
    rate = declared.rate
    if account.rate is not None or account.burst is not None:
        per_second = account.rate or (rate.per_second if rate else 1.0)
        burst = account.burst or (rate.burst if rate else max(1.0, per_second))
        window = burst / per_second if rate and rate.window else None  # a sliding window stays one
        rate = Rate(per_second, burst, rate.unit if rate else "request", window)
    return dataclasses.replace(
        declared,
        concurrency=account.concurrency or declared.concurrency,
        max_items=account.max_items or declared.max_items,
        timeout=account.timeout or declared.timeout,
        rate=rate,
    )


def _message(item: Any) -> str:
    message = str(item["msg"])
    return message.removeprefix("Value error, ")


def _report(name: str, lines: dict[Loc, int], problems: Iterable[tuple[Loc, str]]) -> str:
    rows = [f"{name}:{_line_of(lines, loc)}: {_dotted(loc) or '(top)'}: {msg}" for loc, msg in problems]
    if len(rows) == 1:
        return rows[0]
    return f"{name}: {len(rows)} problems\n  " + "\n  ".join(rows)


def _line_of(lines: dict[Loc, int], loc: Loc) -> int:
    """The line of the deepest part of `loc` that exists in the file."""
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 1


def _dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _lines(node: yaml.Node, at: Loc) -> Iterator[tuple[Loc, int]]:
    yield at, node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            here = (*at, key.value)
            yield here, key.start_mark.line + 1
            yield from ((loc, n) for loc, n in _lines(value, here) if loc != here)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _lines(item, (*at, i))
