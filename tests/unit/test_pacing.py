"""Pacing under a sliding-window limit (StrikeTracker: 100 URIs in any 60 s); pure scheduling."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from s3purge.pacing import HEADROOM, SlidingWindow
from s3purge.providers.base import Rate

RATE = Rate(100 / 60, 100, "item", window=60)


@given(st.lists(st.tuples(st.floats(0, 200), st.integers(1, 100)), min_size=1, max_size=40))
def test_no_window_ever_holds_more_than_the_limit(calls: list[tuple[float, int]]) -> None:
    pace = SlidingWindow(RATE)
    now, starts = 0.0, []
    for gap, cost in calls:
        now += gap
        start = pace.reserve(now, cost)
        assert start is not None and start >= now
        starts.append((start, cost))
    for begin, _ in starts:  # every window that opens at a call
        inside = sum(c for t, c in starts if begin <= t < begin + 60)
        assert inside <= 100


def test_full_batches_go_a_window_apart_and_small_ones_fit_in_between() -> None:
    pace = SlidingWindow(RATE)
    assert pace.reserve(0, 60) == 0
    assert pace.reserve(1, 40) == 1  # still within 100
    assert pace.reserve(2, 10) == 60 / HEADROOM  # waits until the first 60 have left the window
    assert pace.reserve(3, 100) == 2 * 60 / HEADROOM  # all 110 before it must have left the window
    assert pace.reserve(4, 1, deadline=10) is None  # past the deadline: not started, not recorded


def test_a_refusal_holds_everyone_for_the_vendors_retry_after() -> None:
    pace = SlidingWindow(RATE)
    assert pace.reserve(0, 10) == 0  # the vendor refuses it: another client spent the budget
    pace.refused(10, 30, now=0.2)
    assert pace.reserve(0.5, 10) == 30.2  # the retry, and anyone else, waits as told
    assert pace.reserve(31, 90) == 31  # with our 10 that is the whole budget ...
    assert pace.reserve(32, 1) == 30.2 + 60 / HEADROOM  # ... so one more waits for the 10 to leave
