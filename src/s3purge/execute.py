"""Batches -> vendor calls -> outcomes: concurrent, rate-limited, retried, within a deadline.

Each CDN has its own thread pool (its declared concurrency) and its own rate limiter,
so a slow or failing CDN never holds up another. Retries go through tenacity:
exponential backoff with full jitter, or the vendor's Retry-After when it gives one
(retries.py). One connection pool per origin (transport.py).
Nothing starts after the deadline, and no call outlives it (deadline.py bounds each
call's total time); what could not finish is reported as failed.
Before a CDN's first call takes its place in the rate limit, its provider's `prepare` runs
once (a login), so that round trip is not counted inside the vendor's window; if it fails,
that CDN's batches fail with its error, other CDNs' go on.
Whatever a provider raises, building, sending or judging, fails that batch alone:
permanently when retrying cannot help (the request could not be built or was refused at
the request boundary, the vendor rejected it), else retryably.
A vendor's refusal that a call is too large, or that too many are in flight, teaches the
executor that account's real limits (adapt.py). Pools, limiters and the HTTP client outlive
a call, so warm Lambda invocations reuse connections.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import httpx
from tenacity import Retrying, wait_random_exponential
from tenacity.wait import wait_base

from s3purge.adapt import Crowding, ItemCaps
from s3purge.config import Cdn
from s3purge.deadline import within
from s3purge.errors import Crowded, PurgeError, Retryable, TooLarge
from s3purge.model import Batch, Outcome
from s3purge.pacing import Limiter, limiter, sharing_instances
from s3purge.retries import retrying
from s3purge.transport import ByOrigin

log = logging.getLogger("s3purge")


@dataclass(frozen=True, slots=True)
class _Call:
    cdn: Cdn
    batch: Batch
    request: httpx.Request


class Executor:
    """Sends batches; keep one per process so pools and connections are reused."""

    def __init__(self, client: httpx.Client | None = None, backoff: wait_base | None = None):
        self._client = client
        self.backoff = backoff or wait_random_exponential(multiplier=0.25, max=8)
        self._pools: dict[str, ThreadPoolExecutor] = {}
        self._limiters: dict[str, Limiter] = {}
        self._kind_limiters: dict[tuple[str, str], Limiter] = {}
        self._crowds: dict[str, Crowding] = {}
        self.caps = ItemCaps()
        self._lock = threading.Lock()

    def run(self, batches: list[Batch], cdns: dict[str, Cdn], deadline: float) -> list[Outcome]:
        """Every batch's outcome, in order. `deadline` is a time.monotonic() value."""
        pending: list[tuple[Batch, list[Future[str]] | Outcome]] = []
        ready: dict[str, Future[None]] = {}  # per CDN: its provider's `prepare`, done before any call is paced
        for batch in batches:
            cdn = cdns[batch.cdn]
            try:  # cut to a learned size, each part checked at the request boundary
                calls = [_Call(cdn, part, r) for part in self.caps.split(batch) for r in cdn.provider.build(part)]
            except PurgeError as error:
                pending.append((batch, _failed(batch, error, cdn)))
                continue
            pool = self._pool(cdn)
            if cdn.name not in ready:  # first in the CDN's queue, so its other threads only wait for it
                ready[cdn.name] = pool.submit(self._prepare, cdn, deadline)
            pending.append((batch, [pool.submit(self._send_ready, ready[cdn.name], call, deadline) for call in calls]))
        cutoff = deadline + GRACE
        return [_outcome(batch, work, cutoff) for batch, work in pending]

    @property
    def client(self) -> httpx.Client:
        """Made at the first call, not at cold start; see `ByOrigin` for why it is cheap even then."""
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(http2=False, follow_redirects=False, transport=ByOrigin())
            return self._client

    def close(self) -> None:
        for pool in self._pools.values():
            pool.shutdown(wait=True)
        if self._client is not None:
            self._client.close()

    def _pool(self, cdn: Cdn) -> ThreadPoolExecutor:
        with self._lock:
            if cdn.name not in self._pools:
                # A share of the vendor's concurrency too, as of its rate (pacing.INSTANCES_ENV).
                concurrency = max(1, cdn.limits.concurrency // sharing_instances())
                self._pools[cdn.name] = ThreadPoolExecutor(concurrency, thread_name_prefix=f"s3purge-{cdn.name}")
                self._crowds[cdn.name] = Crowding(cdn.name, concurrency)
                if cdn.limits.rate is not None:
                    self._limiters[cdn.name] = limiter(cdn.limits.rate)
                for kind, rate in cdn.limits.kind_rates.items():
                    self._kind_limiters[(cdn.name, kind)] = limiter(rate)
            return self._pools[cdn.name]

    def _prepare(self, cdn: Cdn, deadline: float) -> None:
        """The provider's `prepare`, retried like a call, each of its requests bounded like one."""
        try:
            for attempt in self._retrying(cdn, deadline):
                with attempt:
                    cdn.provider.prepare(lambda request: self._exchange(cdn, request, deadline))
        except PurgeError as error:
            error.args = (_scrub(str(error), cdn),)
            log.error("cdn not ready", extra={"cdn": cdn.name, "reason": str(error)})
            raise

    def _exchange(self, cdn: Cdn, request: httpx.Request, deadline: float) -> httpx.Response:
        """One request of a provider's `prepare`: within the call timeout and the deadline, not paced."""
        timeout = min(cdn.limits.timeout, deadline - time.monotonic())
        if timeout <= 0:
            raise Retryable("deadline reached before the account was ready")
        request.extensions["timeout"] = httpx.Timeout(timeout).as_dict()
        try:
            with within(time.monotonic() + timeout):
                return self.client.send(request)
        except httpx.TimeoutException:
            raise Retryable(f"no complete answer within {timeout:.1f}s") from None
        except httpx.TransportError as transport:
            raise Retryable(f"connection failed ({type(transport).__name__})") from None

    def _send_ready(self, ready: Future[None], call: _Call, deadline: float) -> str:
        """`_send` once the CDN is prepared; its failure to prepare is this call's failure."""
        try:
            ready.result(timeout=max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            raise Retryable("deadline reached while the account was being prepared") from None
        return self._send(call, deadline)

    def _send(self, call: _Call, deadline: float) -> str:
        try:
            return self._retried(call, deadline)
        except TooLarge:
            if len(call.batch.values) < 2:
                raise
        details = []  # sent again as two halves, in this thread (nothing is lost, no pool deadlock)
        for half in self.caps.halve(call.batch):
            again = _same_place(call.cdn.provider.build(half), call.request)
            details += [self._send(_Call(call.cdn, half, r), deadline) for r in again]
        return "; ".join(d for d in details if d)

    def _retrying(self, cdn: Cdn, deadline: float) -> Retrying:
        return retrying(cdn.max_attempts, deadline, self.backoff)

    def _retried(self, call: _Call, deadline: float) -> str:
        for attempt in self._retrying(call.cdn, deadline):
            with attempt:
                return self._attempt(call, attempt.retry_state.attempt_number, deadline)
        raise AssertionError("unreachable: tenacity either returns or reraises")

    def _paces(self, call: _Call) -> list[tuple[Limiter, float]]:
        """The limiters this call waits for (the account's, its kind's), each with the call's cost."""
        found = []
        for pace, rate in (
            (self._limiters.get(call.cdn.name), call.cdn.limits.rate),
            (
                self._kind_limiters.get((call.cdn.name, call.batch.kind)),
                call.cdn.limits.kind_rates.get(call.batch.kind),
            ),
        ):
            if pace is not None and rate is not None:
                found.append((pace, float(len(call.batch.values) if rate.unit == "item" else 1)))
        return found

    def _attempt(self, call: _Call, number: int, deadline: float) -> str:
        paces = self._paces(call)
        if not all(pace.acquire(cost, deadline) for pace, cost in paces):
            raise Retryable("deadline reached while waiting for the vendor's rate limit")
        started = time.monotonic()
        timeout = min(call.cdn.limits.timeout, deadline - started)
        if timeout <= 0:
            raise Retryable("deadline reached before the call could start")
        call.request.extensions["timeout"] = httpx.Timeout(timeout).as_dict()
        crowd = self._crowds[call.cdn.name]
        if not crowd.enter(started + timeout):
            raise Retryable("deadline reached while waiting for room among the calls in flight")
        response: httpx.Response | None = None
        passed = False
        try:
            with within(started + timeout):  # the call's total time, however slowly the vendor answers
                response = self.client.send(call.request, auth=call.cdn.provider.auth)
            detail = call.cdn.provider.judge(response)
        except httpx.TimeoutException:
            error: PurgeError = Retryable(f"no complete answer within {timeout:.1f}s")
        except httpx.TransportError as transport:
            error = Retryable(f"connection failed ({type(transport).__name__})")
        except Crowded as judged:
            crowd.crowded()
            error = judged
        except PurgeError as judged:
            error = judged
        except Exception as unexpected:  # an answer the vendor module did not expect
            log.exception("provider error", extra={"cdn": call.cdn.name})
            error = Retryable(f"could not read the vendor's answer ({type(unexpected).__name__})")
        else:
            passed = True
            _log_call(call, number, started, response, result="accepted", detail=detail)
            return detail
        finally:
            crowd.leave(passed=passed)
        error.args = (_scrub(str(error), call.cdn),)  # some vendors echo credentials in errors
        _log_call(call, number, started, response, result="failed", detail=str(error))
        if paces and isinstance(error, Retryable) and error.retry_after is not None:
            for pace, cost in paces:  # which limit refused is not said: hold back every one
                pace.refused(cost, error.retry_after)
            error.retry_after = 0.0  # the limiters now hold the retry back: don't wait twice
        raise error


def _scrub(text: str, cdn: Cdn) -> str:
    for secret in cdn.provider.options.secrets():
        if secret.resolved and secret.reveal():
            text = text.replace(secret.reveal(), "***")
    return text


def _failed(batch: Batch, error: PurgeError, cdn: Cdn) -> Outcome:
    detail = _scrub(str(error), cdn)
    if not error.retryable:
        log.error("request not sent", extra={"cdn": batch.cdn, "kind": batch.kind, "reason": detail})
    return Outcome(batch, False, detail, error.retryable)


GRACE = 1.0
"""Seconds past the deadline to wait for calls that are ending (each is bounded by deadline.py)."""


def _outcome(batch: Batch, work: list[Future[str]] | Outcome, cutoff: float) -> Outcome:
    if isinstance(work, Outcome):
        return work
    details = []
    for future in work:
        try:
            details.append(future.result(timeout=max(0.0, cutoff - time.monotonic())))
        except TimeoutError:
            return Outcome(batch, False, "deadline reached while the vendor was still answering", True)
        except PurgeError as error:  # Rejected ones too: not retryable
            return Outcome(batch, False, str(error), error.retryable)
        except Exception as error:  # a bug must fail this batch only, never the run
            log.error("provider error", extra={"cdn": batch.cdn, "error": type(error).__name__}, exc_info=error)
            return Outcome(batch, False, f"internal error: {type(error).__name__}", True)
    return Outcome(batch, True, "; ".join(d for d in details if d))


def _log_call(
    call: _Call,
    attempt: int,
    started: float,
    response: httpx.Response | None,
    *,
    result: str,
    detail: str,
) -> None:
    log.info(
        "vendor call",
        extra={
            "cdn": call.cdn.name,
            "vendor": call.cdn.provider.vendor,
            "action": call.batch.action,
            "kind": call.batch.kind,
            "items": len(call.batch.values),
            "method": call.request.method,
            "status": response.status_code if response is not None else None,
            "result": result,
            "detail": detail,
            "latency_ms": round((time.monotonic() - started) * 1000, 1),
            "attempt": attempt,
        },
    )


def _same_place(requests: list[httpx.Request], refused: httpx.Request) -> list[httpx.Request]:
    """The half's requests to where the refused one went: the batch's other requests (another
    endpoint, another CloudFront distribution) were taken whole, and sending them the halves too
    would purge, and on CloudFront pay for, every path twice. If none goes there, all of them."""
    same = [r for r in requests if r.method == refused.method and r.url == refused.url]
    return same or requests
