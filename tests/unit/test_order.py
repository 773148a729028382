"""Order: S3 sequencers decide which event of a key is newest, in a batch and across batches."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from s3purge.model import Change
from s3purge.order import Ledger, later, newest_per_key

hexes = st.text("0123456789ABCDEF", min_size=1, max_size=20)


def change(key: str, sequencer: str | None, source: str = "m1", event: str = "created") -> Change:
    return Change("site", key, event, source, sequencer=sequencer)  # type: ignore[arg-type]


def test_the_shorter_sequencer_is_right_padded_with_zeros() -> None:
    assert later("0055AED6DCD90281E6", "0055AED6DCD90281E5")
    assert later("0055AED6DCD90281E501", "0055AED6DCD90281E5")  # ...E5 reads as ...E500
    assert not later("0055AED6DCD90281E5", "0055AED6DCD90281E500")  # equal once padded
    assert later("0055aed6dcd90281e6", "0055AED6DCD90281E5")  # hex digits in either case


@given(hexes, hexes)
def test_later_is_a_strict_order(a: str, b: str) -> None:
    assert not (later(a, b) and later(b, a))
    assert later(a, b) or later(b, a) or a.upper().ljust(20, "0") == b.upper().ljust(20, "0")


def test_in_a_batch_only_the_newest_event_of_a_key_remains() -> None:
    put = change("a.html", "0A", "m1")
    delete = change("a.html", "0B", "m2", "removed")
    other = change("b.html", "01", "m3")
    kept, superseded = newest_per_key([delete, put, other])
    assert (kept, superseded) == ([delete, other], [put])  # a delete after the put wins, whatever the arrival order


def test_events_without_a_sequencer_and_duplicates_are_kept() -> None:
    unordered = [change("a.html", None, "m1"), change("a.html", "05", "m2"), change("a.html", "05", "m3")]
    assert newest_per_key(unordered) == (unordered, [])


def test_an_older_event_redelivered_after_a_newer_one_purges_nothing() -> None:
    ledger = Ledger()
    newer, older = change("a.html", "0B", "m2"), change("a.html", "0A", "m1")
    assert ledger.admit([newer]) == ([newer], [])
    assert ledger.admit([older]) == ([], [older])
    assert ledger.admit([newer]) == ([newer], [])  # the same event again (a retry) is purged again


def test_the_ledger_forgets_the_least_recently_used_key() -> None:
    ledger = Ledger(capacity=2)
    ledger.admit([change("a", "0B"), change("b", "0B"), change("c", "0B")])
    assert ledger.admit([change("a", "0A")])[0] != []  # "a" was forgotten: cannot tell, so it purges
    assert ledger.admit([change("c", "0A")])[0] == []
