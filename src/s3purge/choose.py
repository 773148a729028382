"""Tags or URLs, by price: for vendors that bill every item purged. Pure.

A change whose route gives it both URLs and tags can be purged by either: its tags are on
the cached object (the route says so), and any one of them evicts it. Where the vendor bills
each item (`Provider.billed_per_item`: a CloudFront path, wildcard or `#tag` each count as
one), purging both pays twice, so per CDN and action the plan keeps whichever of the two
costs fewer paid items over the whole burst: the changes' distinct tags, or their distinct
URL paths after the account's prefix/everything rules (wildcards). On a tie, exact paths win
unless those rules fired (a tag is no wider than a wildcard). Changes with only URLs or only
tags keep what they have; vendors that do not bill per item purge both, as before.

Only tags from templates may replace URLs: derived from the key, they were on the old cached
copy too. Tags read from the object's metadata (`tags_from_metadata`) are the NEW object's; a
cached old copy may carry others or none, so a change with such tags keeps its URLs and those
tags both (its template tags stay choosable: its URLs already evict it).
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from itertools import repeat

from s3purge.config import Config
from s3purge.escalate import Decision, escalate
from s3purge.model import Action, Target


@dataclass(slots=True)
class Choice:
    pairs: list[tuple[Target, str]] = field(default_factory=list)
    """(target, source) to plan: what was not chosen is gone."""
    decisions: list[Decision] = field(default_factory=list)


@dataclass(slots=True)
class _Options:
    """One CDN and action's changes: the targets they keep whatever happens, and the choosable ones."""

    fixed: list[tuple[Target, str]] = field(default_factory=list)
    tags: list[tuple[Target, str]] = field(default_factory=list)
    urls: list[tuple[Target, str]] = field(default_factory=list)


def choose(per_change: Iterable[tuple[str, list[Target], AbstractSet[Target]]], config: Config) -> Choice:
    """Each change's (source, targets, its tags from metadata) -> the (target, source) pairs to plan,
    tags or URLs chosen by price."""
    result = Choice()
    groups: dict[tuple[str, Action], _Options] = {}
    for source, found, pinned in per_change:
        for (cdn, action), targets in _by_cdn(found).items():
            group = groups.get((cdn, action))
            if group is None:  # not setdefault: that would build an _Options per change
                group = groups[cdn, action] = _Options()
            billed = config.cdns[cdn].provider.billed_per_item
            if not billed or not {"url", "tag"} <= {t.kind for t in targets}:
                group.fixed.extend(zip(targets, repeat(source)))
                continue
            if not pinned.isdisjoint(targets):  # tags from metadata: an addition, never a replacement
                group.fixed += [(t, source) for t in targets if t.kind != "tag" or t in pinned]
                group.tags += [(t, source) for t in targets if t.kind == "tag" and t not in pinned]
                continue
            group.tags += [(t, source) for t in targets if t.kind == "tag"]
            group.urls += [(t, source) for t in targets if t.kind != "tag"]
            group.fixed += [(t, source) for t in targets if t.kind not in ("url", "tag")]
    for (cdn, _), group in groups.items():
        result.pairs += group.fixed
        if not group.tags:
            continue
        kept, decision = _cheaper(cdn, group, config)
        result.pairs += kept
        result.decisions.append(decision)
    return result


def _by_cdn(found: list[Target]) -> dict[tuple[str, Action], list[Target]]:
    grouped: dict[tuple[str, Action], list[Target]] = {}
    for target in found:
        grouped.setdefault((target.cdn, target.action), []).append(target)
    return grouped


def _cheaper(cdn: str, group: _Options, config: Config) -> tuple[list[tuple[Target, str]], Decision]:
    fixed = [t for t, _ in group.fixed]
    by_tags, tags_wide = paid_items(cdn, fixed + [t for t, _ in group.tags], config)
    by_urls, urls_wide = paid_items(cdn, fixed + [t for t, _ in group.urls], config)
    tagged = by_tags < by_urls or (by_tags == by_urls and urls_wide and not tags_wide)
    kept, dropped = (group.tags, group.urls) if tagged else (group.urls, group.tags)
    distinct = len({t for t, _ in dropped})
    reason = f"{by_tags} paid items by tag against {by_urls} by URL path"
    if urls_wide:
        reason += " (after prefix/everything rules)"
    # kept is empty only when every change with template tags keeps its URLs (tags from metadata)
    shown = kept[0][0] if kept else next(t for t, _ in group.fixed if t.kind == "url")
    return kept, Decision(cdn, "tags" if tagged else "paths", shown, distinct, reason)


def paid_items(cdn: str, targets: list[Target], config: Config) -> tuple[int, bool]:
    """Distinct items the vendor bills for `targets` after the account's escalation rules,
    and whether a rule fired (a wildcard replaced exact paths)."""
    account = config.cdns[cdn]
    provider = account.provider
    escalated = escalate(list(dict.fromkeys(targets)), account.escalation, provider.supports)
    return len({provider.identity(t) for t in escalated.targets}), bool(escalated.decisions)
