"""The garbage collector told what a long-running process made at start-up."""

from __future__ import annotations

import gc


def settle_heap() -> None:
    """Keep what start-up made out of the collector's way: it lives as long as the process,
    and each full collection would walk all of it again, pausing every request in flight for
    tens of milliseconds (a Plug & Charge authorization's p99)."""
    gc.collect()
    gc.freeze()
