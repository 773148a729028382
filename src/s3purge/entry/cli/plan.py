"""`s3purge plan`: what changes would purge, as batches and exact requests (secrets redacted)."""

from __future__ import annotations

from collections.abc import Iterable

import click

from s3purge.entry import output
from s3purge.entry.cli.base import CONFIG, load_config, placeholder_secrets, split_object
from s3purge.entry.cli.preview import show_plan
from s3purge.model import Change, EventKind
from s3purge.unrouted import why_unrouted


@click.command()
@click.argument("keys", nargs=-1)
@click.option(
    "--event", "event_files", multiple=True, help="Saved events: JSON, JSON Lines, `aws sqs receive-message` output."
)
@click.option("--removed", is_flag=True, help="Plan KEYS as deletions (default: created).")
@CONFIG
def plan(keys: tuple[str, ...], event_files: tuple[str, ...], removed: bool, config_path: str) -> None:
    """Show what changes would purge: batches and exact requests (secrets redacted).

    KEYS are BUCKET/KEY or s3://BUCKET/KEY, decoded (as stored in S3).
    """
    from s3purge.entry.inputs import read_changes

    loaded = load_config(config_path)
    placeholder_secrets(loaded.secrets())
    given = list(key_changes(keys, "removed" if removed else "created"))
    for change in given:
        if not loaded.routes(change.bucket):
            raise output.Refused(why_unrouted(change, loaded) or change.bucket)
    show_plan(loaded, [*given, *read_changes(event_files)])


def key_changes(keys: Iterable[str], event: EventKind) -> Iterable[Change]:
    for n, item in enumerate(keys):
        bucket, key = split_object(item)
        yield Change(bucket=bucket, key=key, event=event, source=f"arg{n}")
