"""`s3purge purge`: a manual purge on one CDN; shows the exact requests, then asks."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TextIO

import click

from s3purge import secrets
from s3purge.config import Cdn, Config
from s3purge.entry import output
from s3purge.entry.cli.base import (
    CONFIG,
    DEADLINE,
    asker,
    execute,
    load_config,
    placeholder_secrets,
    setup_logs,
    split_object,
)
from s3purge.entry.cli.show import batch_doc, refused_docs, report_outcomes, show_batches, show_refused
from s3purge.entry.cli.urls import dropped_query, pasted_url
from s3purge.entry.output import note, say, warn
from s3purge.mapping import targets
from s3purge.model import Action, Change, Target, TargetKind
from s3purge.pipeline import refusal_outcomes
from s3purge.plan import Plan, plan_targets
from s3purge.unrouted import why_unrouted

ACTIONS = ("purge", "invalidate", "delete", "load")
DEFAULT_ACTIONS: tuple[Action, ...] = ("purge", "invalidate")
"""What a URL given by hand gets when --action is not given: the first the vendor supports."""


@click.command()
@click.argument("urls", nargs=-1)
@click.option("--cdn", "cdn_name", required=True, help="The CDN account (a name under cdns:, or a legacy vendor).")
@click.option(
    "--key", "keys", multiple=True, help="BUCKET/KEY or s3://BUCKET/KEY (decoded), mapped through the routes."
)
@click.option("--tag", "tags", multiple=True, help="A cache tag (surrogate key) to purge.")
@click.option("--prefix", "prefixes", multiple=True, help="A URL prefix to purge (https://host/dir/).")
@click.option("--everything", is_flag=True, help="Purge everything the CDN caches (for this account/zone).")
@click.option(
    "--from-file",
    "from_files",
    multiple=True,
    type=click.File(),
    help="A file (- for stdin) of URLs and BUCKET/KEYs, one a line; # starts a comment.",
)
@click.option("--action", type=click.Choice(ACTIONS), help="Override the action (default: the route's, or purge).")
@click.option("--yes", "--send", "-y", "send", is_flag=True, help="Purge without asking (--send: the old name).")
@click.option("--dry-run", is_flag=True, help="Only show the exact requests.")
@DEADLINE
@CONFIG
def purge(
    *,
    urls: tuple[str, ...],
    cdn_name: str,
    keys: tuple[str, ...],
    tags: tuple[str, ...],
    prefixes: tuple[str, ...],
    everything: bool,
    from_files: tuple[TextIO, ...],
    action: Action | None,
    send: bool,
    dry_run: bool,
    deadline_seconds: int,
    config_path: str,
) -> None:
    """Purge URLs, tags, prefixes, everything, or S3 keys as the config maps them, on one CDN.

    First prints the exact requests (secrets shown as ***), then asks on a terminal;
    --yes sends without asking, --dry-run only shows: the way to check a CDN's
    credentials and routes by hand before purging anything.
    """
    listed_urls, listed_keys = _from_files(from_files)
    urls, keys = (*urls, *listed_urls), (*keys, *listed_keys)
    if not (urls or keys or tags or prefixes or everything):
        raise click.UsageError("give URLs, --key, --tag, --prefix, --everything or --from-file")
    loaded = load_config(config_path)
    cdn = _cdn(loaded, cdn_name)
    wanted = [
        *_url_targets(cdn, urls, action),
        *_key_targets(loaded, cdn, keys, action),
        *_kind_targets(cdn, "tag", tags, action),
        *_kind_targets(cdn, "prefix", [_prefix(p) for p in prefixes], action),
        *_kind_targets(cdn, "everything", ["*"] if everything else [], action),
    ]
    planned = _planned(loaded, cdn, wanted)
    if not send:
        if not _go_ahead(loaded, cdn, planned, dry_run):
            return
        loaded = load_config(config_path)  # afresh: the preview filled in placeholder secrets
        cdn = _cdn(loaded, cdn_name)
    secrets.resolve(cdn.provider.options.secrets())
    setup_logs()
    sys.exit(report_outcomes(execute(planned.batches, loaded, deadline_seconds) + refusal_outcomes(planned)))


def _go_ahead(loaded: Config, cdn: Cdn, planned: Plan, dry_run: bool) -> bool:
    """Show the exact requests (secrets as ***), then ask; True when they are to be sent."""
    placeholder_secrets(cdn.provider.options.secrets())
    batches = planned.batches
    if output.settings().json:
        widened = [
            {"cdn": d.cdn, "rule": d.rule, "value": d.target.value, "reason": d.reason} for d in planned.decisions
        ]
        docs = [batch_doc(b, cdn.provider) for b in batches]
        output.emit({"dry_run": True, "decisions": widened, "refused": refused_docs(planned), "batches": docs})
        return False
    for decision in planned.decisions:
        say(f"[{decision.cdn}] {decision.rule} rule: {decision.target.value} ({decision.reason})")
    say(f"{sum(len(b.values) for b in batches)} target(s) -> {len(batches)} batch(es)")
    show_refused(planned)
    show_batches(batches, loaded)
    if dry_run or not asker(yes=False)("Send these requests?"):
        note("\ndry run: nothing sent (add --yes to purge)")
        return False
    return True


def _from_files(files: Iterable[TextIO]) -> tuple[list[str], list[str]]:
    """URLs (http:// or https://) and BUCKET/KEYs listed one a line; blank lines and # comments skipped."""
    urls: list[str] = []
    keys: list[str] = []
    for handle in files:
        for line in handle:
            item = line.strip()
            if not item or item.startswith("#"):
                continue
            (urls if item.startswith(("http://", "https://")) else keys).append(item)
    return urls, keys


def _prefix(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise click.BadParameter(f"{value!r}: give an absolute URL prefix (https://host/dir/)", param_hint="--prefix")
    return value


def _kind_targets(cdn: Cdn, kind: TargetKind, values: Iterable[str], action: Action | None) -> list[Target]:
    found = []
    for value in values:
        can = cdn.provider.supports.get(kind, frozenset())
        chosen = action or next((a for a in DEFAULT_ACTIONS if a in can), None)
        if chosen is None:
            raise click.UsageError(f"{cdn.name}: vendor {cdn.provider.vendor!r} cannot purge by {kind}")
        found.append(Target(cdn.name, chosen, kind, value))
    return found


def _cdn(loaded: Config, name: str) -> Cdn:
    cdn = loaded.cdns.get(name)
    if cdn is None:
        raise click.BadParameter(
            f"{name!r} is not a CDN of {loaded.path} (it has: {', '.join(loaded.cdns)})", param_hint="--cdn"
        )
    return cdn


def _url_targets(cdn: Cdn, urls: Iterable[str], action: Action | None) -> list[Target]:
    chosen = action or _default_action(cdn)
    found: list[Target] = []
    for url in urls:
        spelled, fragment = pasted_url(url)
        if fragment:
            warn(f"{url!r}: #{fragment} dropped (a fragment never reaches a server)")
        if spelled and (dropped := dropped_query(cdn.provider, spelled[0])):
            warn(f"{url!r}: {dropped}")
        found.extend(Target(cdn.name, chosen, "url", value) for value in spelled)
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
        bucket, key = split_object(item)
        change = Change(bucket, key, "created", source=f"key{n}", cdns=frozenset({cdn.name}))
        mapped = list(targets(change, loaded))
        if not mapped:
            why = why_unrouted(change, loaded) or f"no route of bucket {bucket!r} sends this key to {cdn.name}"
            raise click.BadParameter(f"{item!r}: {why}", param_hint="--key")
        found.extend(Target(t.cdn, action or t.action, t.kind, t.value) for t in mapped)
    return found


def _planned(loaded: Config, cdn: Cdn, wanted: list[Target]) -> Plan:
    """Deduplicated and packed exactly as the pipeline would, per action and kind."""
    for target in wanted:
        if target.action not in cdn.provider.supports.get(target.kind, frozenset()):
            raise click.UsageError(
                f"{cdn.name}: vendor {cdn.provider.vendor!r} cannot {target.action} by {target.kind}"
            )
    return plan_targets(wanted, loaded)
