"""The converter: a legacy document -> the new-format document, and where each part came from."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from s3purge.legacy.read import CONFIGS, DOMAINS, Account, Group, Reader
from s3purge.legacy.vendors import VENDORS
from s3purge.locations import Loc, dotted


class LegacyError(ValueError):
    """The legacy file cannot be converted; `problems` are (legacy location, message)."""

    def __init__(self, problems: list[tuple[Loc, str]]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the legacy config")
        self.problems = problems


@dataclass
class Conversion:
    document: dict[str, Any]
    """The new-format mapping: {"cdns": ..., "buckets": ...}."""
    origins: dict[Loc, Loc]
    """New-format location -> the legacy location it came from."""
    notes: list[tuple[Loc, str]]
    """Legacy location -> what was ignored or assumed (no secret values)."""


def convert(raw: Mapping[str, Any]) -> Conversion:
    """The equivalent new-format document; raises LegacyError listing every problem."""
    reader = Reader(raw)
    reader.run()
    if reader.problems:
        raise LegacyError(reader.problems)
    return Conversion(_document(reader), reader.origins, reader.notes)


def relocate(problems: Iterable[tuple[Loc, str]], origins: Mapping[Loc, Loc]) -> list[tuple[Loc, str]]:
    """New-format problems -> problems at the legacy location each came from."""
    moved = []
    for loc, message in problems:
        end = next(end for end in range(len(loc), -1, -1) if loc[:end] in origins or end == 0)
        rest = dotted(loc[end:])
        moved.append((origins.get(loc[:end], ()), f"{rest}: {message}" if rest else message))
    return moved


def _document(reader: Reader) -> dict[str, Any]:
    names = _names(reader)
    cdns = {names[account]: _account(reader, account, names[account]) for account in reader.accounts}
    buckets: dict[str, list[dict[str, Any]]] = {}
    for bucket, groups in reader.groups.items():
        reader.origins.setdefault(("buckets", bucket), groups[0].at[:3])
        buckets[bucket] = [_route(reader.origins, ("buckets", bucket, i), g, names) for i, g in enumerate(groups)]
    return {"cdns": cdns, "buckets": buckets}


def _names(reader: Reader) -> dict[Account, str]:
    """The vendor's name for its default platform (or its only one), vendor-platform for others."""
    names = {}
    for vendor, platform in reader.accounts:
        variants = [p for v, p in reader.accounts if v == vendor]
        default = reader.defaults[vendor][0]
        bare = platform == default or (default not in variants and platform == variants[0])
        names[(vendor, platform)] = vendor if bare else f"{vendor}-{platform}"
    return names


def _account(reader: Reader, account: Account, name: str) -> dict[str, Any]:
    vendor, platform = account
    spec = VENDORS[vendor]
    settings = reader.settings(vendor)
    section = (CONFIGS, vendor) if isinstance(settings, Mapping) else (DOMAINS, vendor)
    here: Loc = ("cdns", name)
    reader.origins[here] = section
    reader.origins[(*here, "vendor")] = (DOMAINS, vendor)
    options: dict[str, Any] = {"vendor": vendor, **_settings(reader, vendor, settings or {}, here)}
    if spec.platform_option is not None and platform is not None:
        options[spec.platform_option] = platform
        reader.origins[(*here, spec.platform_option)] = reader.accounts[account]
    if spec.credentials and not any(options.get(k) is not None for k in spec.credentials):
        options.update(spec.assumed)
        shown = ", ".join(f"{k}: {_show(v)}" for k, v in spec.assumed.items())
        _note_once(reader, section, f"no credentials given (the old scripts read vendors/{vendor}/config.py): {shown}")
    return options


def _settings(reader: Reader, vendor: str, settings: Mapping[str, Any], here: Loc) -> dict[str, Any]:
    """The vendor's settings as account options: renamed, identifiers as text, dead ones noted."""
    spec = VENDORS[vendor]
    options: dict[str, Any] = {}
    for key, value in settings.items():
        if key in ("platform", spec.platform_option):
            continue  # the platform makes the account; set by the caller
        if key in spec.ignored:
            _note_once(reader, (CONFIGS, vendor, key), f"ignored: {spec.ignored[key]}")
            continue
        option = spec.renames.get(key, key)
        if option in spec.ids and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        options[option] = value
        reader.origins[(*here, option)] = (CONFIGS, vendor, key)
    return options


def _route(origins: dict[Loc, Loc], here: Loc, group: Group, names: Mapping[Account, str]) -> dict[str, Any]:
    origins[here] = group.at
    origins[(*here, "cdn")] = group.account_at
    origins[(*here, "action")] = group.action_at
    origins[(*here, "hosts")] = group.hosts[0][1]
    for j, (_, host_at) in enumerate(group.hosts):
        origins[(*here, "hosts", j)] = host_at
    route: dict[str, Any] = {
        "cdn": names[group.account],
        "hosts": [host for host, _ in group.hosts],
        "schemes": "both",
    }
    if group.path_prefix:
        route["path_prefix"] = group.path_prefix
    route["action"] = group.action
    if group.action == "load":
        route["events"] = ["created"]  # prefetching a deleted object would only cache its 404
    return route


def _note_once(reader: Reader, at: Loc, message: str) -> None:
    if (at, message) not in reader.notes:
        reader.notes.append((at, message))


def _show(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {v}" for k, v in value.items()) + "}"
    return str(value)
