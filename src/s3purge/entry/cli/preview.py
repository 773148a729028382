"""The plan shown before anything is sent (plan, replay): skipped changes, escalations, batches, requests."""

from __future__ import annotations

import dataclasses
from typing import Any

from s3purge import config as config_module
from s3purge.entry import output
from s3purge.entry.cli.show import batch_doc, refused_docs, show_batches, show_refused
from s3purge.entry.output import say, warn
from s3purge.escalate import Thresholds
from s3purge.model import Change
from s3purge.plan import Plan
from s3purge.plan import plan as make_plan
from s3purge.unrouted import why_unrouted

WARNINGS_SHOWN = 10
"""Skipped changes named one by one; the rest are counted."""

Skipped = list[tuple[Change, str]]
PaidPaths = dict[str, tuple[int, int]]


def show_plan(loaded: config_module.Config, changes: list[Change], extra: dict[str, Any] | None = None) -> None:
    """The plan as text (or the JSON document): skipped changes, escalations, batches, requests."""
    planned = make_plan(changes, loaded)
    skipped = [(c, why) for c in changes if (why := why_unrouted(c, loaded)) is not None]
    precise = make_plan(changes, _without_escalation(loaded)) if planned.decisions else planned
    paid = _paid_paths(planned, precise, loaded)
    if output.settings().json:
        output.emit({**_plan_doc(loaded, changes, planned, skipped, paid), **(extra or {})})
        return
    _say_plan(loaded, changes, planned, skipped, paid)


def _plan_doc(
    loaded: config_module.Config, changes: list[Change], planned: Plan, skipped: Skipped, paid: PaidPaths
) -> dict[str, Any]:
    return {
        "changes": len(changes),
        "skipped": [{**change_doc(c), "reason": why} for c, why in skipped],
        "decisions": [
            {"cdn": d.cdn, "rule": d.rule, "kind": d.target.kind, "value": d.target.value, "reason": d.reason}
            for d in planned.decisions
        ],
        "paid_paths": {cdn: {"escalated": a, "precise": b} for cdn, (a, b) in paid.items()},
        "refused": refused_docs(planned),
        "batches": [batch_doc(b, loaded.cdns[b.cdn].provider) for b in planned.batches],
    }


def _say_plan(
    loaded: config_module.Config, changes: list[Change], planned: Plan, skipped: Skipped, paid: PaidPaths
) -> None:
    for change, why in skipped[:WARNINGS_SHOWN]:
        warn(f"{change.bucket}/{change.key} ({change.source}): {why}")
    if len(skipped) > WARNINGS_SHOWN:
        warn(f"... and {len(skipped) - WARNINGS_SHOWN} more change(s) routed nowhere")
    say(f"{len(changes)} change(s) -> {len(planned.batches)} batch(es)")
    for decision in planned.decisions:
        say(f"[{decision.cdn}] {decision.rule} rule: {decision.target.value} ({decision.reason})")
    for cdn, (escalated, before) in paid.items():
        say(f"[{cdn}] paid paths: {escalated} (a wildcard counts as one; {before} without escalation)")
    show_refused(planned)
    show_batches(planned.batches, loaded)


def change_doc(change: Change) -> dict[str, Any]:
    return {"source": change.source, "bucket": change.bucket, "key": change.key, "event": change.event}


def _without_escalation(loaded: config_module.Config) -> config_module.Config:
    cdns = {name: dataclasses.replace(cdn, escalation=Thresholds()) for name, cdn in loaded.cdns.items()}
    return dataclasses.replace(loaded, cdns=cdns)


def _paid_paths(planned: Plan, precise: Plan, loaded: config_module.Config) -> PaidPaths:
    """CDN -> paths billed with and without escalation, for vendors that bill per path."""
    totals: dict[str, list[int]] = {}
    for column, batches in enumerate((planned.batches, precise.batches)):
        for batch in batches:
            provider = loaded.cdns[batch.cdn].provider
            if provider.billed_per_item:
                totals.setdefault(batch.cdn, [0, 0])[column] += provider.cost(batch)
    return {cdn: (paid, before) for cdn, (paid, before) in totals.items()}
