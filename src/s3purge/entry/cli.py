"""The `s3purge` command: worker, plan, replay, config check, demo."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

import click
import httpx

from s3purge import config as config_module
from s3purge import logs, secrets
from s3purge.errors import S3PurgeError
from s3purge.escalate import Thresholds
from s3purge.events import changes_in
from s3purge.model import Change, EventKind
from s3purge.pipeline import Pipeline
from s3purge.plan import Plan
from s3purge.plan import plan as make_plan
from s3purge.providers.base import Provider

CONFIG = click.option(
    "--config",
    "config_path",
    default="multicdn.config.yml",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="The s3purge config file.",
)
DEBUG = click.option("--debug/--no-debug", default=False, help="Log plans in detail (never secrets).")


class _Group(click.Group):
    """Turns s3purge's own errors into one clear line and exit status 2."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except S3PurgeError as error:
            click.echo(f"error: {error}", err=True)
            sys.exit(2)


@click.group(cls=_Group)
@click.version_option(package_name="s3purge")
def main() -> None:
    """Purge every CDN in front of an S3 bucket when its objects change."""


@main.command()
@click.option("--queue-url", required=True, help="SQS queue receiving the bucket's events.")
@click.option("--wait-seconds", default=20, show_default=True, type=click.IntRange(0, 20))
@CONFIG
@DEBUG
def worker(queue_url: str, wait_seconds: int, config_path: str, debug: bool) -> None:
    """Consume S3 events from SQS until SIGTERM."""
    from s3purge.entry.worker import Worker

    logs.setup(debug)
    Worker(_pipeline(config_path), queue_url, wait_seconds=wait_seconds).run()


@main.command()
@click.argument("keys", nargs=-1)
@click.option("--event", "event_files", multiple=True, type=click.File(), help="Saved event JSON.")
@click.option("--removed", is_flag=True, help="Plan KEYS as deletions (default: created).")
@CONFIG
def plan(keys: tuple[str, ...], event_files: tuple[TextIO, ...], removed: bool, config_path: str) -> None:
    """Show what changes would purge: batches and exact requests (secrets redacted).

    KEYS are BUCKET/KEY, decoded (as stored in S3).
    """
    loaded = config_module.load(config_path)
    secrets.resolve(loaded.secrets(), dict.fromkeys(secrets.DEFAULT_FETCHERS, _placeholder))
    changes = [
        *_key_changes(keys, "removed" if removed else "created"),
        *_event_changes(event_files),
    ]
    planned = make_plan(changes, loaded)
    click.echo(f"{len(changes)} change(s) -> {len(planned.batches)} batch(es)")
    for decision in planned.decisions:
        click.echo(f"[{decision.cdn}] {decision.rule} rule: {decision.target.value} ({decision.reason})")
    precise = make_plan(changes, _without_escalation(loaded)) if planned.decisions else planned
    for cdn, (paid, before) in _paid_paths(planned, precise, loaded).items():
        click.echo(f"[{cdn}] paid paths: {paid} (a wildcard counts as one; {before} without escalation)")
    for batch in planned.batches:
        provider = loaded.cdns[batch.cdn].provider
        click.echo(f"\n[{batch.cdn}] {batch.action} {len(batch.values)} {batch.kind}(s)")
        for request in provider.requests(batch):
            click.echo(render(request, provider))


@main.command()
@click.argument("event_files", nargs=-1, required=True, type=click.File())
@click.option("--send", is_flag=True, help="Really purge (default: only show the plan).")
@CONFIG
@DEBUG
@click.pass_context
def replay(ctx: click.Context, event_files: tuple[TextIO, ...], send: bool, config_path: str, debug: bool) -> None:
    """Run saved events (any envelope) through the pipeline again."""
    if not send:
        ctx.invoke(plan, event_files=event_files, config_path=config_path)
        click.echo("\ndry run: nothing sent (add --send to purge)")
        return
    logs.setup(debug, stream=sys.stderr)
    report = _pipeline(config_path).run(list(_event_changes(event_files)), time.monotonic() + 300)
    for outcome in report.outcomes:
        state = "ok" if outcome.ok else "FAILED"
        click.echo(f"{state:6} {outcome.batch.cdn} {len(outcome.batch.values)} item(s) {outcome.detail}")
    sys.exit(0 if report.ok else 1)


@main.group(name="config")
def config_group() -> None:
    """Check configuration files."""


@config_group.command()
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--resolve", is_flag=True, help="Also fetch every referenced secret.")
def check(path: str, resolve: bool) -> None:
    """Validate a config file; exit 2 with every problem if it is wrong."""
    loaded = config_module.load(path)
    if resolve:
        secrets.resolve(loaded.secrets())
    routes = sum(len(r) for r in loaded.buckets.values())
    click.echo(f"{path}: ok ({len(loaded.cdns)} CDN(s), {len(loaded.buckets)} bucket(s), {routes} route(s))")


@main.command()
def demo() -> None:
    """Run the local demo: moto S3 + SQS, a real Varnish, and the worker purging it."""
    from s3purge.demo.run import run

    sys.exit(run())


def render(request: httpx.Request, provider: Provider) -> str:
    """A request as text, with every secret header's value replaced by ***."""
    lines = [f"{request.method} {request.url}"]
    for name, value in request.headers.items():
        shown = "***" if name.lower() in provider.secret_headers else value
        lines.append(f"  {name}: {shown}")
    if request.content:
        lines.append("  " + request.content.decode("utf-8", "replace"))
    return "\n".join(lines)


def _without_escalation(loaded: config_module.Config) -> config_module.Config:
    cdns = {name: dataclasses.replace(cdn, escalation=Thresholds()) for name, cdn in loaded.cdns.items()}
    return dataclasses.replace(loaded, cdns=cdns)


def _paid_paths(planned: Plan, precise: Plan, loaded: config_module.Config) -> dict[str, tuple[int, int]]:
    """CDN -> paths billed with and without escalation, for vendors that bill per path."""
    totals: dict[str, list[int]] = {}
    for column, batches in enumerate((planned.batches, precise.batches)):
        for batch in batches:
            count = getattr(loaded.cdns[batch.cdn].provider, "paid_paths", None)
            if count is not None:
                totals.setdefault(batch.cdn, [0, 0])[column] += count(batch)
    return {cdn: (paid, before) for cdn, (paid, before) in totals.items()}


def _pipeline(config_path: str) -> Pipeline:
    loaded = config_module.load(config_path)
    secrets.resolve(loaded.secrets())
    return Pipeline(loaded)


def _placeholder(secret: secrets.Secret) -> str:
    return "***"


def _key_changes(keys: Iterable[str], event: EventKind) -> Iterable[Change]:
    for n, item in enumerate(keys):
        bucket, _, key = item.partition("/")
        if not key:
            raise click.BadParameter(f"{item!r}: expected BUCKET/KEY")
        yield Change(bucket=bucket, key=key, event=event, source=f"arg{n}")


def _event_changes(files: Iterable[TextIO]) -> Iterable[Change]:
    for handle in files:
        try:
            doc = json.load(handle)
        except ValueError as error:
            raise click.BadParameter(f"{handle.name}: not JSON ({error})") from None
        yield from changes_in(doc, Path(handle.name).name)


from s3purge.entry import cli_extra  # noqa: E402  (its commands use render() above)

cli_extra.register(main, config_group)

from s3purge.entry import cli_deploy  # noqa: E402

cli_deploy.register(main)
