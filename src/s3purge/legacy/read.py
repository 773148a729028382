"""Reading a legacy document: every item checked, hosts grouped into the routes and accounts to be.

Problems and notes are gathered, never raised, so one run names every one of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from s3purge.legacy.vendors import VENDORS, Vendor
from s3purge.locations import LEGACY_MARK, Loc

Platform = tuple[str | None, Loc]
"""A platform's option value (None: none) and where it was written."""
Account = tuple[str, str | None]
"""(vendor, platform option value): one CDN account of the new document."""
DOMAINS, CONFIGS = LEGACY_MARK, "cdnConfigurations"
ITEM_FIELDS = ("host", "platform", "action")
ALL = "*"
"""Key of the action an item without host or platform gives the whole list."""


@dataclass
class Group:
    """One route being built: hosts of one list sharing account, action and path."""

    account: Account
    action: str
    path_prefix: str
    at: Loc
    action_at: Loc
    account_at: Loc
    hosts: list[tuple[str, Loc]] = field(default_factory=list)


@dataclass
class _Item:
    at: Loc
    bare: bool = False
    """Written as a plain host name instead of a mapping."""
    host: str | None = None
    platform: str | None = None
    action: str | None = None


class Reader:
    """Walks cdnDomains and cdnConfigurations once, gathering accounts, route groups, problems and notes."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw
        self.problems: list[tuple[Loc, str]] = []
        self.notes: list[tuple[Loc, str]] = []
        self.origins: dict[Loc, Loc] = {(): (), ("buckets",): (DOMAINS,)}
        self.accounts: dict[Account, Loc] = {}
        """(vendor, platform option value) -> where that platform was first named."""
        self.groups: dict[str, list[Group]] = {}
        self.defaults: dict[str, Platform] = {}

    def run(self) -> None:
        domains, configs = self.raw.get(DOMAINS), self.raw.get(CONFIGS) or {}
        for key in self.raw:
            if key not in (DOMAINS, CONFIGS):
                self.notes.append(((key,), "ignored: not part of the legacy format"))
        if not isinstance(configs, Mapping):
            self.problems.append(((CONFIGS,), "expected a mapping of vendor -> settings"))
            configs = {}
        if not isinstance(domains, Mapping) or not domains:
            self.problems.append(((DOMAINS,), "expected a mapping of vendor -> bucket -> hosts"))
            return
        self.origins[("cdns",)] = (CONFIGS,) if CONFIGS in self.raw else (DOMAINS,)
        for vendor, buckets in domains.items():
            self._vendor(str(vendor), buckets, configs.get(vendor))
        for vendor in configs:
            if vendor not in domains:
                self.notes.append(((CONFIGS, vendor), "ignored: no bucket in cdnDomains uses this vendor"))

    def _vendor(self, vendor: str, buckets: Any, settings: Any) -> None:
        at: Loc = (DOMAINS, vendor)
        spec = VENDORS.get(vendor)
        if spec is None:
            self.problems.append((at, f"vendor {vendor!r} is not supported (legacy vendors: {', '.join(VENDORS)})"))
            return
        if settings is not None and not isinstance(settings, Mapping):
            self.problems.append(((CONFIGS, vendor), "expected a mapping of settings"))
            return
        if not isinstance(buckets, Mapping) or not buckets:
            self.problems.append((at, "expected a mapping of bucket -> list of hosts"))
            return
        default = self.defaults[vendor] = self._default_platform(vendor, spec, settings or {})
        for bucket, items in buckets.items():
            self._bucket(vendor, spec, str(bucket), items, default)

    def _default_platform(self, vendor: str, spec: Vendor, settings: Mapping[str, Any]) -> Platform:
        for key in ("platform", spec.platform_option):
            if key is not None and settings.get(key) is not None:
                return self._platform(vendor, spec, settings[key], (CONFIGS, vendor, key)), (CONFIGS, vendor, key)
        return self._platform(vendor, spec, spec.default_platform, (DOMAINS, vendor)), (DOMAINS, vendor)

    def _platform(self, vendor: str, spec: Vendor, value: Any, at: Loc) -> str | None:
        """The account option a platform value means, None when it means nothing here."""
        if spec.platform_option is None:
            if value is not None:
                self.notes.append((at, f"ignored: {vendor} has no platforms (the old scripts ignored it too)"))
            return None
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value:
            self.problems.append((at, "expected a platform name"))
            return None
        if spec.platforms is None:
            return value
        if value not in spec.platforms:
            self.problems.append((at, f"unknown {vendor} platform {value!r} (known: {', '.join(spec.platforms)})"))
            return None
        return spec.platforms[value]

    def _bucket(self, vendor: str, spec: Vendor, bucket: str, raw_items: Any, default: Platform) -> None:
        at: Loc = (DOMAINS, vendor, bucket)
        if not isinstance(raw_items, list) or not raw_items:
            self.problems.append((at, "expected a list of {host, platform, action} items"))
            return
        items = [item for i, raw in enumerate(raw_items) if (item := self._item(raw, (*at, i))) is not None]
        platforms = {item.at: self._item_platform(vendor, spec, item, default) for item in items}
        actions = self._list_actions(items, platforms)
        used: set[str | None] = set()
        for item in items:
            if item.host is None:
                continue
            platform = platforms[item.at]
            if item.action is not None:
                action = (item.action, (*item.at, "action"))
            else:
                chosen = platform[0] if platform[0] in actions else ALL
                used.add(chosen)
                action = actions.get(chosen, (spec.default_action, at))
            self._add_host(vendor, bucket, item, platform, action)
        for unused in actions.keys() - used:
            self.notes.append((actions[unused][1], "ignored: no host of this list takes this action"))

    def _list_actions(self, items: list[_Item], platforms: dict[Loc, Platform]) -> dict[str | None, tuple[str, Loc]]:
        """Items without a host set the action of the list's hosts: of those on their platform
        when they name one, else of all (the old handler grouped by platform, and honoured
        this only for Edgecast). The last one wins, as it did; a host's own action wins over both."""
        actions: dict[str | None, tuple[str, Loc]] = {}
        for item in items:
            if item.host is None and item.action is not None:
                key = platforms[item.at][0] if item.platform is not None else ALL
                actions[key] = (item.action, (*item.at, "action"))
            elif item.host is None:
                self.notes.append((item.at, "ignored: no host, so nothing to purge"))
        return actions

    def _item(self, raw: Any, at: Loc) -> _Item | None:
        if isinstance(raw, str):  # a bare host name: what else could it mean
            if _host_like(raw):
                return _Item(at, bare=True, host=raw.strip())
            self.problems.append((at, f"{raw!r} is not a host name (write www.example.com, no scheme)"))
            return None
        if not isinstance(raw, Mapping):
            self.problems.append((at, "expected {host: ..., platform: ..., action: ...}"))
            return None
        item = _Item(at)
        for key, value in raw.items():
            if key not in ITEM_FIELDS:
                self.problems.append(((*at, key), f"unknown field (items take {', '.join(ITEM_FIELDS)})"))
            elif key == "platform":
                item.platform = value
            elif value is not None and (not isinstance(value, str) or not value.strip()):
                self.problems.append(((*at, key), "expected a non-empty string"))
            elif key == "host" and value is not None and not _host_like(value):
                self.problems.append(((*at, key), f"{value!r} is not a host name (write www.example.com, no scheme)"))
            else:
                setattr(item, key, value.strip() if value is not None else None)
        return item

    def _item_platform(self, vendor: str, spec: Vendor, item: _Item, default: Platform) -> Platform:
        if item.platform is None:
            platform = default
        else:
            where = (*item.at, "platform")
            platform = self._platform(vendor, spec, item.platform, where), where
        if item.host is not None and platform[0] is None and spec.platform_option and not spec.default_platform:
            # Cloudflare: the zone id has nowhere else to come from
            self.problems.append(
                (item.at, f"platform: give the {spec.platform_option} here or in {CONFIGS}.{vendor}.platform")
            )
        return platform

    def _add_host(self, vendor: str, bucket: str, item: _Item, platform: Platform, action: tuple[str, Loc]) -> None:
        assert item.host is not None
        # The old URL was http://{host}/{key}: a host written with a path put keys below it.
        host, _, path = item.host.partition("/")
        prefix = "/" + path.strip("/") if path.strip("/") else ""
        account = (vendor, platform[0])
        self.accounts.setdefault(account, platform[1])
        name = VENDORS[vendor].actions.get(action[0], action[0])
        groups = self.groups.setdefault(bucket, [])
        group = next(
            (g for g in groups if (g.account, g.action, g.path_prefix) == (account, name, prefix)),
            None,
        )
        if group is None:
            group = Group(account, name, prefix, item.at, action[1], platform[1])
            groups.append(group)
        if host not in (h for h, _ in group.hosts):
            group.hosts.append((host, item.at if item.bare else (*item.at, "host")))

    def settings(self, vendor: str) -> Any:
        """The vendor's cdnConfigurations entry as written (None when there is none)."""
        settings = self.raw.get(CONFIGS) or {}
        return settings.get(vendor) if isinstance(settings, Mapping) else None


def _host_like(value: str) -> bool:
    """A host name, optionally with a path: no scheme (it never worked), no blanks inside."""
    return bool(value.strip()) and "://" not in value and not any(c.isspace() for c in value.strip())
