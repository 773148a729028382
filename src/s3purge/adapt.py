"""Limits learned from the vendor's refusals, for the life of the process.

Vendors' real limits can sit below the documented ones (Cloudflare zones refusing more than
30 URLs a call where the docs say 100; an Edgecast account allowing 5 purges in flight, not
50). Two refusals teach s3purge the account's real figure instead of failing or retrying
blindly:

- `TooLarge` (a 400 or 413 saying the call carries too much): the batch is sent again as two
  halves (a tag or URL is never split) and later batches of that CDN and kind are cut to the
  learned size before they are sent;
- `Crowded` (a refusal saying too many calls are in flight): the account's concurrency drops
  to one below what was in flight, and rises by one again after `RAISE_AFTER` x limit calls
  pass without such a refusal.

Each new low is logged once. Nothing is lost: halves are sent, crowded calls are retried.
"""

from __future__ import annotations

import logging
import threading
import time

from s3purge.model import Batch

log = logging.getLogger("s3purge")

RAISE_AFTER = 8
"""Calls passed, per unit of the current limit, before the limit is raised by one."""


class ItemCaps:
    """Learned items-per-call caps, per (CDN, kind)."""

    def __init__(self) -> None:
        self._caps: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def split(self, batch: Batch) -> list[Batch]:
        """The batch cut into parts no larger than the learned cap (itself when none is known)."""
        cap = self._caps.get((batch.cdn, batch.kind))
        if cap is None or len(batch.values) <= cap:
            return [batch]
        return [_part(batch, batch.values[i : i + cap]) for i in range(0, len(batch.values), cap)]

    def halve(self, batch: Batch) -> list[Batch]:
        """The vendor said `batch` is too large: learn half its size, return its two halves."""
        half = (len(batch.values) + 1) // 2
        with self._lock:
            key = (batch.cdn, batch.kind)
            if half < self._caps.get(key, len(batch.values)):
                self._caps[key] = half
                log.warning(
                    "batch size lowered",
                    extra={"cdn": batch.cdn, "kind": batch.kind, "items": half, "refused": len(batch.values)},
                )
        return [_part(batch, batch.values[:half]), _part(batch, batch.values[half:])]


def _part(batch: Batch, values: tuple[str, ...]) -> Batch:
    return Batch(batch.cdn, batch.action, batch.kind, values, batch.sources)


class Crowding:
    """At most `limit` calls of one account in flight; lowered on `crowded()`, raised slowly."""

    def __init__(self, cdn: str, ceiling: int) -> None:
        self.cdn, self.ceiling, self.limit = cdn, ceiling, ceiling
        self.lowest = ceiling
        self.in_flight = 0
        self._passed = 0
        self._ready = threading.Condition()

    def enter(self, deadline: float) -> bool:
        """Wait for room; False (taking none) if there is none before `deadline`."""
        with self._ready:
            while self.in_flight >= self.limit:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._ready.wait(timeout=left)
            self.in_flight += 1
            return True

    def leave(self, *, passed: bool) -> None:
        with self._ready:
            self.in_flight -= 1
            if passed:
                self._passed += 1
                if self.limit < self.ceiling and self._passed >= self.limit * RAISE_AFTER:
                    self.limit, self._passed = self.limit + 1, 0
            self._ready.notify_all()

    def crowded(self) -> None:
        """The vendor refused a call of ours (still counted in flight) as one too many."""
        with self._ready:
            lower = max(1, min(self.limit, self.in_flight) - 1)
            if lower < self.limit:
                self.limit, self._passed = lower, 0
            if lower < self.lowest:
                self.lowest = lower
                log.warning("concurrency lowered", extra={"cdn": self.cdn, "concurrency": lower})
