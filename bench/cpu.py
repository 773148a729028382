"""Benchmark 6: planning CPU and memory per change (the planning rows of issue #15).

100,000 changes as SQS message bodies (an S3 notification each), in ten invocations of
10,000 (Lambda's largest SQS batch): each body is read into changes (`read_message`,
which parses its JSON), and each invocation's changes are planned (mapped to URLs for two
hosts in both schemes with index documents, deduplicated, packed). The reference is
`json.loads` of the same bodies, in the same run; best of three rounds each. Times are the
process's CPU time (`time.process_time`): this is a CPU row, and on a shared machine wall
time mostly measures the neighbours.

- Escalation: the same changes planned with both escalation rules on but never firing
  (prefix_threshold 1,000, everything_threshold 1,000,000), ÷ planned without them.
- Memory: all 100,000 changes planned at once in a fresh interpreter; tracemalloc's peak
  during `plan()` (beyond the changes it is given) ÷ 100,000.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import time
from collections.abc import Callable

from bench.common import HOSTS, Row, Section, at_most, s3_body
from s3purge.config import Config, parse
from s3purge.events import read_message
from s3purge.model import Change
from s3purge.plan import plan

CHANGES = 100_000
PER_INVOCATION = 10_000
ROUNDS = 3
CONFIG = f"""\
cdns:
  cf: {{vendor: cloudflare, zone_id: "023e105f4ecef8ad9ca31a8372d0c353", api_token: x}}
buckets:
  site:
    - {{cdn: cf, hosts: [{", ".join(HOSTS)}], schemes: both, index_documents: [index.html]}}
"""
ESCALATING = CONFIG.replace("api_token: x}", "api_token: x, prefix_threshold: 1000, everything_threshold: 1000000}")
MEMORY = """
import gc, json, sys, tracemalloc
from bench.cpu import CHANGES, CONFIG, PER_INVOCATION, bodies
from s3purge.config import parse
from s3purge.events import read_message
from s3purge.plan import plan
config = parse(CONFIG, "bench-cpu.yml")
bodies_all = [b for s in range(0, CHANGES, PER_INVOCATION) for b in bodies(s)]
changes = [c for i, b in enumerate(bodies_all) for c in read_message(b, f"m{i}").changes]
del bodies_all
gc.collect()
tracemalloc.start()
before = tracemalloc.get_traced_memory()[0]
planned = plan(changes, config)
print(json.dumps({"peak": tracemalloc.get_traced_memory()[1] - before, "batches": len(planned.batches)}))
"""


def bodies(start: int) -> list[str]:
    return [
        s3_body(f"dir-{n // 50}/index.html" if n % 50 == 0 else f"dir-{n // 50}/page-{n}.html")
        for n in range(start, start + PER_INVOCATION)
    ]


def cpu(work: Callable[[], object]) -> float:
    """CPU seconds `work` takes, after a collection so that no earlier garbage is charged to it."""
    gc.collect()
    started = time.process_time()
    work()
    return time.process_time() - started


def run() -> Section:
    plain, escalating = parse(CONFIG, "bench-cpu.yml"), parse(ESCALATING, "bench-cpu-escalating.yml")
    best = {"loads": float("inf"), "pipeline": float("inf"), "plain": float("inf"), "escalating": float("inf")}
    for _ in range(ROUNDS):
        spent = dict.fromkeys(best, 0.0)
        for start in range(0, CHANGES, PER_INVOCATION):
            for name, seconds in _invocation(start, plain, escalating).items():
                spent[name] += seconds
        best = {name: min(best[name], spent[name]) for name in best}
    changes = [c for i, body in enumerate(bodies(0)) for c in read_message(body, f"m{i}").changes]
    urls = sum(len(b.values) for b in plan(changes, plain).batches) / len(changes)
    per_change, loads = best["pipeline"] / CHANGES * 1e6, best["loads"] / CHANGES * 1e6
    section = Section(data={"per_change_us": per_change, "loads_us": loads})
    ratio = best["pipeline"] / best["loads"]
    measured = f"{per_change:.1f} µs/change CPU ({urls:.1f} URLs each); json.loads {loads:.1f} µs"
    row = Row("6 CPU per change", f"{CHANGES:,} changes", measured, ratio, "≤ 6.00", at_most(ratio, 6.0), key="cpu")
    section.rows.append(row)
    ratio = best["escalating"] / best["plain"]
    measured = f"plan {best['escalating'] / CHANGES * 1e6:.1f} vs {best['plain'] / CHANGES * 1e6:.1f} µs/change CPU"
    ok = at_most(ratio, 1.2)
    section.rows.append(
        Row("6 escalation ÷ plain", "rules on, none firing", measured, ratio, "≤ 1.20", ok, key="escalation")
    )
    section.rows.append(_memory())
    return section


def _invocation(start: int, plain: Config, escalating: Config) -> dict[str, float]:
    """CPU seconds of one invocation's 10,000 bodies: json.loads alone; read + plan; plan with and
    without escalation rules."""
    payloads = bodies(start)
    changes: list[Change] = []
    return {
        "loads": cpu(lambda: _loads(payloads)),
        "pipeline": cpu(lambda: changes.extend(_read_and_plan(payloads, start, plain))),
        "plain": cpu(lambda: plan(changes, plain)),
        "escalating": cpu(lambda: plan(changes, escalating)),
    }


def _loads(payloads: list[str]) -> None:
    for body in payloads:  # each result dropped at once, as the reference always did
        json.loads(body)


def _read_and_plan(payloads: list[str], start: int, config: Config) -> list[Change]:
    messages = [read_message(body, f"m{start + i}") for i, body in enumerate(payloads)]
    changes = [c for m in messages for c in m.changes]
    plan(changes, config)
    return changes


def _memory() -> Row:
    done = subprocess.run([sys.executable, "-c", MEMORY], check=True, capture_output=True, text=True)
    found = json.loads(done.stdout)
    per_change = found["peak"] / CHANGES
    ratio = per_change / 1536
    measured = (
        f"{per_change:,.0f} B/change: peak while planning {CHANGES:,} changes at once ({found['batches']:,} batches)"
    )
    return Row(
        "6 memory per change ÷ 1.5 KiB",
        f"{CHANGES:,} changes",
        measured,
        ratio,
        "≤ 1.00",
        at_most(ratio, 1.0),
        key="plan-memory",  # not "memory": the peak-RSS row of bench 5 has that key
    )
