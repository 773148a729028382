"""Vendors' published API specs (extracts), kept with the tests so a fresh clone can run them.

Copied from the project's shared vendor-specs; SOURCES.md here says where each came from.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import jsonschema

HERE = Path(__file__).parent


def load(name: str) -> Any:
    """A spec file by name, e.g. load("akamai-ccu-v3.openapi.json")."""
    return json.loads((HERE / name).read_text(encoding="utf-8"))


_validators: dict[int, tuple[Any, jsonschema.protocols.Validator]] = {}
_lock = threading.Lock()


def validate(instance: Any, schema: Any) -> None:
    """jsonschema.validate (same checks, same best-match error), the schema checked and its validator
    built once: validate() does both per call, about 0.75 ms an answer, which in a benchmark makes
    the emulator's process, not the vendor's latency, bound the calls per second."""
    with _lock:
        kept = _validators.get(id(schema))
        if kept is None or kept[0] is not schema:  # the schema object itself is kept: its id stays its own
            cls = jsonschema.validators.validator_for(schema)
            cls.check_schema(schema)
            kept = _validators[id(schema)] = (schema, cls(schema))
    error = jsonschema.exceptions.best_match(kept[1].iter_errors(instance))
    if error is not None:
        raise error
