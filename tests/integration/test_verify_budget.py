"""Verification's cost is capped per invocation: past the cap, or the deadline, a purge is accepted
unverified, and said so."""

from __future__ import annotations

import time

import pytest

from s3purge.config import parse
from s3purge.model import Change
from s3purge.pipeline import Pipeline
from tests.conftest import serving
from tests.emulators.base import Emulator, Fault, Recorded, Reply


class Fresh(Emulator):
    """Accepts every PURGE; every HEAD shows the new object."""

    def answer(self, request: Recorded) -> Reply:
        return Reply(200, headers={"ETag": '"abc"'}) if request.method == "HEAD" else Reply(200)


def test_past_the_probe_cap_purges_are_accepted_unverified(logs: pytest.LogCaptureFixture) -> None:
    with serving(Fresh()) as node:
        config = parse(
            f'cdns:\n  node: {{vendor: http, endpoints: ["{node.url}"]}}\n'
            f'buckets:\n  site:\n    - {{cdn: node, hosts: [www.example.test], verify: {{via: ["{node.url}"]}}}}\n'
            "probes: {max_per_run: 2}\n"
        )
        changes = [Change("site", f"{n}.html", "created", f"m{n}", etag="abc") for n in range(3)]
        report = Pipeline(config).run(changes, time.monotonic() + 30)
    assert report.ok  # accepted by the CDN: not failed for want of probes
    assert sorted(p.result for p in report.proofs) == ["fresh", "fresh", "unverified"]
    assert [r.method for r in node.requests].count("HEAD") == 2
    (line,) = [r for r in logs.records if r.getMessage() == "not proved fresh"]
    assert line.detail == "probe budget or deadline spent before a probe"


def test_a_probe_that_hangs_ends_at_the_deadline_unverified_never_stale(logs: pytest.LogCaptureFixture) -> None:
    with serving(Emulator()) as node:
        node.faults.extend([Fault(status=200), Fault(hang=30)])  # the purge is accepted, the probe never answered
        config = parse(
            f'cdns:\n  node: {{vendor: http, endpoints: ["{node.url}"]}}\n'
            f'buckets:\n  site:\n    - {{cdn: node, hosts: [www.example.test], verify: {{via: ["{node.url}"]}}}}\n'
        )
        started = time.monotonic()
        report = Pipeline(config).run([Change("site", "a.html", "created", "m", etag="abc")], started + 1.0)
        took = time.monotonic() - started
    assert took < 3.0  # the deadline, not the probe's 5 s read timeout (slack for a loaded machine)
    assert report.ok  # accepted by the CDN: not failed for want of an answer
    ((result, detail),) = [(p.result, p.detail) for p in report.proofs]
    assert (result, detail.startswith("no answer (ReadTimeout")) == ("unverified", True), detail
    assert [r.method for r in node.requests] == ["PURGE", "HEAD"]


def test_probes_arrive_at_the_cdn_paced_at_probes_rate() -> None:
    rate, count = 20, 40
    with serving(Fresh()) as node:
        config = parse(
            f'cdns:\n  node: {{vendor: http, endpoints: ["{node.url}"]}}\n'
            f'buckets:\n  site:\n    - {{cdn: node, hosts: [www.example.test], verify: {{via: ["{node.url}"]}}}}\n'
            f"probes: {{rate: {rate}}}\n"
        )
        changes = [Change("site", f"{n}.html", "created", f"m{n}", etag="abc") for n in range(count)]
        report = Pipeline(config).run(changes, time.monotonic() + 30)
    assert [p.result for p in report.proofs] == ["fresh"] * count
    arrived = sorted(r.at for r in node.requests if r.method == "HEAD")  # as the CDN counts them
    assert len(arrived) == count  # one probe each: all fresh at once
    # A token bucket of `rate` a second and as much burst: never more in any stretch of time than
    # that allows. Slack of 3 probes for arrivals bunched by a loaded machine (pacing counts at sending).
    over = [
        (j - i + 1, round(arrived[j] - arrived[i], 3))
        for i in range(count)
        for j in range(i, count)
        if j - i + 1 > rate + rate * (arrived[j] - arrived[i]) + 3
    ]
    assert over == []
    assert arrived[-1] - arrived[0] >= (count - rate - 3) / rate  # so the last ones waited for their turn
