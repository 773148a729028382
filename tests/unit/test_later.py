"""The worker's in-process delayed second purges: due in order, none dropped on a clean stop."""

from __future__ import annotations

from s3purge.entry.later import Later
from s3purge.model import Change


def change(key: str) -> Change:
    return Change("site", key, "created", "m1", second_purge=True)


def test_a_due_purge_runs_and_a_clean_stop_runs_what_still_waits() -> None:
    ran: list[list[str]] = []
    later = Later(lambda changes: ran.append([c.key for c in changes]))
    later.schedule({0.0: [change("a")]})
    assert later.idle(timeout=10)
    later.schedule({3600.0: [change("b")]})
    assert not later.idle(timeout=0)  # an hour to go
    later.close()
    assert ran == [["a"], ["b"]]


def test_a_failing_purge_does_not_stop_the_others() -> None:
    ran: list[str] = []

    def run(changes: list[Change]) -> None:
        if changes[0].key == "bad":
            raise RuntimeError("vendor exploded")
        ran.append(changes[0].key)

    later = Later(run)
    later.schedule({0.0: [change("bad")]})
    later.schedule({0.0: [change("good")]})
    assert later.idle(timeout=10)
    later.close()
    assert ran == ["good"]


def test_nothing_to_schedule_starts_no_thread() -> None:
    later = Later(lambda changes: None)
    later.schedule({})
    assert later.idle(timeout=0)
    later.close()
