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


TAGGED = """
cdns:
  edge: {vendor: http, endpoints: ["http://127.0.0.1:1"]}
  other: {vendor: http, endpoints: ["http://127.0.0.1:2"]}
buckets:
  site:
    - {cdn: edge, hosts: [a.example], tags: ["{bucket}", "{dirname}"], index_documents: []}
    - {cdn: other, hosts: [a.example], prefix: b/, index_documents: []}
"""


def test_each_target_has_exactly_the_sources_it_came_from() -> None:
    # a source's targets share one record of it (plan.Sources): one growing for a shared target
    # must not leak into the others
    keys = ["a/1", "a/2", "b/3", "a/1"]
    planned = plan([Change("site", key, "created", f"m{i}") for i, key in enumerate(keys)], parse(TAGGED))
    found = {(b.cdn, b.kind, b.values): b.sources for b in planned.batches}
    assert found == {
        ("edge", "url", ("https://a.example/a/1",)): {"m0", "m3"},
        ("edge", "url", ("https://a.example/a/2",)): {"m1"},
        ("edge", "url", ("https://a.example/b/3",)): {"m2"},
        ("other", "url", ("https://a.example/b/3",)): {"m2"},
        ("edge", "tag", ("site",)): {"m0", "m1", "m2", "m3"},
        ("edge", "tag", ("a",)): {"m0", "m1", "m3"},
        ("edge", "tag", ("b",)): {"m2"},
    }
    # sources that route alike share one set of CDNs; one routed elsewhere too keeps its own
    assert planned.routed == {"m0": {"edge"}, "m1": {"edge"}, "m2": {"edge", "other"}, "m3": {"edge"}}


def test_a_source_routes_to_the_cdns_of_all_its_changes() -> None:
    changes = [Change("site", "a/1", "created", "m"), Change("site", "b/2", "created", "m")]
    changes += [Change("site", "a/3", "created", "n"), Change("site", "\ud800", "created", "n")]
    planned = plan(changes, parse(TAGGED))
    assert planned.routed == {"m": {"edge", "other"}, "n": {"edge"}}
    assert list(planned.bad_sources) == ["n"]


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
