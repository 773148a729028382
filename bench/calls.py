"""Benchmark 1: vendor calls a burst costs, against the fewest the vendor's limits allow.

Bursts of 1, 100 and 10,000 changed keys go to every vendor through the same routes: two
hosts in both schemes with index documents (`d/index.html` also purges `d/` and `d`), plus
an image host in https only. Calls made are counted from the plan (`provider.requests` of
every batch); for the 1- and 100-key bursts the same changes also run against the
emulators, which must receive exactly the counted calls.

The minimum is computed here, independently of s3purge's mapping: the distinct cache
objects each vendor must be told about (vendor facts decide whether http and https, or
different hosts, are one object), divided over the items and bytes one call may carry
(the declared limits, `provider.item_bytes`), times the calls each batch needs by API
(one per cache endpoint for self-hosted caches, one per distribution for CloudFront).

A second pair of bursts (100 keys sent to the emulators, 1,000 counted) makes one key in
five special: spaces, `+`, `( )`, `; =`, `@ :`, `%`, non-ASCII. Each such key may have
several spellings (s3purge.spellings); the minimum counts the distinct spellings, written
here again character by character from the rule, and through CloudFront's own path rule.
The same 1,000-key burst planned with `spellings: [browser]` gives the cost of the model:
extra URL paths per 1,000 keys, and extra calls per vendor.

CloudFront tags: the paid paths of a 10,000-key burst (10 directories) by exact paths,
wildcards (`prefix_threshold: 100`), directory tags and per-object tags, as the plan
chooses them (choose.py). Tags from metadata: HeadObject calls per created change, on moto.
"""

from __future__ import annotations

import math
import os
import string
import time
from collections.abc import Callable
from urllib.parse import unquote

from tenacity import wait_none
from tests.emulators.cloudfront import distribution

from bench.common import HIGHWINDS_AUTH, HOSTS, IMG_HOST, Host, Row, Section, Spec, account, spec
from s3purge.config import Config, parse
from s3purge.execute import Executor
from s3purge.mapping import url_paths
from s3purge.model import Change
from s3purge.pipeline import Pipeline
from s3purge.plan import plan

VENDORS = ("akamai", "cloudflare", "cloudfront", "fastly", "edgecast", "highwinds", "http")
SIZES = (1, 100, 10_000)
REAL = (1, 100)
INDEX = "index.html"
ONE_OBJECT_ACROSS_SCHEMES = {"akamai", "fastly", "edgecast", "http"}
"""Vendor facts: a purge of one scheme's URL purges the other's (Cloudflare: zone-dependent;
Highwinds: not documented; both counted as two objects). CloudFront paths carry neither."""
ONE_URL_PER_CALL = {"fastly"}
"""Fastly's URL purge is `POST /purge/{url}`: its 256 items per call are surrogate keys only."""
UNLIMITED = "rate: 1000000, burst: 1000000"
"""Counting calls, not pacing them: the rate limits are the throughput benchmark's."""
SPECIAL_SIZES = (100, 1_000)
SPECIAL = (
    "My File {i}.html",
    "report ({i}).pdf",
    "c++ {i}.html",
    "a;b={i}.txt",
    "me@host:{i}.txt",
    "ünï-{i}.css",
    "100%-{i}.txt",
    "Sale+{i}.html",
    "My Docs {i}/index.html",
    "it's {i}!.js",
)
"""One in five keys of the special bursts, cycling: the characters real uploads carry."""
UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~/")
BROWSER_RAW = UNRESERVED | frozenset("!$&'()*,;=:@[]|")
"""What a browser leaves raw in a path (WHATWG), besides unreserved; '+' is escaped: S3 reads it as a space."""


def keys(n: int) -> list[str]:
    """One key in ten an index document, one in five an image (also under the image route)."""
    found = []
    for i in range(n):
        if i % 10 == 0:
            found.append(f"d{i // 10}/{INDEX}")
        elif i % 5 == 3:
            found.append(f"img/p{i}.png")
        else:
            found.append(f"d{i // 10}/page-{i}.html")
    return found


def special_keys(n: int) -> list[str]:
    """The ordinary burst with every fifth key (from the second on) special."""
    found = keys(n)
    for i in range(1, n, 5):
        found[i] = f"s{i // 10}/" + SPECIAL[(i // 5) % len(SPECIAL)].format(i=i)
    return found


def config(urls: dict[str, str], distribution: str, spellings: str = "") -> Config:
    lines = ["cdns:"]
    for vendor in VENDORS:
        if vendor == "http":
            lines.append(f'  http: {{vendor: http, endpoints: ["{urls["http"]}", "{urls["http2"]}"]}}')
            continue
        extra = f"distribution_ids: [{distribution}]" if vendor == "cloudfront" else UNLIMITED
        lines.append(f"  {vendor}: {account(vendor, urls[vendor], extra)}")
    lines.append("buckets:\n  site:")
    for vendor in VENDORS:
        extra = f", spellings: [{spellings}]" if spellings else ""
        lines.append(
            f"    - {{cdn: {vendor}, hosts: [{', '.join(HOSTS)}], schemes: both, index_documents: [{INDEX}]{extra}}}"
        )
        lines.append(f"    - {{cdn: {vendor}, hosts: [{IMG_HOST}], prefix: img/, strip_prefix: img/{extra}}}")
    return parse("\n".join(lines) + "\n", "bench-calls.yml")


def objects(vendor: str, burst: list[str]) -> set[str]:
    """The distinct cache objects a burst changes on `vendor`, as the URL (or path) purged."""
    found: set[str] = set()
    for key in burst:
        urls = [(scheme, host, path) for path in _paths(key) for host in HOSTS for scheme in ("https", "http")]
        if key.startswith("img/"):
            urls.append(("https", IMG_HOST, "/" + key.removeprefix("img/")))
        for scheme, host, path in urls:
            if vendor == "cloudfront":
                found.add(unquote(path))  # CloudFront matches paths by its own encoding: (1) = %281%29
            elif vendor in ONE_OBJECT_ACROSS_SCHEMES:
                found.add(f"https://{host}{path}")
            else:
                found.add(f"{scheme}://{host}{path}")
    return found


def _paths(key: str) -> list[str]:
    """Every distinct spelling of the key's path, and of its directory's for an index document."""
    paths = {"/" + spelled for spelled in _spelled(key)}
    if key.rpartition("/")[2] == INDEX:
        directories = {path[: path.rindex("/") + 1] for path in paths}
        paths |= directories | {d.rstrip("/") for d in directories}
    return sorted(paths)


def _spelled(key: str) -> set[str]:
    """The browser's, the fully encoded and (with a space) the '+'-for-space spelling of a key."""
    browser = "".join(c if c in BROWSER_RAW else _escaped(c) for c in key)
    encoded = "".join(c if c in UNRESERVED else _escaped(c) for c in key)
    plus = "".join(c if c in UNRESERVED else "+" if c == " " else _escaped(c) for c in key)
    return {browser, encoded, plus}


def _escaped(char: str) -> str:
    return "".join(f"%{byte:02X}" for byte in char.encode())


def minimum(vendor: str, cfg: Config, burst: list[str]) -> int:
    cdn = cfg.cdns[vendor]
    found = objects(vendor, burst)
    per_call = 1 if vendor in ONE_URL_PER_CALL else cdn.limits.max_items
    calls = math.ceil(len(found) / per_call)
    if cdn.limits.max_bytes is not None:
        size = sum(cdn.provider.item_bytes(value) for value in found)
        calls = max(calls, math.ceil(size / cdn.limits.max_bytes))
    fan_out = {"http": 2, "cloudfront": 1}.get(vendor, 1)  # endpoints; distributions
    return calls * fan_out


def changes(burst: list[str], tag: str) -> list[Change]:
    return [Change("site", key, "created", f"{tag}-{n}") for n, key in enumerate(burst)]


def counted(cfg: Config, burst: list[str], tag: str) -> dict[str, int]:
    """Calls per CDN, from the plan: every request every batch needs."""
    found = dict.fromkeys(VENDORS, 0)
    for batch in plan(changes(burst, tag), cfg).batches:
        found[batch.cdn] += len(cfg.cdns[batch.cdn].provider.requests(batch))
    return found


def run() -> Section:
    from s3purge.demo.bed import Moto

    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
    os.environ.pop("AWS_SESSION_TOKEN", None)
    moto = Moto().start()
    try:
        distribution = _distribution(moto.url)
        # Highwinds' window off (0 s): this counts calls, and two calls of 100 URIs a millisecond apart
        # drew a 429 and a retry in a 1 ms window (a call more than counted).
        specs = [spec(v, **({"window": 0.0} if v == "highwinds" else {})) for v in VENDORS if v != "cloudfront"]
        specs += [spec("http"), Spec("tests.vendors.test_cloudfront:CloudFrontGate", {"upstream": moto.url})]
        names = [*(v for v in VENDORS if v != "cloudfront"), "http2", "cloudfront"]
        with Host(specs) as host:
            urls = dict(zip(names, host.urls, strict=True))
            cfg = config(urls, distribution)
            section = _measure(cfg, host, names, config(urls, distribution, spellings="browser"))
        _metadata_heads(section, moto.url)
        return section
    finally:
        moto.close()


Counts = dict[str, dict[int, int]]


def _measure(cfg: Config, host: Host, names: list[str], browser_only: Config) -> Section:
    failures: list[str] = []
    executor = Executor(backoff=wait_none())
    try:
        ordinary = _series(cfg, host, names, executor, make=keys, sizes=SIZES, failures=failures)
        special = _series(cfg, host, names, executor, make=special_keys, sizes=SPECIAL_SIZES, failures=failures)
    finally:
        executor.close()
    violations = [v for i in range(len(names)) for v in host.stats(i).violations]
    section = _section(*ordinary, failures + violations)
    _special_rows(section, *special)
    _cost(section, cfg, browser_only, special_keys(SPECIAL_SIZES[-1]), special[0])
    _tag_costs(section)
    return section


TAG_BURST = [f"d{d}/file-{n}.html" for d in range(10) for n in range(1000)]
TAG_ROUTES = (
    ("exact paths", "", ""),
    ("wildcards (prefix_threshold: 100)", "", ", prefix_threshold: 100"),
    ("directory tags {dirname}", ', tags: ["{dirname}"]', ""),
    ("object tags obj:{key}", ', tags: ["obj:{key}"]', ""),
    ("object tags + prefix_threshold: 100", ', tags: ["obj:{key}"]', ", prefix_threshold: 100"),
)


def _tag_costs(section: Section) -> None:
    """CloudFront paid paths for 10,000 keys: tags against paths and wildcards, as planned."""
    found = []
    for name, tags, extra in TAG_ROUTES:
        cfg = parse(
            f"cdns:\n  cloudfront: {{vendor: cloudfront, distribution_ids: [E1]{extra}}}\n"
            f"buckets:\n  site:\n    - {{cdn: cloudfront, hosts: [www.example.com], schemes: both{tags}}}\n"
        )
        planned = plan(changes(TAG_BURST, "tags"), cfg)
        choice = next((d.rule for d in planned.decisions if d.rule in ("tags", "paths")), "paths")
        found.append(f"{name}: {_paid_paths(cfg, TAG_BURST):,} ({choice})")
    section.rows.append(Row("1 CloudFront tags", "10k keys, 10 directories", "; ".join(found), None, "report", None))


def _metadata_heads(section: Section, moto_url: str, size: int = 200) -> None:
    """HeadObject calls for `size` created objects on a route with tags_from_metadata (moto)."""
    import boto3

    from s3purge.metadata import MetadataReader

    s3 = boto3.client("s3", endpoint_url=moto_url)
    s3.create_bucket(Bucket="tagged")
    burst = [f"p/{n}.html" for n in range(size)]
    for key in burst:
        s3.put_object(Bucket="tagged", Key=key, Body=b"x", Metadata={"cache-tag": f"product-{key[2:-5]}"})
    cfg = parse(
        "cdns:\n  cf: {vendor: cloudfront, distribution_ids: [E1]}\n"
        "buckets:\n  tagged: [{cdn: cf, tags_from_metadata: cache-tag}]\n"
    )
    reader = MetadataReader(s3=s3)
    started = time.perf_counter()
    read, failed = reader.read([Change("tagged", k, "created", k) for k in burst], cfg, time.monotonic() + 60)
    seconds = time.perf_counter() - started
    tags = sum(len(b.values) for b in plan(read, cfg).batches)
    section.rows.append(
        Row(
            "1 tags from metadata",
            f"{size} created objects",
            f"{reader.heads} HeadObject calls ({reader.heads / size:.2f} per change, 16 at a time,"
            f" {seconds * 1000 / size:.1f} ms per change on moto); {tags} tags planned; {len(failed)} failed",
            reader.heads / size,
            "1.00",
            reader.heads == size and not failed,
        )
    )


def _series(
    cfg: Config,
    host: Host,
    names: list[str],
    executor: Executor,
    *,
    make: Callable[[int], list[str]],
    sizes: tuple[int, ...],
    failures: list[str],
) -> tuple[Counts, Counts, Counts]:
    """Calls counted, minimum and calls received per vendor and burst size; the smaller bursts really sent."""
    made: Counts = {v: {} for v in VENDORS}
    least: Counts = {v: {} for v in VENDORS}
    received: Counts = {v: {} for v in VENDORS}
    for size in sizes:
        burst, tag = make(size), f"{make.__name__}{size}"
        calls = counted(cfg, burst, tag)
        for vendor in VENDORS:
            made[vendor][size] = calls[vendor]
            least[vendor][size] = minimum(vendor, cfg, burst)
        if size in REAL:
            before = _received(host, names)
            report = Pipeline(cfg, executor).run(changes(burst, tag), time.monotonic() + 120)
            failures += [f"{o.batch.cdn}: {o.detail}" for o in report.failures()]
            after = _received(host, names)
            for vendor in VENDORS:
                received[vendor][size] = after[vendor] - before[vendor]
    return made, least, received


def _special_rows(section: Section, made: Counts, least: Counts, received: Counts) -> None:
    for vendor in VENDORS:
        worst = max(made[vendor][s] / least[vendor][s] for s in SPECIAL_SIZES)
        agree = all(received[vendor][s] == made[vendor][s] for s in received[vendor])
        parts = [f"{_short(s)}: {made[vendor][s]:,}/{least[vendor][s]:,}" for s in SPECIAL_SIZES]
        real = "received = counted" if agree else f"RECEIVED {list(received[vendor].values())}"
        section.rows.append(
            Row(
                "1 calls ÷ minimum",
                f"{vendor}, 20% special keys",
                " · ".join(parts) + f"; {real}",
                worst,
                "1.00",
                round(worst, 2) <= 1.0 and agree,
                key=f"calls-{vendor}",
            )
        )


def _cost(section: Section, cfg: Config, browser_only: Config, burst: list[str], made: Counts) -> None:
    """What the spelling model costs on the special burst: extra URL paths, and extra calls per vendor."""
    route, plain = cfg.routes("site")[0], browser_only.routes("site")[0]
    paths = sum(len(url_paths(route, key)) for key in burst)
    before = sum(len(url_paths(plain, key)) for key in burst)
    per_thousand = (paths - before) * 1000 / len(burst)
    without = counted(browser_only, burst, "browser-only")
    size = len(burst)
    calls = ", ".join(f"{v} {made[v][size] / without[v]:.2f}x" for v in VENDORS)
    paid = [_paid_paths(c, burst) for c in (browser_only, cfg)]
    section.rows.append(
        Row(
            "1 spelling cost",
            f"{_short(size)} keys, 20% special",
            f"{paths - before:,} extra URL paths ({per_thousand:.0f} per 1,000 keys; {before:,} -> {paths:,});"
            f" calls vs browser spelling only: {calls}; CloudFront paid paths {paid[0]:,} -> {paid[1]:,}",
            paths / before,
            "report",
            None,
        )
    )


def _paid_paths(cfg: Config, burst: list[str]) -> int:
    """Paths CloudFront bills for the burst (it folds '(1)' and '%281%29' into one path, not '+' and '%20')."""
    provider = cfg.cdns["cloudfront"].provider
    return sum(provider.cost(b) for b in plan(changes(burst, "paid"), cfg).batches if b.cdn == "cloudfront")


def _received(host: Host, names: list[str]) -> dict[str, int]:
    found = dict.fromkeys(VENDORS, 0)
    for index, name in enumerate(names):
        vendor = "http" if name == "http2" else name
        found[vendor] += len(host.stats(index).purges(skip=HIGHWINDS_AUTH))
    return found


def _section(
    made: dict[str, dict[int, int]],
    least: dict[str, dict[int, int]],
    received: dict[str, dict[int, int]],
    problems: list[str],
) -> Section:
    section = Section(data={"made": made, "least": least, "sizes": SIZES})
    for vendor in VENDORS:
        ratios = [made[vendor][s] / least[vendor][s] for s in SIZES]
        worst = max(ratios)
        agree = all(received[vendor][s] == made[vendor][s] for s in REAL)
        parts = [f"{_short(s)}: {made[vendor][s]:,}/{least[vendor][s]:,}" for s in SIZES]
        real = "received = counted" if agree else f"RECEIVED {[received[vendor][s] for s in REAL]}"
        section.rows.append(
            Row(
                "1 calls ÷ minimum",
                vendor,
                " · ".join(parts) + f"; {real}",
                worst,
                "1.00",
                round(worst, 2) <= 1.0 and agree,
                key=f"calls-{vendor}",
            )
        )
    if problems:
        section.notes.append("Problems during the real runs: " + "; ".join(problems[:10]))
    return section


def _short(size: int) -> str:
    return f"{size // 1000}k" if size >= 1000 else str(size)


def _distribution(endpoint: str) -> str:
    import boto3

    return distribution(boto3.client("cloudfront", endpoint_url=endpoint))
