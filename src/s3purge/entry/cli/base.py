"""What the command modules share: the --config and --debug options, logging, asking before a change,
placeholder secrets for previews, and sending batches. Command modules import it; it imports none of them."""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from s3purge import config as config_module
from s3purge import logs, secrets
from s3purge.entry import output
from s3purge.entry.output import warn
from s3purge.model import Batch, Outcome

if TYPE_CHECKING:
    from s3purge.config import Cdn
    from s3purge.execute import Executor

DEFAULT_CONFIG = "multicdn.config.yml"


CONFIG = click.option(
    "--config",
    "config_path",
    default=DEFAULT_CONFIG,
    show_default=True,
    type=click.Path(dir_okay=False),
    help="The s3purge config file (also: s3purge --config, S3PURGE_CONFIG).",
)


DEBUG = click.option("--debug/--no-debug", default=False, help="Log plans in detail (never secrets); same as -vv.")


SEND_DEADLINE = 300
"""Seconds a manual send (purge, replay, redrive) may take before what is left is reported failed.

Kept fixed rather than derived from the plan: a bound a user can predict, and --deadline
raises it for a paced bulk purge; when it runs out, a warning says so and names the option."""

DEADLINE = click.option(
    "--deadline",
    "deadline_seconds",
    type=click.IntRange(min=1),
    default=SEND_DEADLINE,
    show_default=True,
    metavar="SECONDS",
    help="Seconds the sends may take; what is not done by then is reported failed (raise it for big purges).",
)


def warn_if_out_of_time(deadline: float, seconds: int, failed: int) -> None:
    """Say when failures are the deadline's doing, and how to give the sends more time."""
    if failed and time.monotonic() >= deadline:
        warn(
            f"the {seconds} s deadline ran out with {failed} failed: what was not done in time counts as "
            "failed; raise it with --deadline SECONDS"
        )


class WarningLines(logging.Handler):
    """s3purge's warnings (legacy conversion notes ...) as `warning:` lines on stderr, each once."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen: set[str] = set()
        self.held: list[str] | None = None
        """While set, warnings are kept here instead of shown (load_config decides)."""

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if self.held is not None:
            self.held.append(message)
        elif message not in self.seen:
            self.seen.add(message)
            warn(message)


def load_config(path: str | Path, *, notes: bool = False) -> config_module.Config:
    """The config; a legacy file's conversion notes in full with `notes` or -v, else one line saying how many.

    The notes matter when checking or migrating the file, not on every plan and purge
    (the example legacy config has five). The only warnings a load logs are those notes.
    """
    with _held_warnings() as held:
        loaded = config_module.load(path)
    if held and not (notes or output.settings().verbose):
        count = f"{len(held)} note{'s' if len(held) > 1 else ''}"
        held = [f"{count} converting the legacy config {path}; see `s3purge config check {path}`"]
    for line in held:
        logging.getLogger("s3purge").warning(line)
    return loaded


@contextlib.contextmanager
def _held_warnings() -> Iterator[list[str]]:
    held: list[str] = []
    shown = next((h for h in logging.getLogger("s3purge").handlers if isinstance(h, WarningLines)), None)
    if shown is not None:
        shown.held = held
    try:
        yield held
    finally:
        if shown is not None:
            shown.held = None


def setup_logs(*, service: bool = False, debug: bool = False) -> None:
    """JSON logs: a worker logs its work on stdout; a manual send only its problems, on stderr.

    -v: one level more (each vendor call and receipt), -vv or --debug: plans too; -q: errors only.
    """
    current = output.settings()
    logs.setup(debug, stream=None if service and not current.json else sys.stderr)
    levels = [logging.INFO, logging.DEBUG] if service else [logging.WARNING, logging.INFO, logging.DEBUG]
    level = levels[min(len(levels) - 1, current.verbose + (2 if debug else 0))]
    if current.quiet:
        level = logging.ERROR
    logging.getLogger("s3purge").setLevel(level)
    for handler in logging.getLogger("s3purge").handlers:
        if isinstance(handler, WarningLines):
            handler.setLevel(logging.CRITICAL + 1)  # the JSON lines now carry the warnings


def asker(yes: bool) -> Callable[[str], bool]:
    """The one convention of every command that changes something (deploy, destroy, purge, replay).

    It shows what it will change first. Then `--yes` goes ahead; on a terminal it asks;
    without one (CI, a pipe) it changes nothing and says to add --yes. `--dry-run` only shows.
    """

    def ask(question: str) -> bool:
        if yes:
            return True
        if not sys.stdin.isatty():
            click.echo("no terminal to ask on: add --yes to go ahead", err=True)
            return False
        return click.confirm(question, default=False, err=True)

    return ask


def placeholder_secrets(found: Iterable[secrets.Secret]) -> None:
    """Secrets shown as *** in dry runs: nothing fetched, nothing revealed."""
    secrets.resolve(found, dict.fromkeys(secrets.DEFAULT_FETCHERS, _placeholder))


def _placeholder(secret: secrets.Secret) -> str:
    return "***"


def execute(
    batches: list[Batch], loaded: config_module.Config, seconds: int = SEND_DEADLINE, label: str = "purging"
) -> list[Outcome]:
    """Send batches with a progress bar (see `shown_executor`)."""
    executor = shown_executor(label)
    deadline = time.monotonic() + seconds
    try:
        outcomes = executor.run(batches, loaded.cdns, deadline)
    finally:
        executor.close()
    warn_if_out_of_time(deadline, seconds, sum(not o.ok for o in outcomes))
    return outcomes


def shown_executor(label: str = "purging") -> Executor:
    """The CLI's executor: it sends in slices so a progress bar moves, each slice all CDNs at once.
    Made here, not at import: the executor module loads httpx."""
    from s3purge.execute import Executor

    class Shown(Executor):
        def run(self, batches: list[Batch], cdns: dict[str, Cdn], deadline: float) -> list[Outcome]:
            size = max(8, 4 * sum(cdns[c].limits.concurrency for c in {b.cdn for b in batches}))
            outcomes: list[Outcome] = []
            with output.progress(sum(len(b.values) for b in batches), "item", label) as bar:
                for start in range(0, len(batches), size):
                    done = super().run(batches[start : start + size], cdns, deadline)
                    bar.update(sum(len(o.batch.values) for o in done))
                    outcomes += done
            return outcomes

    return Shown()


def split_object(item: str) -> tuple[str, str]:
    """BUCKET/KEY or s3://BUCKET/KEY -> (bucket, key); a usage error when either is missing."""
    bucket, _, key = item.removeprefix("s3://").partition("/")
    if not bucket or not key:
        raise click.BadParameter(f"{item!r}: expected BUCKET/KEY or s3://BUCKET/KEY")
    return bucket, key
