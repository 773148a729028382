"""Benchmark 5: peak memory of one SQS-fed invocation carrying 10,000 records.

A child process plays the Lambda runtime: it reads the invocation's JSON (10,000 SQS
records, each an S3 notification for one key), parses it as the runtime does, calls the
handler once and reports its peak RSS (VmHWM; see bench/lambda_child.py for why not getrusage). The records route to
Cloudflare (two hosts, both schemes: 40,000 URLs in 400 calls) and Akamai (20,000 URLs
in about 20 calls), emulated in another process. A second child only imports the
handler and runs its cold start, for the baseline.
The child is bench/lambda_child.py, which imports nothing but the handler.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import HOSTS, Host, Row, Section, account, at_most, s3_body, spec

RECORDS = 10_000
LIMIT_MB = 128


def config(urls: list[str]) -> str:
    # Calls are not paced here (memory, not throughput): at the vendors' declared rates the
    # 400 Cloudflare calls would take 100 s and Akamai's 20,000 URLs 50 s.
    return (
        "cdns:\n"
        f"  cloudflare: {account('cloudflare', urls[0], 'rate: 1000, burst: 1000')}\n"
        f"  akamai: {account('akamai', urls[1], 'rate: 1000000, burst: 1000000')}\n"
        "buckets:\n  site:\n"
        f"    - {{cdn: cloudflare, hosts: [{', '.join(HOSTS)}], schemes: both}}\n"
        f"    - {{cdn: akamai, hosts: [{', '.join(HOSTS)}], schemes: both}}\n"
    )


def event(records: int) -> str:
    from tests.fixtures import sqs_event

    return json.dumps(sqs_event(*(s3_body(f"site/dir-{n // 100}/page-{n}.html") for n in range(records))))


def run() -> Section:
    with Host([spec("cloudflare"), spec("akamai")]) as host, tempfile.TemporaryDirectory() as root:
        Path(root, "multicdn.config.yml").write_text(config(host.urls))
        Path(root, "event.json").write_text(event(RECORDS))
        Path(root, "idle.json").write_text(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"}))
        full = _child(root, "event.json")
        idle = _child(root, "idle.json")
        calls = [len(host.stats(i).answers) for i in range(2)]
    peak = full["maxrss_kb"] / 1024
    section = Section(data={"peak_mb": peak, "idle_mb": idle["maxrss_kb"] / 1024})
    section.rows.append(
        Row(
            "5 peak RSS ÷ 128 MB",
            f"{RECORDS:,} SQS records",
            f"{peak:.0f} MB (cold start alone {idle['maxrss_kb'] / 1024:.0f} MB); "
            f"{full['elapsed']:.1f}s, {calls[0]}+{calls[1]} calls, {full['failures']} failed",
            peak / LIMIT_MB,
            "≤ 1.00",
            at_most(peak / LIMIT_MB, 1.0) and full["failures"] == 0,
            key="memory",
        )
    )
    return section


def _child(root: str, event_file: str) -> dict[str, float]:
    result = Path(root, f"{event_file}.result")
    env = {**os.environ, "LAMBDA_TASK_ROOT": root, "debug": "false"}
    env.pop("config_file", None)
    subprocess.run(
        [sys.executable, "-m", "bench.lambda_child", str(Path(root, event_file)), str(result)],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,  # the handler's JSON log lines
    )
    answer: dict[str, float] = json.loads(result.read_text())
    return answer
