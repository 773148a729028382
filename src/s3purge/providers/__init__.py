"""The vendor registry: built-ins by name, third-party vendors by entry point.

Vendor modules are imported only when a config names them (Lambda cold start).
Third-party packages register `name = "module:Class"` in the entry-point group
`s3purge.providers`.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from s3purge.providers.base import Provider

BUILTIN: dict[str, str] = {
    "akamai": "s3purge.providers.akamai:Akamai",
    "cloudflare": "s3purge.providers.cloudflare:Cloudflare",
    "cloudfront": "s3purge.providers.cloudfront:CloudFront",
    "edgecast": "s3purge.providers.edgecast:Edgecast",
    "fastly": "s3purge.providers.fastly:Fastly",
    "highwinds": "s3purge.providers.highwinds:Highwinds",
    "http": "s3purge.providers.http_purge:HttpPurge",
}
ENTRY_POINT_GROUP = "s3purge.providers"


def known_vendors() -> list[str]:
    from importlib.metadata import entry_points  # ~15 ms: only when a name is not built in

    return sorted({*BUILTIN, *(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))})


def provider_class(vendor: str) -> type[Provider] | None:
    """The Provider class for a vendor name, or None when no such vendor is installed."""
    target = BUILTIN.get(vendor)
    if target is None:
        from importlib.metadata import entry_points

        found = entry_points(group=ENTRY_POINT_GROUP, name=vendor)
        if not found:
            return None
        target = next(iter(found)).value
    module, _, cls = target.partition(":")
    provider: type[Provider] = getattr(import_module(module), cls)
    return provider
