"""Ledger: one interface, `Ledger`, over the embedded journal (`local`) or an EVM network (`evm`).

Importing this package registers the state machine's modules: registry, entities, token, anchors.
"""

from evgi.ledger import anchors, entities, registry, token
from evgi.ledger.audit import AuditReport
from evgi.ledger.block import BlockHeader, Genesis
from evgi.ledger.engine import Ledger, open_local_ledger
from evgi.ledger.entities import ISSUE_RIGHTS
from evgi.ledger.proof import TransactionProof
from evgi.ledger.receipt import Receipt
from evgi.ledger.submitter import Submitter
from evgi.ledger.transaction import SignedTransaction, Transaction

__all__ = [
    "ISSUE_RIGHTS",
    "AuditReport",
    "BlockHeader",
    "Genesis",
    "Ledger",
    "Receipt",
    "SignedTransaction",
    "Submitter",
    "Transaction",
    "TransactionProof",
    "anchors",
    "entities",
    "open_local_ledger",
    "registry",
    "token",
]
