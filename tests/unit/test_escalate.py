"""Escalation rules: prefix for a busy directory, everything for a busy CDN; never below, always above."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s3purge.config import parse
from s3purge.errors import ConfigError
from s3purge.escalate import Escalation, Thresholds, directory, escalate
from s3purge.model import Change, Target
from s3purge.plan import plan
from s3purge.providers.base import Supports

ALL: Supports = {"url": frozenset({"purge"}), "prefix": frozenset({"purge"}), "everything": frozenset({"purge"})}
URL_ONLY: Supports = {"url": frozenset({"purge"})}


def urls(*values: str) -> list[Target]:
    return [Target("cf", "purge", "url", v) for v in values]


def covered(result: Escalation) -> list[Target]:
    return sorted((t for group in result.targets.values() for t in group), key=lambda t: t.value)


def test_off_by_default_keeps_every_url() -> None:
    planned = urls(*(f"https://h/d/{n}" for n in range(500)))
    result = escalate(planned, Thresholds(), ALL)
    assert list(result.targets) == planned
    assert result.decisions == []


def test_prefix_rule_replaces_a_busy_directory_and_says_why() -> None:
    planned = urls("https://h/img/a", "https://h/img/b", "https://h/img/c", "https://h/css/x")
    result = escalate(planned, Thresholds(prefix=2), ALL)
    prefix = Target("cf", "purge", "prefix", "https://h/img/")
    assert list(result.targets) == [prefix, planned[3]]
    (decision,) = result.decisions
    assert (decision.rule, decision.target, decision.replaced) == ("prefix", prefix, 3)
    assert decision.reason == "3 changed URLs in https://h/img/ > prefix_threshold 2"


def test_outer_prefix_absorbs_subdirectories() -> None:
    planned = urls("https://h/a/1", "https://h/a/2", "https://h/a/b/1", "https://h/a/b/2", "https://h/a/b/3")
    result = escalate(planned, Thresholds(prefix=1), ALL)
    assert list(result.targets) == [Target("cf", "purge", "prefix", "https://h/a/")]
    assert "(+3 in its subdirectories)" in result.decisions[0].reason


def test_a_busy_site_root_is_never_a_prefix_only_everything() -> None:
    planned = urls(*(f"https://h/{n}.html" for n in range(21)), "https://h/img/a", "https://h/img/b")
    result = escalate(planned, Thresholds(prefix=1, everything=2000), ALL)  # 21 root files > 1
    assert {t.kind for t in result.targets} == {"url", "prefix"}
    assert [d.target.value for d in result.decisions] == ["https://h/img/"]
    assert len([t for t in result.targets if t.kind == "url"]) == 21
    whole = escalate(planned, Thresholds(prefix=1, everything=20), ALL)
    assert [(d.rule, d.target.value) for d in whole.decisions] == [("everything", "https://h/")]


def test_everything_rule_counts_paths_not_hosts_and_keeps_one_target_per_site() -> None:
    planned = urls("https://a/1", "https://b/1", "https://a/2", "https://b/2")
    assert escalate(planned, Thresholds(everything=2), ALL).decisions == []  # 2 paths, on 2 hosts
    result = escalate([*planned, *urls("https://a/3")], Thresholds(everything=2), ALL)
    assert list(result.targets) == [Target("cf", "purge", "everything", f"https://{h}/") for h in "ab"]
    assert {d.rule for d in result.decisions} == {"everything"}


def test_rules_apply_only_where_the_vendor_supports_them() -> None:
    planned = urls(*(f"https://h/d/{n}" for n in range(10)))
    result = escalate(planned, Thresholds(prefix=1, everything=1), URL_ONLY)
    assert list(result.targets) == planned


def test_tags_and_other_actions_pass_through() -> None:
    tag = Target("cf", "purge", "tag", "t")
    soft = [Target("cf", "invalidate", "url", f"https://h/d/{n}") for n in range(5)]
    result = escalate([tag, *soft], Thresholds(prefix=1), ALL)  # ALL cannot prefix-invalidate
    assert list(result.targets) == [tag, *soft]


def test_plan_merges_sources_into_the_escalated_target() -> None:
    config = parse(
        """
cdns:
  edge: {vendor: http, endpoints: ["http://127.0.0.1:1"], prefix_threshold: 2}
buckets:
  b: [{cdn: edge, hosts: [h]}]
"""
    )
    changes = [Change("b", f"img/{n}.png", "created", f"m{n}") for n in range(3)]
    planned = plan([*changes, Change("b", "solo.png", "created", "m9")], config)
    by_kind = {b.kind: b for b in planned.batches}
    assert by_kind["prefix"].values == ("https://h/img/",)
    assert by_kind["prefix"].sources == {"m0", "m1", "m2"}
    assert by_kind["url"].values == ("https://h/solo.png",)
    assert [d.rule for d in planned.decisions] == ["prefix"]


def test_thresholds_are_read_from_the_account_and_checked() -> None:
    text = "cdns:\n  e: {vendor: http, endpoints: [http://127.0.0.1:1], %s}\nbuckets:\n  b: [{cdn: e, hosts: [h]}]\n"
    assert parse(text % "prefix_threshold: 5").cdns["e"].escalation == Thresholds(prefix=5)
    with pytest.raises(ConfigError, match=r":2: cdns\.e\.everything_threshold: expected an integer >= 0"):
        parse(text % "everything_threshold: -1")


# --- the property: a rule never fires at or below its threshold and always fires above it ----------

HOSTS = st.sampled_from(["https://a.test", "https://b.test"])
DIRS = st.sampled_from(["/", "/x/", "/x/y/", "/z/"])
NAMES = st.text(alphabet="abc", min_size=1, max_size=3)
TARGETS = st.lists(st.builds(lambda h, d, n: f"{h}{d}{n}", HOSTS, DIRS, NAMES), max_size=40, unique=True)
LIMIT = st.one_of(st.none(), st.integers(0, 12))


@settings(max_examples=300, deadline=None)
@given(TARGETS, LIMIT, LIMIT)
def test_rules_fire_exactly_above_their_thresholds(values: list[str], prefix: int | None, whole: int | None) -> None:
    planned = urls(*values)
    result = escalate(planned, Thresholds(prefix, whole), ALL)
    assert covered(result) == sorted(planned, key=lambda t: t.value)  # nothing lost, nothing twice
    assert sum(len(group) for group in result.targets.values()) == len(planned)
    paths = {v.split("/", 3)[3] for v in values}
    everything = whole is not None and len(paths) > whole
    assert everything == any(t.kind == "everything" for t in result.targets)
    if everything:
        assert all(t.kind == "everything" for t in result.targets)
        return
    counts: dict[str, int] = {}
    for value in values:
        counts[directory(value)] = counts.get(directory(value), 0) + 1
    prefixes = {t.value for t in result.targets if t.kind == "prefix"}
    for target, group in result.targets.items():
        if target.kind == "prefix":  # fired: its directory is above the threshold, and is no site root
            assert prefix is not None and counts[target.value] > prefix
            assert target.value.count("/") > 3
            assert all(t.value.startswith(target.value) for t in group)
    for value in values:  # above the threshold: the URL is purged by its directory's prefix or an outer one
        root = directory(value).count("/") == 3  # https://h/: its prefix would be the whole site
        busy = prefix is not None and counts[directory(value)] > prefix and not root
        by_prefix = any(value.startswith(p) for p in prefixes)
        assert by_prefix or not busy
        assert by_prefix == (Target("cf", "purge", "url", value) not in result.targets)
