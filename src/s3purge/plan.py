"""Targets -> batches: admitted by their vendor, deduplicated, grouped per CDN/action/kind,
packed under limits. Pure.

Each target first passes its vendor's `admit`: tags are made safe by the documented rule, a
key with a wildcard the vendor cannot escape is widened (a Decision says so) and what cannot
be purged safely is refused, failing only the changes it came from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from s3purge.capabilities import Admission, Limits, Thresholds
from s3purge.choose import choose
from s3purge.config import Config
from s3purge.escalate import Decision, escalate
from s3purge.mapping import targets
from s3purge.model import Batch, Change, Target


@dataclass(slots=True)
class Plan:
    batches: list[Batch] = field(default_factory=list)
    routed: dict[str, set[str]] = field(default_factory=dict)
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
    routed: dict[str, set[str]] = {}
    bad: dict[str, str] = {}
    per_change = []
    for change in changes:
        cdns = routed.setdefault(change.source, set())
        try:
            found = list(targets(change, config))
        except Exception as error:  # noqa: BLE001 - e.g. a lone surrogate no URL or tag can spell: this change only
            bad.setdefault(change.source, f"key {change.key[:80]!r} cannot be mapped ({type(error).__name__})")
            continue
        per_change.append((change.source, found))
        cdns.update(target.cdn for target in found)
    chosen = choose(per_change, config)
    admitted = _admitted(chosen.pairs, config)
    result = _packed(_deduplicated(admitted.pairs, config), config, routed)
    result.decisions[:0], result.refused, result.bad_sources = (
        chosen.decisions + admitted.decisions,
        admitted.refused,
        bad,
    )
    return result


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
    seen: dict[Target, Admission] = {}
    refused: dict[Target, set[str]] = {}
    named: set[tuple[str, str]] = set()
    for target, source in pairs:
        admission = seen.get(target)  # one lookup for a target seen before: planning hashes each target often
        if admission is None:
            seen[target] = admission = _admit(target, config)
            widening = (target.cdn, admission.widened)  # the spellings of one key widen alike: named once
            if admission.widened and admission.target is not None and widening not in named:
                named.add(widening)
                result.decisions.append(Decision(target.cdn, "wildcard", admission.target, 1, admission.widened))
        if admission.target is None:
            refused.setdefault(target, set()).add(source)
        else:
            result.pairs.append((admission.target, source))
    result.refused = [Refusal(t, frozenset(sources), seen[t].refused) for t, sources in refused.items()]
    return result


def _admit(target: Target, config: Config) -> Admission:
    cdn = config.cdns[target.cdn]
    try:
        return cdn.provider.admit(target, cdn.escalation.everything is not None)
    except Exception as error:  # noqa: BLE001 - a vendor module's bug fails this target only
        return Admission(None, refused=f"cannot be checked ({type(error).__name__})")


def _deduplicated(pairs: Iterable[tuple[Target, str]], config: Config) -> dict[Target, set[str]]:
    """Target -> its sources, one target per cache object (the vendor says what is the same object)."""
    first: dict[tuple[str, str, str, str], Target] = {}
    sources: dict[Target, set[str]] = {}
    for target, source in pairs:
        identity = config.cdns[target.cdn].provider.identity(target)
        target = first.setdefault((target.cdn, target.action, target.kind, identity), target)
        sources.setdefault(target, set()).add(source)
    return sources


def _packed(sources: dict[Target, set[str]], config: Config, routed: dict[str, set[str]]) -> Plan:
    sources, decisions = _escalated(sources, config)
    groups: dict[tuple[str, str, str], list[Target]] = {}
    for target in sources:
        groups.setdefault((target.cdn, target.action, target.kind), []).append(target)
    batches = []
    for group in groups.values():
        cdn = config.cdns[group[0].cdn]
        batches.extend(pack(group, sources, cdn.limits, cdn.provider.item_bytes))
    return Plan(batches, routed, decisions)


def _escalated(sources: dict[Target, set[str]], config: Config) -> tuple[dict[Target, set[str]], list[Decision]]:
    """Apply each CDN's escalation rules; a replacing target inherits the sources of all it covers."""
    per_cdn: dict[str, list[Target]] = {}
    for target in sources:
        per_cdn.setdefault(target.cdn, []).append(target)
    merged: dict[Target, set[str]] = {}
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
    sources: dict[Target, set[str]],
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
        owners |= sources[target]
        used += cost
    if values:
        close()
    return batches
