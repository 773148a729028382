"""Benchmark 7: what verification costs per 1,000 changes, in requests and seconds.

1,000 changed keys (one URL each) go through the same pipeline three times: verification
off; on with every copy fresh at the first probe; on with one object in ten stale after
the first purge (a shield handed the edge the old copy back), fresh after a second. The
CDN is an emulator in a child process that accepts PURGE (under /purge) and answers the
HEAD probes with each object's ETag once it has been purged enough times. S3 is a moto
server, asked (HeadObject, counted through botocore's event hooks) about doubtful copies.

The reference for probes is the fewest that can prove anything: one per purged URL; for
stale copies, one extra purge each. Probes are paced at the highest `probes.rate` (1,000 a
second); at the default (200) the first probes of 1,000 URLs take 5 s instead of 1.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from tests.emulators.base import Emulator, Recorded, Reply

from bench.common import Host, Row, Section, Spec, at_most, median
from s3purge.config import parse
from s3purge.demo.bed import Moto
from s3purge.model import Change
from s3purge.pipeline import Pipeline
from s3purge.verify import Verifier

CHANGES = 1000
RUNS = 3
STALE_EVERY = 10
HOST = "www.example.test"
WITHIN = 0.3


def etag(key: str) -> str:
    return hashlib.md5(key.encode()).hexdigest()  # noqa: S324 - S3's ETag of a simple upload: MD5 of the body


class Edge(Emulator):
    """Accepts PURGE under /purge; HEAD answers the object's ETag once purged enough times."""

    def __init__(self, stale_every: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stale_every = stale_every
        self.purged: Counter[str] = Counter()
        self._count = threading.Lock()

    def answer(self, request: Recorded) -> Reply:
        if request.method == "PURGE":
            with self._count:
                self.purged[request.path.removeprefix("/purge/")] += 1
            return Reply(200)
        key = request.path.lstrip("/")
        needed = 2 if self.stale_every and int(key[-10:-5]) % self.stale_every == 0 else 1
        served = etag(key) if self.purged[key] >= needed else "0" * 32
        return Reply(200, headers={"ETag": f'"{served}"'})


def config(url: str, verify: bool) -> str:
    route = f', verify: {{via: ["{url}"], within: {WITHIN}, purges: 3}}' if verify else ""
    return (
        f'cdns:\n  edge: {{vendor: http, endpoints: ["{url}"], path_prefix: /purge, concurrency: 16}}\n'
        f"buckets:\n  site:\n    - {{cdn: edge, hosts: [{HOST}]{route}}}\n"
        "probes: {rate: 1000, max_per_run: 1000000}\n"
    )


def changes(run: int) -> list[Change]:
    """Fresh keys for each run: the emulated CDN remembers what it purged."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    keys = [f"r{run}/k{i:05}.html" for i in range(CHANGES)]
    return [Change("site", key, "created", f"m{i}", etag=etag(key), event_time=now) for i, key in enumerate(keys)]


def measure(url: str, verify: bool, s3: Any, run: int) -> tuple[float, int]:
    """Seconds for one run of 1,000 changes, and S3 HeadObject calls made."""
    heads = Counter[str]()

    def count(**_: Any) -> None:
        heads.update(["head"])

    s3.meta.events.register("before-call.s3.HeadObject", count)
    verifier = Verifier(s3=s3)
    pipeline = Pipeline(parse(config(url, verify)), verifier=verifier)
    work = changes(run)
    began = time.monotonic()
    report = pipeline.run(work, time.monotonic() + 300)
    took = time.monotonic() - began
    s3.meta.events.unregister("before-call.s3.HeadObject", count)
    pipeline.executor.close()
    verifier.close()
    if not report.ok:
        raise RuntimeError(f"bench verify: {next(iter(report.failures())).detail}")
    return took, heads["head"]


def run() -> Section:
    saved = dict(os.environ)
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
    moto = Moto().start()
    try:
        os.environ["AWS_ENDPOINT_URL"] = moto.url
        return _run(moto)
    finally:
        moto.close()
        os.environ.clear()
        os.environ.update(saved)


def _run(moto: Moto) -> Section:
    import boto3

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="site")
    for run in range(RUNS):
        for change in changes(run)[::STALE_EVERY]:  # S3 holds the event's object: those copies are truly stale
            s3.put_object(Bucket="site", Key=change.key, Body=change.key.encode())
    edge = "bench.verify:Edge"
    specs = [Spec(edge), Spec(edge), Spec(edge, {"stale_every": STALE_EVERY})]
    times: list[list[float]] = [[], [], []]
    heads = [0, 0, 0]
    with Host(specs) as host:
        for run in range(RUNS):  # interleaved, so a noisy moment hits all three alike
            for case, verify in enumerate((False, True, True)):
                took, asked = measure(host.urls[case], verify, s3, run)
                times[case].append(took)
                heads[case] += asked
        counts = [(p // RUNS, q // RUNS) for p, q in (_count(host, i) for i in range(3))]
    off, fresh, stale = (median(t) for t in times)
    (off_purges, _), (fresh_purges, fresh_probes), (stale_purges, stale_probes) = counts
    _, fresh_heads, stale_heads = (n // RUNS for n in heads)
    per = 1000 / CHANGES
    rows = [
        Row(
            "7 probes ÷ purged URLs",
            "verify: all fresh at the first probe",
            f"+{fresh_probes * per:.0f} HEAD probes, +{(fresh_purges - off_purges) * per:.0f} purges, "
            f"{fresh_heads * per:.0f} S3 HEADs per 1,000 changes; {fresh - off:+.2f} s on {off:.2f} s (medians)",
            fresh_probes / CHANGES,
            "<= 1.00 probe per purged URL",
            at_most(fresh_probes / CHANGES, 1.0),
        ),
        Row(
            "7 extra purges ÷ stale",
            f"verify: 1 in {STALE_EVERY} stale after the first purge",
            f"+{stale_probes * per:.0f} probes, +{(stale_purges - off_purges) * per:.0f} purges, "
            f"{stale_heads * per:.0f} S3 HEADs per 1,000 changes; {stale - off:+.2f} s (median of {RUNS})",
            (stale_purges - off_purges) / (CHANGES // STALE_EVERY),
            "<= 1.00 extra purge per stale copy",
            at_most((stale_purges - off_purges) / (CHANGES // STALE_EVERY), 1.0),
        ),
    ]
    data = {"off": off, "fresh": fresh, "stale": stale, "counts": counts, "heads": [fresh_heads, stale_heads]}
    return Section(rows, data)


def _count(host: Host, index: int) -> tuple[int, int]:
    """(purges, probes) the emulator answered."""
    answers = host.stats(index).answers
    purges = sum(a.path.startswith("/purge/") for a in answers)
    return purges, len(answers) - purges
