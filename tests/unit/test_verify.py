"""Verification's pure decisions: what must be served, what a probe shows, when a newer write wins."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from s3purge.config import parse
from s3purge.errors import ConfigError
from s3purge.freshness import (
    Current,
    Expected,
    Probe,
    Seen,
    by_date,
    expected,
    identified,
    is_fresh,
    probes,
    superseded,
)
from s3purge.mapping import targets
from s3purge.model import Change, Outcome, Report
from s3purge.probing import Prober
from s3purge.verify import second_purges

AT = datetime(2026, 11, 26, 12, 0, 0, 500000, tzinfo=UTC)
PUT = Expected(gone=False, etag="abc", event_time=AT)
CONFIG = """\
cdns:
  edge: {vendor: http, endpoints: ["http://127.0.0.1:1"], second_purge: 2}
  cf: {vendor: cloudflare, zone_id: 023e105f4ecef8ad9ca31a8372d0c353, api_token: t}
buckets:
  site:
    - {cdn: edge, hosts: [www.example.test, example.test], schemes: both, index_documents: [index.html],
       verify: {via: ["http://10.0.0.5:6081/", "http://10.0.0.6:6081"]}}
    - {cdn: cf, hosts: [www.example.test], verify: {}}
"""


def test_the_event_names_what_must_be_served() -> None:
    put = Change("site", "a", "created", "m", etag="abc", version_id="v1", event_time="2026-11-26T12:00:00.500Z")
    assert expected(put) == Expected(False, "abc", "v1", AT)
    assert expected(Change("site", "a", "removed", "m")) == Expected(gone=True)
    assert expected(Change("site", "a", "created", "m")) is None  # no identity: cannot be verified


@pytest.mark.parametrize(
    ("seen", "fresh"),
    [
        (Seen(200, '"abc"'), True),
        (Seen(200, 'W/"abc"'), True),  # weakened by a gzipping cache: the same object
        (Seen(200, '"old"'), False),
        (Seen(200, '"old"', last_modified=AT.replace(microsecond=0)), False),  # same second: not proof
        (Seen(200, '"new"', last_modified=AT.replace(microsecond=0) + timedelta(seconds=1)), True),  # newer write
        (Seen(404), False),
        (Seen(503), False),
        (Seen(None, error="ConnectTimeout"), False),
    ],
)
def test_a_probe_is_fresh_when_it_shows_the_event_object_or_a_newer_one(seen: Seen, fresh: bool) -> None:
    assert is_fresh(PUT, seen) is fresh


@pytest.mark.parametrize("served", [None, '"abc-gzip"', '"abc--gzip"', 'W/"abc-gzip"', '"5f1a-1b3c"'])
def test_a_copy_without_a_comparable_etag_is_judged_by_its_date_against_s3(served: str | None) -> None:
    written = AT.replace(microsecond=0)
    s3 = Current(True, '"abc"', last_modified=AT)  # S3 still holds the event's object
    copy = Seen(200, served, last_modified=written)
    assert not identified(PUT, copy) and not is_fresh(PUT, copy)
    assert by_date(copy, s3) is True  # S3's object's date: it is the event's object
    assert by_date(Seen(200, served, last_modified=written - timedelta(seconds=1)), s3) is False  # older: stale
    assert by_date(Seen(200, served), s3) is None  # no date: not proved, never stale
    assert by_date(copy, None) is None  # S3 could not say


def test_s3_shaped_etags_are_compared_as_they_are() -> None:
    s3_put = Expected(gone=False, etag="d41d8cd98f00b204e9800998ecf8427e")
    assert identified(s3_put, Seen(200, '"9e107d9d372bb6826bd81d3542a419d6"'))  # another object: may be stale
    assert identified(s3_put, Seen(200, '"9e107d9d372bb6826bd81d3542a419d6-3"'))  # a multipart one
    assert identified(s3_put, Seen(200, '"d41d8cd98f00b204e9800998ecf8427e"'))
    assert identified(s3_put, Seen(404)) and identified(Expected(gone=True), Seen(200))  # the status decides


def test_a_version_id_decides_where_both_sides_have_one() -> None:
    versioned = Expected(gone=False, etag="abc", version_id="v2")
    assert is_fresh(versioned, Seen(200, '"abc"', "v2"))
    assert not is_fresh(versioned, Seen(200, '"abc"', "v1"))  # same bytes re-uploaded, older version served


def test_a_delete_is_fresh_once_the_cdn_serves_nothing() -> None:
    gone = Expected(gone=True, event_time=AT)
    assert [is_fresh(gone, Seen(s)) for s in (403, 404, 410, 200)] == [True, True, True, False]


def test_s3_decides_whether_a_newer_write_superseded_the_event() -> None:
    assert not superseded(PUT, Current(True, '"abc"'))  # S3 still has the event's object: the copy is stale
    assert superseded(PUT, Current(True, '"def"'))  # overwritten since: a later event owns it
    assert superseded(PUT, Current(False))  # deleted since
    assert superseded(Expected(gone=True), Current(True, '"x"'))  # re-created after the delete
    assert not superseded(Expected(gone=True), Current(False))


def test_probes_go_to_each_address_with_the_public_host_once_per_url() -> None:
    config = parse(CONFIG)
    route = config.routes("site")[0]
    found = probes(route, Change("site", "docs/index.html", "created", "m"))
    assert {(urlsplit(p.url).netloc, urlsplit(p.url).path, p.host) for p in found} == {
        (node, path, host)
        for node in ("10.0.0.5:6081", "10.0.0.6:6081")
        for path in ("/docs/index.html", "/docs/", "/docs")
        for host in ("www.example.test", "example.test")
    }
    public = probes(config.routes("site")[1], Change("site", "a b.css", "created", "m"))
    assert [(p.url, p.host) for p in public] == [  # each spelling a cache may hold
        ("https://www.example.test/a%20b.css", "www.example.test"),
        ("https://www.example.test/a+b.css", "www.example.test"),
    ]


def test_a_cache_keyed_on_the_scheme_is_probed_at_each_scheme() -> None:
    config = parse(CONFIG)
    change = Change("site", "a.css", "created", "m")
    via = config.routes("site")[0]  # schemes: both
    assert {(p.url, p.host, p.scheme) for p in probes(via, change, keyed_on_scheme=True)} == {
        (f"{node}/a.css", host, scheme)  # the scheme signalled as the http vendor's purge does
        for node in ("http://10.0.0.5:6081", "http://10.0.0.6:6081")
        for host in ("www.example.test", "example.test")
        for scheme in ("https", "http")
    }
    assert {p.scheme for p in probes(via, change)} == {None}  # one copy for both schemes: probed once
    public = msgspec.structs.replace(config.routes("site")[1], schemes="both")
    assert [p.url for p in probes(public, change, keyed_on_scheme=True)] == [
        "https://www.example.test/a.css",
        "http://www.example.test/a.css",
    ]


@given(st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40))
def test_every_probe_is_a_url_the_route_purged(key: str) -> None:
    config = parse(CONFIG)
    route = config.routes("site")[1]
    change = Change("site", key, "created", "m")
    purged = {t.value for t in targets(change, config) if t.cdn == "cf" and t.kind == "url"}
    assert {p.url for p in probes(route, change)} == purged


def test_a_probe_that_cannot_be_sent_is_no_answer_not_an_exception() -> None:
    prober = Prober()  # httpx refuses the URL before any connection: no server needed
    seen = prober.probe(Probe("http://127.0.0.1:9/" + "x" * 70_000, "www.example.test"), time.monotonic() + 5)
    prober.close()
    assert (seen.status, seen.error) == (None, "InvalidURL: URL too long")
    assert not is_fresh(PUT, seen) and seen.describe() == "no answer (InvalidURL: URL too long)"


def test_a_last_modified_without_a_zone_compares_with_the_event_time() -> None:
    from s3purge.probing import _http_time

    when = _http_time("Thu, 26 Nov 2026 12:00:01 -0000")  # parses naive: compared, it would raise
    assert when == AT.replace(microsecond=0) + timedelta(seconds=1)
    assert is_fresh(PUT, Seen(200, None, last_modified=when))  # a newer write, as with GMT


def test_verification_needs_hosts() -> None:
    with pytest.raises(ConfigError, match=r"verify: verification probes URLs: give hosts"):
        parse(CONFIG.replace("hosts: [www.example.test], verify: {}", 'tags: ["{key}"], verify: {}'))


def test_second_purges_go_to_shielded_cdns_that_accepted_and_never_a_third() -> None:
    config = parse(CONFIG)
    first = Change("site", "a", "created", "m1")
    report = Report(changes=[first], routed={"m1": {"edge", "cf"}})
    (due,) = second_purges(report, config)[2.0]
    assert (due.cdns, due.second_purge) == (frozenset({"edge"}), True)
    assert second_purges(Report(changes=[due], routed={"m1": {"edge"}}), config) == {}


def test_no_second_purge_where_the_first_failed() -> None:
    from s3purge.model import Batch

    failed = Outcome(Batch("edge", "purge", "url", ("x",), frozenset({"m1"})), ok=False, detail="HTTP 503")
    report = Report(changes=[Change("site", "a", "created", "m1")], outcomes=[failed], routed={"m1": {"edge"}})
    assert second_purges(report, parse(CONFIG)) == {}


def test_deploy_lets_the_function_ask_s3_about_verified_buckets_only() -> None:
    from s3purge.deploy import Options
    from s3purge.deploy.iam import statements

    two = CONFIG + "  other:\n    - {cdn: edge, hosts: [o.example.test]}\n"
    grants = [s for s in statements(parse(two), Options()) if "s3:GetObject" in str(s["Action"])]
    assert [g["Resource"] for g in grants] == [[{"Fn::Sub": "arn:${AWS::Partition}:s3:::site/*"}]]
