"""When a failed vendor call is tried again: tenacity's policy for the executor.

A call is retried only for a Retryable error, at most the CDN's `max_attempts` times, and
never once the wait would pass the deadline. It waits the vendor's Retry-After when the
error carries one, else exponential backoff with full jitter.
"""

from __future__ import annotations

import time

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from s3purge.errors import Retryable


def retrying(max_attempts: int, deadline: float, backoff: wait_base) -> Retrying:
    """The policy for one call (or one account's `prepare`); `deadline` is a time.monotonic() value."""
    return Retrying(
        retry=retry_if_exception_type(Retryable),
        wait=_WaitRetryAfter(backoff),
        stop=stop_after_attempt(max_attempts) | _StopAtDeadline(deadline),
        reraise=True,
    )


class _StopAtDeadline(stop_base):
    def __init__(self, deadline: float) -> None:
        self.deadline = deadline

    def __call__(self, retry_state: RetryCallState) -> bool:
        return time.monotonic() + (retry_state.upcoming_sleep or 0) >= self.deadline


class _WaitRetryAfter(wait_base):
    """The vendor's Retry-After when given, else exponential backoff with full jitter."""

    def __init__(self, fallback: wait_base) -> None:
        self.fallback = fallback

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, Retryable) and error.retry_after is not None:
            return error.retry_after
        return self.fallback(retry_state)
