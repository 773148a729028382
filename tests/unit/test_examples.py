"""The example configs in examples/ load (the legacy one through the converter)."""

from __future__ import annotations

from pathlib import Path

import pytest

from s3purge.config import load

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.yml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_loads(path: Path) -> None:
    config = load(path)
    assert config.cdns and config.buckets


def test_there_are_examples() -> None:
    assert {p.name for p in EXAMPLES} >= {"multicdn.config.yml", "legacy.multicdn.config.yml"}
