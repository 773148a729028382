"""`s3purge purge` (manual purge: shows the requests, then asks) and `s3purge config migrate`."""

from __future__ import annotations

import os
import re
import stat
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

import click
import httpx
import yaml

from s3purge import config as config_module
from s3purge import legacy, secrets
from s3purge.config import Cdn, Config
from s3purge.entry import output
from s3purge.entry.cli_base import CONFIG, batch_doc, setup_logs, split_object
from s3purge.entry.output import note, say, warn
from s3purge.errors import ConfigError
from s3purge.locations import dotted, is_legacy
from s3purge.mapping import targets
from s3purge.model import Action, Change, Target, TargetKind
from s3purge.pipeline import refusal_outcomes
from s3purge.plan import Plan, plan_targets
from s3purge.spellings import decode, spellings
from s3purge.unrouted import why_unrouted

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
    config_path: str,
) -> None:
    """Purge URLs, tags, prefixes, everything, or S3 keys as the config maps them, on one CDN.

    First prints the exact requests (secrets shown as ***), then asks on a terminal;
    --yes sends without asking, --dry-run only shows: the way to check a CDN's
    credentials and routes by hand before purging anything.
    """
    from s3purge.entry.cli_base import execute, refused_docs, report_outcomes, show_batches, show_refused
    from s3purge.entry.cli_deploy import asker

    listed_urls, listed_keys = _from_files(from_files)
    urls, keys = (*urls, *listed_urls), (*keys, *listed_keys)
    if not (urls or keys or tags or prefixes or everything):
        raise click.UsageError("give URLs, --key, --tag, --prefix, --everything or --from-file")
    loaded = config_module.load(config_path)
    cdn = _cdn(loaded, cdn_name)
    wanted = [
        *_url_targets(cdn, urls, action),
        *_key_targets(loaded, cdn, keys, action),
        *_kind_targets(cdn, "tag", tags, action),
        *_kind_targets(cdn, "prefix", [_prefix(p) for p in prefixes], action),
        *_kind_targets(cdn, "everything", ["*"] if everything else [], action),
    ]
    planned = _planned(loaded, cdn, wanted)
    batches = planned.batches
    if not send:
        secrets.resolve(cdn.provider.options.secrets(), dict.fromkeys(secrets.DEFAULT_FETCHERS, _placeholder))
        if output.settings().json:
            widened = [
                {"cdn": d.cdn, "rule": d.rule, "value": d.target.value, "reason": d.reason} for d in planned.decisions
            ]
            docs = [batch_doc(b, cdn.provider) for b in batches]
            output.emit({"dry_run": True, "decisions": widened, "refused": refused_docs(planned), "batches": docs})
            return
        for decision in planned.decisions:
            say(f"[{decision.cdn}] {decision.rule} rule: {decision.target.value} ({decision.reason})")
        say(f"{sum(len(b.values) for b in batches)} target(s) -> {len(batches)} batch(es)")
        show_refused(planned)
        show_batches(batches, loaded)
        if dry_run or not asker(yes=False)("Send these requests?"):
            note("\ndry run: nothing sent (add --yes to purge)")
            return
        loaded = config_module.load(config_path)  # afresh: the preview filled in placeholder secrets
        cdn = _cdn(loaded, cdn_name)
    secrets.resolve(cdn.provider.options.secrets())
    setup_logs()
    sys.exit(report_outcomes(execute(batches, loaded) + refusal_outcomes(planned)))


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
        found.extend(Target(cdn.name, chosen, "url", value) for value in spelled)
    return found


def pasted_url(url: str) -> tuple[list[str], str]:
    """A URL as a user typed or pasted it -> the URLs to purge, and the fragment it dropped.

    Read as a browser reads a typed URL (IDNA host, `\\` as `/`, dot segments resolved,
    space and non-ASCII escaped), and as S3 reads the path (a raw `+` is a space): first
    that exact request, then every spelling of the object S3 serves there.
    """
    head, _, fragment = url.strip().partition("#")
    parsed = _typed(url, head)
    typed = parsed.raw_path.decode("ascii").partition("?")[0]
    try:
        key = decode(typed.removeprefix("/"))
    except UnicodeDecodeError as error:
        raise click.BadParameter(f"{url!r}: its path is not UTF-8 once decoded ({error})") from None
    origin, tail = _origin(url, parsed), f"?{parsed.query.decode('ascii')}" if parsed.query else ""
    exact = [] if _BROKEN_ESCAPE.search(typed) else [f"{origin}{typed}{tail}"]  # '100%.txt': S3 refuses it
    return list(dict.fromkeys([*exact, *(f"{origin}/{path}{tail}" for path in spellings(key))])), fragment


def _typed(url: str, head: str) -> httpx.URL:
    path_part, question, query = head.partition("?")
    if not path_part.lower().startswith(("http://", "https://")):
        raise click.BadParameter(f"{url!r}: give an absolute http:// or https:// URL, as browsers request it")
    try:  # httpx escapes space and non-ASCII, IDNA-encodes the host and resolves dot segments, as browsers do
        return httpx.URL(path_part.replace("\\", "/") + question + query)
    except httpx.InvalidURL as error:
        raise click.BadParameter(f"{url!r}: not a URL a browser can request ({error})") from None


def _origin(url: str, parsed: httpx.URL) -> str:
    host = parsed.raw_host.decode("ascii")
    if parsed.userinfo or not _HOST.fullmatch(host) or (parsed.port or 0) > 65535:
        raise click.BadParameter(f"{url!r}: give a URL with a plain host (no user:password@) and a valid port")
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{f'[{host}]' if ':' in host else host}{port}"


_HOST = re.compile(r"[a-z0-9.-]+|[0-9a-f:.]*:[0-9a-f:.]*")
"""A host name (IDNA-encoded, lower case) or an IPv6 address, as httpx hands them back."""
_BROKEN_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


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
    config_module.load(old)  # every problem at the legacy file's lines; notes are shown as warnings
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
