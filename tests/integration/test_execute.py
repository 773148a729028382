"""The executor against local HTTP servers that throttle, fail, hang and drop connections."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

import pytest
from tenacity import wait_fixed

from s3purge.config import parse
from s3purge.execute import Executor
from s3purge.model import Change
from s3purge.pipeline import Pipeline
from tests.conftest import serving
from tests.emulators.base import Emulator, Fault, Recorded, Reply

OPENED: list[Executor] = []


@pytest.fixture(autouse=True)
def close_executors() -> Iterator[None]:
    """Each test's executors are closed after it: their pools and connections end with the test."""
    yield
    while OPENED:
        OPENED.pop().close()


def pipeline(*endpoints: str, extra: str = "", executor: Executor | None = None) -> Pipeline:
    cdns = "\n".join(
        f'  c{i}: {{vendor: http, endpoints: ["{url}"], max_attempts: 3, timeout: 0.5{extra}}}'
        for i, url in enumerate(endpoints)
    )
    routes = "\n".join(f"    - {{cdn: c{i}, hosts: [www.example.test]}}" for i in range(len(endpoints)))
    text = f"cdns:\n{cdns}\nbuckets:\n  site:\n{routes}\n"
    if executor is None:
        executor = Executor(backoff=wait_fixed(0))
        OPENED.append(executor)
    return Pipeline(parse(text), executor)


def changes(*keys: str) -> list[Change]:
    return [Change("site", k, "created", f"m{i}") for i, k in enumerate(keys)]


def run(p: Pipeline, *keys: str, budget: float = 20) -> list[bool]:
    report = p.run(changes(*keys), time.monotonic() + budget)
    return [o.ok for o in report.outcomes]


def test_purge_request_carries_host_and_exact_path() -> None:
    with serving(Emulator()) as cache:
        assert run(pipeline(cache.url), "dir/My File+ünï~(1).html") == [True] * 3  # one call per spelling
    assert sorted((r.method, r.path, r.headers["host"]) for r in cache.requests) == [
        ("PURGE", "/dir/My%20File%2B%C3%BCn%C3%AF~%281%29.html", "www.example.test"),
        ("PURGE", "/dir/My%20File%2B%C3%BCn%C3%AF~(1).html", "www.example.test"),
        ("PURGE", "/dir/My+File%2B%C3%BCn%C3%AF~%281%29.html", "www.example.test"),
    ]


def test_429_is_retried_after_the_vendors_retry_after() -> None:
    with serving(Emulator()) as cache:
        cache.faults.append(Fault(status=429, headers={"Retry-After": "1"}))
        assert run(pipeline(cache.url), "a") == [True]
    first, second = cache.requests
    assert second.at - first.at >= 0.95  # the executor waited as told, not its own 0 s backoff


@pytest.mark.parametrize(
    "fault",
    [Fault(status=503), Fault(status=500), Fault(drop=True), Fault(hang=2.0)],
    ids=["503", "500", "dropped", "hang-past-timeout"],
)
def test_transient_failures_are_retried(fault: Fault) -> None:
    with serving(Emulator()) as cache:
        cache.faults.append(fault)
        assert run(pipeline(cache.url), "a") == [True]
    assert len(cache.requests) == 2


def test_permanent_failure_is_not_retried_and_says_what_to_do() -> None:
    with serving(Emulator()) as cache:
        cache.faults.extend([Fault(status=403, body={"error": "acl"})] * 3)
        report = pipeline(cache.url).run(changes("a"), time.monotonic() + 10)
    (outcome,) = report.outcomes
    assert not outcome.ok and not outcome.retryable
    assert "HTTP 403" in outcome.detail and "ACL" in outcome.detail
    assert len(cache.requests) == 1


def test_attempts_are_bounded() -> None:
    with serving(Emulator()) as cache:
        cache.faults.extend([Fault(status=502)] * 5)
        report = pipeline(cache.url).run(changes("a"), time.monotonic() + 10)
    assert [o.ok for o in report.outcomes] == [False] and report.outcomes[0].retryable
    assert len(cache.requests) == 3  # max_attempts


def test_nothing_starts_after_the_deadline() -> None:
    with serving(Emulator()) as cache:
        # an hour: an executor that waited for it would trip the suite's timeout instead of returning
        cache.faults.append(Fault(status=429, headers={"Retry-After": "3600"}))
        report = pipeline(cache.url).run(changes("a"), time.monotonic() + 2)
    assert len(cache.requests) == 1 and not report.outcomes[0].ok
    assert report.outcomes[0].retryable  # not tried again here, but kept for a later delivery


def test_a_hanging_cdn_does_not_hold_up_the_others() -> None:
    with serving(Emulator(latency=10.0)) as slow, serving(Emulator()) as fast:
        report = pipeline(slow.url, fast.url).run(changes(*[f"k{i}" for i in range(20)]), time.monotonic() + 3)
    by_cdn = {cdn: [o.ok for o in report.outcomes if o.batch.cdn == cdn] for cdn in ("c0", "c1")}
    assert by_cdn == {"c0": [False] * 20, "c1": [True] * 20}
    # the slow CDN's calls timed out and were tried again; the fast one was done before its last try
    assert len(slow.requests) > 20
    assert max(r.at for r in fast.requests) < max(r.at for r in slow.requests)


def test_concurrency_per_cdn_is_bounded() -> None:
    with serving(Emulator(latency=0.05)) as cache:
        assert all(run(pipeline(cache.url, extra=", concurrency: 3"), *[f"k{i}" for i in range(24)]))
    assert cache.max_in_flight == 3


def test_rate_limit_paces_calls_so_the_vendor_never_says_429() -> None:
    # No timing luck needed: the client counts a call when it takes a token, the vendor when the call
    # arrives, and at most `concurrency` calls are between the two. So in any span the vendor sees at
    # most 2 (burst) + 2 (in flight) + 36/s, within its 5 + 40/s however late the threads run.
    with serving(Emulator(rate=40, burst=5)) as cache:
        paced = pipeline(cache.url, extra=", rate: 36, burst: 2, concurrency: 2")
        assert all(run(paced, *[f"k{i}" for i in range(30)]))
    assert cache.throttled_count == 0 and len(cache.requests) == 30


def test_without_pacing_the_same_burst_is_throttled() -> None:
    # the control for the test above (same calls, same concurrency): the emulator does enforce its limit;
    # 30 unpaced calls trip it unless they take more than 0.6 s, 40 ms a call
    with serving(Emulator(rate=40, burst=5)) as cache:
        run(pipeline(cache.url, extra=", concurrency: 2"), *[f"k{i}" for i in range(30)])
    assert cache.throttled_count > 0


def test_every_vendor_call_is_logged_as_one_json_line(logs: pytest.LogCaptureFixture) -> None:
    with serving(Emulator()) as cache:
        cache.faults.append(Fault(status=500))
        run(pipeline(cache.url), "a")
    calls = [r for r in logs.records if r.getMessage() == "vendor call"]
    assert [(r.status, r.result, r.attempt) for r in calls] == [(500, "failed", 1), (200, "accepted", 2)]  # type: ignore[attr-defined]
    assert {r.cdn for r in calls} == {"c0"} and all(r.latency_ms >= 0 for r in calls)  # type: ignore[attr-defined]


class EchoTokenCache(Emulator):
    """Requires a token header, and echoes it in its error body (a careless vendor)."""

    def answer(self, request: Recorded) -> Reply:
        return Reply(401, {"error": f"bad token {request.headers.get('x-purge-token')}"})


def test_a_secret_never_reaches_logs_or_outcomes(
    logs: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from s3purge.secrets import resolve

    monkeypatch.setenv("PURGE_TOKEN", "tok-9f8e7d")
    with serving(EchoTokenCache()) as cache:
        p = pipeline(cache.url, extra=", headers: {X-Purge-Token: {env: PURGE_TOKEN}}")
        resolve(p.config.secrets())
        report = p.run(changes("a"), time.monotonic() + 5)
    assert cache.requests[0].headers["x-purge-token"] == "tok-9f8e7d"  # it was sent...
    assert not report.ok
    shown = logs.text + repr(report) + repr(p.config)
    assert "bad token ***" in shown  # the vendor's echo is scrubbed before it is logged or reported
    assert "tok-9f8e7d" not in shown


def test_a_trickling_vendor_cannot_hold_the_pipeline_past_the_deadline() -> None:
    # Headers at once, then a byte every 0.2 s: each byte resets a read timeout, so only a bound on
    # the call's total time stops it. The account's own timeout (60 s) is far above the deadline.
    with serving(Emulator()) as trickling, serving(Emulator()) as fine:
        trickling.faults.append(Fault(trickle=0.2))
        p = pipeline(trickling.url, fine.url)
        for name, cdn in p.config.cdns.items():
            p.config.cdns[name] = dataclasses.replace(cdn, limits=dataclasses.replace(cdn.limits, timeout=60.0))
        started = time.monotonic()
        report = p.run(changes("a"), started + 1.5)
        took = time.monotonic() - started
    by_cdn = {o.batch.cdn: (o.ok, o.retryable) for o in report.outcomes}
    assert by_cdn == {"c0": (False, True), "c1": (True, False)}  # failed, to be retried; the other CDN done
    assert "within" in report.outcomes[0].detail or "deadline" in report.outcomes[0].detail
    assert took < 1.5 + 10.0  # a bound any loaded machine meets: without the hard limit this takes 2,000 s
