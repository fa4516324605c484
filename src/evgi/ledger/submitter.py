"""Signs and submits transactions for one account, keeping its nonce in step with the ledger."""

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
        return tx.sign(self.account)

    def call(self, module: str, method: str, **args: Any) -> Receipt:
        """Submit one transaction and raise ExecutionError if the state machine refused it."""
        try:
            receipt = self.ledger.submit(self.sign(module, method, **args))
        except Exception:
            with self._lock:
                self._next = None  # resynchronise with the ledger on the next call
            raise
        return receipt.raise_for_status()
