"""`s3purge config check` and `config migrate`: validate a config file, rewrite a legacy one."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import click
import yaml

from s3purge import config as config_module
from s3purge import legacy, secrets
from s3purge.entry import output
from s3purge.entry.cli.base import DEFAULT_CONFIG, load_config
from s3purge.entry.cli.group import CommandGroup
from s3purge.entry.output import note, say
from s3purge.errors import ConfigError
from s3purge.locations import dotted, is_legacy


@click.group(name="config", cls=CommandGroup)
def config_group() -> None:
    """Check and migrate configuration files."""


@config_group.command()
@click.argument("config_path", metavar="[PATH]", required=False, type=click.Path(dir_okay=False))
@click.option("--resolve", is_flag=True, help="Also fetch every referenced secret.")
def check(config_path: str | None, resolve: bool) -> None:
    """Validate a config file (default: the global --config); exit 2 with every problem if it is wrong."""
    path = config_path or DEFAULT_CONFIG
    loaded = load_config(path, notes=True)
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


@config_group.command()
@click.argument("old", type=click.Path(dir_okay=False, exists=True))
@click.argument("new", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--force", is_flag=True, help="Overwrite NEW if it exists.")
def migrate(old: str, new: str, force: bool) -> None:
    """Rewrite a legacy multicdn.config.yml (cdnDomains/cdnConfigurations) in the s3purge format.

    Secrets are copied exactly as written, never resolved. NEW may be - for stdout.
    """
    load_config(old, notes=True)  # every problem at the legacy file's lines; notes shown as warnings
    raw = yaml.safe_load(Path(old).read_text(encoding="utf-8"))
    if not is_legacy(raw):
        raise ConfigError(f"{old}: already in the s3purge format (no top-level {legacy.DOMAINS})")
    converted = legacy.convert(raw)
    notes = [f"{dotted(at)}: {text}" for at, text in converted.notes]
    text = legacy.dump(converted.document, notes)
    config_module.parse(text, new)  # what we write must load
    counts = {"cdns": len(converted.document["cdns"]), "buckets": len(converted.document["buckets"])}
    if new == "-":
        if output.settings().json:
            output.emit({"path": "-", "config": text, "notes": notes, **counts})
        else:
            click.echo(text, nl=False)
        return
    _write_like(Path(new), text, Path(old), force)
    output.emit({"path": new, "notes": notes, **counts})
    note(f"{new}: written ({counts['cdns']} CDN(s), {counts['buckets']} bucket(s))")


def _write_like(target: Path, text: str, source: Path, force: bool) -> None:
    """Write `text` with the source's permissions: plain-text secrets in a 0600 file stay 0600."""
    if not target.parent.is_dir():
        raise ConfigError(f"{target}: directory {target.parent} does not exist")
    if target.exists() and not force:
        raise click.UsageError(f"{target} exists (add --force to overwrite)")
    mode = stat.S_IMODE(source.stat().st_mode)
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    os.fchmod(descriptor, mode)  # an existing file (--force) keeps no wider mode than the source
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
