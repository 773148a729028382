"""The vendor table: how each vendor's legacy settings map onto its s3purge options."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


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
