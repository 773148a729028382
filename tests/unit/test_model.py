"""The pipeline's records as values: what planning relies on when it hashes and copies them."""

from __future__ import annotations

import gc

import msgspec
import pytest

from s3purge.model import Change, Target


def test_a_target_is_a_value_planning_can_hash_and_copy() -> None:
    a, b = Target("cf", "purge", "url", "https://h/a"), Target("cf", "purge", "url", "https://h/a")
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a != Target("cf", "purge", "tag", "https://h/a")
    with pytest.raises(AttributeError):
        a.value = "https://h/b"  # type: ignore[misc]
    assert msgspec.structs.replace(a, value="t") == Target("cf", "purge", "url", "t")
    assert repr(a) == "Target(cdn='cf', action='purge', kind='url', value='https://h/a')"  # as logs and plans show it
    assert not gc.is_tracked(a)  # only strings inside: the collector never walks the many a plan holds


def test_a_change_is_a_value_too() -> None:
    change = Change("site", "a b.html", "created", "m1", etag="e")
    narrowed = msgspec.structs.replace(change, cdns=frozenset({"cf"}), second_purge=True)
    assert narrowed == Change("site", "a b.html", "created", "m1", etag="e", cdns=frozenset({"cf"}), second_purge=True)
    assert change.cdns is None and not change.second_purge and change != narrowed
    with pytest.raises(AttributeError):
        change.key = "b"  # type: ignore[misc]
    assert repr(change).startswith("Change(bucket='site', key='a b.html', event='created', source='m1', etag='e'")
    assert not gc.is_tracked(narrowed)  # its frozenset of CDN names holds strings only: no cycle to collect
