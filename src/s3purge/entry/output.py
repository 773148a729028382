"""How every command speaks: human text or one JSON document, progress, warnings, exit codes.

The JSON document (`--output json`) is the contract for scripts: docs/json-output.md
describes it, and its "schema" number changes only when a field changes meaning or goes.
Human text, progress bars and warnings never go to stdout in JSON mode.
CLI only: the Lambda path never imports this module (nor click, nor tqdm).
"""

from __future__ import annotations

import contextlib
import functools
import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

import click

from s3purge.errors import S3PurgeError

SCHEMA = 1
"""Version of the --output json documents (docs/json-output.md)."""
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
"""0 everything done; 1 some purges failed; 2 usage, config or environment error."""


class Refused(S3PurgeError):
    """What the user asked cannot be done as given (one `error:` line, exit status 2)."""


@dataclass
class Settings:
    """What the global options asked for, kept on the root click context."""

    json: bool = False
    quiet: bool = False
    verbose: int = 0
    command: str = ""
    region: str | None = None
    messages: list[str] = field(default_factory=list)
    """Text lines of a command without a document of its own, wrapped into its JSON."""


def settings() -> Settings:
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return Settings()
    meta = ctx.find_root().meta
    found = meta.get("s3purge.output")
    if not isinstance(found, Settings):
        found = meta["s3purge.output"] = Settings()
    return found


def say(text: str = "") -> None:
    """A line of human text on stdout; in JSON mode it goes to stderr (the document owns stdout)."""
    click.echo(text, err=settings().json)


def note(text: str) -> None:
    """Informational text on stderr (summaries, "written"); silenced by -q."""
    if not settings().quiet:
        click.echo(text, err=True)


def warn(text: str) -> None:
    """A `warning:` line on stderr; silenced by -q."""
    if not settings().quiet:
        click.echo(f"warning: {text}", err=True)


def emit(doc: dict[str, Any], exit_code: int = EXIT_OK) -> None:
    """In JSON mode, print the command's document (with schema, command, ok, exit_code)."""
    current = settings()
    if not current.json:
        return
    head = {"schema": SCHEMA, "command": current.command, "ok": exit_code == EXIT_OK, "exit_code": exit_code}
    click.echo(json.dumps({**head, **doc}, ensure_ascii=False, default=str))


def emit_error(message: str, exit_code: int) -> None:
    emit({"error": message, **({"messages": settings().messages} if settings().messages else {})}, exit_code)


class Bar(Protocol):
    def update(self, n: int) -> object: ...


@contextlib.contextmanager
def progress(total: int, unit: str, label: str) -> Iterator[Bar]:
    """A progress bar on stderr for bulk work (tqdm, imported here only: CLI only).

    Hidden with -q, when stderr is not a terminal, and for work too small to watch.
    """
    from tqdm import tqdm

    hidden = settings().quiet or total < 2 or not sys.stderr.isatty()
    with tqdm(total=total, unit=unit, desc=label, disable=hidden, file=sys.stderr, leave=False) as bar:
        yield bar


@dataclass
class Stopwatch:
    started: float = field(default_factory=time.monotonic)

    def seconds(self) -> float:
        return round(time.monotonic() - self.started, 3)


class Tee:
    """Stdout for a command without a JSON document: its lines go to stderr and into the document."""

    def __init__(self, lines: list[str], stream: IO[str]) -> None:
        self.lines, self.stream, self.partial = lines, stream, ""

    def write(self, text: str) -> int:
        self.stream.write(text)
        self.partial += text
        *done, self.partial = self.partial.split("\n")
        self.lines.extend(done)
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return False


def text_in_json(callback: Callable[..., Any] | None) -> Callable[..., Any] | None:
    """A text-only command's callback, made to emit a JSON document (its lines) in JSON mode."""
    if callback is None:
        return None

    @functools.wraps(callback)
    def run(*args: Any, **kwargs: Any) -> Any:
        with wrapped_text():
            result = callback(*args, **kwargs)
        emit({"messages": settings().messages})
        return result

    return run


@contextlib.contextmanager
def wrapped_text() -> Iterator[None]:
    """While a text-only command runs in JSON mode: its stdout becomes `messages` (and stderr)."""
    current = settings()
    if not current.json:
        yield
        return
    with contextlib.redirect_stdout(Tee(current.messages, sys.stderr)):
        yield
