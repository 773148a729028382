"""Property tests: any key x every vendor x every tag template, on the requests each provider builds.

For arbitrary keys (any Unicode, astral and control characters, lone surrogates, `.`/`..`
segments, `*`, `%`, `+`, regex metacharacters, up to 1,024 UTF-8 bytes), every request a
provider builds for the plan of that change must, checked here independently of the code:

1. go to the vendor's purge endpoint for its kind (host and path, written out below), with no
   dot segment left that a server could resolve (raw, or escaped as %2E / across %2F);
2. carry only legal headers (token names; printable ASCII values: no CR, LF, NUL);
3. purge the changed object itself: each URL it names decodes to the object's own path (or,
   where the plan names a wildcard widening, to a prefix of it ending in `*`), and each tag
   decodes to the template's value, without a character the vendor splits tags on.

Anything the plan refuses is never built; everything it admits must build (a batch failing at
the request boundary would take other messages' targets with it).
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from posixpath import splitext
from urllib.parse import unquote, unquote_plus, urlsplit

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from s3purge.config import Config
from s3purge.model import Batch, Change
from s3purge.plan import plan
from tests.vendors.helpers import one_cdn

HOST = "www.example.com"
TEMPLATES = ["{key}", "{path}", "{dirname}", "{basename}", "{stem}", "{ext}", "{bucket}", "t:{key}"]
SPECIAL = [".", "..", "*", "%", "+", "%2E%2E", "%2e", "..%2F..", "a*b", "(x)", "[a]", "^$", "a|b", "?#", " ", ",", "\\"]


@dataclass(frozen=True)
class Vendor:
    account: str
    endpoints: dict[str, re.Pattern[str]]
    """kind -> the request URL (scheme://host[:port]/path) its calls may go to."""
    urls: Callable[[httpx.Request], list[str]] | None = None
    """The absolute URLs a url-kind request purges."""
    tags: Callable[[httpx.Request], list[str]] | None = None
    plus_is_either: bool = False
    """The vendor's own path rule spells '+' and ' ' alike (CloudFront)."""
    splits_on: str = ""
    """Characters the vendor would split one tag on (besides anything outside printable ASCII)."""
    longest_tag: int | None = None
    case_insensitive: bool = False
    """Tags differing only in case are one tag at the vendor: one call never names both (paid twice)."""


def body(request: httpx.Request) -> dict[str, object]:
    found: dict[str, object] = json.loads(request.content)
    return found


def strings(value: object) -> list[str]:
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), value
    return value


def cloudfront_items(request: httpx.Request) -> list[str]:
    root = ET.fromstring(request.content)  # noqa: S314 - built by the code under test
    return [e.text or "" for e in root.iter() if e.tag.endswith("}Path")]


def cloudfront_paths(request: httpx.Request) -> list[str]:
    return [f"https://{HOST}{path}" for path in cloudfront_items(request)]


def cloudfront_tags(request: httpx.Request) -> list[str]:
    """A `#tag` path's tag; a tag batch holds nothing else."""
    items = cloudfront_items(request)
    assert all(item.startswith("#") for item in items), items
    return [item.removeprefix("#") for item in items]


VENDORS = {
    "http": Vendor(
        'vendor: http, endpoints: ["http://10.0.0.5:6081", "http://10.0.0.6:6081"], path_prefix: /purge',
        {"url": re.compile(r"http://10\.0\.0\.[56]:6081/purge/.*"), "tag": re.compile(r"http://10\.0\.0\.[56]:6081/")},
        urls=lambda r: ["https://" + r.headers["host"] + r.url.raw_path.decode().removeprefix("/purge")],
        tags=lambda r: [r.headers["xkey-purge"]],
        splits_on=" ,",
    ),
    "akamai": Vendor(
        "vendor: akamai, host: akab-x.purge.akamaiapis.net, client_token: a, client_secret: b, access_token: c",
        {
            "url": re.compile(r"https://akab-x\.purge\.akamaiapis\.net/ccu/v3/invalidate/url/production"),
            "tag": re.compile(r"https://akab-x\.purge\.akamaiapis\.net/ccu/v3/invalidate/tag/production"),
        },
        urls=lambda r: strings(body(r)["objects"]),
        tags=lambda r: strings(body(r)["objects"]),
        splits_on=' ,"()*/:;<=>?@[\\]{}',
    ),
    "cloudflare": Vendor(
        "vendor: cloudflare, zone_id: 023e105f4ecef8ad9ca31a8372d0c353, api_token: t",
        dict.fromkeys(
            ("url", "tag"),
            re.compile(r"https://api\.cloudflare\.com/client/v4/zones/023e105f4ecef8ad9ca31a8372d0c353/purge_cache"),
        ),
        urls=lambda r: strings(body(r)["files"]),
        tags=lambda r: strings(body(r)["tags"]),
        splits_on=" ,",
    ),
    "cloudfront": Vendor(
        "vendor: cloudfront, distribution_ids: [E1, E2]",
        dict.fromkeys(
            ("url", "tag"), re.compile(r"https://cloudfront\.amazonaws\.com/2020-05-31/distribution/E[12]/invalidation")
        ),
        urls=cloudfront_paths,
        tags=cloudfront_tags,
        plus_is_either=True,
        splits_on=" ,*",  # ASCII 33-126 but the header's ',' and no wildcard
        longest_tag=256,
        case_insensitive=True,
    ),
    "edgecast": Vendor(
        'vendor: edgecast, account: "0001", token: t',
        {"url": re.compile(r"https://api\.edgecast\.com/v2/mcc/customers/0001/edge/purge")},
        urls=lambda r: [str(body(r)["MediaPath"])],
    ),
    "fastly": Vendor(
        "vendor: fastly, api_token: t, service_id: SVC",
        {
            "url": re.compile(r"https://api\.fastly\.com/purge/.*"),
            "tag": re.compile(r"https://api\.fastly\.com/service/SVC/purge"),
        },
        urls=lambda r: ["https://" + r.url.raw_path.decode().removeprefix("/purge/")],
        tags=lambda r: strings(body(r)["surrogate_keys"]),
        splits_on=" ",
    ),
    "highwinds": Vendor(
        "vendor: highwinds, api_token: t, account_hash: abc123",
        {"url": re.compile(r"https://striketracker\.highwinds\.com/api/v1/accounts/abc123/purge")},
        urls=lambda r: [str(item["url"]) for item in body(r)["list"]],  # type: ignore[attr-defined]
    ),
}
CONFIGS: dict[str, Config] = {
    name: one_cdn("c", v.account, f"hosts: [{HOST}]" + (f", tags: {json.dumps(TEMPLATES)}" if v.tags else ""))
    for name, v in VENDORS.items()
}
TAGS_ONLY = one_cdn("c", VENDORS["cloudfront"].account, f"tags: {json.dumps(TEMPLATES)}")
"""CloudFront bills each item: beside a URL path, one change's 8 tags always lose on price (choose.py)."""

characters = st.characters(exclude_categories=())  # everything, lone surrogates and controls included
segments = st.one_of(st.sampled_from(SPECIAL), st.text(characters, min_size=1, max_size=12))
keys = st.one_of(
    st.lists(segments, min_size=1, max_size=8).map("/".join),
    st.text(characters, min_size=1, max_size=300),
).filter(lambda k: len(k.encode("utf-8", "surrogatepass")) <= 1024)


def tag_values(key: str) -> set[str]:
    dirname, _, basename = key.rpartition("/")
    stem, ext = splitext(basename)
    from s3purge.mapping import encode_path  # the documented {path}: the object's URL path

    try:
        path = "/" + encode_path(key)
    except UnicodeError:
        path = ""
    fields = {"key": key, "path": path, "dirname": dirname, "basename": basename, "stem": stem}
    fields |= {"ext": ext.lstrip("."), "bucket": "site"}
    return {t.format(**fields) for t in TEMPLATES} - {""}


def names_the_object(purged: str, key: str, widened: set[str], plus_is_either: bool = False) -> bool:
    parts = urlsplit(purged)
    if parts.netloc != HOST:
        return False
    wanted = "/" + key
    if wanted in (unquote(parts.path, errors="strict"), unquote_plus(parts.path, errors="strict")):
        return True
    if plus_is_either and unquote(parts.path).replace(" ", "+") == wanted.replace(" ", "+"):
        return True  # CloudFront's rule: one path for '+' and ' ' (docs/cloudfront.md); never another path
    # else only a wildcard the plan names, standing for a prefix of the object's path
    prefix = parts.path.removesuffix("*")
    prefixes = [unquote(prefix), unquote_plus(prefix)]
    if plus_is_either:  # the same rule for a wildcard's prefix: '+' and ' ' are one there too
        prefixes, wanted = [p.replace(" ", "+") for p in prefixes], wanted.replace(" ", "+")
    return purged.endswith("*") and bool(widened) and any(wanted.startswith(p) for p in prefixes)


def dot_free(path: str) -> bool:
    slashed = re.sub("%2f", "/", path, flags=re.IGNORECASE)
    return all(re.sub("%2e", ".", s, flags=re.IGNORECASE) not in (".", "..") for s in slashed.split("/"))


def check(vendor: str, key: str, config: Config | None = None) -> None:
    spec, config = VENDORS[vendor], config or CONFIGS[vendor]
    planned = plan([Change("site", key, "created", "m")], config)
    widened = {d.target.value for d in planned.decisions if d.rule == "wildcard"}
    provider = config.cdns["c"].provider
    for batch in planned.batches:
        for request in provider.build(batch):  # admitted targets always build
            check_request(spec, batch, request, key, widened)


def check_request(spec: Vendor, batch: Batch, request: httpx.Request, key: str, widened: set[str]) -> None:
    url = str(request.url)
    path = url.partition("://")[2].partition("/")[2].partition("?")[0]
    assert spec.endpoints[batch.kind].fullmatch(url.partition("?")[0]), (batch.kind, url)  # 1
    assert dot_free("/" + path), url  # 1: nothing a server could still resolve
    for name, value in request.headers.raw:  # 2
        assert re.fullmatch(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+", name), name
        assert re.fullmatch(rb"[\t\x20-\x7e]*", value), (name, value)
    if batch.kind == "url":  # 3
        assert spec.urls is not None
        for purged in spec.urls(request):
            assert names_the_object(purged, key, widened, spec.plus_is_either), (purged, key)
    if batch.kind == "tag":  # 3
        assert spec.tags is not None
        expected = tag_values(key)
        sent = spec.tags(request)
        for tag in sent:
            assert tag.isascii() and tag.isprintable() and not set(tag) & set(spec.splits_on), tag
            assert unquote(tag, errors="strict") in expected, (tag, expected)
            assert spec.longest_tag is None or len(tag) <= spec.longest_tag, len(tag)
        if spec.case_insensitive:
            assert len({tag.lower() for tag in sent}) == len(sent), sent


PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(keys)
def test_http(key: str) -> None:
    check("http", key)


@PROPERTY
@given(keys)
def test_akamai(key: str) -> None:
    check("akamai", key)


@PROPERTY
@given(keys)
def test_cloudflare(key: str) -> None:
    check("cloudflare", key)


@PROPERTY
@given(keys)
def test_cloudfront(key: str) -> None:
    check("cloudfront", key)
    check("cloudfront", key, TAGS_ONLY)


@PROPERTY
@given(keys)
def test_edgecast(key: str) -> None:
    check("edgecast", key)


@PROPERTY
@given(keys)
def test_fastly(key: str) -> None:
    check("fastly", key)


@PROPERTY
@given(keys)
def test_highwinds(key: str) -> None:
    check("highwinds", key)


BAN = one_cdn("c", 'vendor: http, endpoints: ["http://10.0.0.5:6081"], prefix_threshold: 0', f"hosts: [{HOST}]")
METACHARACTERS = set(".^$*+?()[]{}|\\")


@PROPERTY
@given(keys)
def test_http_ban_is_the_literal_directory(key: str) -> None:
    """Escalated to its directory, a key becomes a BAN whose regex is that path, every metacharacter escaped."""
    planned = plan([Change("site", f"d/{key}", "created", "m")], BAN)  # below the root: a root is never a prefix
    for batch in planned.batches:
        (request,) = BAN.cdns["c"].provider.build(batch)
        assert (batch.kind, str(request.url), request.headers["host"]) == ("prefix", "http://10.0.0.5:6081/", HOST)
        regex = request.headers["x-ban-url"]
        tokens = re.findall(r"\\.|.", regex.removeprefix("^"), flags=re.DOTALL)
        assert regex.startswith("^") and not [t for t in tokens if t in METACHARACTERS], regex
        assert "".join(t[-1] for t in tokens) == urlsplit(batch.values[0]).path  # the directory, literally


def test_every_vendor_is_covered() -> None:
    from s3purge.providers import BUILTIN

    assert sorted(VENDORS) == sorted(BUILTIN)
