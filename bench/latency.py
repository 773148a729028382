"""Benchmark 3: event in to every CDN acknowledged, against the slowest CDN's own answer time.

One change routed to five CDNs whose emulators answer in 20, 40, 60, 80 and 100 ms, sent
through the Lambda handler (`s3purge.entry.aws_lambda.handler`) as S3 invokes it, warm:
the function root holds the config, the first calls are the cold start and are not timed.
A client calling the five in parallel can finish no sooner than the slowest, 100 ms.
Invocations come 4 a second, the most Cloudflare's API limit lets through unpaced.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from pathlib import Path

from bench.common import Context, Host, Row, Section, account, at_most, median, p95, spec

CDNS = (("http", 0.020), ("fastly", 0.040), ("cloudflare", 0.060), ("edgecast", 0.080), ("akamai", 0.100))
SLOWEST = max(latency for _, latency in CDNS)
RUNS = 50
WARM_UP = 3
INTERVAL = 0.25
"""Seconds between invocations: Cloudflare's API allows 4 calls/s, and s3purge keeps to it,
so back-to-back runs would time its pacing instead of the calls."""


def config(urls: list[str]) -> str:
    lines = ["cdns:"]
    lines += [f"  {vendor}: {account(vendor, url)}" for (vendor, _), url in zip(CDNS, urls, strict=True)]
    lines += ["buckets:", "  site:"]
    lines += [f"    - {{cdn: {vendor}, hosts: [www.example.com]}}" for vendor, _ in CDNS]
    return "\n".join(lines) + "\n"


def run() -> Section:
    from tests.fixtures import s3_event

    with (
        Host([spec(vendor, latency=latency) for vendor, latency in CDNS]) as host,
        tempfile.TemporaryDirectory() as root,
    ):
        Path(root, "multicdn.config.yml").write_text(config(host.urls))
        os.environ.update(LAMBDA_TASK_ROOT=root, debug="false")
        os.environ.pop("config_file", None)
        from s3purge.entry import aws_lambda

        if aws_lambda._pipeline is not None:
            raise RuntimeError("the handler is already warm in this process: run the latency benchmark first")
        times = []
        # the handler logs JSON lines to stdout (set up at cold start): keep them off the table
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            first = time.monotonic()
            for n in range(WARM_UP + RUNS):
                time.sleep(max(0.0, first + n * INTERVAL - time.monotonic()))  # pacing, see INTERVAL
                event = s3_event(f"latency/run-{n}.html")
                started = time.perf_counter()
                answer = aws_lambda.handler(event, Context())
                elapsed = time.perf_counter() - started
                if answer.get("batches") != len(CDNS):
                    raise RuntimeError(f"expected one call per CDN, got {answer}")
                if n >= WARM_UP:
                    times.append(elapsed)
        logger = logging.getLogger("s3purge")
        for handler in list(logger.handlers):  # it writes to the sink closed above: later benches log nowhere
            logger.removeHandler(handler)
        received = [len(host.stats(i).answers) for i in range(len(CDNS))]
    if received != [WARM_UP + RUNS] * len(CDNS):
        raise RuntimeError(f"each CDN should have received {WARM_UP + RUNS} calls, got {received}")
    mid, high = median(times) / SLOWEST, p95(times) / SLOWEST
    section = Section(data={"times": times, "slowest": SLOWEST})
    for case, ratio, value in (("median", mid, median(times)), ("p95", high, p95(times))):
        section.rows.append(
            Row(
                "3 all acked ÷ slowest",
                case,
                f"{value * 1000:.1f} ms vs 100 ms, {RUNS} warm runs, 5 CDNs",
                ratio,
                "≤ 1.10",
                at_most(ratio, 1.10),
                key=f"latency-{case}",
            )
        )
    return section
