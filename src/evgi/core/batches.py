"""Group commit: a worker thread takes what has queued up behind the first item in one go, so
one commit (or one ledger block) serves many requests under load and one item when idle."""

from __future__ import annotations

import queue
from typing import TypeVar

T = TypeVar("T")


def take_batch(source: queue.SimpleQueue[T | None], first: T, limit: int) -> tuple[list[T], bool]:
    """`first` and up to `limit - 1` items already waiting; True as second value when the stop
    marker (None) was met, so the worker finishes this batch and then ends."""
    batch = [first]
    while len(batch) < limit:
        try:
            item = source.get_nowait()
        except queue.Empty:
            break
        if item is None:
            return batch, True
        batch.append(item)
    return batch, False
