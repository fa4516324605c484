"""Signs and submits transactions for one account, keeping its nonce in step with the ledger;
the ledger signs them in its engine's own form."""

from __future__ import annotations

import threading
from typing import Any

from evgi.core.keys import Account
from evgi.ledger.engine import Ledger
from evgi.ledger.receipt import Receipt
from evgi.ledger.transaction import SignedTransaction, Transaction


class Submitter:
    def __init__(self, ledger: Ledger, account: Account) -> None:
        self.ledger = ledger
        self.account = account
        self._next: int | None = None
        self._lock = threading.Lock()

    @property
    def address(self) -> str:
        return self.account.address

    def sign(self, module: str, method: str, **args: Any) -> SignedTransaction:
        """Sign the next transaction without submitting it (for batches)."""
        with self._lock:
            nonce = self._upcoming()
            self._next = nonce + 1
        tx = Transaction(self.ledger.chain_id, self.account.address, nonce, module, method, args)
        try:
            return self.ledger.sign(tx, self.account)
        except Exception:
            self.resync()  # the nonce was not used: leave no gap
            raise

    def next_nonce(self) -> int:
        """The nonce of the next transaction, for transactions signed elsewhere (another
        process); `used` tells how many they took."""
        with self._lock:
            return self._upcoming()

    def _upcoming(self) -> int:
        """The next nonce (asked of the ledger when not known); the caller holds the lock."""
        if self._next is None:
            self._next = self.ledger.nonce(self.account.address)
        return self._next

    def used(self, first: int, count: int) -> None:
        """`count` transactions were signed elsewhere from nonce `first` on. When this
        submitter signed meanwhile, the two overlap: the ledger refuses one of them, and the
        next nonce is asked of the ledger."""
        with self._lock:
            self._next = first + count if self._next == first else None

    def call(self, module: str, method: str, **args: Any) -> Receipt:
        """Submit one transaction and raise ExecutionError if the state machine refused it."""
        try:
            receipt = self.ledger.submit(self.sign(module, method, **args))
        except Exception:
            self.resync()
            raise
        return receipt.raise_for_status()

    def resync(self) -> None:
        """Ask the ledger for the next nonce on the next call."""
        with self._lock:
            self._next = None
