"""Order: an older event for a key never purges or verifies after a newer one.

S3 notifications are at-least-once and may arrive out of order. Each PUT and DELETE
event carries a `sequencer`: a hex string; of two events on the same key, the greater
one happened later. S3 documents the comparison: right-pad the shorter string with
zeros, then compare as text (older copies of the docs said left-pad; the current page
says right, and sequencers of one key have had one length in practice, so both agree).

Within a batch the newest event per key wins; across batches and redeliveries a bounded
memory of the newest sequencer processed per key keeps an older event from purging or
verifying after a newer one in this process. Across processes S3 itself is the judge:
verification asks it whether the key changed since the event (s3purge.verify).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from s3purge.model import Change

ObjectKey = tuple[str, str]


def later(a: str, b: str) -> bool:
    """True when sequencer `a` is from a later event than `b` (same key)."""
    width = max(len(a), len(b))
    return a.upper().ljust(width, "0") > b.upper().ljust(width, "0")


def newest_per_key(changes: list[Change]) -> tuple[list[Change], list[Change]]:
    """(kept, superseded): a change loses to a later-sequenced change of the same key.

    Changes without a sequencer cannot be ordered and are kept; so are duplicates (equal
    sequencers: a redelivered event), which planning merges into one purge.
    """
    top: dict[ObjectKey, str] = {}
    for change in changes:
        seq = change.sequencer
        if seq is not None and (key := (change.bucket, change.key)) in top:
            if later(seq, top[key]):
                top[key] = seq
        elif seq is not None:
            top[(change.bucket, change.key)] = seq
    kept, superseded = [], []
    for change in changes:
        best = top.get((change.bucket, change.key))
        if change.sequencer is not None and best is not None and later(best, change.sequencer):
            superseded.append(change)
        else:
            kept.append(change)
    return kept, superseded


@dataclass
class Ledger:
    """The newest sequencer processed per key in this process (least recently used dropped)."""

    capacity: int = 100_000
    _newest: OrderedDict[ObjectKey, str] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def admit(self, changes: list[Change]) -> tuple[list[Change], list[Change]]:
        """(to purge, superseded): drops what a newer event of the same key already covers."""
        kept, superseded = newest_per_key(changes)
        with self._lock:
            admitted = []
            for change in kept:
                seen = self._newest.get((change.bucket, change.key))
                if change.sequencer is not None and seen is not None and later(seen, change.sequencer):
                    superseded.append(change)
                else:
                    admitted.append(change)
            for change in admitted:
                if change.sequencer is not None:
                    self._remember((change.bucket, change.key), change.sequencer)
        return admitted, superseded

    def _remember(self, key: ObjectKey, sequencer: str) -> None:
        seen = self._newest.get(key)
        if seen is None or later(sequencer, seen):
            self._newest[key] = sequencer
        self._newest.move_to_end(key)
        while len(self._newest) > self.capacity:
            self._newest.popitem(last=False)
