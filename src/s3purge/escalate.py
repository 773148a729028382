"""Cost-aware plans: many changed URLs under one directory become its prefix, very many the whole CDN. Pure.

Two rules per CDN, each off unless the account sets its threshold, because a prefix or full
purge also drops cached objects that did not change (the next requests for them go to the
origin):

- prefix: a directory with more than `prefix` changed URLs directly in it is purged as that
  directory's prefix (`https://host/dir/`), which also covers its subdirectories; never the
  site root (`https://host/`), whose prefix is everything;
- everything: more than `everything` changed URL paths on the CDN and the CDN is purged
  entirely, one `everything` target per site root (`https://host/`) the changes touch.

Counts are of distinct URLs (per scheme and host) for a directory, and of distinct URL paths
for the CDN, so a key served on two hosts counts once. A rule fires only where the vendor
declares (`supports`) it can purge that kind with the route's action; the core never asks
which vendor it is. Every input target ends up covered by exactly one output target.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from s3purge.capabilities import Supports
from s3purge.capabilities import Thresholds as Thresholds  # noqa: PLC0414  (planners import it from here)
from s3purge.model import Action, Target, site_root, url_path

Rule = Literal["prefix", "everything", "wildcard", "tags", "paths"]
"""wildcard: not an escalation, but a key whose `*` the vendor reads as a wildcard (plan.py);
tags, paths: which of the two a vendor that bills per item is cheaper by (choose.py)."""


@dataclass(frozen=True, slots=True)
class Decision:
    """One rule that fired: what is purged now instead, how many targets it replaced, and why."""

    cdn: str
    rule: Rule
    target: Target
    replaced: int
    reason: str


@dataclass(slots=True)
class Escalation:
    purge: list[Target] = field(default_factory=list)
    """What to purge, in order: planned targets kept as they are, and the targets replacing others."""
    covers: dict[Target, set[Target]] = field(default_factory=dict)
    """Each replacing target -> the planned targets it stands for."""
    decisions: list[Decision] = field(default_factory=list)

    @property
    def targets(self) -> dict[Target, set[Target]]:
        """Each target to purge -> the planned targets it stands for (itself when kept)."""
        return {target: self.covers.get(target) or {target} for target in self.purge}

    def replace(self, target: Target, covered: set[Target]) -> None:
        self.purge.append(target)
        self.covers[target] = covered


def escalate(targets: Iterable[Target], thresholds: Thresholds, supports: Supports) -> Escalation:
    """One CDN's distinct targets (plan deduplicates them), with URL targets escalated where a rule fires.

    Kept targets cost a list append each: with the rules on but not firing, planning stays
    nearly as cheap as without them (bench/cpu.py measures the ratio).
    """
    result = Escalation()
    urls: dict[Action, list[Target]] = {}
    for target in targets:
        if target.kind == "url":
            urls.setdefault(target.action, []).append(target)
        else:
            result.purge.append(target)
    for action, group in urls.items():
        everything = thresholds.everything if action in supports.get("everything", ()) else None
        prefix = thresholds.prefix if action in supports.get("prefix", ()) else None
        if not _everything(group, everything, result):
            _prefixes(group, prefix, result)
    return result


def _everything(urls: list[Target], limit: int | None, result: Escalation) -> bool:
    if limit is None or len(urls) <= limit:  # fewer URLs than the limit: fewer paths too
        return False
    paths = {url_path(t.value) for t in urls}
    if len(paths) <= limit:
        return False
    roots: dict[str, set[Target]] = {}
    for target in urls:
        roots.setdefault(site_root(target.value), set()).add(target)
    for root, covered in roots.items():
        whole = Target(urls[0].cdn, urls[0].action, "everything", root)
        result.replace(whole, covered)
        reason = f"{len(paths)} changed paths > everything_threshold {limit}"
        result.decisions.append(Decision(whole.cdn, "everything", whole, len(covered), reason))
    return True


def _prefixes(urls: list[Target], limit: int | None, result: Escalation) -> None:
    counts: dict[str, int] = {}
    if limit is not None and len(urls) > limit:  # else no directory can have more than `limit`
        for target in urls:  # distinct targets: one count per changed URL
            where = directory(target.value)
            counts[where] = counts.get(where, 0) + 1
    # A site root's prefix is the whole site: only the everything rule may purge that.
    busy = {d for d, count in counts.items() if limit is not None and count > limit and d != site_root(d)}
    if not busy:
        result.purge.extend(urls)
        return
    prefixes: dict[str, Target] = {}
    for target in urls:
        outer = next((d for d in ancestors(target.value) if d in busy), None)
        if outer is None:
            result.purge.append(target)
        elif outer in prefixes:
            result.covers[prefixes[outer]].add(target)
        else:
            prefixes[outer] = Target(target.cdn, target.action, "prefix", outer)
            result.replace(prefixes[outer], {target})
    for outer, prefix in prefixes.items():
        covered = result.covers[prefix]
        reason = f"{counts[outer]} changed URLs in {outer} > prefix_threshold {limit}"
        if len(covered) > counts[outer]:
            reason += f" (+{len(covered) - counts[outer]} in its subdirectories)"
        result.decisions.append(Decision(prefix.cdn, "prefix", prefix, len(covered), reason))


def directory(url: str) -> str:
    """The URL up to and including the last '/' of its path: `https://h/a/b.png` -> `https://h/a/`."""
    return url[: url.rindex("/") + 1]


def ancestors(url: str) -> list[str]:
    """Directories containing `url`, outermost first, so a busy parent absorbs busy children."""
    root = site_root(url)
    parts = url[len(root) :].split("/")[:-1]
    return [root + "".join(p + "/" for p in parts[:n]) for n in range(len(parts) + 1)]
