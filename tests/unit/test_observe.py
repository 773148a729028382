"""Pure parts of what operators see: EMF documents, message ages, and why a change routes nowhere."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
from hypothesis import given, settings
from hypothesis import strategies as st

from s3purge.config import parse
from s3purge.metrics import CDN_METRICS, SERVICE_METRICS, documents, oldest_age_ms
from s3purge.model import Change
from s3purge.unrouted import why_unrouted

EMF = json.loads((Path(__file__).parent / "emf.schema.json").read_text())
CONFIG = parse(
    """
cdns:
  edge: {vendor: http, endpoints: ["http://127.0.0.1:9"]}
  cf: {vendor: http, endpoints: ["http://127.0.0.1:9"]}
buckets:
  site:
    - {cdn: edge, hosts: [h], prefix: public/, suffix: .html}
    - {cdn: cf, hosts: [h], prefix: public/, events: [removed]}
  assets:
    - {cdn: edge, hosts: [h]}
"""
)

counts = st.integers(min_value=0, max_value=10**6)
fresh = st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=1, max_size=100)
cdn_values = st.fixed_dictionaries(
    {name: counts for name in CDN_METRICS if name != "TimeToFresh"}, optional={"TimeToFresh": fresh}
)


@settings(deadline=None, max_examples=50)  # jsonschema is slow on a busy machine; no timing here
@given(
    per_cdn=st.dictionaries(st.text(min_size=1, max_size=40), cdn_values, max_size=5),
    service=st.fixed_dictionaries({"Skipped": counts, "BadMessages": counts}, optional={"OldestMessageAge": counts}),
)
def test_every_document_is_valid_emf(per_cdn: dict[str, dict[str, float]], service: dict[str, float]) -> None:
    docs = documents(per_cdn, service, "purger", 1_764_158_400_000)
    assert len(docs) == len(per_cdn) + 1
    for doc in json.loads(json.dumps(docs)):  # what the log line holds
        jsonschema.validate(doc, EMF)
        (directive,) = doc["_aws"]["CloudWatchMetrics"]
        for dimension in directive["Dimensions"][0]:
            assert isinstance(doc[dimension], str)
        for metric in directive["Metrics"]:
            assert metric["Name"] in {*CDN_METRICS, *SERVICE_METRICS}
            assert isinstance(doc[metric["Name"]], int | float | list)


def test_the_oldest_message_age_reads_both_attribute_spellings() -> None:
    lambda_records = [{"attributes": {"SentTimestamp": "1000"}}, {"attributes": {"SentTimestamp": "4000"}}]
    boto_messages = [{"Attributes": {"SentTimestamp": "2500"}}, {"Attributes": {}}, {"Body": "x"}]

    assert oldest_age_ms(lambda_records, 10_000) == 9_000
    assert oldest_age_ms(boto_messages, 10_000) == 7_500
    assert oldest_age_ms([], 10_000) is None
    assert oldest_age_ms([{"attributes": {"SentTimestamp": "20000"}}], 10_000) == 0  # clocks disagree: never < 0


def test_why_a_change_routes_nowhere() -> None:
    def why(bucket: str, key: str, event: str = "created", cdns: frozenset[str] | None = None) -> str | None:
        return why_unrouted(Change(bucket, key, event, "m", cdns=cdns), CONFIG)  # type: ignore[arg-type]

    assert why("site", "public/a.html") is None
    assert why("assets", "anything") is None
    assert why("typo", "a.html") == "no route for bucket 'typo'; configured: assets, site"
    assert why("site", "private/a.html") == (
        "created key 'private/a.html' matches no route of bucket 'site' (edge: prefix 'public/'; "
        "cf: events removed only)"
    )
    assert why("site", "public/a.css") == (
        "created key 'public/a.css' matches no route of bucket 'site' (edge: suffix '.html'; cf: events removed only)"
    )
    assert why("assets", "x", cdns=frozenset({"cf"})) == (
        "created key 'x' matches no route of bucket 'assets' (edge: not asked for (retry of cf))"
    )


@settings(deadline=None)
@given(st.text(min_size=1, max_size=30), st.text(max_size=60))
def test_a_change_is_explained_exactly_when_nothing_routes_it(bucket: str, key: str) -> None:
    from s3purge.mapping import targets

    change = Change(bucket, key, "created", "m")
    assert (why_unrouted(change, CONFIG) is None) == any(True for _ in targets(change, CONFIG))
