"""Vendors' published API specs (extracts), kept with the tests so a fresh clone can run them.

Copied from the project's shared vendor-specs; SOURCES.md here says where each came from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent


def load(name: str) -> Any:
    """A spec file by name, e.g. load("akamai-ccu-v3.openapi.json")."""
    return json.loads((HERE / name).read_text(encoding="utf-8"))
