"""N processes, one vendor account: each paces at 1/N, so together they stay within the limit; pure."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from s3purge.pacing import HEADROOM, SlidingWindow, TokenBucket, limiter, share
from s3purge.providers.base import Rate

WINDOW = Rate(100 / 60, 100, "item", window=60)


@given(st.integers(1, 50), st.floats(0.1, 1000), st.floats(1, 10_000))
def test_the_shares_add_up_to_the_limit(instances: int, per_second: float, burst: float) -> None:
    mine = share(Rate(per_second, burst, "item"), instances)
    assert abs(mine.per_second * instances - per_second) < 1e-9 * per_second
    assert abs(mine.burst * instances - burst) < 1e-9 * burst
    assert mine.unit == "item" and mine.window is None


@given(st.integers(2, 4), st.lists(st.tuples(st.integers(0, 3), st.floats(0, 30), st.integers(1, 20)), max_size=40))
def test_instances_sharing_a_window_never_fill_it_together(instances: int, calls: list[tuple[int, float, int]]) -> None:
    paces = [SlidingWindow(share(WINDOW, instances)) for _ in range(instances)]
    now, starts = 0.0, []
    for who, gap, cost in calls:
        now += gap
        start = paces[who % instances].reserve(now, cost)
        assert start is not None
        starts.append((start, cost))
    for begin, _ in starts:
        assert sum(c for t, c in starts if begin <= t < begin + 60) <= 100


def test_the_limiter_takes_its_share_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S3PURGE_INSTANCES", "4")  # what the template sets on the function
    bucket = limiter(Rate(10, 20))
    assert isinstance(bucket, TokenBucket)
    assert (bucket.rate.per_second, bucket.rate.burst) == (10 / 4 * HEADROOM, 20 / 4 * HEADROOM)
    monkeypatch.setenv("S3PURGE_INSTANCES", "not a number")
    assert limiter(Rate(10, 20)).rate.per_second == 10 * HEADROOM  # type: ignore[union-attr]  # default: alone
