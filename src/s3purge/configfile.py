"""The config file: its text, read safely, and its parsed tree, also as JSON that needs no YAML parser.

yamlfile.py parses the text into a Tree. Deploy ships that tree as JSON beside the config
(`multicdn.config.yml.tree.json`), so the function's cold start reads it with msgspec and
never imports PyYAML (its import compiles large regexes: ~12 ms of every cold start). The
JSON carries the text it was parsed from and is used for exactly that text only: the same
data, lines and problems, so the same config and the same error messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from s3purge.errors import ConfigError
from s3purge.locations import Loc

MAX_BYTES = 1_000_000
"""Largest config file read (a config with hundreds of buckets is a few hundred kB)."""
TREE_SUFFIX = ".tree.json"
"""The parsed tree's file: the config's name plus this."""


@dataclass
class Tree:
    """The data of a YAML document, where each part of it is written, and what is wrong in its shape."""

    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)
    problems: list[tuple[Loc, str]] = field(default_factory=list)
    """Duplicate keys: reported with the document's other problems."""


def read_text(path: Any) -> str:
    """The file's text: at most MAX_BYTES of UTF-8, or a one-line ConfigError."""
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_BYTES + 1)
    except OSError as error:
        raise ConfigError(f"{path}: cannot read config file ({error.strerror})") from None
    if len(data) > MAX_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_BYTES:,} bytes; not a config file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        bad = data[error.start]
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{bad:02x} at offset {error.start})") from None


def tree_json(tree: Tree, text: str) -> bytes | None:
    """`tree`, parsed from `text`, as JSON; None where JSON would not give back the very same data
    (YAML dates, binary, sets, NaN, keys that are not strings): such a config is parsed as YAML."""
    document = {
        "text": text,
        "data": tree.data,
        "lines": [[list(loc), line] for loc, line in tree.lines.items()],
        "problems": [[list(loc), message] for loc, message in tree.problems],
    }
    try:
        encoded = msgspec.json.encode(document)
    except (msgspec.EncodeError, OverflowError, TypeError, ValueError):
        return None
    back = from_json(encoded, text)
    if back is None or not _same(back.data, tree.data) or back.lines != tree.lines or back.problems != tree.problems:
        return None
    return encoded


def from_json(encoded: bytes, text: str) -> Tree | None:
    """The tree stored in `encoded` if it was parsed from `text`, else None."""
    try:
        document = msgspec.json.decode(encoded)
        if not isinstance(document, dict) or document.get("text") != text:
            return None
        lines = {tuple(loc): line for loc, line in document["lines"]}
        problems = [(tuple(loc), message) for loc, message in document["problems"]]
        return Tree(document["data"], lines, problems)
    except (msgspec.DecodeError, KeyError, TypeError, ValueError):
        return None


def shipped_tree(path: Path, text: str) -> Tree | None:
    """The tree shipped beside the config at `path` for its text `text`, if there is one."""
    try:
        encoded = path.with_name(path.name + TREE_SUFFIX).read_bytes()
    except OSError:
        return None
    return from_json(encoded, text)


def _same(a: Any, b: Any) -> bool:
    """Equal, with the same types throughout: JSON turns a date or a number key into a string."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return len(a) == len(b) and all(type(k) is str and k in b and _same(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        return len(a) == len(b) and all(map(_same, a, b))
    return bool(a == b)
