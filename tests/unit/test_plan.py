"""Planning: dedupe within a batch of changes, pack under item and byte limits; pure."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from s3purge.config import parse
from s3purge.model import Change, Target
from s3purge.plan import pack, plan
from s3purge.providers.base import Limits

CONFIG = """
cdns:
  varnish: {vendor: http, endpoints: ["http://127.0.0.1:1"]}
  nginx: {vendor: http, endpoints: ["http://127.0.0.1:2"], scheme_in_cache_key: true}
buckets:
  site:
    - {cdn: varnish, hosts: [a.example], schemes: both, index_documents: [index.html]}
    - {cdn: nginx, hosts: [a.example], schemes: both}
"""


def test_duplicates_collapse_and_keep_every_source() -> None:
    changes = [Change("site", "x.html", "created", "m1"), Change("site", "x.html", "created", "m2")]
    planned = plan(changes, parse(CONFIG))
    varnish = [b for b in planned.batches if b.cdn == "varnish"]
    # Varnish keys on Host + path: http and https are one object, purged once
    assert [b.values for b in varnish] == [("https://a.example/x.html",)]
    assert varnish[0].sources == {"m1", "m2"}
    nginx = sorted(b.values for b in planned.batches if b.cdn == "nginx")
    assert nginx == [("http://a.example/x.html",), ("https://a.example/x.html",)]
    assert planned.routed == {"m1": {"varnish", "nginx"}, "m2": {"varnish", "nginx"}}


def test_index_document_and_directory_overlap_dedupes() -> None:
    changes = [Change("site", "d/index.html", "created", "m1"), Change("site", "d/index.html", "removed", "m2")]
    values = [b.values[0] for b in plan(changes, parse(CONFIG)).batches if b.cdn == "varnish"]
    assert values == ["https://a.example/d/index.html", "https://a.example/d/", "https://a.example/d"]


def test_sources_routed_nowhere_are_recorded_empty() -> None:
    planned = plan([Change("elsewhere", "x", "created", "m9")], parse(CONFIG))
    assert planned.batches == [] and planned.routed == {"m9": set()}


def size(value: str) -> int:
    return len(json.dumps(value)) + 1


targets = st.lists(st.text(min_size=1, max_size=60), min_size=1, max_size=300, unique=True)


@given(targets, st.integers(1, 50), st.one_of(st.none(), st.integers(70, 2000)))
def test_packing_respects_limits_and_loses_nothing(values: list[str], max_items: int, max_bytes: int | None) -> None:
    group = [Target("c", "purge", "url", v) for v in values]
    sources = {t: {f"s-{i}"} for i, t in enumerate(group)}
    batches = pack(group, sources, Limits(max_items=max_items, max_bytes=max_bytes), size)
    packed = [v for b in batches for v in b.values]
    assert sorted(packed) == sorted(values)  # every target in exactly one batch
    for batch in batches:
        assert len(batch.values) <= max_items
        if max_bytes is not None and len(batch.values) > 1:
            assert sum(size(v) for v in batch.values) <= max_bytes
        assert batch.sources == {s for v in batch.values for s in sources[Target("c", "purge", "url", v)]}


@given(st.integers(1, 2000), st.integers(1, 300))
def test_item_limited_packing_is_optimal(n: int, max_items: int) -> None:
    group = [Target("c", "purge", "url", f"https://h/{i}") for i in range(n)]
    batches = pack(group, {t: {"s"} for t in group}, Limits(max_items=max_items), size)
    assert len(batches) == -(-n // max_items)
