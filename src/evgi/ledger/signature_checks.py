"""Signature checks kept off a block's critical path.

A transaction this engine signed itself (`LocalLedger.sign`) is known good: its signature was
made with the sender's key a moment ago, so it is not recovered again. Every other transaction of
a block is checked while the block executes and its rows are written, on two threads when there
are many (secp256k1 recovery releases the GIL); the block waits for the results before it
commits, and a bad signature refuses it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from evgi.ledger.transaction import SignedTransaction

_CHUNK = 64  # fewer transactions to check are checked in place, before the block runs
_KEPT = 16_384  # transactions signed here and not yet submitted; older ones are checked again

Problems = list[Exception | None]  # per transaction of a chunk: why its signature is bad


def _problems(chunk: Sequence[SignedTransaction]) -> Problems:
    problems: Problems = []
    for stx in chunk:
        try:
            stx.check_signature()
        except Exception as exc:  # kept for the transaction's own block to raise
            problems.append(exc)
        else:
            problems.append(None)
    return problems


class BlockChecks:
    """The checks of one block's transactions, in block order."""

    def __init__(self, chunks: list[Future[Problems]]) -> None:
        self._chunks = chunks

    def wait(self) -> None:
        """Raise the first bad transaction's error."""
        for future in self._chunks:
            for problem in future.result():
                if problem is not None:
                    raise problem

    def cancel(self) -> None:
        """The block failed first: its checks are of no use any more."""
        for future in self._chunks:
            future.cancel()


class SignatureChecks:
    """One engine's checks: what it signed itself is known good, the rest is checked."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        # by id(stx), the transaction itself, kept alive so that its id cannot be reused
        self._own: OrderedDict[int, SignedTransaction] = OrderedDict()

    def signed(self, stx: SignedTransaction) -> None:
        """`stx` was signed by this engine."""
        with self._lock:
            self._own[id(stx)] = stx
            while len(self._own) > _KEPT:
                self._own.popitem(last=False)

    def block(self, transactions: Sequence[SignedTransaction]) -> BlockChecks:
        """Checks for a block's transactions not signed here: in place when they are few (a bad
        one raises at once, before the block runs), else started on the threads."""
        with self._lock:
            rest = [stx for stx in transactions if self._own.pop(id(stx), None) is not stx]
        if len(rest) < _CHUNK:
            for problem in _problems(rest):
                if problem is not None:
                    raise problem
            return BlockChecks([])
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="evgi-sig")
        half = len(rest) // 2
        return BlockChecks(
            [self._pool.submit(_problems, part) for part in (rest[:half], rest[half:])]
        )

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown()
