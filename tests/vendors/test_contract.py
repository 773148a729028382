"""One contract, every registered vendor: declared capabilities work, limits hold, errors map, secrets stay hidden.

Each vendor runs against its strict emulator (CloudFront: the gate in front of moto), which
answers 400 to anything its spec or documented limits forbid; `serving` asserts none did.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from s3purge.config import Config
from s3purge.entry.cli.show import render
from s3purge.execute import Executor
from s3purge.model import Batch, Change, Outcome, TargetKind
from s3purge.plan import plan
from s3purge.providers import BUILTIN
from tests.conftest import serving
from tests.emulators import akamai, cloudflare, edgecast, fastly, highwinds, http_cache
from tests.emulators.base import Emulator, Fault
from tests.emulators.cloudfront import CloudFrontGate, distribution
from tests.vendors.helpers import one_cdn

HOST = "www.example.com"
VALUES: dict[TargetKind, str] = {
    "url": f"https://{HOST}/dir/My%20File+%C3%BC.html",
    "prefix": f"https://{HOST}/dir/",
    "tag": "product-42",
    "everything": f"https://{HOST}/",
}


@dataclass
class Case:
    vendor: str
    emulator: Callable[[Any], Emulator]
    """Makes the emulator; gets the moto server for vendors that need it."""
    account: Callable[[Emulator, Any], str]
    secrets: tuple[str, ...] = ()
    needs_aws: bool = False
    reauth_on_401: bool = False
    """A 401 means its short-lived token expired: log in again and retry (Highwinds' OAuth)."""


CASES = [
    Case(
        "http",
        lambda aws: http_cache.HttpCacheEmulator(),
        lambda e, aws: (
            f'vendor: http, endpoints: ["{e.url}"], headers: {{{http_cache.TOKEN_HEADER}: {http_cache.TOKEN}}}'
        ),
        (http_cache.TOKEN,),
    ),
    Case(
        "akamai",
        lambda aws: akamai.AkamaiEmulator(),
        lambda e, aws: (
            f'vendor: akamai, api_base: "{e.url}", cp_codes: [12345], client_token: {akamai.CLIENT_TOKEN}, '
            f"client_secret: {akamai.CLIENT_SECRET}, access_token: {akamai.ACCESS_TOKEN}"
        ),
        (akamai.CLIENT_TOKEN, akamai.CLIENT_SECRET, akamai.ACCESS_TOKEN),
    ),
    Case(
        "cloudflare",
        lambda aws: cloudflare.CloudflareEmulator(),
        lambda e, aws: (
            f'vendor: cloudflare, api_base: "{e.url}/client/v4", zone_id: {cloudflare.ZONE_ID}, '
            f"api_token: {cloudflare.API_TOKEN}"
        ),
        (cloudflare.API_TOKEN,),
    ),
    Case(
        "cloudfront",
        lambda aws: CloudFrontGate(aws.url),
        lambda e, aws: (
            f'vendor: cloudfront, api_base: "{e.url}", distribution_ids: [{distribution(aws.boto.cloudfront)}]'
        ),
        needs_aws=True,
    ),
    Case(
        "edgecast",
        lambda aws: edgecast.EdgecastEmulator(),
        lambda e, aws: f'vendor: edgecast, api_base: "{e.url}", account: "0001", token: {edgecast.TOKEN}',
        (edgecast.TOKEN,),
    ),
    Case(
        "fastly",
        lambda aws: fastly.FastlyEmulator(),
        lambda e, aws: (
            f'vendor: fastly, api_base: "{e.url}", api_token: {fastly.TOKEN}, service_id: SU1Z0isxPaozGVKXdv0eY'
        ),
        (fastly.TOKEN,),
    ),
    Case(
        "highwinds",
        lambda aws: highwinds.HighwindsEmulator(),
        lambda e, aws: f'vendor: highwinds, api_base: "{e.url}", username: purger, password: {highwinds.PASSWORD}',
        (highwinds.PASSWORD,),
        reauth_on_401=True,
    ),
]


def test_every_builtin_vendor_has_a_contract_case() -> None:
    assert sorted(c.vendor for c in CASES) == sorted(BUILTIN)


class Aws:
    """The moto server and boto clients, for the vendors that live on AWS."""

    def __init__(self, server: Any, boto: Any) -> None:
        self.url, self.boto = server.url, boto


@pytest.fixture(params=CASES, ids=lambda c: c.vendor)
def case(request: pytest.FixtureRequest) -> Case:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def aws_if_needed(case: Case, request: pytest.FixtureRequest) -> Aws | None:
    if not case.needs_aws:
        return None
    return Aws(request.getfixturevalue("aws"), request.getfixturevalue("boto"))


@contextmanager
def vendor(case: Case, aws: Aws | None, route: str = f"hosts: [{HOST}]") -> Iterator[tuple[Emulator, Config]]:
    with serving(case.emulator(aws)) as emulator:
        yield emulator, one_cdn("x", case.account(emulator, aws), route)


def send(config: Config, executor: Executor, *batches: Batch) -> list[Outcome]:
    return executor.run(list(batches), config.cdns, time.monotonic() + 20)


def batch(kind: TargetKind, action: str, *values: str) -> Batch:
    return Batch("x", action, kind, values or (VALUES[kind],), frozenset({"m"}))  # type: ignore[arg-type]


def test_every_declared_capability_is_accepted(case: Case, aws_if_needed: Aws | None, executor: Executor) -> None:
    with vendor(case, aws_if_needed) as (emulator, config):
        supports = config.cdns["x"].provider.supports
        pairs = [(kind, action) for kind, actions in supports.items() for action in sorted(actions)]
        outcomes = send(config, executor, *(batch(kind, action) for kind, action in pairs))
    assert pairs, "a vendor must support something"
    assert [(o.batch.kind, o.batch.action, o.ok, o.detail if not o.ok else "") for o in outcomes] == [
        (kind, action, True, "") for kind, action in pairs
    ]
    assert emulator.requests  # and `serving` checked every one against the vendor's rules


def test_a_burst_is_packed_within_the_declared_limits(
    case: Case, aws_if_needed: Aws | None, executor: Executor
) -> None:
    with vendor(case, aws_if_needed) as (_, config):
        cdn = config.cdns["x"]
        keys = [f"dir-{n % 7}/{'long-name-' * 8}{n}.html" for n in range(_burst_size(cdn.limits))]
        planned = plan([Change("site", k, "created", f"m{n}") for n, k in enumerate(keys)], config)
        for each in planned.batches:
            assert len(each.values) <= cdn.limits.items(each.kind)
            if cdn.limits.max_bytes is not None:
                assert sum(cdn.provider.item_bytes(v) for v in each.values) <= cdn.limits.max_bytes
        outcomes = send(config, executor, *planned.batches)
    assert all(o.ok for o in outcomes), [o.detail for o in outcomes if not o.ok]
    assert sum(len(b.values) for b in planned.batches) == len({u for b in planned.batches for u in b.values})


def _burst_size(limits: Any) -> int:
    """Enough to need several calls, but within the vendor's rate so the test takes seconds."""
    n = 3 * min(limits.items("url"), 100) + 1
    if limits.rate is not None and limits.rate.unit == "item":
        n = min(n, int(limits.rate.burst) // 2)
    return n


@pytest.mark.parametrize(("status", "retried"), [(503, True), (500, True), (403, False), (401, False)])
def test_errors_map_to_retryable_or_rejected(
    case: Case, aws_if_needed: Aws | None, executor: Executor, status: int, retried: bool
) -> None:
    with vendor(case, aws_if_needed) as (emulator, config):
        assert send(config, executor, batch("url", "purge"))[0].ok  # logged in, account found: warm
        before = len(emulator.requests)
        emulator.faults.append(Fault(status=status, body={"error": "injected"}))
        (outcome,) = send(config, executor, batch("url", "purge"))
    if status == 401 and case.reauth_on_401:  # the refused call, a new token, the call again
        assert outcome.ok and [r.path for r in emulator.requests[before:]][1] == "/auth/token"
    elif retried:
        assert outcome.ok and len(emulator.requests) - before == 2
    else:
        assert not outcome.ok and not outcome.retryable and len(emulator.requests) - before == 1
        assert f"HTTP {status}" in outcome.detail


def test_no_secret_in_reprs_logs_errors_or_dry_runs(
    case: Case, aws_if_needed: Aws | None, executor: Executor, logs: pytest.LogCaptureFixture
) -> None:
    with vendor(case, aws_if_needed) as (emulator, config):
        provider = config.cdns["x"].provider
        echo = {"error": "bad credentials: " + " ".join(case.secrets)}  # a careless vendor echoes them
        emulator.faults.extend([Fault(status=403, body=echo)] * 3)
        outcomes = send(config, executor, batch("url", "purge"))
        shown = [logs.text, repr(config), repr(provider.options), str(outcomes), repr(outcomes)]
        shown += [render(r, provider) for r in provider.requests(batch("url", "purge"))]
    assert not outcomes[0].ok
    # the case lists every secret its config holds: none for CloudFront (AWS credentials stay in boto3)
    assert sorted(s.reveal() for s in provider.options.secrets()) == sorted(case.secrets)
    for secret in case.secrets:
        assert all(secret not in text for text in shown), secret
