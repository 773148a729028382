"""`s3purge purge` (manual purge, dry run unless --send) and `s3purge config migrate`."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from pathlib import Path

import click
import yaml

from s3purge import config as config_module
from s3purge import legacy, secrets
from s3purge.config import Cdn, Config
from s3purge.entry.cli import CONFIG  # cli imports this module after defining CONFIG
from s3purge.errors import ConfigError
from s3purge.mapping import targets
from s3purge.model import Action, Batch, Change, Target
from s3purge.plan import plan_targets

ACTIONS = ("purge", "invalidate", "delete", "load")
DEFAULT_ACTIONS: tuple[Action, ...] = ("purge", "invalidate")
"""What a URL given by hand gets when --action is not given: the first the vendor supports."""


def register(main: click.Group, config_group: click.Group) -> None:
    """Add these commands to the `s3purge` group and its `config` subgroup."""
    main.add_command(purge)
    config_group.add_command(migrate)


@click.command()
@click.argument("urls", nargs=-1)
@click.option("--cdn", "cdn_name", required=True, help="The CDN account (a name under cdns:, or a legacy vendor).")
@click.option("--key", "keys", multiple=True, help="BUCKET/KEY (decoded), mapped through the config's routes.")
@click.option("--action", type=click.Choice(ACTIONS), help="Override the action (default: the route's, or purge).")
@click.option("--send", is_flag=True, help="Really purge (default: only show the exact requests).")
@CONFIG
def purge(
    *, urls: tuple[str, ...], cdn_name: str, keys: tuple[str, ...], action: Action | None, send: bool, config_path: str
) -> None:
    """Purge URLs, or S3 keys as the config maps them, on one CDN.

    Without --send this prints the exact requests (secrets shown as ***): the way to
    check a CDN's credentials and routes by hand before purging anything.
    """
    from s3purge.entry.cli import render

    if not urls and not keys:
        raise click.UsageError("give URLs and/or --key BUCKET/KEY")
    loaded = config_module.load(config_path)
    cdn = _cdn(loaded, cdn_name)
    wanted = [*_url_targets(cdn, urls, action), *_key_targets(loaded, cdn, keys, action)]
    batches = _batches(loaded, cdn, wanted)
    if not send:
        secrets.resolve(cdn.provider.options.secrets(), dict.fromkeys(secrets.DEFAULT_FETCHERS, _placeholder))
        click.echo(f"{sum(len(b.values) for b in batches)} target(s) -> {len(batches)} batch(es)")
        for batch in batches:
            click.echo(f"\n[{batch.cdn}] {batch.action} {len(batch.values)} {batch.kind}(s)")
            for request in cdn.provider.requests(batch):
                click.echo(render(request, cdn.provider))
        click.echo("\ndry run: nothing sent (add --send to purge)")
        return
    secrets.resolve(cdn.provider.options.secrets())
    sys.exit(_send(cdn, batches))


def _cdn(loaded: Config, name: str) -> Cdn:
    cdn = loaded.cdns.get(name)
    if cdn is None:
        raise click.BadParameter(
            f"{name!r} is not a CDN of {loaded.path} (it has: {', '.join(loaded.cdns)})", param_hint="--cdn"
        )
    return cdn


def _url_targets(cdn: Cdn, urls: Iterable[str], action: Action | None) -> list[Target]:
    chosen = action or _default_action(cdn)
    found = []
    for url in urls:
        if not url.startswith(("http://", "https://")) or "://" in url[8:]:
            raise click.BadParameter(f"{url!r}: give an absolute http:// or https:// URL, as browsers request it")
        found.append(Target(cdn.name, chosen, "url", url))
    return found


def _default_action(cdn: Cdn) -> Action:
    can = cdn.provider.supports.get("url", frozenset())
    for action in DEFAULT_ACTIONS:
        if action in can:
            return action
    raise click.UsageError(f"{cdn.name}: vendor {cdn.provider.vendor!r} cannot purge URLs")


def _key_targets(loaded: Config, cdn: Cdn, keys: Iterable[str], action: Action | None) -> list[Target]:
    found: list[Target] = []
    for n, item in enumerate(keys):
        bucket, _, key = item.partition("/")
        if not bucket or not key:
            raise click.BadParameter(f"{item!r}: expected BUCKET/KEY", param_hint="--key")
        change = Change(bucket, key, "created", source=f"key{n}", cdns=frozenset({cdn.name}))
        mapped = list(targets(change, loaded))
        if not mapped:
            raise click.BadParameter(f"{item!r}: no route of bucket {bucket!r} sends this key to {cdn.name}")
        found.extend(Target(t.cdn, action or t.action, t.kind, t.value) for t in mapped)
    return found


def _batches(loaded: Config, cdn: Cdn, wanted: list[Target]) -> list[Batch]:
    """Deduplicated and packed exactly as the pipeline would, per action and kind."""
    for target in wanted:
        if target.action not in cdn.provider.supports.get(target.kind, frozenset()):
            raise click.UsageError(
                f"{cdn.name}: vendor {cdn.provider.vendor!r} cannot {target.action} by {target.kind}"
            )
    return plan_targets(wanted, loaded).batches


def _send(cdn: Cdn, batches: list[Batch]) -> int:
    from s3purge.execute import Executor

    executor = Executor()
    try:
        outcomes = executor.run(batches, {cdn.name: cdn}, time.monotonic() + 300)
    finally:
        executor.close()
    for outcome in outcomes:
        state = "ok" if outcome.ok else "FAILED"
        click.echo(
            f"{state:6} {outcome.batch.cdn} {outcome.batch.action} {len(outcome.batch.values)} item(s) {outcome.detail}"
        )
    return 0 if all(o.ok for o in outcomes) else 1


def _placeholder(secret: secrets.Secret) -> str:
    return "***"


@click.command()
@click.argument("old", type=click.Path(dir_okay=False, exists=True))
@click.argument("new", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--force", is_flag=True, help="Overwrite NEW if it exists.")
def migrate(old: str, new: str, force: bool) -> None:
    """Rewrite a legacy multicdn.config.yml (cdnDomains/cdnConfigurations) in the s3purge format.

    Secrets are copied exactly as written, never resolved. NEW may be - for stdout.
    """
    config_module.load(old)  # every problem at the legacy file's lines; notes are logged as warnings
    raw = yaml.safe_load(Path(old).read_text(encoding="utf-8"))
    if not legacy.is_legacy(raw):
        raise ConfigError(f"{old}: already in the s3purge format (no top-level {legacy.DOMAINS})")
    converted = legacy.convert(raw)
    notes = [f"{legacy.dotted(at)}: {note}" for at, note in converted.notes]
    text = legacy.dump(converted.document, notes)
    config_module.parse(text, new)  # what we write must load
    if new == "-":
        click.echo(text, nl=False)
        return
    target = Path(new)
    if target.exists() and not force:
        raise click.UsageError(f"{new} exists (add --force to overwrite)")
    target.write_text(text, encoding="utf-8")
    click.echo(
        f"{new}: written ({len(converted.document['cdns'])} CDN(s), {len(converted.document['buckets'])} bucket(s))",
        err=True,
    )
