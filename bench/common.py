"""What every benchmark shares: result rows, emulators in a child process, configs, keys.

Emulators run in a separate process (`Host`), as a vendor's API runs on another machine:
the client under test and the emulators do not share one GIL, so a slow emulator thread
cannot pass for a slow client, and the other way round. Every answer the emulators give
is tapped (time, status, items) so the parent can compute rates and 429 shares.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import import_module
from multiprocessing.connection import Connection
from typing import Any

from tests.emulators.base import Emulator, Invalid, Recorded, Reply

# --- result rows ------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the results table: a ratio, its target and the verdict."""

    bench: str
    case: str
    measured: str
    ratio: float | None
    target: str
    ok: bool | None
    """None: reported, no target."""
    key: str = ""
    """Names the explanation shown in RESULTS.md when the target is missed."""

    @property
    def verdict(self) -> str:
        return "-" if self.ok is None else ("met" if self.ok else "MISSED")

    def cells(self) -> list[str]:
        ratio = "-" if self.ratio is None else f"{self.ratio:.2f}"
        return [self.bench, self.case, self.measured, ratio, self.target, self.verdict]


@dataclass
class Section:
    """What one benchmark returns: its rows, data for its plot, and notes for RESULTS.md."""

    rows: list[Row] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def at_most(ratio: float, limit: float) -> bool:
    return round(ratio, 2) <= limit


def at_least(ratio: float, limit: float) -> bool:
    return round(ratio, 2) >= limit


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def p95(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


# --- emulators in a child process -----------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """An emulator to start in the host: "module:Class", its keyword arguments, how to count items."""

    factory: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    items: str = "one"


@dataclass(frozen=True)
class Answer:
    at: float
    """time.monotonic() in the host (CLOCK_MONOTONIC is system-wide on Linux)."""
    received: float
    """When the request arrived (before the emulator's latency)."""
    path: str
    status: int
    items: int


@dataclass
class Stats:
    answers: list[Answer]
    violations: list[str]
    max_in_flight: int

    def purges(self, skip: tuple[str, ...] = ()) -> list[Answer]:
        """Answers to purge calls (not to logins and look-ups under `skip`)."""
        return [a for a in self.answers if a.path not in skip]


def _items(kind: str, request: Recorded) -> int:
    if kind == "one":
        return 1
    try:
        body = request.json()
    except ValueError:
        return 0
    if kind == "akamai":
        return len(body.get("objects", ()))
    if kind == "cloudflare":
        return sum(len(body.get(name, ())) for name in ("files", "tags", "prefixes"))
    if kind == "highwinds":
        return len(body.get("list", ())) if isinstance(body, dict) else 0
    raise ValueError(kind)


def _tapped(cls: type[Emulator], kind: str) -> type[Emulator]:
    """The emulator class, recording every answer it gives (the rate limiter's 429s included)."""

    class Tapped(cls):  # type: ignore[valid-type, misc]
        def answer(self, request: Recorded) -> Reply:
            reply: Reply = super().answer(request)
            with self._lock:
                self.tap.append(Answer(time.monotonic(), request.at, request.path, reply.status, _items(kind, request)))
            return reply

        def cost(self, request: Recorded) -> float:
            self.current = request  # for `throttled`, which is not given the request
            cost: float = super().cost(request)
            return cost

        def throttled(self, wait: float) -> Reply:
            reply: Reply = super().throttled(wait)
            request = self.current
            with self._lock:
                self.tap.append(Answer(time.monotonic(), request.at, request.path, reply.status, 0))
            return reply

    return Tapped


def _host(specs: list[Spec], conn: Connection) -> None:
    from tests.emulators import base

    # The emulator base writes headers and body in two sends: with Nagle's algorithm on, the
    # body waits for the client's delayed ACK, 40 ms per answer that no vendor adds.
    base._Handler.disable_nagle_algorithm = True
    emulators = []
    for spec in specs:
        module, _, name = spec.factory.partition(":")
        emulator = _tapped(getattr(import_module(module), name), spec.items)(**spec.kwargs)
        emulator.tap = []  # type: ignore[attr-defined]
        emulators.append(emulator.__enter__())
    conn.send([e.url for e in emulators])
    while True:
        command, index = conn.recv()
        if command == "stop":
            break
        emulator = emulators[index]
        with emulator._lock:
            tap: list[Answer] = emulator.tap
            conn.send(Stats(list(tap), list(emulator.violations), emulator.max_in_flight))
    for emulator in emulators:
        emulator.close()
    conn.send("stopped")


class Host:
    """Emulators serving from a child process for the duration of a `with` block."""

    def __init__(self, specs: list[Spec]) -> None:
        context = multiprocessing.get_context("spawn")  # no fork of a threaded parent
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_host, args=(specs, child), daemon=True)
        self.urls: list[str] = []

    def __enter__(self) -> Host:
        self._process.start()
        if not self._conn.poll(60):
            raise RuntimeError("emulator host did not start")
        self.urls = self._conn.recv()
        return self

    def stats(self, index: int) -> Stats:
        self._conn.send(("stats", index))
        stats: Stats = self._conn.recv()
        return stats

    def __exit__(self, *exc: object) -> None:
        self._conn.send(("stop", -1))
        self._conn.poll(30)
        self._process.join(30)


class PurgeCache(Emulator):
    """A self-hosted cache's purge endpoint (Varnish VCL convention): PURGE with the public Host."""

    def answer(self, request: Recorded) -> Reply:
        if request.method != "PURGE":
            raise Invalid(f"expected PURGE, got {request.method}")
        if "." not in request.headers.get("host", ""):
            raise Invalid("PURGE must carry the public Host header")
        return Reply(200)


# --- configs, keys, events -------------------------------------------------------------------

HOSTS = ("www.example.com", "static.example.com")
IMG_HOST = "img.example.com"
ZONE = "023e105f4ecef8ad9ca31a8372d0c353"
"""Credentials matching the emulators' defaults (tests/emulators)."""
CF_TOKEN = "cf-token-abc123"
AKAMAI = (
    'client_token: akab-client-token, client_secret: "c2VjcmV0LWNsaWVudC1zZWNyZXQ=", access_token: akab-access-token'
)
FASTLY = "api_token: fastly-test-token, service_id: SU1Z0isxPaozGVKXdv0eY"
EDGECAST = 'account: "0001", token: edgecast-test-token'
HIGHWINDS = "username: purger, password: hw-test-password"

EMULATORS = {
    "akamai": ("tests.emulators.akamai:AkamaiEmulator", "akamai"),
    "cloudflare": ("tests.emulators.cloudflare:CloudflareEmulator", "cloudflare"),
    "fastly": ("tests.emulators.fastly:FastlyEmulator", "one"),
    "edgecast": ("tests.emulators.edgecast:EdgecastEmulator", "one"),
    "highwinds": ("tests.emulators.highwinds:HighwindsEmulator", "highwinds"),
    "http": ("bench.common:PurgeCache", "one"),
}
HIGHWINDS_AUTH = ("/auth/token", "/api/v1/users/me")


def spec(vendor: str, **kwargs: Any) -> Spec:
    factory, items = EMULATORS[vendor]
    return Spec(factory, kwargs, items)


def account(vendor: str, url: str, extra: str = "") -> str:
    """The YAML flow mapping of one CDN account of `vendor` talking to the emulator at `url`."""
    options = {
        "akamai": f'api_base: "{url}", {AKAMAI}',
        "cloudflare": f'api_base: "{url}/client/v4", zone_id: "{ZONE}", api_token: {CF_TOKEN}',
        "fastly": f'api_base: "{url}", {FASTLY}',
        "edgecast": f'api_base: "{url}", {EDGECAST}',
        "highwinds": f'api_base: "{url}", {HIGHWINDS}',
        "http": f'endpoints: ["{url}"]',
        "cloudfront": f'api_base: "{url}"',  # extra: distribution_ids
    }[vendor]
    return "{" + f"vendor: {vendor}, {options}{', ' + extra if extra else ''}" + "}"


def s3_body(key: str, bucket: str = "site") -> str:
    """An S3 notification as an SQS message body (one record)."""
    from tests.fixtures import s3_event

    return json.dumps(s3_event(key, bucket=bucket))


@dataclass
class Context:
    """The part of Lambda's context object the handler uses."""

    remaining_ms: int = 900_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started
