"""Read a YAML config safely: bounded size, aliases and nesting; duplicate keys found; line numbers kept.

One parse: the node tree gives each field's line, the same tree gives the data. Whatever a file
holds, parsing it ends quickly with data or with one ConfigError line (never a traceback).
Reading the file and the tree it gives live in configfile.py, which needs no YAML parser.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

from s3purge.configfile import MAX_BYTES, Tree
from s3purge.errors import ConfigError
from s3purge.locations import Loc

MAX_NODES = 20_000
"""Most YAML nodes, counting each alias as a copy of what it names: an alias bomb stops here."""
MAX_DEPTH = 50
"""Deepest nesting of lists and mappings (a config needs about 6)."""
MERGE = "tag:yaml.org,2002:merge"


def parse(text: str, name: str) -> Tree:
    """Parse one YAML document (an empty one is None) within the limits."""
    if len(text) > MAX_BYTES:
        raise ConfigError(f"{name}: larger than {MAX_BYTES:,} characters; not a config file")
    loader = None
    try:
        loader = _Loader(text, name)
        root = loader.get_single_node()
        if root is None:
            return Tree(None)
        _check_size(root, name)
        tree = Tree(None)
        _walk(root, (), tree)  # before construction, which merges `<<` keys into their mappings
        tree.data = loader.construct_document(root)
        return tree
    except yaml.reader.ReaderError as error:
        where = f"character #x{error.character:04x} at offset {error.position}"
        raise ConfigError(f"{name}: not valid YAML ({where} is not allowed in YAML)") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{name}{line}: not valid YAML ({getattr(error, 'problem', None) or error})") from None
    finally:
        if loader is not None:
            loader.dispose()


class _Loader(yaml.SafeLoader):
    """SafeLoader that stops at MAX_NODES nodes (aliases counted once here) or MAX_DEPTH levels."""

    def __init__(self, text: str, name: str) -> None:
        super().__init__(text)
        self.config_name = name
        self.nodes = 0
        self.depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise ConfigError(f"{self.config_name}: more than {MAX_NODES:,} YAML nodes; not a config file")
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def fetch_more_tokens(self) -> None:
        # Checked while scanning: PyYAML's scanner slows down quadratically with flow nesting.
        if self.flow_level > MAX_DEPTH or self.depth > MAX_DEPTH:
            raise ConfigError(f"{self.config_name}: nested more than {MAX_DEPTH} levels deep; not a config file")
        super().fetch_more_tokens()


def _check_size(root: yaml.Node, name: str) -> None:
    """Refuse documents whose aliases expand past MAX_NODES, or refer to themselves."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        if id(node) in open_nodes:
            raise ConfigError(f"{name}:{node.start_mark.line + 1}: an alias refers to itself")
        open_nodes.add(id(node))
        total = 1 + sum(size(child) for child in _children(node))
        open_nodes.discard(id(node))
        if total > MAX_NODES:
            raise ConfigError(f"{name}: aliases expand to more than {MAX_NODES:,} YAML nodes; not a config file")
        sizes[id(node)] = total
        return total

    size(root)


def _children(node: yaml.Node) -> Iterator[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield key
            yield value
    elif isinstance(node, yaml.SequenceNode):
        yield from node.value


def _walk(node: yaml.Node, at: Loc, tree: Tree) -> None:
    """Record the line of every field under `at`, and every key written twice in one mapping."""
    tree.lines.setdefault(at, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key, value in node.value:
            if key.tag == MERGE or not isinstance(key, yaml.ScalarNode):
                continue  # a merge (`<<`) may override; a non-scalar key fails validation anyway
            line = key.start_mark.line + 1
            here = (*at, key.value)
            if key.value in seen:
                tree.problems.append((here, f"duplicate key (again on line {line})"))
                continue
            seen[key.value] = line
            tree.lines[here] = line
            _walk(value, here, tree)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*at, i), tree)
