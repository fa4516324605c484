"""The one ledger interface every layer uses, and the factory that opens the configured engine."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Engine

from evgi.core.clock import Clock
from evgi.core.keys import Account
from evgi.ledger.audit import AuditReport
from evgi.ledger.block import BlockHeader
from evgi.ledger.proof import InclusionProof
from evgi.ledger.receipt import Receipt
from evgi.ledger.transaction import SignedTransaction, Transaction


class Ledger(Protocol):
    """Submit signed transactions, read state through queries, get receipts and proofs, verify.

    Engines: `local` (the embedded journal); `evm` implements the same contract on any EVM network.
    """

    engine_name: str
    chain_id: int

    def sign(self, tx: Transaction, account: Account) -> SignedTransaction:
        """Sign `tx` as this engine takes it: an evgi signature over its canonical body (local) or
        an Ethereum transaction carrying the call (evm)."""
        ...

    def submit(self, stx: SignedTransaction) -> Receipt: ...

    def submit_many(self, transactions: Sequence[SignedTransaction]) -> list[Receipt]: ...

    def query(self, module: str, name: str, **args: Any) -> Any: ...

    def nonce(self, address: str) -> int: ...

    def head(self) -> BlockHeader: ...

    def block(self, height: int) -> BlockHeader: ...

    def transaction(self, tx_hash: str) -> tuple[SignedTransaction, Receipt]: ...

    def receipt(self, tx_hash: str) -> Receipt: ...

    def pending(self, tx_hash: str) -> bool:
        """Whether `tx_hash` was accepted but is in no block yet (an EVM node's pool); such a
        transaction still holds its nonce, and may yet land."""
        ...

    def proof(self, tx_hash: str) -> InclusionProof: ...

    def verify(self, progress: Callable[[int, int], None] | None = None) -> AuditReport: ...

    def close(self) -> None: ...


def open_local_ledger(
    db: Engine,
    chain_id: int,
    trust_anchors: Sequence[str] = (),
    clock: Clock | None = None,
    block_max_transactions: int = 2000,
) -> Ledger:
    from evgi.ledger.journal import LocalLedger

    return LocalLedger(db, chain_id, trust_anchors, clock, block_max_transactions)


def open_evm_ledger(
    rpc_url: str,
    deployer: Account,
    deployment_file: Path,
    trust_anchors: Sequence[str] = (),
    dev_funding_wei: int = 0,
) -> Ledger:
    """Connect to an EVM node and attach to the contracts named in `deployment_file`, or deploy
    them from `deployer` (and record them there) on first use."""
    from evgi.ledger.evm import open_evm_ledger as connect

    return connect(rpc_url, deployer, deployment_file, trust_anchors, dev_funding_wei)
