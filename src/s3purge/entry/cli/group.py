"""The click group of s3purge: common options on every command, known errors as one line and status 2."""

from __future__ import annotations

import sys
from typing import Any

import click

from s3purge.entry import output
from s3purge.entry.cli.options import add_common_options, command_path
from s3purge.entry.output import EXIT_USAGE
from s3purge.errors import S3PurgeError


class CommandGroup(click.Group):
    """Adds the common options to every command, and turns known errors into one line and status 2."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        add_common_options(cmd)
        super().add_command(cmd, name)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if ctx.parent is None:
            _json_from(ctx, args)
        try:
            return super().parse_args(ctx, args)
        except click.ClickException as error:
            if ctx.parent is None:  # the root's own options were wrong: nothing below will speak
                output.emit_error(error.format_message(), error.exit_code)
            raise

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.exceptions.Exit:
            raise
        except click.ClickException as error:
            _name_command(ctx)
            if ctx.parent is None:  # a nested group (config) passes it up: one document, from the root
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


def _json_from(ctx: click.Context, args: list[str]) -> None:
    """--output, wherever it stands, known before anything is parsed.

    A usage error stops click before the option's callback runs (`config check --output
    json --bogus`): the error must still be the JSON document. The last --output wins, as in click.
    """
    wanted = None
    for n, arg in enumerate(args):
        if arg == "--":
            break
        if arg == "--output" and n + 1 < len(args):
            wanted = args[n + 1]
        elif arg.startswith("--output="):
            wanted = arg.partition("=")[2]
    if wanted in ("json", "text"):
        ctx.meta.setdefault("s3purge.output", output.Settings()).json = wanted == "json"


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
    """The failing command's name for the JSON error document, when its own options did not set it."""
    current = output.settings()
    if not current.command and ctx.invoked_subcommand:
        current.command = " ".join([*command_path(ctx), ctx.invoked_subcommand])
