"""The `s3purge` command: worker, plan, replay, config check, demo (and purge, redrive, deploy ...).

Global options work before or after the command name: --config (or S3PURGE_CONFIG),
--output text|json, -q, -v, --profile, --region. Exit status: 0 all done, 1 some purges
failed, 2 usage, config or environment error (one line on stderr, never a traceback).

This module only assembles the group: each command lives in a module of its own, and what
they share in base, show, preview, options and group; none of them imports this module.
"""

from __future__ import annotations

import logging
from typing import Any

import click

from s3purge.entry import output
from s3purge.entry.cli.base import DEFAULT_CONFIG, WarningLines
from s3purge.entry.cli.config import config_group
from s3purge.entry.cli.demo import demo
from s3purge.entry.cli.deploy import deploy, destroy, template_command
from s3purge.entry.cli.group import CommandGroup
from s3purge.entry.cli.options import add_common_options, defaults
from s3purge.entry.cli.plan import plan
from s3purge.entry.cli.purge import purge
from s3purge.entry.cli.redrive import redrive
from s3purge.entry.cli.replay import replay
from s3purge.entry.cli.worker import worker

__all__ = ["main"]

COMMANDS = (worker, plan, replay, config_group, demo, purge, redrive, deploy, destroy, template_command)
TEXT_ONLY = ("deploy", "destroy")
"""Commands that print text only: in JSON mode their lines become the document's `messages`."""


@click.group(cls=CommandGroup)
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
    ctx.default_map = defaults(main, values)
    _show_warnings()


def _show_warnings() -> None:
    logger = logging.getLogger("s3purge")
    for old in [h for h in logger.handlers if isinstance(h, WarningLines)]:
        logger.removeHandler(old)
    logger.addHandler(WarningLines())
    if logger.level == logging.NOTSET or logger.level > logging.WARNING:
        logger.setLevel(logging.WARNING)
    logger.propagate = False  # else Python's last-resort handler prints each warning again


for _command in COMMANDS:
    main.add_command(_command)
add_common_options(main)
for _name in TEXT_ONLY:
    main.commands[_name].callback = output.text_in_json(main.commands[_name].callback)
