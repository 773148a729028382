"""What a vendor module declares and does.

A provider declares, as data, what it can purge (`supports`), how much fits in one call
and how fast it may call (`limits`), where its purge calls go (`api`, `endpoints`), which
characters are wildcards in its URLs (`wildcards`), what a tag may hold (`tag_rules`), and
the options its config takes (`Options`), and per status what a user should check (`hints`).
It turns a Batch into HTTP requests (`requests`, with `url(path)` under its API base) and
judges each response through hooks: `throttled` statuses wait `wait(response)` (Retry-After
unless the vendor has its own source), `accepted` says what to log, `rejected` raises the
vendor's own refusals, and the rest takes the common rule (answers.py). Auth flows live in
modules of their own (edgegrid, sigv4, striketracker). Batching, throttling, retries,
deadlines and the request boundary (boundary.py) live once in the core and this base
class, never in a vendor module.
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import product
from typing import Any, ClassVar
from urllib.parse import quote, unquote, urlsplit

import httpx
import msgspec

# The vocabulary below lives in the model layer; vendor modules import it from here.
from s3purge.capabilities import Admission as Admission  # noqa: PLC0414
from s3purge.capabilities import AwsGrant as AwsGrant  # noqa: PLC0414
from s3purge.capabilities import Limits as Limits  # noqa: PLC0414
from s3purge.capabilities import Rate as Rate  # noqa: PLC0414
from s3purge.capabilities import Supports as Supports  # noqa: PLC0414
from s3purge.checks import ApiBase
from s3purge.errors import Rejected, Retryable, Unsafe
from s3purge.model import Batch, Target, TargetKind
from s3purge.providers.answers import COMMON_HINTS, OTHER_HINT, judge_status, retry_after
from s3purge.providers.boundary import Endpoint, encode_tag, request_problems, url_problem, wildcard_cut
from s3purge.secrets import Secret


@dataclass(frozen=True, slots=True)
class Wildcards:
    """Characters a vendor reads as a wildcard in a URL to purge, and which it cannot escape:
    a key holding one is purged as the URL prefix before it (named as a widening)."""

    trailing_only: bool = False
    """nginx partial keys: only a final `*` is a wildcard."""
    note: str = ""
    """Says where the wildcard applies, e.g. "on caches with partial-key purge (nginx)"."""
    unmatchable: str = ""
    """Characters the vendor matches in no purge, raw or encoded (CloudFront's `~`): a key
    holding one is purged as the prefix before it too, else its purge would silently do nothing."""


@dataclass(frozen=True, slots=True)
class TagRules:
    """What one tag may hold at a vendor; other characters are percent-encoded (boundary.encode_tag)."""

    allowed: str
    """ASCII punctuation a tag may hold as is, besides letters, digits and `-._~`."""
    max_length: int | None = None
    case_sensitive: bool = True
    separators: str = ","
    """What separates tags in the header the vendor reads them from, so in the S3 metadata
    they are stored in (`tags_from_metadata`); a space stands for any whitespace."""
    per_object: int | None = None
    """Most tags one object may carry: the vendor ignores the rest (the first ones are kept)."""


class VendorOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of each vendor's options; unknown fields are config errors. Checks that span fields
    go in `__post_init__` (raise ValueError); a field's own check in its `Annotated` type."""

    api_base: ApiBase | None = None
    """Override the vendor's API base URL (proxies, regional endpoints, tests)."""

    def fields(self) -> dict[str, Any]:
        """The options by name, as written in the config."""
        return msgspec.structs.asdict(self)

    def cannot(self, kind: TargetKind) -> str:
        """Why this account cannot purge by `kind` though its vendor can ('' when it can): config
        refuses a threshold that escalates to it, rather than the first burst over it failing."""
        return ""

    def secrets(self) -> list[Secret]:
        found: list[Secret] = []
        for value in self.fields().values():
            if isinstance(value, Secret):
                found.append(value)
            elif isinstance(value, Mapping):
                found.extend(v for v in value.values() if isinstance(v, Secret))
        return found


PRINTABLE_ASCII = "".join(chr(c) for c in range(0x21, 0x7F))


class Provider:
    """One CDN account of one vendor."""

    vendor: ClassVar[str]
    supports: ClassVar[Supports]
    limits: ClassVar[Limits]
    Options: ClassVar[type[VendorOptions]] = VendorOptions
    secret_headers: ClassVar[frozenset[str]] = frozenset({"authorization"})
    """Header names whose values are redacted wherever a request is shown."""
    api: ClassVar[str] = ""
    """The vendor's API base URL (an account's `api_base` replaces it)."""
    endpoints: ClassVar[Mapping[TargetKind, tuple[str, ...]]] = {}
    """Per kind, the paths under the API base its purge calls go to: `{name}` is the option of
    that name (URL-quoted; a list gives one path per item), a trailing `*` allows anything below."""
    wildcards: ClassVar[Wildcards | None] = None
    """Set when `*` in a URL to purge is a wildcard the vendor cannot escape."""
    tag_rules: ClassVar[TagRules | None] = None
    """What a tag may hold, for vendors that purge by tag."""
    billed_per_item: ClassVar[bool] = False
    """Each item purged (path, wildcard, tag) is paid for: a change with both URLs and tags is
    purged by whichever costs fewer items (choose.py)."""
    throttled: ClassVar[frozenset[int]] = frozenset({429})
    """Statuses that mean "slow down": retried after `wait(response)` seconds."""
    hints: ClassVar[Mapping[int, str]] = COMMON_HINTS
    """Per status, what a user should check when a call is rejected."""
    other_hint: ClassVar[str] = OTHER_HINT
    """The hint for a rejected status that `hints` does not name."""

    def __init__(self, name: str, options: VendorOptions) -> None:
        self.name = name
        self.options = options
        self._endpoints: dict[TargetKind, list[Endpoint]] = {}

    def declared_limits(self) -> Limits:
        """The vendor's limits for this account (some depend on its options, e.g. a plan)."""
        return self.limits

    def aws_grants(self) -> list[AwsGrant]:
        """IAM permissions the deployed function needs for this account's calls (AWS-hosted vendors)."""
        return []

    @property
    def scheme_agnostic(self) -> bool:
        """True when purging one scheme's URL purges the other's too (dedupe them)."""
        return False

    def identity(self, target: Target) -> str:
        """Targets with one identity are one cache object, purged once (http:// = https:// here)."""
        if self.scheme_agnostic and target.kind in ("url", "prefix") and target.action != "load":
            return target.value.partition("://")[2]  # a prefetch, though, loads one scheme's copy
        if target.kind == "tag" and self.tag_rules is not None and not self.tag_rules.case_sensitive:
            return target.value.lower()
        return target.value

    def item_bytes(self, value: str) -> int:
        """Bytes one item adds to a request body (JSON string plus separator)."""
        return len(json.dumps(value)) + 1

    @property
    def auth(self) -> httpx.Auth | None:
        """An httpx auth flow (signing, token refresh), if the vendor needs one."""
        return None

    def prepare(self, send: Callable[[httpx.Request], httpx.Response]) -> None:
        """Work the account needs before its purge calls (a login), its requests sent with `send`.

        The executor calls it once per run for each CDN it sends to, before the first call takes
        its place in the rate limit: a login made inside the paced call arrives late in the
        vendor's window and the next call early. Raises PurgeError when the account cannot be used
        (its batches then fail); a warm process that has logged in needs no request here."""

    def requests(self, batch: Batch) -> list[httpx.Request]:
        """The HTTP requests that carry out this batch (all must succeed)."""
        raise NotImplementedError

    def build(self, batch: Batch) -> list[httpx.Request]:
        """`requests(batch)`, each checked at the request boundary; raises Unsafe instead of
        returning anything that must not be sent, and for any error while building."""
        try:
            built = self.requests(batch)
        except Rejected:
            raise
        except Exception as error:  # noqa: BLE001 - a key or option the vendor module cannot express
            raise Unsafe(f"cannot build the request ({type(error).__name__}: {str(error)[:200]})") from None
        endpoints = self.purge_endpoints(batch.kind)
        problems = [problem for request in built for problem in request_problems(request, endpoints)]
        if batch.kind in ("url", "prefix"):
            problems += [f"{value[:200]}: {p}" for value in batch.values if (p := url_problem(value))]
        if problems:
            raise Unsafe("request refused at the boundary: " + "; ".join(dict.fromkeys(problems)))
        return built

    def admit(self, target: Target, everything: bool = False) -> Admission:
        """The target as this vendor can purge it. `everything`: the account's escalation allows a
        whole-site purge, which a wildcard in a key may then become."""
        if target.kind == "tag":
            return self._admit_tag(target)
        if target.kind not in ("url", "prefix"):
            return Admission(target)
        problem = url_problem(target.value)
        if problem:
            return Admission(None, refused=problem)
        if self.wildcards is None:  # most vendors: nothing in a key is a wildcard, the URL stays as is
            return Admission(target)
        return self._admit_wildcard(target, everything)

    def bases(self) -> tuple[str, ...]:
        """The API base URLs its calls go to (several for self-hosted caches)."""
        base: str | None = getattr(self.options, "api_base", None)
        return (base or self.api,)

    def endpoint_fields(self) -> dict[str, tuple[str, ...]]:
        """Values of the `{name}` placeholders in `endpoints`: the options of that name, quoted."""
        names = {n for paths in self.endpoints.values() for p in paths for _, n, _, _ in string.Formatter().parse(p)}
        fields: dict[str, tuple[str, ...]] = {}
        for name in names - {None}:
            assert name is not None
            value = getattr(self.options, name, None)
            items = value if isinstance(value, list | tuple) else [value]
            fields[name] = tuple(quote(str(v), safe="") for v in items if v is not None)
        return fields

    def purge_endpoints(self, kind: TargetKind) -> list[Endpoint]:
        """Every URL (or URL prefix) a call for `kind` may go to."""
        if kind not in self._endpoints:
            fields = self.endpoint_fields()
            found = []
            for base, template in product(self.bases(), self.endpoints.get(kind, ())):
                names = [n for _, n, _, _ in string.Formatter().parse(template) if n]
                for values in product(*(fields.get(n, ()) for n in names)):
                    path = template.format(**dict(zip(names, values, strict=True)))
                    found.append(Endpoint.of(join(base, path)))
            self._endpoints[kind] = found
        return self._endpoints[kind]

    def _admit_wildcard(self, target: Target, everything: bool) -> Admission:
        rule = self.wildcards
        cut = wildcard_cut(target.value, rule.trailing_only, rule.unmatchable) if rule else None
        if rule is None or cut is None:
            return Admission(target)
        why = _why(target.value[len(cut) :], rule)
        whole = urlsplit(cut).path in ("", "/")
        if whole and not everything:
            return Admission(
                None, refused=f"its {why} and would purge the whole site (allowed only with everything_threshold)"
            )
        return Admission(target, widened=f"{why}: purges every URL starting with {cut}")

    def _admit_tag(self, target: Target) -> Admission:
        rules = self.tag_rules
        if rules is None:
            return Admission(target)
        try:
            tag = encode_tag(target.value, rules.allowed)
        except UnicodeEncodeError:
            return Admission(None, refused="the tag is not valid Unicode text")
        if rules.max_length is not None and len(tag) > rules.max_length:
            most = rules.max_length
            return Admission(None, refused=f"the tag is {len(tag)} characters once encoded; the vendor takes {most}")
        return Admission(msgspec.structs.replace(target, value=tag))

    def judge(self, response: httpx.Response) -> str:
        """Raise Retryable/Rejected for a failed call, else return vendor ids for the log.

        The template: a status in `throttled` waits `wait(response)`; an answer `accepted` returns
        its note; `rejected` raises the vendor's own refusals; the rest takes the common rule."""
        status = response.status_code
        if status in self.throttled:
            raise Retryable(f"HTTP {status} rate limited", retry_after=self.wait(response))
        note = self.accepted(response)
        if note is not None:
            return note
        self.rejected(response)
        return judge_status(response, self.hints.get(status, self.other_hint))

    def wait(self, response: httpx.Response) -> float | None:
        """Seconds a throttled answer asks us to wait (None: back off as usual); Retry-After here."""
        return retry_after(response.headers)

    def accepted(self, response: httpx.Response) -> str | None:
        """What to log for an answer the vendor accepted (vendor ids), None when it did not."""
        return "" if response.is_success else None

    def rejected(self, response: httpx.Response) -> None:
        """Raise for an answer the vendor refused in its own way (an error code in its body)."""

    def cost(self, batch: Batch) -> int:
        """Items the vendor bills for this batch (0 unless `billed_per_item`)."""
        return 0

    def url(self, path: str) -> str:
        """`path` under the account's API base."""
        return join(self.bases()[0], path)


def _on(rule: Wildcards) -> str:
    return f" {rule.note}" if rule.note else ""


def _why(rest: str, rule: Wildcards) -> str:
    """Why the URL was cut before `rest`: its first character is a wildcard or one no purge matches."""
    if rest[:1] == "*" or rest[:3].lower() == "%2a":
        return f"'*' is a wildcard here{_on(rule)}"
    return f"'{unquote(rest[:3]) if rest[:1] == '%' else rest[:1]}' is matched by no purge here{_on(rule)}"


def join(base: str, path: str) -> str:
    """`https://api/v4/` + `/zones` -> `https://api/v4/zones` (an api_base may end in '/')."""
    return base.rstrip("/") + path
