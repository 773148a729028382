"""Writing a converted document as a new-format file: readable YAML, secrets exactly as written."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from s3purge.secrets import SOURCES


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
