"""Where a problem is in a config document, shared by the config loader and the legacy converter.

A location is the path of keys and list indexes from the top of the document. Both the new
format (s3purge.config) and the original scripts' format (s3purge.legacy) report problems at
locations, and the loader recognises a legacy document before converting it: that shared
vocabulary lives here so neither module imports the other to use it.
"""

from collections.abc import Mapping
from typing import Any

Loc = tuple[str | int, ...]
Problems = list[tuple[Loc, str]]
"""Each problem found in a document, at its location."""
LEGACY_MARK = "cdnDomains"
"""Top-level key of the original scripts' config format (converted by s3purge.legacy)."""


def is_legacy(raw: Any) -> bool:
    """True for a document in the original scripts' format."""
    return isinstance(raw, Mapping) and LEGACY_MARK in raw


def dotted(loc: Loc) -> str:
    """("cdns", "main", "routes", 0) -> "cdns.main.routes[0]"."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
