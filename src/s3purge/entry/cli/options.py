"""The options every command takes, before or after its name: --output, -q, -v, --profile, --region."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import click

from s3purge.entry import output


def command_path(ctx: click.Context) -> list[str]:
    """The command's names below the root (`config check` -> ["config", "check"])."""
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
        current.command = " ".join(command_path(ctx))


def _on_quiet(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    output.settings().quiet |= value


def _on_verbose(ctx: click.Context, param: click.Parameter, value: int) -> None:
    output.settings().verbose += value


def _on_profile(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value:
        ctx.find_root().with_resource(environ(AWS_PROFILE=value))


def _on_region(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value:
        output.settings().region = value
        ctx.find_root().with_resource(environ(AWS_REGION=value, AWS_DEFAULT_REGION=value))


@contextlib.contextmanager
def environ(**values: str) -> Iterator[None]:
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
    """The common options this command does not already define itself (deploy has its own --region)."""
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


def add_common_options(command: click.Command) -> None:
    """Give a command, and every command of a group, the common options it lacks."""
    command.params.extend(_common_options(command))
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            add_common_options(sub)


def defaults(group: click.Group, values: dict[str, Any]) -> dict[str, Any]:
    """click default_map giving every command's matching parameter the global value."""
    found: dict[str, Any] = {}
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found[name] = defaults(command, values)
        else:
            mine = {p.name for p in command.params}
            found[name] = {key: value for key, value in values.items() if key in mine}
    return found
