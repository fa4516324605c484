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
            if self._next is None:
                self._next = self.ledger.nonce(self.account.address)
            nonce = self._next
            self._next += 1
        tx = Transaction(self.ledger.chain_id, self.account.address, nonce, module, method, args)
        try:
            return self.ledger.sign(tx, self.account)
        except Exception:
            self.resync()  # the nonce was not used: leave no gap
            raise

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
