"""How plans, requests and outcomes are shown: text for people, or the JSON document's parts."""

from __future__ import annotations

from typing import Any

import httpx

from s3purge import config as config_module
from s3purge.entry import output
from s3purge.entry.output import EXIT_FAILED, EXIT_OK, note, say
from s3purge.errors import PurgeError
from s3purge.model import Batch, Outcome
from s3purge.plan import Plan
from s3purge.providers.base import Provider


def show_refused(planned: Plan) -> None:
    """What the plan will not purge at all (each fails its changes permanently), and why."""
    for item in refused_docs(planned):
        where = f"[{item['cdn']}] " if item.get("cdn") else ""
        say(f"{where}REFUSED {item.get('kind', 'change')} {item['value']}: {item['reason']}")


def refused_docs(planned: Plan) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = [
        {"cdn": r.target.cdn, "kind": r.target.kind, "value": r.target.value, "reason": r.reason}
        | {"sources": sorted(r.sources)}
        for r in planned.refused
    ]
    found += [{"value": source, "reason": why, "sources": [source]} for source, why in planned.bad_sources.items()]
    return found


def show_batches(batches: list[Batch], loaded: config_module.Config) -> None:
    """Each batch's exact requests, or why it would not be sent (the request boundary)."""
    for batch in batches:
        provider = loaded.cdns[batch.cdn].provider
        say(f"\n[{batch.cdn}] {batch.action} {len(batch.values)} {batch.kind}(s)")
        try:
            requests = provider.build(batch)
        except PurgeError as error:
            say(f"  NOT SENT: {error}")
            continue
        for request in requests:
            say(render(request, provider))


def report_outcomes(outcomes: list[Outcome], extra: dict[str, Any] | None = None) -> int:
    """Each batch's result and a summary (text, or the JSON document); the exit status."""
    failed = [o for o in outcomes if not o.ok]
    code = EXIT_FAILED if failed else EXIT_OK
    summary = {
        "batches": len(outcomes),
        "items": sum(len(o.batch.values) for o in outcomes),
        "ok": len(outcomes) - len(failed),
        "failed": len(failed),
    }
    if output.settings().json:
        output.emit({**(extra or {}), "outcomes": [outcome_doc(o) for o in outcomes], "summary": summary}, code)
        return code
    for outcome in outcomes:
        state = "ok" if outcome.ok else "FAILED"
        batch = outcome.batch
        say(f"{state:6} {batch.cdn} {batch.action} {len(batch.values)} item(s) {outcome.detail}".rstrip())
    note(
        f"summary: {summary['items']} item(s) in {summary['batches']} batch(es): "
        f"{summary['ok']} ok, {summary['failed']} failed"
    )
    return code


def outcome_doc(outcome: Outcome) -> dict[str, Any]:
    batch = outcome.batch
    return {
        "cdn": batch.cdn,
        "action": batch.action,
        "kind": batch.kind,
        "values": list(batch.values),
        "sources": sorted(batch.sources),
        "ok": outcome.ok,
        "detail": outcome.detail,
        "retryable": outcome.retryable,
    }


def batch_doc(batch: Batch, provider: Provider) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "cdn": batch.cdn,
        "action": batch.action,
        "kind": batch.kind,
        "values": list(batch.values),
        "sources": sorted(batch.sources),
    }
    try:
        doc["requests"] = [request_doc(r, provider) for r in provider.build(batch)]
    except PurgeError as error:  # refused at the request boundary: it would not be sent
        doc["requests"], doc["not_sent"] = [], str(error)
    return doc


def request_doc(request: httpx.Request, provider: Provider) -> dict[str, Any]:
    headers = {k: ("***" if k.lower() in provider.secret_headers else v) for k, v in request.headers.items()}
    body = request.content.decode("utf-8", "replace") if request.content else None
    return {"method": request.method, "url": str(request.url), "headers": headers, "body": body}


def render(request: httpx.Request, provider: Provider) -> str:
    """A request as text, with every secret header's value replaced by ***."""
    lines = [f"{request.method} {request.url}"]
    for name, value in request.headers.items():
        shown = "***" if name.lower() in provider.secret_headers else value
        lines.append(f"  {name}: {shown}")
    if request.content:
        lines.append("  " + request.content.decode("utf-8", "replace"))
    return "\n".join(lines)
