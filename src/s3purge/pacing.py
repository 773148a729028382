"""Client-side pacing to a vendor's declared rate: a token bucket, or a sliding window.

Both are shared by every thread of one CDN, hand out reservations (a caller learns when
its turn comes and waits for it), never start work past the deadline, and take a
vendor's "retry after" for everyone. They pace a little under the declared limit
(HEADROOM): the vendor counts a call when it arrives, the client when it sends.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque

from s3purge.capabilities import Rate

HEADROOM = 0.97
INSTANCES_ENV = "S3PURGE_INSTANCES"
"""How many processes share each vendor account (deploy sets it on the function; set it on each
worker replica): every limiter paces at its 1/N share, so N processes stay within the account's limit."""


class TokenBucket:
    """`burst` tokens, refilled at `per_second`: the usual API rate limit."""

    def __init__(self, rate: Rate) -> None:
        self.rate = Rate(rate.per_second * HEADROOM, rate.burst * HEADROOM, rate.unit)
        self._tokens = self.rate.burst
        self._stamp = time.monotonic()
        self._lock = threading.Lock()

    def acquire(self, cost: float, deadline: float) -> bool:
        """Wait until `cost` tokens are ours; False (taking nothing) if that is past deadline."""
        with self._lock:
            now = self._refill()
            wait = max(0.0, (cost - self._tokens) / self.rate.per_second)
            if now + wait > deadline:
                return False
            self._tokens -= cost
        _wait(wait)
        return True

    def refused(self, cost: float, seconds: float) -> None:
        """The vendor refused a call: it did not count it, so its tokens come back, but every
        caller of this CDN, the retry included, waits `seconds`."""
        with self._lock:
            self._refill()
            self._tokens = min(self._tokens + cost, cost - seconds * self.rate.per_second)

    def _refill(self) -> float:
        now = time.monotonic()
        self._tokens = min(self.rate.burst, self._tokens + (now - self._stamp) * self.rate.per_second)
        self._stamp = now
        return now


class SlidingWindow:
    """At most `burst` units in any `window` seconds (e.g. StrikeTracker's 100 URIs a minute).

    A token bucket would allow `burst` at once and then more before the window has passed,
    which a sliding-window vendor refuses; this keeps a log of what was sent and when.
    """

    def __init__(self, rate: Rate) -> None:
        assert rate.window is not None
        self.limit = rate.burst
        self.window = rate.window / HEADROOM
        self._sent: deque[tuple[float, float]] = deque()  # (start, cost), starts in order
        self._lock = threading.Lock()

    def acquire(self, cost: float, deadline: float) -> bool:
        now = time.monotonic()
        start = self.reserve(now, cost, deadline)
        if start is None:
            return False
        _wait(start - now)
        return True

    def reserve(self, now: float, cost: float, deadline: float = float("inf")) -> float | None:
        """When a call of `cost` may start (recorded as sent then), or None if after deadline."""
        with self._lock:
            while self._sent and self._sent[0][0] <= now - self.window:
                self._sent.popleft()
            start = self._earliest(max(now, self._sent[-1][0] if self._sent else now), cost)
            if start > deadline:
                return None
            self._sent.append((start, cost))
            return start

    def refused(self, cost: float, seconds: float, now: float | None = None) -> None:
        """Forget the refused call; hold everyone until the vendor's window has room again."""
        with self._lock:
            now = time.monotonic() if now is None else now
            for entry in reversed(self._sent):
                if entry[1] == cost and entry[0] <= now:
                    self._sent.remove(entry)
                    break
            self._sent.append((now + seconds - self.window, self.limit))  # a full window ending then
            self._sent = deque(sorted(self._sent))

    def _earliest(self, start: float, cost: float) -> float:
        """The first moment from `start` on when `cost` more fits into the window."""
        while True:
            edge = start - self.window + 1e-9  # what started a window ago has left (float-safe)
            inside = [(t, c) for t, c in self._sent if t > edge]
            if sum(c for _, c in inside) + cost <= self.limit or not inside:
                return start
            start = inside[0][0] + self.window  # wait for the oldest to leave the window


Limiter = TokenBucket | SlidingWindow


def limiter(rate: Rate, instances: int | None = None) -> Limiter:
    """A limiter pacing this process at its share of `rate` (see INSTANCES_ENV)."""
    mine = share(rate, instances or sharing_instances())
    return SlidingWindow(mine) if mine.window is not None else TokenBucket(mine)


def sharing_instances() -> int:
    """The number of processes sharing each vendor account's limits, from INSTANCES_ENV (default 1)."""
    try:
        return max(1, int(os.environ.get(INSTANCES_ENV, "1")))
    except ValueError:
        return 1


def share(rate: Rate, instances: int) -> Rate:
    """One of `instances` equal shares of a vendor limit: 1/N of the rate and of the burst (or window)."""
    if instances == 1:
        return rate
    return Rate(rate.per_second / instances, rate.burst / instances, rate.unit, rate.window)


def _wait(seconds: float) -> None:
    if seconds > 0:
        time.sleep(seconds)  # pacing to the vendor's rate, not synchronisation
