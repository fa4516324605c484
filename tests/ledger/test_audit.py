"""`verify()` re-derives the history: any row edited behind the ledger's back is found, and the
report names the block it belongs to (for a state row, the block that last wrote the key)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, text

from evgi.core import Account, canonical_json, keccak256, to_hex
from evgi.ledger import BlockHeader, Submitter
from evgi.ledger.journal import LocalLedger
from evgi.ledger.transaction import signing_digest
from tests.ledger.economy import SYMBOL, Holders, mint, pay


@dataclass(frozen=True)
class History:
    """What the test knows of the history it wrote, independently of the audit."""

    txs: dict[int, list[str]]  # block height -> its transaction hashes, in order
    alice: str
    bob: str
    document: str  # the hash anchored in block 4


@pytest.fixture
def history(ledger: LocalLedger, issuer: Submitter, holders: Holders) -> History:
    """Genesis, the token (1), two mints (2), a payment and an overdraft (3), a refund and an
    anchored document (4), a last payment (5)."""
    alice, bob, carol = holders
    document = to_hex(keccak256(b"entity certificate of a charger"))
    blocks = [
        [mint(issuer, alice, 1000), mint(issuer, bob, 500)],
        [pay(alice, carol, 100), pay(bob, carol, 700)],
        [pay(carol, alice, 50), issuer.sign("anchor", "put", hash=document, kind="certificate")],
        [pay(alice, bob, 10)],
    ]
    txs = {1: [receipt.tx_hash for _, receipt in ledger.block_transactions(1)]}
    for block in blocks:
        receipts = ledger.submit_many(block)
        txs[receipts[0].block] = [r.tx_hash for r in receipts]
    assert sorted(txs) == [1, 2, 3, 4, 5]
    assert [ledger.receipt(h).ok for h in txs[3]] == [True, False]
    return History(txs, alice.address, bob.address, document)


def sql(conn: Connection, statement: str, **params: Any) -> Any:
    return conn.execute(text(statement), params)


def _tx_column(conn: Connection, tx_hash: str, column: str) -> Any:
    statement = f"SELECT {column} FROM ledger_transactions WHERE hash = :h"
    return sql(conn, statement, h=tx_hash).scalar()


def _set_tx_column(conn: Connection, tx_hash: str, column: str, value: Any) -> None:
    sql(conn, f"UPDATE ledger_transactions SET {column} = :v WHERE hash = :h", v=value, h=tx_hash)


def _set_block_column(conn: Connection, height: int, column: str, value: Any) -> None:
    sql(conn, f"UPDATE ledger_blocks SET {column} = :v WHERE height = :n", v=value, n=height)


def _set_state(conn: Connection, key: str, value: str) -> None:
    sql(conn, "UPDATE ledger_state SET value = :v WHERE key = :k", v=value, k=key)


def _forged_hash(label: str) -> str:
    return to_hex(keccak256(label.encode()))


def edit_tx_body(conn: Connection, h: History) -> int:
    """Lower the amount of alice's payment in block 3, keeping hash and signature."""
    tx_hash = h.txs[3][0]
    body = json.loads(_tx_column(conn, tx_hash, "body"))
    body["args"]["amount"] = 1
    _set_tx_column(conn, tx_hash, "body", canonical_json(body).decode())
    return 3


def edit_tx_signature(conn: Connection, h: History) -> int:
    """Re-sign bob's mint in block 2 with another key."""
    tx_hash = h.txs[2][1]
    body = _tx_column(conn, tx_hash, "body")
    signature = Account.generate().sign_digest(signing_digest(body.encode()))
    _set_tx_column(conn, tx_hash, "signature", to_hex(signature))
    return 2


def edit_receipt_result(conn: Connection, h: History) -> int:
    _set_tx_column(conn, h.txs[4][1], "result", '{"anchored":true}')
    return 4


def edit_receipt_status(conn: Connection, h: History) -> int:
    """Turn bob's overdraft in block 3 into a success."""
    _set_tx_column(conn, h.txs[3][1], "status", 1)
    return 3


def edit_receipt_logs(conn: Connection, h: History) -> int:
    _set_tx_column(conn, h.txs[5][0], "logs", "[]")
    return 5


def edit_block_timestamp(conn: Connection, h: History) -> int:
    sql(conn, "UPDATE ledger_blocks SET timestamp = timestamp + 1 WHERE height = 2")
    return 2


def edit_block_tx_root(conn: Connection, h: History) -> int:
    _set_block_column(conn, 4, "tx_root", _forged_hash("tx root"))
    return 4


def edit_block_tx_root_and_rehash(conn: Connection, h: History) -> int:
    """Give block 3 another tx root and the hash that goes with it, as a careful forger would."""
    row = sql(conn, "SELECT * FROM ledger_blocks WHERE height = 3").one()
    forged = replace(BlockHeader.from_row(row), tx_root=_forged_hash("tx root"))
    sql(
        conn,
        "UPDATE ledger_blocks SET tx_root = :r, hash = :h WHERE height = 3",
        r=forged.tx_root,
        h=forged.compute_hash(),
    )
    return 3


def edit_block_hash(conn: Connection, h: History) -> int:
    _set_block_column(conn, 5, "hash", _forged_hash("head"))
    return 5


def edit_state_value(conn: Connection, h: History) -> int:
    """Inflate the supply, last written by the mints of block 2."""
    _set_state(conn, f"token/{SYMBOL}/supply", "1000000")
    return 2


def edit_balance(conn: Connection, h: History) -> int:
    """Change alice's balance, last written by her payment in block 5."""
    _set_state(conn, f"token/{SYMBOL}/balance/{h.alice}", "1000000")
    return 5


def edit_state_block(conn: Connection, h: History) -> int:
    """Claim bob's nonce, last advanced by his overdraft in block 3, for block 5."""
    sql(conn, "UPDATE ledger_state SET block_height = 5 WHERE key = :k", k=f"nonce/{h.bob}")
    return 3


def insert_state_row(conn: Connection, h: History) -> int:
    """A balance for an account that never held any, claiming block 3."""
    stranger = Account.generate().address
    sql(
        conn,
        "INSERT INTO ledger_state (key, value, block_height) VALUES (:k, '1000', 3)",
        k=f"token/{SYMBOL}/balance/{stranger}",
    )
    return 3


def delete_state_row(conn: Connection, h: History) -> int:
    sql(conn, "DELETE FROM ledger_state WHERE key = :k", k=f"anchor/{h.document}")
    return 4


def delete_transaction(conn: Connection, h: History) -> int:
    sql(conn, "DELETE FROM ledger_transactions WHERE hash = :h", h=h.txs[3][0])
    return 3


def insert_transaction_beyond_head(conn: Connection, h: History) -> int:
    """A copy of block 5's transaction filed under block 8, which does not exist."""
    statement = "SELECT * FROM ledger_transactions WHERE hash = :h"
    row = sql(conn, statement, h=h.txs[5][0]).one()._asdict()
    row.update(hash=_forged_hash("orphan"), block_height=8, nonce=99)
    columns, values = ", ".join(row), ", ".join(f":{column}" for column in row)
    sql(conn, f"INSERT INTO ledger_transactions ({columns}) VALUES ({values})", **row)
    return 8


EDITS: dict[str, Callable[[Connection, History], int]] = {
    "tx-body": edit_tx_body,
    "tx-signature": edit_tx_signature,
    "receipt-result": edit_receipt_result,
    "receipt-status": edit_receipt_status,
    "receipt-logs": edit_receipt_logs,
    "block-timestamp": edit_block_timestamp,
    "block-tx-root": edit_block_tx_root,
    "block-tx-root-rehashed": edit_block_tx_root_and_rehash,
    "block-hash": edit_block_hash,
    "state-value": edit_state_value,
    "state-balance": edit_balance,
    "state-block-height": edit_state_block,
    "state-row-inserted": insert_state_row,
    "state-row-deleted": delete_state_row,
    "tx-deleted": delete_transaction,
    "tx-inserted-beyond-head": insert_transaction_beyond_head,
}


def test_untouched_history_verifies(ledger: LocalLedger, history: History) -> None:
    report = ledger.verify()
    assert report.ok, report.problem
    assert (report.blocks, report.transactions, report.bad_block) == (6, 9, None)
    assert report.head_hash == ledger.head().compute_hash()


@pytest.mark.parametrize("edit", EDITS.values(), ids=EDITS)
def test_edited_history_names_the_edited_block(
    ledger: LocalLedger,
    db: Engine,
    history: History,
    edit: Callable[[Connection, History], int],
) -> None:
    with db.begin() as conn:
        edited = edit(conn, history)
    report = ledger.verify()
    assert not report.ok
    assert report.bad_block == edited, report.problem
    assert f"block {edited}" in report.problem
