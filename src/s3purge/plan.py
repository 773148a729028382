"""Targets -> batches: admitted by their vendor, deduplicated, grouped per CDN/action/kind,
packed under limits. Pure.

Each target first passes its vendor's `admit`: tags are made safe by the documented rule, a
key with a wildcard the vendor cannot escape is widened (a Decision says so) and what cannot
be purged safely is refused, failing only the changes it came from.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field

from s3purge.capabilities import Admission, Limits, Thresholds
from s3purge.choose import choose
from s3purge.config import Config
from s3purge.escalate import Decision, escalate
from s3purge.mapping import from_metadata, targets
from s3purge.model import Batch, Change, Target


@dataclass(slots=True)
class Plan:
    batches: list[Batch] = field(default_factory=list)
    routed: dict[str, frozenset[str]] = field(default_factory=dict)
    """source -> the CDNs its changes route to (a source routed nowhere needs nothing)."""
    decisions: list[Decision] = field(default_factory=list)
    """Escalation rules that fired (prefix / everything instead of single URLs) and wildcard
    widenings, and why."""
    refused: list[Refusal] = field(default_factory=list)
    """Targets that are not purged at all, each failing its sources permanently."""
    bad_sources: dict[str, str] = field(default_factory=dict)
    """source -> why its changes could not be mapped to targets at all."""


@dataclass(frozen=True, slots=True)
class Refusal:
    target: Target
    sources: frozenset[str]
    reason: str


def plan(changes: Iterable[Change], config: Config) -> Plan:
    """Every change's targets, deduplicated, then packed into as few batches as limits allow."""
    routed: dict[str, frozenset[str]] = {}
    bad: dict[str, str] = {}
    chosen = choose(_mapped(changes, config, routed, bad), config)  # one change's list of targets at a time
    decisions, admitted = chosen.decisions, _admitted(chosen.pairs, config)
    del chosen  # its pairs are admitted's now: not kept through packing, planning's peak of memory
    result = _packed(_deduplicated(admitted.pairs, config), config, routed)
    result.decisions[:0], result.refused, result.bad_sources = decisions + admitted.decisions, admitted.refused, bad
    return result


def _mapped(
    changes: Iterable[Change], config: Config, routed: dict[str, frozenset[str]], bad: dict[str, str]
) -> Iterator[tuple[str, list[Target], frozenset[Target]]]:
    """Each change's (source, targets, its tags from metadata); notes where each source routes, and
    why a change cannot be mapped."""
    alike: dict[frozenset[str], frozenset[str]] = {}  # most changes route to the same CDNs: one set for them
    for change in changes:
        had = routed.get(change.source, frozenset())
        try:
            found = list(targets(change, config))
            pinned = from_metadata(change, config)
        except Exception as error:  # noqa: BLE001 - e.g. a lone surrogate no URL or tag can spell: this change only
            bad.setdefault(change.source, f"key {change.key[:80]!r} cannot be mapped ({type(error).__name__})")
            routed[change.source] = had
            continue
        cdns = had.union(target.cdn for target in found)
        routed[change.source] = alike.setdefault(cdns, cdns)
        yield change.source, found, pinned


def plan_targets(wanted: Iterable[Target], config: Config, source: str = "manual") -> Plan:
    """Targets given by hand (a manual purge), admitted, deduplicated and packed like any others."""
    admitted = _admitted(((t, source) for t in wanted), config)
    result = _packed(_deduplicated(admitted.pairs, config), config, {})
    result.decisions[:0], result.refused = admitted.decisions, admitted.refused
    return result


@dataclass(slots=True)
class _Admitted:
    pairs: list[tuple[Target, str]] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)


def _admitted(pairs: Iterable[tuple[Target, str]], config: Config) -> _Admitted:
    """Each target as its vendor can take it; widenings and refusals named once per target."""
    result = _Admitted()
    seen: dict[Target, Target | None] = {}  # as admitted (None: refused); no Admission kept per target
    reasons: dict[Target, str] = {}
    refused: dict[Target, set[str]] = {}
    named: set[tuple[str, str]] = set()
    for pair in pairs:
        target, source = pair
        if target in seen:
            admitted = seen[target]
        else:
            admission = _admit(target, config)
            seen[target] = admitted = admission.target
            if admitted is None:
                reasons[target] = admission.refused
            widening = (target.cdn, admission.widened)  # the spellings of one key widen alike: named once
            if admission.widened and admitted is not None and widening not in named:
                named.add(widening)
                result.decisions.append(Decision(target.cdn, "wildcard", admitted, 1, admission.widened))
        if admitted is None:
            refused.setdefault(target, set()).add(source)
        else:  # the pair as it came when the target stays as it is: one tuple less per target
            result.pairs.append(pair if admitted is target else (admitted, source))
    result.refused = [Refusal(t, frozenset(sources), reasons[t]) for t, sources in refused.items()]
    return result


def _admit(target: Target, config: Config) -> Admission:
    cdn = config.cdns[target.cdn]
    try:
        return cdn.provider.admit(target, cdn.escalation.everything is not None)
    except Exception as error:  # noqa: BLE001 - a vendor module's bug fails this target only
        return Admission(None, refused=f"cannot be checked ({type(error).__name__})")


Sources = dict[Target, Collection[str]]
"""Target -> the sources it is purged for: a 1-tuple for one source, shared by the targets of one
change (a set per target was most of planning's memory); a set for several, owned by the target."""


def _deduplicated(pairs: Iterable[tuple[Target, str]], config: Config) -> Sources:
    """Target -> its sources, one target per cache object (the vendor says what is the same object)."""
    first: defaultdict[tuple[str, str, str], dict[str, Target]] = defaultdict(dict)  # per CDN, action, kind
    sources: Sources = {}
    alone: tuple[str] = ("",)
    for target, source in pairs:
        same = first[target.cdn, target.action, target.kind]
        target = same.setdefault(config.cdns[target.cdn].provider.identity(target), target)
        had = sources.get(target)
        if had is None:
            if alone[0] != source:  # a change's pairs come one after another: they share its 1-tuple
                alone = (source,)
            sources[target] = alone
        elif isinstance(had, set):
            had.add(source)
        elif source not in had:  # a second source: the target gets a set of its own
            sources[target] = {*had, source}
    return sources


def _packed(sources: Sources, config: Config, routed: dict[str, frozenset[str]]) -> Plan:
    sources, decisions = _escalated(sources, config)
    # per CDN, then per action and kind: the order of batches whether or not escalation reordered targets
    groups: dict[str, dict[tuple[str, str], list[Target]]] = {}
    for target in sources:
        groups.setdefault(target.cdn, {}).setdefault((target.action, target.kind), []).append(target)
    batches = []
    for name, per_kind in groups.items():
        cdn = config.cdns[name]
        for group in per_kind.values():
            batches.extend(pack(group, sources, cdn.limits, cdn.provider.item_bytes))
    return Plan(batches, routed, decisions)


def _escalated(sources: Sources, config: Config) -> tuple[Sources, list[Decision]]:
    """Apply each CDN's escalation rules; a replacing target inherits the sources of all it covers."""
    per_cdn: dict[str, list[Target]] = {}
    for target in sources:
        per_cdn.setdefault(target.cdn, []).append(target)
    if all(config.cdns[name].escalation == Thresholds() for name in per_cdn):
        return sources, []  # rules off everywhere: nothing to decide, nothing to copy
    merged: Sources = {}
    decisions: list[Decision] = []
    for name, group in per_cdn.items():
        cdn = config.cdns[name]
        if cdn.escalation == Thresholds():  # both rules off: nothing to decide, nothing to copy
            merged.update((target, sources[target]) for target in group)
            continue
        result = escalate(group, cdn.escalation, cdn.provider.supports)
        for target in result.purge:
            covered = result.covers.get(target)  # None: kept as it is, with its own sources (not copied)
            merged[target] = sources[target] if covered is None else set().union(*(sources[c] for c in covered))
        decisions.extend(result.decisions)
    return merged, decisions


def pack(
    group: list[Target],
    sources: Sources,
    limits: Limits,
    size: Callable[[str], int],
) -> list[Batch]:
    """Fill batches in order, starting a new one when items or bytes would overflow."""
    if not group:
        return []
    batches: list[Batch] = []
    values: list[str] = []
    owners: set[str] = set()
    used = 0

    def close() -> None:
        first = group[0]
        batches.append(Batch(first.cdn, first.action, first.kind, tuple(values), frozenset(owners)))

    most = limits.items(group[0].kind)  # a group is of one kind
    for target in group:
        cost = 0 if limits.max_bytes is None else size(target.value)  # JSON-sizing only where bytes count
        full = len(values) >= most
        if values and (full or (limits.max_bytes is not None and used + cost > limits.max_bytes)):
            close()
            values, owners, used = [], set(), 0
        values.append(target.value)
        owners.update(sources[target])
        used += cost
    if values:
        close()
    return batches
