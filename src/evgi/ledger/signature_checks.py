"""Signature checks kept off a block's critical path.

secp256k1 recovery releases the GIL, so checks run on two threads while the caller goes on. They
start as soon as the engine signs a transaction, in chunks, so a batch is mostly checked while
it is still being signed (signing releases the GIL too); a block's other transactions are
checked when it is submitted. Either way a block waits for the results of its own transactions
before it commits, and a bad signature refuses it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from evgi.ledger.transaction import SignedTransaction

_CHUNK = 64  # signed transactions checked together; fewer at submission are checked in place
_KEPT = 16_384  # results of transactions signed but not yet submitted; older ones are dropped

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

    def __init__(
        self, results: list[tuple[Future[Problems], int]], own: list[Future[Problems]]
    ) -> None:
        self._results = results
        self._own = own  # started for this block alone: cancelled if the block fails first

    def wait(self) -> None:
        """Raise the first bad transaction's error."""
        for future, index in self._results:
            problem = future.result()[index]
            if problem is not None:
                raise problem

    def cancel(self) -> None:
        for future in self._own:
            future.cancel()


class SignatureChecks:
    """One engine's checks: of what it signs, early, and of each block it is given."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._signed: list[SignedTransaction] = []  # not yet started
        # by id(stx), the transaction kept alive beside its result so that id cannot be reused
        self._started: OrderedDict[int, tuple[SignedTransaction, Future[Problems], int]] = (
            OrderedDict()
        )

    def _start(self, chunk: list[SignedTransaction]) -> Future[Problems]:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="evgi-sig")
        return self._pool.submit(_problems, chunk)

    def signed(self, stx: SignedTransaction) -> None:
        """Check `stx` early, with the transactions signed just before it."""
        with self._lock:
            self._signed.append(stx)
            if len(self._signed) < _CHUNK:
                return
            chunk, self._signed = self._signed, []
            future = self._start(chunk)
            for index, signed in enumerate(chunk):
                self._started[id(signed)] = (signed, future, index)
            while len(self._started) > _KEPT:
                self._started.popitem(last=False)

    def block(self, transactions: Sequence[SignedTransaction]) -> BlockChecks:
        """Checks for a block: those started early, the rest now, in place when they are few
        (a bad one raises at once, before the block runs), else on the threads."""
        results: list[tuple[int, Future[Problems], int]] = []  # position, chunk, index in it
        rest: list[tuple[int, SignedTransaction]] = []
        own: list[Future[Problems]] = []
        with self._lock:
            for position, stx in enumerate(transactions):
                entry = self._started.pop(id(stx), None)
                if entry is not None:
                    results.append((position, entry[1], entry[2]))
                else:
                    rest.append((position, stx))
            if rest and self._signed:
                submitted = {id(stx) for _position, stx in rest}
                self._signed = [stx for stx in self._signed if id(stx) not in submitted]
            if len(rest) >= _CHUNK:
                half = len(rest) // 2
                for part in (rest[:half], rest[half:]):
                    future = self._start([stx for _position, stx in part])
                    own.append(future)
                    results += [(position, future, i) for i, (position, _stx) in enumerate(part)]
        if not own:
            for problem in _problems([stx for _position, stx in rest]):
                if problem is not None:
                    raise problem
        results.sort(key=lambda result: result[0])
        return BlockChecks([(future, index) for _position, future, index in results], own)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown()
