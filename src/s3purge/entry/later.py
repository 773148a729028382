"""The delayed second purge of shielded CDNs, in-process (the worker; Lambda uses SQS DelaySeconds).

A shield can hand the edge the old copy after the edge was purged and before the shield
was (Fastly documents this race): purging the edge again a little later fixes it. An
account's `second_purge: SECONDS` asks for that. The worker keeps the due purges in a
heap served by one thread; on stop, what is still waiting is purged at once, so a clean
shutdown drops none (a crash drops them: the first purge was accepted, and verification,
where on, is what proves freshness).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

from s3purge.model import Change

log = logging.getLogger("s3purge")

Run = Callable[[list[Change]], object]
"""Purges the changes (the pipeline, with a deadline of its own)."""


class Later:
    """Run purges after their delay, in order, on one thread."""

    def __init__(self, run: Run) -> None:
        self._run = run
        self._heap: list[tuple[float, int, list[Change]]] = []
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._busy = 0
        self._closed = False
        self._thread: threading.Thread | None = None  # started by the first schedule: most accounts need none

    def schedule(self, due: dict[float, list[Change]]) -> None:
        """Purge each group of changes once more after its delay (seconds)."""
        if not due:
            return
        with self._changed:
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name="s3purge-second-purge", daemon=True)
                self._thread.start()
            for delay, changes in due.items():
                heapq.heappush(self._heap, (time.monotonic() + delay, next(self._order), changes))
                self._busy += 1
            self._changed.notify_all()

    def idle(self, timeout: float | None = None) -> bool:
        """Block until nothing is waiting or running; False if `timeout` passed first."""
        with self._changed:
            return self._changed.wait_for(lambda: self._busy == 0, timeout)

    def close(self) -> None:
        """Purge what is still waiting now, then stop the thread."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _serve(self) -> None:
        while True:
            with self._changed:
                changes = self._next()
                if changes is None:
                    return
            try:
                self._run(changes)
            except Exception:
                log.exception("second purge failed", extra={"changes": len(changes)})
            with self._changed:
                self._busy -= 1
                self._changed.notify_all()

    def _next(self) -> list[Change] | None:
        """The next due group (waiting for it), or None once closed with nothing left."""
        while True:
            if self._heap and (self._closed or self._heap[0][0] <= time.monotonic()):
                return heapq.heappop(self._heap)[2]
            if self._closed:
                return None
            timeout = self._heap[0][0] - time.monotonic() if self._heap else None
            self._changed.wait(timeout)
