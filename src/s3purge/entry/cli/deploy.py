"""`s3purge deploy`, `destroy` and `template`: run s3purge on AWS Lambda (see docs/deploy.md)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from s3purge.deploy import RUNTIMES, Options
from s3purge.entry.cli.base import asker, load_config
from s3purge.entry.output import Refused

F = TypeVar("F", bound=Callable[..., Any])
RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip
"""The only retention periods CloudWatch Logs accepts."""

NAME = click.option(
    "--name", default="s3purge", show_default=True, help="Stack name; also the function's name and resource prefix."
)
REGION = click.option("--region", help="AWS region (default: from the AWS profile / environment).")
BUCKETS = click.option(
    "--bucket", "buckets", multiple=True, help="Bucket to hook up (repeatable; default: every bucket in the config)."
)
YES = click.option("--yes", "-y", is_flag=True, help="Go ahead without asking (for CI).")
DRY_RUN = click.option("--dry-run", is_flag=True, help="Only show what would change; change nothing.")


STACK_OPTIONS = [
    click.option(
        "--config",
        "config_path",
        default="multicdn.config.yml",
        show_default=True,
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
    ),
    BUCKETS,
    NAME,
    click.option("--arch", type=click.Choice(["arm64", "x86_64"]), default="arm64", show_default=True),
    click.option("--runtime", type=click.Choice(RUNTIMES), default=RUNTIMES[0], show_default=True),
    click.option(
        "--trigger",
        type=click.Choice(["sqs", "direct"]),
        default="sqs",
        show_default=True,
        help="sqs: bucket -> queue (+ dead letters) -> function; direct: bucket invokes the function.",
    ),
    click.option("--memory", type=click.IntRange(128, 10240), default=256, show_default=True, help="MB."),
    click.option("--timeout", type=click.IntRange(3, 900), default=60, show_default=True, help="Seconds."),
    click.option(
        "--batch-window",
        type=click.IntRange(0, 300),
        default=5,
        show_default=True,
        help="Seconds SQS gathers events into one invocation.",
    ),
    click.option(
        "--max-concurrency",
        type=click.IntRange(2, 1000),
        default=2,
        show_default=True,
        help="Function instances at most; each paces at this share of every vendor limit.",
    ),
    click.option(
        "--log-retention",
        type=click.Choice([str(d) for d in RETENTION_DAYS]),
        default="14",
        show_default=True,
        help="Days of logs kept.",
    ),
    click.option("--alarm-email", help="Send the alarms to this address (SNS; confirm the email once)."),
    click.option("--debug/--no-debug", default=False, help="The function logs plans in detail."),
]
"""The options that shape the template, shared by deploy and template (in the order --help lists them)."""


def _stack_options(command: F) -> F:
    for decorator in reversed(STACK_OPTIONS):
        command = decorator(command)
    return command


def _options(params: dict[str, Any]) -> Options:
    return Options(
        name=params["name"],
        buckets=tuple(params["buckets"]),
        arch=params["arch"],
        runtime=params["runtime"],
        trigger=params["trigger"],
        memory=params["memory"],
        timeout=params["timeout"],
        batch_window=params["batch_window"],
        max_concurrency=params["max_concurrency"],
        log_retention_days=int(params["log_retention"]),
        alarm_email=params["alarm_email"],
        debug=params["debug"],
    )


@click.command()
@_stack_options
@REGION
@click.option(
    "--package",
    "package_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Use this zip (from `template --package-out`) instead of building one.",
)
@click.option("--artifact-bucket", help="Upload the package here (default: s3purge-artifacts-ACCOUNT-REGION).")
@DRY_RUN
@YES
def deploy(
    region: str | None,
    package_path: Path | None,
    artifact_bucket: str | None,
    dry_run: bool,
    yes: bool,
    **params: Any,
) -> None:
    """Create or update s3purge on AWS Lambda, with its queue, role, alarms and bucket triggers.

    Shows the change set and the bucket entries first, then asks (--yes: don't ask).
    """
    from s3purge.deploy import package, preflight, stack, template
    from s3purge.deploy.aws import Aws

    config_path: Path = params["config_path"]
    loaded = load_config(config_path)
    options = _options(params)
    template.build(loaded, options)  # fail on config, name or bucket mistakes before building anything
    preflight.refuse_unusable_secrets(loaded)
    aws = Aws.connect(region)
    with tempfile.TemporaryDirectory(prefix="s3purge-package-") as scratch:
        if package_path is not None:
            built = package.from_file(package_path, config_path)
        else:
            click.echo(f"building the {options.arch}/{options.runtime} package ...")
            out = Path(scratch, f"{options.name}.zip")
            built = package.build(config_path, out, arch=options.arch, runtime=options.runtime)
        click.echo(built.summary())
        stack.deploy(
            loaded,
            options,
            built,
            aws,
            click.echo,
            artifact_bucket=artifact_bucket,
            dry_run=dry_run,
            confirm=asker(yes),
        )


@click.command()
@NAME
@REGION
@click.option(
    "--bucket",
    "buckets",
    multiple=True,
    help="Only remove our notification entry from this bucket (repeatable); the stack and the rest stay.",
)
@click.option("--force", is_flag=True, help="Destroy even while the queues hold messages (they are lost).")
@DRY_RUN
@YES
def destroy(*, name: str, region: str | None, buckets: tuple[str, ...], force: bool, dry_run: bool, yes: bool) -> None:
    """Remove what `deploy` created (stack, its packages, our bucket notification entries), nothing else.

    Refuses while the events or dead-letter queue holds messages (--force: destroy anyway).
    Shows everything it will remove first, then asks (--yes: don't ask).
    """
    from s3purge.deploy import teardown
    from s3purge.deploy.aws import Aws

    aws = Aws.connect(region)
    teardown.destroy(aws, name, click.echo, buckets=buckets, dry_run=dry_run, force=force, confirm=asker(yes))


def _output_trap(value: str | None) -> None:
    """`template --output X`: refused, never a file named `json`.

    The file option was --output once, and every other command's --output is text|json:
    `template --output json` wrote a file named json. Now --out names the file.
    """
    if value is None:
        return
    if value in ("json", "text"):
        raise Refused(
            f"template prints CloudFormation, not a {value} report: --format json|yaml picks its format, "
            "--out FILE writes it to a file"
        )
    raise Refused(f"template: --output is now --out (--out {value})")


@click.command(name="template")
@_stack_options
@click.option("--format", "fmt", type=click.Choice(["json", "yaml"]), default="json", show_default=True)
@click.option("--out", "-o", type=click.File("w"), default="-", help="Write the template here (default: stdout).")
@click.option("--output", hidden=True, expose_value=False, callback=lambda ctx, param, value: _output_trap(value))
@click.option(
    "--package-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also build the Lambda package here (upload it and pass CodeBucket/CodeKey).",
)
def template_command(fmt: str, out: Any, package_out: Path | None, **params: Any) -> None:
    """Write the CloudFormation template deploy would use, for IaC pipelines."""
    from s3purge.deploy import package, preflight, template

    loaded = load_config(params["config_path"])
    options = _options(params)
    preflight.warn_about_secrets(loaded, lambda line: click.echo(line, err=True))
    out.write(template.dump(template.build(loaded, options), fmt))
    if package_out is not None:
        built = package.build(params["config_path"], package_out, arch=options.arch, runtime=options.runtime)
        click.echo(f"{built.summary()}; sha256 {built.sha256}", err=True)
    click.echo(
        "note: bucket notifications are not in the template (the bucket is yours): point the bucket's "
        "events at the NotificationTarget output, or run `s3purge deploy`.",
        err=True,
    )
