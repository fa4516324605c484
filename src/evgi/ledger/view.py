"""A ledger that answers repeated queries from memory until its head moves.

Permission checks ask the same questions (who may sign for this DID, is this AC revoked) for
every request. `refresh()` looks at the head once per request; while it stays put, each query,
and each value derived from queries alone (an access decision), is computed once. Any new block,
written by this process or another, empties the memory.
A `changed` hint (e.g. the storage's data version) lets `refresh()` skip reading the head when
nothing at all was committed since it last looked.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from evgi.ledger.block import BlockHeader
from evgi.ledger.engine import Ledger

T = TypeVar("T")


class LedgerView:
    """A `Ledger` whose reads are as of the head seen by the last `refresh()`; everything else
    (submitting, blocks, proofs) goes to the ledger it wraps."""

    def __init__(self, ledger: Ledger, changed: Callable[[], bool] | None = None) -> None:
        self.ledger = ledger
        self._changed = changed
        self.engine_name = ledger.engine_name
        self.chain_id = ledger.chain_id
        self._lock = threading.Lock()
        self._head = ledger.head()
        self._answers: dict[tuple[Any, ...], Any] = {}

    def refresh(self) -> BlockHeader:
        """Look at the ledger's head; forget every answer if it moved."""
        if self._changed is not None and not self._changed():
            return self._head
        head = self.ledger.head()
        if head.height != self._head.height:
            with self._lock:
                self._answers = {}
                self._head = head
        return self._head

    def head(self) -> BlockHeader:
        return self._head

    def query(self, module: str, name: str, **args: Any) -> Any:
        key = (module, name, *args.items())
        try:
            return self._answers[key]
        except KeyError:
            pass
        except TypeError:  # an unhashable argument: ask the ledger every time
            return self.ledger.query(module, name, **args)
        return self.derived(key, lambda: self.ledger.query(module, name, **args))

    def derived(
        self,
        key: tuple[Any, ...],
        compute: Callable[[], T],
        holds: Callable[[T], bool] | None = None,
    ) -> T:
        """A value computed from ledger state alone (an answer, an access decision), kept under
        `key` until the head moves: what the state says at one head never changes. A value that
        also depends on the time is computed again once `holds(value)` is false."""
        answers = self._answers
        if key in answers:
            found: T = answers[key]
            if holds is None or holds(found):
                return found
        value = compute()
        with self._lock:
            if answers is self._answers:  # no refresh moved the head meanwhile
                answers[key] = value
        return value

    def close(self) -> None:
        """The view does not own the ledger it reads; closing it leaves the ledger open."""

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.ledger, attribute)
