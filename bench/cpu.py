"""Benchmark 6: CPU per change: parse + map + plan, against json.loads of the same payloads.

100,000 changes as SQS message bodies (an S3 notification each), in ten invocations of
10,000 (Lambda's largest SQS batch): each body is read into changes (`read_message`,
which parses its JSON), and each invocation's changes are planned (mapped to URLs for two
hosts in both schemes with index documents, deduplicated, packed). The reference is
`json.loads` of the same bodies, in the same run; best of two rounds each.
"""

from __future__ import annotations

import gc
import json
import time

from bench.common import HOSTS, Row, Section, s3_body
from s3purge.config import parse
from s3purge.events import read_message
from s3purge.plan import plan

CHANGES = 100_000
PER_INVOCATION = 10_000
ROUNDS = 2
CONFIG = f"""\
cdns:
  cf: {{vendor: cloudflare, zone_id: "023e105f4ecef8ad9ca31a8372d0c353", api_token: x}}
buckets:
  site:
    - {{cdn: cf, hosts: [{", ".join(HOSTS)}], schemes: both, index_documents: [index.html]}}
"""


def bodies(start: int) -> list[str]:
    return [
        s3_body(f"dir-{n // 50}/index.html" if n % 50 == 0 else f"dir-{n // 50}/page-{n}.html")
        for n in range(start, start + PER_INVOCATION)
    ]


def run() -> Section:
    cfg = parse(CONFIG, "bench-cpu.yml")
    pipeline = loads = float("inf")
    targets = 0
    for _ in range(ROUNDS):
        spent_pipeline = spent_loads = 0.0
        for start in range(0, CHANGES, PER_INVOCATION):
            payloads = bodies(start)
            gc.collect()
            started = time.perf_counter()
            for body in payloads:
                json.loads(body)
            spent_loads += time.perf_counter() - started
            started = time.perf_counter()
            messages = [read_message(body, f"m{start + i}") for i, body in enumerate(payloads)]
            planned = plan([c for m in messages for c in m.changes], cfg)
            spent_pipeline += time.perf_counter() - started
            targets += sum(len(b.values) for b in planned.batches)
        pipeline, loads = min(pipeline, spent_pipeline), min(loads, spent_loads)
    per_change = pipeline / CHANGES * 1e6
    section = Section(data={"per_change_us": per_change, "loads_us": loads / CHANGES * 1e6})
    section.rows.append(
        Row(
            "6 CPU per change",
            f"{CHANGES:,} changes",
            f"{per_change:.1f} µs/change ({targets // ROUNDS // CHANGES} URLs each); "
            f"json.loads {loads / CHANGES * 1e6:.1f} µs",
            pipeline / loads,
            "report",
            None,
        )
    )
    return section
