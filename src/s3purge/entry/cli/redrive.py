"""`s3purge redrive`: the dead-letter queue back to its source queue or through the pipeline."""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from s3purge import config as config_module
from s3purge import secrets
from s3purge.entry import output
from s3purge.entry.cli.base import CONFIG, DEADLINE, asker, load_config, setup_logs, warn_if_out_of_time
from s3purge.entry.cli.queues import queue_url
from s3purge.entry.output import EXIT_FAILED, EXIT_OK, note, say
from s3purge.events import Message
from s3purge.pipeline import Settlement
from s3purge.redrive import Filters, Item, Redrive, parse_age


def _age(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    try:
        return None if value is None else parse_age(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


@click.command()
@click.option("--dlq-url", required=True, help="The dead-letter queue's URL.")
@click.option(
    "--to",
    "to",
    type=click.Choice(["queue", "pipeline"]),
    default="queue",
    show_default=True,
    help="queue: back to the source queue; pipeline: purge right here.",
)
@click.option("--to-queue", help="Send to this queue (default: the DLQ's one source queue).")
@click.option("--bucket", "buckets", multiple=True, help="Only messages with changes in this bucket (repeatable).")
@click.option("--cdn", "cdns", multiple=True, help="Only messages that still owe this CDN a purge (repeatable).")
@click.option("--older-than", callback=_age, help="Only messages first sent longer ago than this (30s, 15m, 2h, 1d).")
@click.option("--newer-than", callback=_age, help="Only messages first sent less long ago than this.")
@click.option("--max-messages", type=click.IntRange(1), help="Look at no more than this many messages.")
@click.option("--wait-seconds", default=2, show_default=True, type=click.IntRange(0, 20), help="Long-poll wait.")
@click.option("--yes", "--send", "-y", "send", is_flag=True, help="Redrive without asking (--send: the old name).")
@click.option("--dry-run", is_flag=True, help="Only list what would be redriven.")
@DEADLINE
@CONFIG
def redrive(
    *,
    dlq_url: str,
    to: str,
    to_queue: str | None,
    buckets: tuple[str, ...],
    cdns: tuple[str, ...],
    older_than: float | None,
    newer_than: float | None,
    max_messages: int | None,
    wait_seconds: int,
    send: bool,
    dry_run: bool,
    deadline_seconds: int,
    config_path: str,
) -> None:
    """Send the dead-letter queue's messages back after an outage: lists them, then asks (--yes: don't ask).

    Without a terminal to ask on (CI, a pipe) and without --yes it only lists. Exit
    status 1 when a message failed again (it stays in the dead-letter queue).
    """
    from s3purge.entry.sqs import sqs_client

    dlq_url = queue_url("--dlq-url", dlq_url)
    if to_queue is not None:
        to_queue = queue_url("--to-queue", to_queue)
    loaded = load_config(config_path)
    unknown = sorted(set(cdns) - set(loaded.cdns))
    if unknown:
        raise click.BadParameter(f"{', '.join(unknown)}: not a CDN of {loaded.path}", param_hint="--cdn")
    filters = Filters(frozenset(buckets), frozenset(cdns), older_than, newer_than)
    job = Redrive(sqs_client(), dlq_url, loaded, filters, wait_seconds=wait_seconds)
    try:
        target = (to_queue or job.source_queue()) if to == "queue" else None
        job.scan(max_messages)
        if not send and job.selected() and not dry_run and not output.settings().json:
            _report(job, to, target, send=False, code=EXIT_OK)
            send = asker(yes=False)(f"Redrive these {len(job.selected())} message(s)?")
            if not send:
                return
        if send and to == "queue" and target is not None:
            job.to_queue(target)
        elif send:
            job.through_pipeline(_runner(loaded, deadline_seconds))
    finally:
        job.release()
    code = EXIT_FAILED if send and any(i.result in ("kept", "narrowed") for i in job.selected()) else EXIT_OK
    _report(job, to, target, send, code)
    sys.exit(code)


def _runner(loaded: config_module.Config, seconds: int) -> Any:
    from s3purge.pipeline import Pipeline

    secrets.resolve(loaded.secrets())
    setup_logs()
    pipeline = Pipeline(loaded)

    def run(messages: list[Message]) -> Settlement:
        with output.progress(len(messages), "message", "redriving") as bar:
            deadline = time.monotonic() + seconds
            report, settlement = pipeline.run_messages(messages, deadline)
            bar.update(len(messages))
        pipeline.executor.close()
        warn_if_out_of_time(deadline, seconds, sum(not o.ok for o in report.outcomes))
        return settlement

    return run


def _report(job: Redrive, to: str, target: str | None, send: bool, code: int) -> None:
    selected = job.selected()
    summary = {
        "examined": len(job.items),
        "selected": len(selected),
        **{state: sum(i.result == state for i in selected) for state in ("moved", "purged", "narrowed", "kept")},
    }
    if output.settings().json:
        doc = {
            "dlq_url": job.dlq_url,
            "to": to,
            "target": target,
            "dry_run": not send,
            "dead_letters": [_item_doc(item) for item in job.items],
            "summary": summary,
        }
        output.emit(doc, code)
        return
    for item in job.items:
        state = item.result if send and item.skipped is None else ("skip" if item.skipped else "would")
        why = item.skipped or item.reason
        age = f"{item.age:.0f}s old" if item.age is not None else "age unknown"
        say(f"{state:8} {item.id} ({age}; {', '.join(sorted(item.cdns)) or '-'}) {', '.join(item.objects[:3])}")
        if item.dead_reason:
            say(f"         {_dead_letter_line(item)}")
        if why:
            say(f"         {why}")
    where = f"the source queue {target}" if to == "queue" else "the pipeline"
    if not send:
        note(f"\ndry run: {len(selected)} of {len(job.items)} message(s) would go to {where} (add --yes)")
        return
    note(
        f"summary: {len(selected)} of {len(job.items)} message(s) to {where}: "
        + ", ".join(f"{n} {state}" for state, n in summary.items() if state not in ("examined", "selected"))
    )


def _dead_letter_line(item: Item) -> str:
    """Why s3purge dead-lettered it, on one line (a vendor's answer may hold newlines)."""
    line = "dead-lettered: " + " ".join((item.dead_reason or "").split())
    if item.original_id and item.original_id != item.id:
        line += f" (was message {item.original_id})"
    return line


def _item_doc(item: Item) -> dict[str, Any]:
    return {
        "id": item.id,
        "age_seconds": item.age,
        "objects": item.objects,
        "cdns": sorted(item.cdns),
        "selected": item.skipped is None,
        "skipped": item.skipped,
        "result": item.result,
        "reason": item.reason or None,
        "dead_reason": item.dead_reason,
        "original_id": item.original_id,
    }
