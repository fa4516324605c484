"""Ledger: one interface, `Ledger`, over the embedded journal (`local`) or an EVM network (`evm`).

Importing this package registers the state machine's modules: registry, entities, token, escrow,
anchors, permissions.
"""

from evgi.ledger import anchors, entities, escrow, permissions, registry, token
from evgi.ledger.audit import AuditReport
from evgi.ledger.block import BlockHeader, Genesis
from evgi.ledger.engine import Ledger, open_evm_ledger, open_local_ledger
from evgi.ledger.entities import ISSUE_RIGHTS
from evgi.ledger.proof import InclusionProof, PatriciaProof, TransactionProof
from evgi.ledger.receipt import Receipt
from evgi.ledger.submitter import Submitter
from evgi.ledger.transaction import SignedTransaction, Transaction
from evgi.ledger.view import LedgerView

__all__ = [
    "ISSUE_RIGHTS",
    "AuditReport",
    "BlockHeader",
    "Genesis",
    "InclusionProof",
    "Ledger",
    "LedgerView",
    "PatriciaProof",
    "Receipt",
    "SignedTransaction",
    "Submitter",
    "Transaction",
    "TransactionProof",
    "anchors",
    "entities",
    "escrow",
    "open_evm_ledger",
    "open_local_ledger",
    "permissions",
    "registry",
    "token",
]
