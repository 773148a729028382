"""The `s3purge` command: worker, plan, replay, config check, demo (and purge, redrive, deploy ...).

Global options work before or after the command name: --config (or S3PURGE_CONFIG),
--output text|json, -q, -v, --profile, --region. Exit status: 0 all done, 1 some purges
failed, 2 usage, config or environment error (one line on stderr, never a traceback).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import click

from s3purge import config as config_module
from s3purge import secrets
from s3purge.entry import cli_deploy, cli_extra, cli_redrive, output
from s3purge.entry.cli_base import (
    CONFIG,
    DEBUG,
    DEFAULT_CONFIG,
    WarningLines,
    batch_doc,
    execute,
    refused_docs,
    report_outcomes,
    setup_logs,
    show_batches,
    show_refused,
    split_object,
)
from s3purge.entry.output import EXIT_USAGE, note, say, warn
from s3purge.errors import S3PurgeError
from s3purge.escalate import Thresholds
from s3purge.model import Change, EventKind, Report
from s3purge.pipeline import refusal_outcomes
from s3purge.plan import Plan
from s3purge.plan import plan as make_plan
from s3purge.unrouted import why_unrouted

TEXT_ONLY = ("deploy", "destroy")
"""Commands that print text only: in JSON mode their lines become the document's `messages`."""
WARNINGS_SHOWN = 10
"""Skipped changes named one by one; the rest are counted."""


class _Group(click.Group):
    """Adds the common options to every command, and turns known errors into one line and status 2."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        _add_common_options(cmd)
        super().add_command(cmd, name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.exceptions.Exit:
            raise
        except click.ClickException as error:
            _name_command(ctx)
            output.emit_error(error.format_message(), error.exit_code)
            raise
        except Exception as error:
            message = _known_error(error)
            if message is None:
                raise
            _name_command(ctx)
            click.echo(f"error: {message}", err=True)
            output.emit_error(message, EXIT_USAGE)
            sys.exit(EXIT_USAGE)


def _known_error(error: Exception) -> str | None:
    """One line for errors a user can fix (config, AWS environment, files), None for bugs."""
    if isinstance(error, S3PurgeError):
        return str(error)
    if isinstance(error, OSError):
        return f"{error.filename or ''}: {error.strerror or error}".lstrip(": ")
    module = type(error).__module__ or ""
    if module.startswith(("botocore", "boto3")):
        return f"AWS: {_aws_message(error)}"
    return None


def _aws_message(error: Exception) -> str:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code", "")
        text = response.get("Error", {}).get("Message", "")
        if "NonExistentQueue" in code or code == "QueueDoesNotExist":
            return f"the queue does not exist ({text or code})"
        return f"{code}: {text}".strip(": ")
    if type(error).__name__ == "NoCredentialsError":
        return "no credentials found (set AWS_PROFILE / --profile, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
    return str(error)


def _name_command(ctx: click.Context) -> None:
    current = output.settings()
    if not current.command and ctx.invoked_subcommand:
        current.command = " ".join([*_path(ctx), ctx.invoked_subcommand])


def _path(ctx: click.Context) -> list[str]:
    names = []
    while ctx.parent is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return names[::-1]


def _on_output(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    current = output.settings()
    if value is not None:
        current.json = value == "json"
    if ctx.parent is not None and not isinstance(ctx.command, click.Group):
        current.command = " ".join(_path(ctx))


def _on_quiet(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    output.settings().quiet |= value


def _on_verbose(ctx: click.Context, param: click.Parameter, value: int) -> None:
    output.settings().verbose += value


def _on_profile(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value:
        ctx.find_root().with_resource(_environ(AWS_PROFILE=value))


def _on_region(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value:
        output.settings().region = value
        ctx.find_root().with_resource(_environ(AWS_REGION=value, AWS_DEFAULT_REGION=value))


@contextlib.contextmanager
def _environ(**values: str) -> Iterator[None]:
    """AWS settings for this command only (boto3 reads them from the environment)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


def _common_options(command: click.Command) -> list[click.Option]:
    names = {opt for param in command.params for opt in getattr(param, "opts", [])}
    options = [
        click.Option(
            ["--output"],
            type=click.Choice(["text", "json"]),
            expose_value=False,
            is_eager=True,
            callback=_on_output,
            help="text for people (default), json for scripts (docs/json-output.md).",
        ),
        click.Option(["-q", "--quiet"], is_flag=True, expose_value=False, callback=_on_quiet, help="Only errors."),
        click.Option(
            ["-v", "--verbose"], count=True, expose_value=False, callback=_on_verbose, help="More logs (-vv: debug)."
        ),
        click.Option(["--profile"], expose_value=False, callback=_on_profile, help="AWS profile."),
        click.Option(["--region"], expose_value=False, callback=_on_region, help="AWS region."),
    ]
    return [option for option in options if not names & set(option.opts)]


def _add_common_options(command: click.Command) -> None:
    command.params.extend(_common_options(command))
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _add_common_options(sub)


def _defaults(group: click.Group, values: dict[str, Any]) -> dict[str, Any]:
    """click default_map giving every command's matching parameter the global value."""
    found: dict[str, Any] = {}
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found[name] = _defaults(command, values)
        else:
            mine = {p.name for p in command.params}
            found[name] = {key: value for key, value in values.items() if key in mine}
    return found


@click.group(cls=_Group)
@click.version_option(package_name="s3purge")
@click.option(
    "--config",
    "config_path",
    envvar="S3PURGE_CONFIG",
    type=click.Path(dir_okay=False),
    help=f"The config file for every command [env: S3PURGE_CONFIG; default: {DEFAULT_CONFIG}].",
)
@click.pass_context
def main(ctx: click.Context, config_path: str | None) -> None:
    """Purge every CDN in front of an S3 bucket when its objects change.

    Exit status: 0 all done, 1 some purges failed, 2 usage, config or environment error.
    """
    values: dict[str, Any] = {}
    if config_path:
        values["config_path"] = config_path
    if output.settings().region:
        values["region"] = output.settings().region
    ctx.default_map = _defaults(main, values)
    _show_warnings()


def _show_warnings() -> None:
    logger = logging.getLogger("s3purge")
    for old in [h for h in logger.handlers if isinstance(h, WarningLines)]:
        logger.removeHandler(old)
    logger.addHandler(WarningLines())
    if logger.level == logging.NOTSET or logger.level > logging.WARNING:
        logger.setLevel(logging.WARNING)
    logger.propagate = False  # else Python's last-resort handler prints each warning again


@main.command()
@click.option("--queue-url", required=True, help="SQS queue receiving the bucket's events.")
@click.option("--wait-seconds", default=20, show_default=True, type=click.IntRange(0, 20))
@CONFIG
@DEBUG
def worker(queue_url: str, wait_seconds: int, config_path: str, debug: bool) -> None:
    """Consume S3 events from SQS until SIGTERM (JSON log lines on stdout)."""
    from s3purge.entry.worker import Worker

    if not queue_url.startswith(("https://", "http://")):
        raise output.Refused(
            f"--queue-url {queue_url!r}: give the queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)"
        )
    pipeline = _pipeline(config_path)
    setup_logs(service=True, debug=debug)
    stopwatch = output.Stopwatch()
    Worker(pipeline, queue_url, wait_seconds=wait_seconds).run()
    output.emit({"queue_url": queue_url, "seconds": stopwatch.seconds()})


@main.command()
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

    loaded = _placeholder_secrets(config_module.load(config_path))
    given = list(key_changes(keys, "removed" if removed else "created"))
    for change in given:
        if not loaded.routes(change.bucket):
            raise output.Refused(why_unrouted(change, loaded) or change.bucket)
    show_plan(loaded, [*given, *read_changes(event_files)])


def show_plan(loaded: config_module.Config, changes: list[Change], extra: dict[str, Any] | None = None) -> None:
    """The plan as text (or the JSON document): skipped changes, escalations, batches, requests."""
    planned = make_plan(changes, loaded)
    skipped = [(c, why) for c in changes if (why := why_unrouted(c, loaded)) is not None]
    precise = make_plan(changes, _without_escalation(loaded)) if planned.decisions else planned
    paid = _paid_paths(planned, precise, loaded)
    doc = {
        "changes": len(changes),
        "skipped": [{**_change_doc(c), "reason": why} for c, why in skipped],
        "decisions": [
            {"cdn": d.cdn, "rule": d.rule, "kind": d.target.kind, "value": d.target.value, "reason": d.reason}
            for d in planned.decisions
        ],
        "paid_paths": {cdn: {"escalated": a, "precise": b} for cdn, (a, b) in paid.items()},
        "refused": refused_docs(planned),
        "batches": [batch_doc(b, loaded.cdns[b.cdn].provider) for b in planned.batches],
        **(extra or {}),
    }
    if output.settings().json:
        output.emit(doc)
        return
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


@main.command()
@click.argument("sources", nargs=-1, required=True)
@click.option("--yes", "--send", "-y", "send", is_flag=True, help="Purge without asking (--send: the old name).")
@click.option("--dry-run", is_flag=True, help="Only show the plan.")
@CONFIG
@DEBUG
def replay(*, sources: tuple[str, ...], send: bool, dry_run: bool, config_path: str, debug: bool) -> None:
    """Run saved events through the pipeline again: shows the plan, then asks (--yes: don't ask).

    SOURCES: files of events in any envelope (JSON, JSON Lines, `aws sqs receive-message`
    output; - for stdin), or s3://BUCKET/PREFIX to purge every object listed there.
    """
    from s3purge.entry.cli_deploy import asker
    from s3purge.entry.inputs import read_changes

    loaded = config_module.load(config_path)
    changes = read_changes(sources)  # every input read (or refused, naming it) before anything is sent
    if not send:
        show_plan(_placeholder_secrets(loaded), changes, {"dry_run": True})
        if dry_run or output.settings().json or not asker(yes=False)("Send these requests?"):
            note("\ndry run: nothing sent (add --yes to purge)")
            return
        loaded = config_module.load(config_path)  # afresh: the plan filled in placeholder secrets
    secrets.resolve(loaded.secrets())
    setup_logs(debug=debug)
    planned = make_plan(changes, loaded)
    outcomes = execute(planned.batches, loaded) + refusal_outcomes(planned)
    report = Report(changes=changes, outcomes=outcomes, routed=planned.routed)
    sys.exit(report_outcomes(outcomes, extra={"changes": len(changes), "skipped": _skipped(report, loaded)}))


def _change_doc(change: Change) -> dict[str, Any]:
    return {"source": change.source, "bucket": change.bucket, "key": change.key, "event": change.event}


def _skipped(report: Report, loaded: config_module.Config) -> list[dict[str, Any]]:
    found = [{**_change_doc(c), "reason": why} for c in report.changes if (why := why_unrouted(c, loaded))]
    if not output.settings().json:
        for item in found[:WARNINGS_SHOWN]:
            warn(f"{item['bucket']}/{item['key']} ({item['source']}): {item['reason']}")
    return found


@main.group(name="config", cls=_Group)
def config_group() -> None:
    """Check and migrate configuration files."""


@config_group.command()
@click.argument("config_path", metavar="[PATH]", required=False, type=click.Path(dir_okay=False))
@click.option("--resolve", is_flag=True, help="Also fetch every referenced secret.")
def check(config_path: str | None, resolve: bool) -> None:
    """Validate a config file (default: the global --config); exit 2 with every problem if it is wrong."""
    path = config_path or DEFAULT_CONFIG
    loaded = config_module.load(path)
    if resolve:
        secrets.resolve(loaded.secrets())
    routes = sum(len(r) for r in loaded.buckets.values())
    if output.settings().json:
        output.emit(
            {
                "path": path,
                "cdns": {name: cdn.provider.vendor for name, cdn in loaded.cdns.items()},
                "buckets": sorted(loaded.buckets),
                "routes": routes,
                "resolved": resolve,
            }
        )
        return
    say(f"{path}: ok ({len(loaded.cdns)} CDN(s), {len(loaded.buckets)} bucket(s), {routes} route(s))")


@main.command()
def demo() -> None:
    """Run the local demo: moto S3 + SQS, a real Varnish, and the worker purging it."""
    from s3purge.demo.run import run

    with output.wrapped_text():
        code = run()
    output.emit({"messages": output.settings().messages}, code)
    sys.exit(code)


def _without_escalation(loaded: config_module.Config) -> config_module.Config:
    cdns = {name: dataclasses.replace(cdn, escalation=Thresholds()) for name, cdn in loaded.cdns.items()}
    return dataclasses.replace(loaded, cdns=cdns)


def _paid_paths(planned: Plan, precise: Plan, loaded: config_module.Config) -> dict[str, tuple[int, int]]:
    """CDN -> paths billed with and without escalation, for vendors that bill per path."""
    totals: dict[str, list[int]] = {}
    for column, batches in enumerate((planned.batches, precise.batches)):
        for batch in batches:
            provider = loaded.cdns[batch.cdn].provider
            if provider.billed_per_item:
                totals.setdefault(batch.cdn, [0, 0])[column] += provider.cost(batch)
    return {cdn: (paid, before) for cdn, (paid, before) in totals.items()}


def _pipeline(config_path: str) -> Any:
    from s3purge.pipeline import Pipeline

    return Pipeline(config_module.load(config_path))  # a CDN whose secret cannot be fetched fails alone


def _placeholder_secrets(loaded: config_module.Config) -> config_module.Config:
    """Secrets shown as *** in dry runs: nothing fetched, nothing revealed."""
    secrets.resolve(loaded.secrets(), dict.fromkeys(secrets.DEFAULT_FETCHERS, _placeholder))
    return loaded


def _placeholder(secret: secrets.Secret) -> str:
    return "***"


def key_changes(keys: Iterable[str], event: EventKind) -> Iterable[Change]:
    for n, item in enumerate(keys):
        bucket, key = split_object(item)
        yield Change(bucket=bucket, key=key, event=event, source=f"arg{n}")


def register(*adders: Callable[[click.Group, click.Group], None]) -> None:
    for add in adders:
        add(main, config_group)


register(cli_extra.register, cli_redrive.register)
cli_deploy.register(main)
_add_common_options(main)
for _name in TEXT_ONLY:
    if _name in main.commands:
        main.commands[_name].callback = output.text_in_json(main.commands[_name].callback)
