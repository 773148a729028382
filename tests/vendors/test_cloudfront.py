"""CloudFront against the moto server, through a strict gate that checks every call against the botocore model.

The gate (an Emulator) validates each CreateInvalidation body with botocore's ParamValidator
on tests/emulators/specs/cloudfront-invalidation.botocore.json, checks CloudFront's documented
limits (3,000 paths and 15 wildcards per call, path syntax, SigV4 for cloudfront/us-east-1),
can answer AWS's XML errors (moto cannot be told to), and otherwise proxies to moto.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from tenacity import wait_none

from s3purge.config import Config, parse
from s3purge.entry.cli import main
from s3purge.execute import Executor
from s3purge.model import Change, Report
from s3purge.pipeline import Pipeline
from s3purge.plan import plan
from s3purge.providers.cloudfront import CloudFront, invalidation_paths
from tests.conftest import serving
from tests.emulators.cloudfront import CloudFrontGate, distribution, parse_batch

HOST = "www.example.test"
BURST = [f"d{d}/file-{n}.html" for d in range(10) for n in range(1000)]


# --- helpers --------------------------------------------------------------------------------


def config(api_base: str, *dist_ids: str, extra: str = "", hosts: str = HOST) -> Config:
    return parse(
        f"""
cdns:
  cf:
    vendor: cloudfront
    api_base: {api_base}
    distribution_ids: [{", ".join(dist_ids)}]
    {extra}
buckets:
  site:
    - {{cdn: cf, hosts: [{hosts}], schemes: both}}
"""
    )


def changes(keys: list[str], tag: str = "m") -> list[Change]:
    return [Change("site", key, "created", f"{tag}{n}") for n, key in enumerate(keys)]


def run(cfg: Config, keys: list[str], tag: str = "m") -> Report:
    pipeline = Pipeline(cfg, Executor(backoff=wait_none()))
    try:
        return pipeline.run(changes(keys, tag), time.monotonic() + 60)
    finally:
        pipeline.executor.close()


def invalidations(boto: Any, dist_id: str) -> list[dict[str, Any]]:
    """Every invalidation moto holds for the distribution, with its batch."""
    listed = boto.cloudfront.list_invalidations(DistributionId=dist_id)["InvalidationList"].get("Items", [])
    return [boto.cloudfront.get_invalidation(DistributionId=dist_id, Id=item["Id"])["Invalidation"] for item in listed]


def paid(cfg: Config, keys: list[str]) -> int:
    provider = cfg.cdns["cf"].provider
    assert isinstance(provider, CloudFront)
    return sum(provider.paid_paths(b) for b in plan(changes(keys), cfg).batches)


@pytest.fixture
def gate(aws: Any) -> Any:
    with serving(CloudFrontGate(aws.url)) as emulator:
        yield emulator


# --- tests ----------------------------------------------------------------------------------


def test_burst_of_10000_keys_without_escalation(boto: Any, gate: CloudFrontGate) -> None:
    dist = distribution(boto.cloudfront)
    cfg = config(gate.url, dist)
    report = run(cfg, BURST)
    assert report.ok, [o.detail for o in report.failures()]
    made = invalidations(boto, dist)
    assert len(made) == 4  # ceil(10,000 / 3,000); http and https share one path
    sizes = sorted(inv["InvalidationBatch"]["Paths"]["Quantity"] for inv in made)
    assert sizes == [1000, 3000, 3000, 3000]
    sent = {p for inv in made for p in inv["InvalidationBatch"]["Paths"]["Items"]}
    assert sent == {f"/{key}" for key in BURST}
    ids = {inv["Id"] for inv in made}
    assert {re.search(r"invalidation (\w+) on", o.detail)[1] for o in report.outcomes} == ids  # type: ignore[index]
    assert paid(cfg, BURST) == 10_000


def test_burst_of_10000_keys_with_escalation(boto: Any, gate: CloudFrontGate) -> None:
    dist = distribution(boto.cloudfront)
    cfg = config(gate.url, dist, extra="prefix_threshold: 100")
    report = run(cfg, BURST)
    assert report.ok
    (made,) = invalidations(boto, dist)
    assert made["InvalidationBatch"]["Paths"]["Items"] == [f"/d{d}/*" for d in range(10)]
    assert paid(cfg, BURST) == 10
    everything = config(gate.url, dist, extra="prefix_threshold: 100\n    everything_threshold: 5000")
    assert [b.values for b in plan(changes(BURST), everything).batches] == [("https://www.example.test/",)]
    assert paid(everything, BURST) == 1


def test_below_the_threshold_every_path_is_precise(boto: Any, gate: CloudFrontGate) -> None:
    dist = distribution(boto.cloudfront)
    keys = [f"img/{n}.png" for n in range(100)]
    assert run(config(gate.url, dist, extra="prefix_threshold: 100"), keys).ok
    (made,) = invalidations(boto, dist)
    assert made["InvalidationBatch"]["Paths"]["Quantity"] == 100


def test_wildcards_are_split_15_per_invalidation(boto: Any, gate: CloudFrontGate) -> None:
    dist = distribution(boto.cloudfront)
    keys = [f"d{d:02}/{n}" for d in range(20) for n in range(3)]
    assert run(config(gate.url, dist, extra="prefix_threshold: 2"), keys).ok
    assert sorted(inv["InvalidationBatch"]["Paths"]["Quantity"] for inv in invalidations(boto, dist)) == [5, 15]


def test_a_retried_batch_reuses_its_caller_reference(boto: Any, gate: CloudFrontGate) -> None:
    from tests.emulators.base import Fault

    dist = distribution(boto.cloudfront)
    cfg = config(gate.url, dist)
    gate.faults.append(Fault(status=503))  # the first attempt fails; tenacity sends it again
    assert run(cfg, ["a.html", "b.html"]).ok
    first, retry = (parse_batch(r.body)["CallerReference"] for r in gate.requests)
    assert first == retry
    assert run(cfg, ["a.html", "b.html"]).ok  # the same messages redriven: same reference again
    assert run(cfg, ["a.html", "b.html"], tag="new").ok  # new events for the same keys: a new one
    refs = [inv["InvalidationBatch"]["CallerReference"] for inv in invalidations(boto, dist)]
    assert refs[0] == refs[1] == first != refs[2]  # AWS answers a reused reference with the first invalidation


def test_too_many_invalidations_in_progress_is_retried_and_succeeds(boto: Any, gate: CloudFrontGate) -> None:
    dist = distribution(boto.cloudfront)
    gate.busy = 1
    report = run(config(gate.url, dist), ["a.html"])
    assert report.ok, report.outcomes
    assert len(gate.requests) == 2
    (made,) = invalidations(boto, dist)
    assert made["Id"] in report.outcomes[0].detail


def test_too_many_invalidations_is_never_a_permanent_failure(boto: Any, gate: CloudFrontGate) -> None:
    dist = distribution(boto.cloudfront)
    gate.busy = 100
    (outcome,) = run(config(gate.url, dist, extra="max_attempts: 3"), ["a.html"]).outcomes
    assert (outcome.ok, outcome.retryable) == (False, True)
    assert "TooManyInvalidationsInProgress" in outcome.detail
    assert len(gate.requests) == 3


def test_unknown_distribution_is_rejected_with_a_hint(gate: CloudFrontGate) -> None:
    (outcome,) = run(config(gate.url, "EDFDVBD6EXAMPLE"), ["a.html"]).outcomes
    assert (outcome.ok, outcome.retryable) == (False, False)
    assert "NoSuchDistribution" in outcome.detail
    assert "distribution_ids" in outcome.detail
    assert len(gate.requests) == 1


def test_each_batch_goes_to_each_distribution(boto: Any, gate: CloudFrontGate) -> None:
    first, second = distribution(boto.cloudfront), distribution(boto.cloudfront)
    cfg = config(gate.url, first, second, hosts=f"{HOST}, static.example.test")
    assert run(cfg, ["a b.html"]).ok
    for dist in (first, second):
        (made,) = invalidations(boto, dist)
        # one path per spelling for 2 hosts, 2 schemes: as browsers send it, and '+' for the space
        assert made["InvalidationBatch"]["Paths"]["Items"] == ["/a%20b.html", "/a+b.html"]
    assert paid(cfg, ["a b.html"]) == 4


def test_wait_asks_again_until_completed(boto: Any, gate: CloudFrontGate) -> None:
    dist = distribution(boto.cloudfront)
    gate.in_progress = 1
    report = run(config(gate.url, dist, extra="wait: true"), ["a.html"])
    assert report.ok
    assert "COMPLETED" in report.outcomes[0].detail
    first, again = (parse_batch(r.body)["CallerReference"] for r in gate.requests)
    assert first == again


NASTY = [
    ("a b.html", "/a%20b.html"),
    ("a+b.html", "/a+b.html"),
    ("runtime~main.js", "/runtime*"),  # no invalidation matches a "~", raw or encoded (AWS)
    ("ünï/東京.html", "/%C3%BCn%C3%AF/%E6%9D%B1%E4%BA%AC.html"),
    ("100%.html", "/100%25.html"),
    ("what?.html", "/what%3F.html"),
    ("hash#1.html", "/hash%231.html"),
    ("(1),!$&'=;:@.txt", "/(1),!$&'=;:@.txt"),
    ('a[1]{x}|^`"<>\\.txt', "/a%5B1%5D%7Bx%7D%7C%5E%60%22%3C%3E%5C.txt"),
    ("star*.txt", "/star*"),  # a literal '*' cannot be escaped: a wildcard from there covers it
    ("dir*x/y.txt", "/dir*"),
]


def test_nasty_keys_are_encoded_by_cloudfront_rules(boto: Any, gate: CloudFrontGate) -> None:
    dist = distribution(boto.cloudfront)
    assert run(config(gate.url, dist), [key for key, _ in NASTY]).ok
    (made,) = invalidations(boto, dist)
    assert made["InvalidationBatch"]["Paths"]["Items"] == [path for _, path in NASTY]


def test_cli_plan_shows_escalation_and_paid_paths(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg.yml"
    cfg.write_text(
        "cdns:\n  cf: {vendor: cloudfront, distribution_ids: [E1], prefix_threshold: 2}\n"
        "buckets:\n  site: [{cdn: cf, hosts: [www.example.test]}]\n"
    )
    keys = [f"site/img/{n}.png" for n in range(3)] + ["site/solo.png"]
    result = CliRunner().invoke(main, ["plan", "--config", str(cfg), *keys])
    assert result.exit_code == 0, result.output
    assert "[cf] prefix rule: https://www.example.test/img/ (3 changed URLs in" in result.output
    assert "[cf] paid paths: 2 (a wildcard counts as one; 4 without escalation)" in result.output
    assert "<Path>/img/*</Path>" in result.output
    assert "POST https://cloudfront.amazonaws.com/2020-05-31/distribution/E1/invalidation" in result.output


def test_a_pasted_query_reaches_cloudfront_as_a_path_the_gate_accepts(
    boto: Any, gate: CloudFrontGate, tmp_path: Path
) -> None:
    dist = distribution(boto.cloudfront)
    cfg = tmp_path / "cfg.yml"
    cfg.write_text(
        f"cdns:\n  cf: {{vendor: cloudfront, api_base: '{gate.url}', distribution_ids: [{dist}]}}\n"
        f"buckets:\n  site: [{{cdn: cf, hosts: [{HOST}]}}]\n"
    )
    pasted = f"https://{HOST}/what%3F.html?v=2&q=a%2fb~"  # the key `what?.html`, asked for with a query
    result = CliRunner().invoke(main, ["purge", "--config", str(cfg), "--cdn", "cf", "--yes", pasted])
    assert result.exit_code == 0, result.output
    (made,) = invalidations(boto, dist)
    # no invalidation matches a '~' (AWS), in the query either: that path ends as a wildcard there
    assert made["InvalidationBatch"]["Paths"]["Items"] == ["/what%3F.html?v=2&q=a%2Fb*", "/what%3F.html"]
    assert gate.violations == []


# --- cache tags (#tag paths, 2026-04-29) -------------------------------------------------------


def tagged(api_base: str, dist: str, tags: str, extra: str = "", hosts: str = f"hosts: [{HOST}], ") -> Config:
    return parse(
        f"cdns:\n  cf: {{vendor: cloudfront, api_base: '{api_base}', distribution_ids: [{dist}]{extra}}}\n"
        f"buckets:\n  site:\n    - {{cdn: cf, {hosts}tags: {tags}}}\n"
    )


def test_tags_become_hash_paths_counted_one_each(boto: Any, gate: CloudFrontGate) -> None:
    dist = distribution(boto.cloudfront)
    keys = ["Shop/a.html", "shop/b.html", "a,b/c*d.html", "a,b/e.html"]
    cfg = tagged(gate.url, dist, '["{dirname}"]', hosts="")
    report = run(cfg, keys)
    assert report.ok, [o.detail for o in report.failures()]
    (made,) = invalidations(boto, dist)
    # one path per tag, case-insensitive (Shop = shop); ',' and '*' are encoded, never a separator or a wildcard
    assert made["InvalidationBatch"]["Paths"]["Items"] == ["#Shop", "#a%2Cb"]
    assert paid(cfg, keys) == 2
    assert gate.violations == []


def test_a_tag_over_256_characters_is_refused_alone(boto: Any, gate: CloudFrontGate) -> None:
    dist = distribution(boto.cloudfront)
    long = "t" * 257
    report = run(tagged(gate.url, dist, '["{dirname}", "x"]', hosts=""), [f"{long}/a.html"])
    (made,) = invalidations(boto, dist)
    assert made["InvalidationBatch"]["Paths"]["Items"] == ["#x"]
    (failure,) = report.failures()  # the long tag fails its change (permanently); the other tag is purged
    assert "257 characters once encoded; the vendor takes 256" in failure.detail and not failure.retryable


def test_gate_refuses_a_tag_cloudfront_would_not_take(gate: CloudFrontGate) -> None:
    from tests.emulators.base import Invalid
    from tests.emulators.cloudfront import check_path

    check_path("#" + "x" * 256)
    for bad in ("#" + "x" * 257, "#a,b", "#a*", "#a b", "#", "#caf\u00e9"):
        with pytest.raises(Invalid):
            check_path(bad)


BY_DIR = '["{dirname}"]'
BY_KEY = '["obj:{key}"]'


@pytest.mark.parametrize(
    ("tags", "extra", "chosen"),
    [
        (BY_DIR, "", ("tags", 10, "#d0")),  # 10 directory tags against 10,000 paths
        (BY_DIR, ", prefix_threshold: 100", ("tags", 10, "#d0")),  # 10 against 10 wildcards: tags are narrower
        (BY_KEY, "", ("paths", 10_000, "/d0/file-0.html")),  # a tag per object: exact paths, same price
        (BY_KEY, ", prefix_threshold: 100", ("paths", 10, "/d0/*")),  # 10 wildcards against 10,000 tags
    ],
    ids=["dir-tags", "dir-tags-vs-wildcards", "key-tags", "key-tags-vs-wildcards"],
)
def test_burst_is_purged_by_the_fewest_paid_paths(tags: str, extra: str, chosen: tuple[str, int, str]) -> None:
    rule, paid_paths, first = chosen
    cfg = tagged("https://cloudfront.amazonaws.com", "E1", tags, extra)
    planned = plan(changes(BURST), cfg)
    choice = [d for d in planned.decisions if d.rule in ("tags", "paths")]
    assert [d.rule for d in choice] == [rule]
    assert paid(cfg, BURST) == paid_paths
    provider = cfg.cdns["cf"].provider
    assert isinstance(provider, CloudFront)
    assert provider.paths(planned.batches[0])[0] == first


def test_tagged_burst_reaches_cloudfront_as_ten_tag_paths(boto: Any, gate: CloudFrontGate) -> None:
    dist = distribution(boto.cloudfront)
    report = run(tagged(gate.url, dist, BY_DIR), BURST)
    assert report.ok, [o.detail for o in report.failures()]
    (made,) = invalidations(boto, dist)
    assert made["InvalidationBatch"]["Paths"]["Items"] == [f"#d{d}" for d in range(10)]
    assert gate.violations == []


def test_twenty_one_root_files_are_not_everything_under_a_prefix_rule(boto: Any, gate: CloudFrontGate) -> None:
    dist = distribution(boto.cloudfront)
    keys = [f"page-{n}.html" for n in range(21)]
    cfg = config(gate.url, dist, extra="prefix_threshold: 20\n    everything_threshold: 2000")
    assert run(cfg, keys).ok
    (made,) = invalidations(boto, dist)
    assert sorted(made["InvalidationBatch"]["Paths"]["Items"]) == sorted(f"/{key}" for key in keys)
    assert paid(cfg, keys) == 21


def test_cli_plan_shows_the_tag_choice(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg.yml"
    cfg.write_text(
        "cdns:\n  cf: {vendor: cloudfront, distribution_ids: [E1]}\n"
        "buckets:\n  site: [{cdn: cf, hosts: [www.example.test], tags: ['{dirname}']}]\n"
    )
    keys = [f"site/img/{n}.png" for n in range(3)]
    result = CliRunner().invoke(main, ["plan", "--config", str(cfg), *keys])
    assert result.exit_code == 0, result.output
    assert "[cf] tags rule: img (1 paid items by tag against 3 by URL path)" in result.output
    assert "<Path>#img</Path>" in result.output and "<Path>/img/0.png</Path>" not in result.output
    assert "[cf] paid paths: 1 " in result.output


# --- tags from object metadata: an addition, never a replacement --------------------------------


WITH_METADATA = f"hosts: [{HOST}], tags_from_metadata: cache-tag, "


def from_metadata(keys: list[str], tags: str, event: str = "created", tag: str = "m") -> list[Change]:
    """Changes whose objects carry `tags` in x-amz-meta-cache-tag (removed objects carry none)."""
    metadata = (("cache-tag", tags),) if event == "created" else None
    return [Change("site", k, event, f"{tag}{n}", metadata=metadata) for n, k in enumerate(keys)]  # type: ignore[arg-type]


def planned_paths(cfg: Config, found: list[Change]) -> list[str]:
    provider = cfg.cdns["cf"].provider
    assert isinstance(provider, CloudFront)
    return sorted(p for b in plan(found, cfg).batches for p in provider.paths(b))


def test_tags_from_metadata_never_replace_the_urls_of_the_new_object() -> None:
    # 3 objects tagged product-1 now: any cached OLD copy may be tagged otherwise, or not at all;
    # only its URL surely evicts it, so the one cheap tag must not replace the 3 paths
    cfg = tagged("https://cloudfront.amazonaws.com", "E1", "[]", hosts=WITH_METADATA)
    keys = ["p/1.html", "p/2.html", "p/3.html"]
    assert planned_paths(cfg, from_metadata(keys, "product-1")) == ["#product-1", *(f"/{k}" for k in keys)]


def test_only_template_tags_replace_urls_beside_tags_from_metadata() -> None:
    cfg = tagged("https://cloudfront.amazonaws.com", "E1", '["{dirname}"]', hosts=WITH_METADATA)
    created = from_metadata(["p/1.html", "p/2.html"], "shop")
    removed = from_metadata(["p/3.html", "p/4.html", "p/5.html"], "", event="removed", tag="r")
    # created: URLs and their metadata tag, the template tag #p adds nothing they need;
    # removed: no metadata, so #p (from the key, on the old copies too) replaces their 3 paths
    assert planned_paths(cfg, created + removed) == ["#p", "#shop", "/p/1.html", "/p/2.html"]
    assert planned_paths(cfg, created) == ["#shop", "/p/1.html", "/p/2.html"]


def test_batch_too_large_halves_the_invalidation_and_loses_nothing(boto: Any, aws: Any) -> None:
    dist = distribution(boto.cloudfront)
    keys = [f"p/{n}.html" for n in range(100)]
    with serving(CloudFrontGate(aws.url, max_paths=30)) as gate:  # an account taking 30 paths a call
        report = run(config(gate.url, dist), keys)
    assert report.ok, [o.detail for o in report.failures()]
    sizes = [len(parse_batch(r.body)["Paths"]["Items"]) for r in gate.requests]
    assert sizes[:3] == [100, 50, 25]  # BatchTooLarge (413): halved until taken, never a path split
    made = invalidations(boto, dist)
    assert sorted(p for inv in made for p in inv["InvalidationBatch"]["Paths"]["Items"]) == sorted(
        f"/{k}" for k in keys
    )
    assert all(inv["InvalidationBatch"]["Paths"]["Quantity"] <= 30 for inv in made)


def test_only_the_refusing_distribution_gets_the_halves(boto: Any, aws: Any) -> None:
    # Two distributions, one call each; only the one refusing as too large is sent the halves:
    # the other already took all 100 paths (sending it the halves too paid for them twice).
    big, small = distribution(boto.cloudfront), distribution(boto.cloudfront)
    keys = [f"p/{n}.html" for n in range(100)]
    with serving(CloudFrontGate(aws.url, max_paths=30)) as gate:
        report = run(config(gate.url, big, small), keys)
    assert report.ok, [o.detail for o in report.failures()]
    for dist in (big, small):
        paths = [p for inv in invalidations(boto, dist) for p in inv["InvalidationBatch"]["Paths"]["Items"]]
        assert sorted(paths) == sorted(f"/{k}" for k in keys)  # each path paid for once per distribution


def test_a_tilde_key_is_invalidated_as_the_prefix_before_it_and_named(tmp_path: Path) -> None:
    # AWS: CloudFront supports no '~' in invalidation paths, raw or URL-encoded: the exact path
    # would silently match nothing, so the prefix before it stands in, and plan says so.
    cfg = tmp_path / "cfg.yml"
    cfg.write_text(
        "cdns:\n  cf: {vendor: cloudfront, distribution_ids: [E1]}\n"
        "buckets:\n  site: [{cdn: cf, hosts: [www.example.test]}]\n"
    )
    result = CliRunner().invoke(main, ["plan", "--config", str(cfg), "site/js/runtime~main.js", "site/~home.html"])
    assert result.exit_code == 0, result.output
    assert "<Path>/js/runtime*</Path>" in result.output and "%7E" not in result.output
    assert "'~' is matched by no purge here: purges every URL starting with https://www.example.test/js/runtime" in (
        result.output
    )
    assert "REFUSED" in result.output and "its '~' is matched by no purge here and would purge the whole site" in (
        result.output
    )


def test_a_question_mark_in_a_tag_is_part_of_the_tag() -> None:
    # Only a pasted URL has a query: a tag '?#' is one '#?#' path, not also a bare '#'.
    assert invalidation_paths("tag", "?#") == ["#?#"]
    assert invalidation_paths("url", "https://h/p.html?v=2") == ["/p.html?v=2", "/p.html"]
