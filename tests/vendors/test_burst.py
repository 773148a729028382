"""A burst of 1,000 changed keys to the original scripts' five vendors at once: minimum calls, and isolation."""

from __future__ import annotations

import math
import time
from contextlib import ExitStack, closing

from s3purge.config import Config, parse
from s3purge.execute import Executor
from s3purge.model import Change
from s3purge.pipeline import Pipeline
from tests.conftest import serving
from tests.emulators.base import Emulator, Fault
from tests.vendors.test_contract import CASES, Case

FIVE = ("akamai", "cloudflare", "edgecast", "fastly", "highwinds")
KEYS = [f"assets/{n // 100}/file-{n}.js" for n in range(1000)]
# Highwinds allows 100 URIs a minute; its emulator's window is shortened to 0.5 s, and the
# account's rate set below it (a token bucket must stay under a sliding window), so the burst
# takes seconds instead of ten minutes.
OVERRIDES = {"highwinds": ", rate: 100, burst: 100"}


def start(stack: ExitStack) -> dict[str, Emulator]:
    emulators = {}
    for case in _cases():
        emulator = case.emulator(None)
        if case.vendor == "highwinds":
            emulator.window = 0.5  # type: ignore[attr-defined]
        emulators[case.vendor] = stack.enter_context(serving(emulator))
    return emulators


def config(emulators: dict[str, Emulator]) -> Config:
    cdns = "\n".join(
        f"  {c.vendor}: {{{c.account(emulators[c.vendor], None)}{OVERRIDES.get(c.vendor, '')}}}" for c in _cases()
    )
    routes = "\n".join(f"    - {{cdn: {v}, hosts: [www.example.com]}}" for v in FIVE)
    return parse(f"cdns:\n{cdns}\nbuckets:\n  site:\n{routes}\n")


def minimum_calls(cfg: Config, vendor: str, urls: list[str]) -> int:
    """What the vendor's declared limits allow at best: items per call, and bytes per call."""
    cdn = cfg.cdns[vendor]
    calls = math.ceil(len(urls) / cdn.limits.items("url"))
    if cdn.limits.max_bytes is not None:
        calls = max(calls, math.ceil(sum(cdn.provider.item_bytes(u) for u in urls) / cdn.limits.max_bytes))
    return calls


def purge_calls(vendor: str, emulator: Emulator) -> int:
    """Distinct calls that carried purges (Highwinds also logs in and looks up its account once).

    Distinct, because on this loaded 2-core test bed a local connection is now and then reset
    and the call retried; a plan that packed badly would still show as more distinct calls.
    """
    purges = {(r.method, r.path, r.body) for r in emulator.requests}
    return sum(1 for _, path, _ in purges if not path.startswith(("/auth/", "/api/v1/users/")))


def test_each_vendor_gets_the_minimum_number_of_calls() -> None:
    with ExitStack() as stack:
        emulators = start(stack)
        cfg = config(emulators)
        executor = stack.enter_context(closing(Executor()))
        report = Pipeline(cfg, executor).run(_changes(), time.monotonic() + 60)
    assert report.ok, [o.detail for o in report.failures()][:3]
    urls = [f"https://www.example.com/{k}" for k in KEYS]
    received = {v: purge_calls(v, e) for v, e in emulators.items()}
    assert received == {v: minimum_calls(cfg, v, urls) for v in FIVE}
    assert all(e.throttled_count == 0 for e in emulators.values())


def test_a_throttled_and_failing_vendor_delays_only_itself() -> None:
    with ExitStack() as stack:
        emulators = start(stack)
        cloudflare = emulators["cloudflare"]
        cloudflare.faults.extend([Fault(status=429, headers={"Retry-After": "3"}), Fault(status=503)])
        executor = stack.enter_context(closing(Executor()))
        started = time.monotonic()
        report = Pipeline(config(emulators), executor).run(_changes()[:100], started + 60)
    assert report.ok
    finished = {v: max(r.at for r in e.requests) for v, e in emulators.items()}
    assert finished["cloudflare"] - started >= 3  # it waited as told ...
    # ... and nobody waited with it: every other vendor was done before Cloudflare's last call
    assert [v for v in FIVE if v != "cloudflare" and finished[v] >= finished["cloudflare"]] == [], finished


def _cases() -> list[Case]:
    return [c for c in CASES if c.vendor in FIVE]


def _changes() -> list[Change]:
    return [Change("site", key, "created", f"m{n}") for n, key in enumerate(KEYS)]
