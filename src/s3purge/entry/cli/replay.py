"""`s3purge replay`: saved events (or every object under an S3 prefix) through the pipeline again."""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from s3purge import config as config_module
from s3purge import secrets
from s3purge.entry import output
from s3purge.entry.cli.base import (
    CONFIG,
    DEADLINE,
    DEBUG,
    asker,
    load_config,
    placeholder_secrets,
    setup_logs,
    shown_executor,
    warn_if_out_of_time,
)
from s3purge.entry.cli.preview import WARNINGS_SHOWN, change_doc, show_plan
from s3purge.entry.cli.show import report_outcomes
from s3purge.entry.output import note, warn
from s3purge.model import Change, Report
from s3purge.pipeline import Pipeline
from s3purge.unrouted import why_unrouted


@click.command()
@click.argument("sources", nargs=-1, required=True)
@click.option("--yes", "--send", "-y", "send", is_flag=True, help="Purge without asking (--send: the old name).")
@click.option("--dry-run", is_flag=True, help="Only show the plan.")
@DEADLINE
@CONFIG
@DEBUG
def replay(
    *, sources: tuple[str, ...], send: bool, dry_run: bool, deadline_seconds: int, config_path: str, debug: bool
) -> None:
    """Run saved events through the pipeline again: shows the plan, then asks (--yes: don't ask).

    SOURCES: files of events in any envelope (JSON, JSON Lines, `aws sqs receive-message`
    output; - for stdin), or s3://BUCKET/PREFIX to purge every object listed there.
    """
    from s3purge.entry.inputs import read_changes

    loaded = load_config(config_path)
    changes = read_changes(sources)  # every input read (or refused, naming it) before anything is sent
    if not send:
        placeholder_secrets(loaded.secrets())
        show_plan(loaded, changes, {"dry_run": True})
        if dry_run or output.settings().json or not asker(yes=False)("Send these requests?"):
            note("\ndry run: nothing sent (add --yes to purge)")
            return
        loaded = load_config(config_path)  # afresh: the plan filled in placeholder secrets
    secrets.resolve(loaded.secrets())
    setup_logs(debug=debug)
    report = _run(loaded, changes, deadline_seconds)
    extra = {"changes": len(changes), "skipped": _skipped(report, loaded)}
    sys.exit(report_outcomes(report.outcomes, extra=extra))


def _run(loaded: config_module.Config, changes: list[Change], seconds: int) -> Report:
    """The pipeline the Lambda and the worker run (order, tags from metadata, verification,
    second purges), with the CLI's progress bar and deadline."""
    pipeline = Pipeline(loaded, shown_executor())
    deadline = time.monotonic() + seconds
    try:
        report = pipeline.run(changes, deadline)
    finally:
        pipeline.executor.close()
    warn_if_out_of_time(deadline, seconds, sum(not o.ok for o in report.outcomes))
    return report


def _skipped(report: Report, loaded: config_module.Config) -> list[dict[str, Any]]:
    found = [{**change_doc(c), "reason": why} for c in report.changes if (why := why_unrouted(c, loaded))]
    if not output.settings().json:
        for item in found[:WARNINGS_SHOWN]:
            warn(f"{item['bucket']}/{item['key']} ({item['source']}): {item['reason']}")
    return found
