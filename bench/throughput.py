"""Benchmark 2: how close a bulk purge runs to the vendor's own rate limit, and how many 429s it costs.

Each emulator enforces its vendor's documented limit, sped up so a run takes seconds, and
answers every call after 50 ms. The account's `rate`/`burst` are set to the same limit,
as a user would from the vendor's documentation. The reference is the best any client
could do against that limiter: the burst allowance at once, then the refill rate (or, for
Highwinds' sliding window, one window per 100 URIs; for limits on concurrent requests,
full concurrency), plus one 50 ms answer. Ratio = that time ÷ the measured time, i.e.
URLs/s achieved ÷ URLs/s the limit allows for this burst.

CloudFront (no request rate; 3,000 paths in progress per distribution) and self-hosted
caches (no limit) have no rate to run against.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.common import HIGHWINDS_AUTH, Host, Row, Section, account, at_least, at_most, spec
from s3purge.config import parse
from s3purge.execute import Executor
from s3purge.model import Change
from s3purge.pipeline import Pipeline

LATENCY = 0.05


@dataclass(frozen=True)
class Case:
    vendor: str
    urls: int
    emulator: dict[str, Any]
    client: str
    """Account overrides: the vendor's limit, as its documentation states it (scaled)."""
    limit: str
    """The limit in words, for the table."""
    concurrent: int = 0
    """Calls in flight that bound the rate, where the limit is on concurrency."""

    def ideal(self, per_call: int) -> float:
        """Seconds the best client needs for `urls` against this limiter."""
        return self._admit(per_call) + LATENCY

    def _admit(self, per_call: int) -> float:
        e: dict[str, float] = self.emulator
        if self.vendor == "akamai":
            return max(0.0, self.urls - e["objects_burst"]) / e["objects_per_second"]
        if self.vendor == "cloudflare":
            urls_per_second, burst = e["files_per_second"]
            return max(0.0, self.urls - burst) / urls_per_second
        if self.vendor == "highwinds":
            return (math.ceil(self.urls / 100) - 1) * e["window"]
        return (math.ceil(self.urls / self.concurrent) - 1) * LATENCY


# Time runs faster by a factor per vendor (rates x k, windows / k); bucket sizes stay as
# documented, so the emulated limiter is the vendor's, only quicker.
CASES = [
    Case(
        "akamai",
        30_000,
        {"objects_per_second": 200.0 * 25, "objects_burst": 10_000.0},
        "rate: 5000, burst: 10000",
        "URL bucket 10,000 + 200/s (x25)",
    ),
    # What binds a burst of single-file purges is the plan's URL limit (the API's 1,200 calls per
    # 5 minutes is a window 80 calls never fill); `plan: business` paces to it, as documented.
    Case(
        "cloudflare",
        8_000,
        {"files_per_second": (1500.0, 1500.0)},
        "plan: business",
        "Business plan: 1,500 single-file URLs/s",
    ),
    Case(
        "highwinds",
        500,
        {"window": 60 / 60},
        "rate: 100, burst: 100",
        "100 URIs per 60 s sliding (x60)",
    ),
    Case(
        "edgecast",
        500,
        {"max_concurrent": 8},
        "concurrency: 8",
        "50 purges in flight (scaled to 8)",
        concurrent=8,
    ),
    # No limit on URL purges: the ceiling is the client's own pool (8: on 2 cores, 16 in flight
    # make client and emulator, both Python, CPU-bound rather than latency-bound).
    Case("fastly", 500, {}, "concurrency: 8", "no URL-purge limit: the client's 8 in flight", concurrent=8),
]


def run(make: Callable[[], Executor] = Executor) -> Section:
    """`make`: the executor to measure (the default is the one s3purge runs)."""
    section = Section()
    timelines: dict[str, list[tuple[float, int]]] = {}
    specs = [spec(c.vendor, latency=LATENCY, **c.emulator) for c in CASES]
    with Host(specs) as host:
        for index, case in enumerate(CASES):
            row_rate, row_429, timeline = _case(case, host, index, make())
            section.rows += [row_rate, row_429]
            timelines[case.vendor] = timeline
    section.data["timelines"] = timelines
    return section


def _case(case: Case, host: Host, index: int, executor: Executor) -> tuple[Row, Row, list[tuple[float, int]]]:
    url = host.urls[index]
    cfg = parse(
        f"cdns:\n  cdn: {account(case.vendor, url, case.client)}\n"
        f"buckets:\n  site:\n    - {{cdn: cdn, hosts: [www.example.com]}}\n",
        f"bench-{case.vendor}.yml",
    )
    changes = [Change("site", f"bulk/file-{n}.html", "created", f"m{n}") for n in range(case.urls)]
    pipeline = Pipeline(cfg, executor)
    try:
        started = time.monotonic()
        report = pipeline.run(changes, started + 300)
        elapsed = time.monotonic() - started
    finally:
        executor.close()
    answers = host.stats(index).purges(skip=HIGHWINDS_AUTH)
    accepted = sum(a.items for a in answers if a.status < 300)
    refused = sum(1 for a in answers if a.status >= 400)
    per_call = max(a.items for a in answers)
    ratio = case.ideal(per_call) / elapsed
    share = refused / len(answers)
    purged = f"{accepted:,}/{case.urls:,} URLs" + ("" if report.ok else f", {len(list(report.failures()))} failed")
    first = min(a.received for a in answers) - started
    measured = (
        f"{purged} in {elapsed:.2f}s (best {case.ideal(per_call):.2f}s, first call after {first:.2f}s); {case.limit}"
    )
    complete = accepted == case.urls and report.ok
    rate = Row(
        "2 URLs/s ÷ limit",
        case.vendor,
        measured,
        ratio,
        "≥ 0.90",
        at_least(ratio, 0.90) and complete,
        key=f"rate-{case.vendor}",
    )
    word = "400 over-limit" if case.vendor == "edgecast" else "429"
    throttled = Row(
        f"2 share of {word}",
        case.vendor,
        f"{refused} of {len(answers)} calls",
        share,
        "≤ 0.01",
        at_most(share, 0.01),
        key=f"429-{case.vendor}",
    )
    timeline = [(a.at - started, a.items if a.status < 300 else -1) for a in answers]
    return rate, throttled, timeline
