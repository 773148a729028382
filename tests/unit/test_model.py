"""The pipeline's records as values: what planning relies on when it hashes and copies them."""

from __future__ import annotations

import gc

import msgspec
import pytest

from s3purge.model import Target


def test_a_target_is_a_value_planning_can_hash_and_copy() -> None:
    a, b = Target("cf", "purge", "url", "https://h/a"), Target("cf", "purge", "url", "https://h/a")
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a != Target("cf", "purge", "tag", "https://h/a")
    with pytest.raises(AttributeError):
        a.value = "https://h/b"  # type: ignore[misc]
    assert msgspec.structs.replace(a, value="t") == Target("cf", "purge", "url", "t")
    assert repr(a) == "Target(cdn='cf', action='purge', kind='url', value='https://h/a')"  # as logs and plans show it
    assert not gc.is_tracked(a)  # only strings inside: the collector never walks the many a plan holds
