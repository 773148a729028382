"""choose.py: a change with URLs and tags keeps one of the two whole, whichever the burst pays less for."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from s3purge.choose import choose, paid_items
from s3purge.config import parse
from s3purge.mapping import targets
from s3purge.model import Change, Target

CONFIG = parse(
    "cdns:\n  cf: {vendor: cloudfront, distribution_ids: [E1], prefix_threshold: 3}\n"
    "  cl: {vendor: cloudflare, zone_id: '023e105f4ecef8ad9ca31a8372d0c353', api_token: t}\n"
    "buckets:\n  site:\n"
    "    - {cdn: cf, hosts: [h.example], tags: ['{dirname}', 'k:{stem}']}\n"
    "    - {cdn: cl, hosts: [h.example], tags: ['{dirname}']}\n"
)
KEYS = st.lists(st.builds("{}/{}.html".format, st.sampled_from("abc"), st.sampled_from("xyzw")), unique=True)


@settings(max_examples=150, deadline=None)
@given(KEYS)
def test_each_change_keeps_all_its_urls_or_all_its_tags_at_the_lower_price(keys: list[str]) -> None:
    changes = [Change("site", key, "created", f"m{i}") for i, key in enumerate(keys)]
    per_change = [(c.source, list(targets(c, CONFIG))) for c in changes]
    chosen = choose([(source, found, frozenset()) for source, found in per_change], CONFIG)  # no metadata
    kept: dict[str, set[Target]] = {}
    for target, source in chosen.pairs:
        kept.setdefault(source, set()).add(target)
    for source, found in per_change:
        cf = {t for t in found if t.cdn == "cf"}
        urls, tags = {t for t in cf if t.kind == "url"}, {t for t in cf if t.kind == "tag"}
        mine = kept.get(source, set())
        assert mine & cf in (urls, tags)  # one whole side, never a mix, never nothing
        assert {t for t in found if t.cdn == "cl"} <= mine  # not billed per item: both, as before
    if changes:
        (decision,) = chosen.decisions
        cf_kept = [t for t, _ in chosen.pairs if t.cdn == "cf"]
        cf_all = [t for _, found in per_change for t in found if t.cdn == "cf"]
        by_urls = paid_items("cf", [t for t in cf_all if t.kind == "url"], CONFIG)[0]
        by_tags = paid_items("cf", [t for t in cf_all if t.kind == "tag"], CONFIG)[0]
        assert paid_items("cf", cf_kept, CONFIG)[0] == min(by_urls, by_tags)
        assert decision.rule == ("tags" if cf_kept[0].kind == "tag" else "paths")
