"""The original scripts' `multicdn.config.yml` -> the s3purge config format. Pure.

The legacy format (Globaldots/s3-trigger-purge-cdn):

    cdnDomains:                          # vendor -> bucket -> items
      edgecast:
        mybucket:
          - action: load                 # sets the action of this list's hosts (same platform)
          - host: www.acme.co
        mybucket-02:
          - {host: www.acme.it, platform: large}
    cdnConfigurations:                   # vendor -> credentials, and the default platform
      edgecast: {token: ..., hex: ABCDEF, platform: small}

`platform` is the Cloudflare zone id, the Akamai network or the Edgecast platform, so each
platform in use becomes its own CDN account. Every route purges both schemes: the old
scripts only ever purged http://, and vendors whose cache key ignores the scheme collapse
the pair in the plan. Keys are decoded and re-encoded by the core, never used raw. Routes
take the new format's defaults, so index documents (`index.html`) purge their directory.

`convert` also returns, for every location in the new document, the legacy location it
came from, so a validation error can name the line the user actually wrote.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from s3purge.locations import LEGACY_MARK, Loc, dotted
from s3purge.secrets import SOURCES

Platform = tuple[str | None, Loc]
"""A platform's option value (None: none) and where it was written."""
DOMAINS, CONFIGS = LEGACY_MARK, "cdnConfigurations"
ITEM_FIELDS = ("host", "platform", "action")
ALL = "*"
"""Key of the action an item without host or platform gives the whole list."""


@dataclass(frozen=True)
class Vendor:
    """How one vendor's legacy settings map onto its s3purge options."""

    platform_option: str | None = None
    """The account option `platform` sets; None: platform meant nothing to this vendor."""
    platforms: Mapping[str, str] | None = None
    """Legacy platform names -> option values; None: any value is taken as written."""
    default_platform: str | None = None
    renames: Mapping[str, str] = field(default_factory=dict)
    ignored: Mapping[str, str] = field(default_factory=dict)
    """Legacy keys with no meaning any more -> why."""
    actions: Mapping[str, str] = field(default_factory=dict)
    default_action: str = "purge"
    ids: frozenset[str] = frozenset()
    """Options that are identifiers: a number written unquoted in YAML is taken as text."""
    credentials: tuple[str, ...] = ()
    assumed: Mapping[str, Any] = field(default_factory=dict)
    """Options used when none of `credentials` is given (the old scripts read vendors/*/config.py)."""


_CCU_V2 = "Akamai's CCU v2 login, retired; Fast Purge v3 signs with EdgeGrid credentials"
VENDORS: dict[str, Vendor] = {
    "akamai": Vendor(
        platform_option="network",
        platforms={"production": "production", "staging": "staging"},
        default_platform="production",
        renames={"edgerc_file": "edgerc", "edgerc_path": "edgerc", "edgerc_section": "section"},
        ignored={
            "user": _CCU_V2,
            "password": _CCU_V2,
            "queue": "a CCU v2 setting; Fast Purge has no queues",
            "use_arl": "cache keys are no longer looked up with a HEAD per URL; a URL purge covers both schemes",
        },
        actions={"purge": "invalidate", "remove": "delete"},
        default_action="invalidate",
        credentials=("edgerc", "host", "client_token", "client_secret", "access_token"),
        assumed={"edgerc": "~/.edgerc", "section": "default"},
    ),
    "cloudflare": Vendor(
        platform_option="zone_id",
        renames={"apikey": "api_key", "token": "api_token"},
        ids=frozenset({"zone_id"}),
        credentials=("api_token", "api_key"),
        assumed={"api_token": {"env": "CLOUDFLARE_API_TOKEN"}},
    ),
    "edgecast": Vendor(
        platform_option="platform",
        platforms={
            "large": "http-large",
            "small": "http-small",
            "adn": "adn",
            "flash": "flash",
            **{name: name for name in ("http-large", "http-small")},
        },
        default_platform="small",  # the old client's default
        renames={"hex": "account"},
        ids=frozenset({"account"}),
        credentials=("token",),
        assumed={"token": {"env": "EDGECAST_TOKEN"}},
    ),
    "fastly": Vendor(
        renames={"token": "api_token"},
        credentials=("api_token",),
        assumed={"api_token": {"env": "FASTLY_API_TOKEN"}},
    ),
    "highwinds": Vendor(
        renames={"user": "username", "token": "api_token", "account": "account_hash"},
        ids=frozenset({"account_hash"}),
        credentials=("username", "password", "api_token"),
        assumed={"api_token": {"env": "HIGHWINDS_API_TOKEN"}},
    ),
}


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
    converter = _Converter(raw)
    converter.run()
    if converter.problems:
        raise LegacyError(converter.problems)
    return Conversion(converter.document(), converter.origins, converter.notes)


def relocate(problems: Iterable[tuple[Loc, str]], origins: Mapping[Loc, Loc]) -> list[tuple[Loc, str]]:
    """New-format problems -> problems at the legacy location each came from."""
    moved = []
    for loc, message in problems:
        end = next(end for end in range(len(loc), -1, -1) if loc[:end] in origins or end == 0)
        rest = dotted(loc[end:])
        moved.append((origins.get(loc[:end], ()), f"{rest}: {message}" if rest else message))
    return moved


@dataclass
class _Group:
    """One route being built: hosts of one list sharing account, action and path."""

    account: tuple[str, str | None]
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


class _Converter:
    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw
        self.problems: list[tuple[Loc, str]] = []
        self.notes: list[tuple[Loc, str]] = []
        self.origins: dict[Loc, Loc] = {(): (), ("buckets",): (DOMAINS,)}
        self.accounts: dict[tuple[str, str | None], Loc] = {}
        """(vendor, platform option value) -> where that platform was first named."""
        self.groups: dict[str, list[_Group]] = {}
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

    def _add_host(
        self,
        vendor: str,
        bucket: str,
        item: _Item,
        platform: Platform,
        action: tuple[str, Loc],
    ) -> None:
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
            group = _Group(account, name, prefix, item.at, action[1], platform[1])
            groups.append(group)
        if host not in (h for h, _ in group.hosts):
            group.hosts.append((host, item.at if item.bare else (*item.at, "host")))

    # --- assembling the new document ----------------------------------------------
    def document(self) -> dict[str, Any]:
        names = self._names()
        cdns = {names[account]: self._account(account, names[account]) for account in self.accounts}
        buckets: dict[str, list[dict[str, Any]]] = {}
        for bucket, groups in self.groups.items():
            self.origins.setdefault(("buckets", bucket), groups[0].at[:3])
            buckets[bucket] = [self._route(("buckets", bucket, i), g, names) for i, g in enumerate(groups)]
        return {"cdns": cdns, "buckets": buckets}

    def _names(self) -> dict[tuple[str, str | None], str]:
        """The vendor's name for its default platform (or its only one), vendor-platform for others."""
        names = {}
        for vendor, platform in self.accounts:
            variants = [p for v, p in self.accounts if v == vendor]
            default = self.defaults[vendor][0]
            bare = platform == default or (default not in variants and platform == variants[0])
            names[(vendor, platform)] = vendor if bare else f"{vendor}-{platform}"
        return names

    def _account(self, account: tuple[str, str | None], name: str) -> dict[str, Any]:
        vendor, platform = account
        spec = VENDORS[vendor]
        section = (CONFIGS, vendor) if isinstance(self._settings(vendor), Mapping) else (DOMAINS, vendor)
        here: Loc = ("cdns", name)
        self.origins[here] = section
        self.origins[(*here, "vendor")] = (DOMAINS, vendor)
        options: dict[str, Any] = {"vendor": vendor}
        for key, value in (self._settings(vendor) or {}).items():
            if key in ("platform", spec.platform_option):
                continue  # the platform makes the account; set below
            if key in spec.ignored:
                self._note_once((CONFIGS, vendor, key), f"ignored: {spec.ignored[key]}")
                continue
            option = spec.renames.get(key, key)
            if option in spec.ids and isinstance(value, int) and not isinstance(value, bool):
                value = str(value)
            options[option] = value
            self.origins[(*here, option)] = (CONFIGS, vendor, key)
        if spec.platform_option is not None and platform is not None:
            options[spec.platform_option] = platform
            self.origins[(*here, spec.platform_option)] = self.accounts[account]
        if spec.credentials and not any(options.get(k) is not None for k in spec.credentials):
            options.update(spec.assumed)
            shown = ", ".join(f"{k}: {_show(v)}" for k, v in spec.assumed.items())
            self._note_once(section, f"no credentials given (the old scripts read vendors/{vendor}/config.py): {shown}")
        return options

    def _settings(self, vendor: str) -> Any:
        settings = self.raw.get(CONFIGS) or {}
        return settings.get(vendor) if isinstance(settings, Mapping) else None

    def _route(self, here: Loc, group: _Group, names: Mapping[tuple[str, str | None], str]) -> dict[str, Any]:
        self.origins[here] = group.at
        self.origins[(*here, "cdn")] = group.account_at
        self.origins[(*here, "action")] = group.action_at
        self.origins[(*here, "hosts")] = group.hosts[0][1]
        for j, (_, host_at) in enumerate(group.hosts):
            self.origins[(*here, "hosts", j)] = host_at
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

    def _note_once(self, at: Loc, message: str) -> None:
        if (at, message) not in self.notes:
            self.notes.append((at, message))


def _host_like(value: str) -> bool:
    """A host name, optionally with a path: no scheme (it never worked), no blanks inside."""
    return bool(value.strip()) and "://" not in value and not any(c.isspace() for c in value.strip())


def _show(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {v}" for k, v in value.items()) + "}"
    return str(value)


# --- writing a new-format file -------------------------------------------------------
class _Dumper(yaml.SafeDumper):
    """Block style, except short lists of names and secret references, which read better inline."""

    def flow_names(self, data: Any) -> yaml.SequenceNode:
        flow = all(isinstance(item, str | int | float) for item in data)
        return self.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)

    def flow_references(self, data: Any) -> yaml.MappingNode:
        flow = bool(data) and set(data) <= {*SOURCES, "key"}
        return self.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=flow)


_Dumper.add_representer(list, _Dumper.flow_names)
_Dumper.add_representer(dict, _Dumper.flow_references)

HEADER = """\
# s3purge config, migrated from the original scripts' format (see docs/legacy-config.md).
# Secrets are as they were written: consider references such as {env: NAME} or {ssm: /path}.
"""


def dump(document: Mapping[str, Any], notes: Iterable[str] = ()) -> str:
    """A new-format document as readable YAML; secrets stay exactly as written, never resolved."""
    parts = [HEADER + "".join(f"# note: {note}\n" for note in notes)]
    for key, value in document.items():
        parts.append(yaml.dump({key: value}, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120))
    return "\n".join(parts)
