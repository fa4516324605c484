"""The local journal: token flows, what it refuses and keeps out, failed receipts, inclusion
proofs, restarts and block cutting, on each database backend."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select

from evgi.core import (
    Account,
    ConfigError,
    ExecutionError,
    NonceError,
    SignatureError,
    ValidationError,
    canonical_json,
)
from evgi.ledger import (
    BlockHeader,
    SignedTransaction,
    Submitter,
    Transaction,
    TransactionProof,
    open_local_ledger,
)
from evgi.ledger.journal import LocalLedger
from evgi.ledger.transaction import signing_digest
from evgi.storage import TransactionRow
from tests.conftest import LedgerOpener
from tests.ledger.economy import (
    SYMBOL,
    Holders,
    balance,
    check_books,
    found_token,
    mint,
    pay,
)


def stored_transactions(db: Engine) -> int:
    with db.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(TransactionRow)).scalar_one())


def test_token_flows_move_balances_and_supply(
    ledger: LocalLedger, issuer: Submitter, holders: Holders
) -> None:
    alice, bob, _ = holders
    ledger.submit(mint(issuer, alice, 1000)).raise_for_status()
    receipt = ledger.submit(pay(alice, bob, 300)).raise_for_status()
    assert receipt.logs == [
        {
            "event": "Transfer",
            "symbol": SYMBOL,
            "from": alice.address,
            "to": bob.address,
            "amount": 300,
        }
    ]
    ledger.submit(mint(issuer, issuer, 50)).raise_for_status()
    issuer.call("token", "burn", symbol=SYMBOL, amount=20)

    assert [balance(ledger, s) for s in (alice, bob, issuer)] == [700, 300, 30]
    info = ledger.query("token", "info", symbol=SYMBOL)
    assert info == {
        "symbol": SYMBOL,
        "currency": "EUR",
        "decimals": 2,
        "admin": issuer.address,
        "supply": 1030,
    }
    with pytest.raises(ExecutionError, match="not an issuer"):
        alice.call("token", "mint", symbol=SYMBOL, to=alice.address, amount=1)
    check_books(ledger)
    assert ledger.verify().ok


@pytest.mark.parametrize("where", ["same ledger", "other ledger on the database"])
def test_replayed_transaction_is_rejected(
    ledger: LocalLedger,
    open_ledger: LedgerOpener,
    db: Engine,
    issuer: Submitter,
    holders: Holders,
    where: str,
) -> None:
    alice = holders[0]
    other = open_ledger() if where != "same ledger" else ledger
    other.nonce(issuer.address)  # read (and cached) before the submit below makes it stale
    stx = mint(issuer, alice, 10)
    ledger.submit(stx).raise_for_status()
    head, count = ledger.head(), stored_transactions(db)

    with pytest.raises(NonceError, match="replay"):
        other.submit(stx)
    with pytest.raises(NonceError, match="replay"):
        ledger.submit_many([mint(issuer, alice, 5), stx])

    assert (ledger.head(), other.head(), stored_transactions(db)) == (head, head, count)
    assert balance(ledger, alice) == 10


def test_transaction_replayed_within_one_batch_is_rejected(
    ledger: LocalLedger, db: Engine, issuer: Submitter, holders: Holders
) -> None:
    stx = mint(issuer, holders[0], 10)
    head, count = ledger.head(), stored_transactions(db)
    with pytest.raises(NonceError, match="replay"):
        ledger.submit_many([stx, stx])
    assert (ledger.head(), stored_transactions(db)) == (head, count)


def test_nonce_gap_is_rejected(
    ledger: LocalLedger, db: Engine, issuer: Submitter, holders: Holders
) -> None:
    nonce = ledger.nonce(issuer.address)
    ahead = Transaction(
        ledger.chain_id,
        issuer.address,
        nonce + 1,
        "token",
        "mint",
        {"symbol": SYMBOL, "to": holders[0].address, "amount": 10},
    )
    head, count = ledger.head(), stored_transactions(db)
    with pytest.raises(NonceError, match="ahead"):
        ledger.submit(ahead.sign(issuer.account))
    assert (ledger.head(), stored_transactions(db), ledger.nonce(issuer.address)) == (
        head,
        count,
        nonce,
    )


def _flip_signature_bit(stx: SignedTransaction) -> SignedTransaction:
    signature = bytearray(stx.signature)
    signature[10] ^= 0x01
    return SignedTransaction(stx.tx, stx.encoded, bytes(signature))


def _sign_with_other_key(stx: SignedTransaction) -> SignedTransaction:
    other = Account.generate()
    return SignedTransaction(stx.tx, stx.encoded, other.sign_digest(signing_digest(stx.encoded)))


def _raise_amount_after_signing(stx: SignedTransaction) -> SignedTransaction:
    tx = replace(stx.tx, args={**stx.tx.args, "amount": 10**9})
    return SignedTransaction(tx, canonical_json(tx.body()), stx.signature)


FORGERIES: dict[str, Callable[[SignedTransaction], SignedTransaction]] = {
    "flipped-bit": _flip_signature_bit,
    "other-key": _sign_with_other_key,
    "body-changed": _raise_amount_after_signing,
}


@pytest.mark.parametrize("forge", FORGERIES.values(), ids=FORGERIES)
@pytest.mark.parametrize("batch", [1, 70], ids=["alone", "last-of-70"])
def test_forged_signature_is_rejected_and_nothing_stored(
    ledger: LocalLedger,
    db: Engine,
    issuer: Submitter,
    holders: Holders,
    forge: Callable[[SignedTransaction], SignedTransaction],
    batch: int,
) -> None:
    """70 transactions take the parallel signature check; the forgery sits in its second half."""
    alice = holders[0]
    honest = [mint(issuer, alice, 1) for _ in range(batch)]
    head, count = ledger.head(), stored_transactions(db)
    with pytest.raises(SignatureError):
        ledger.submit_many([*honest[:-1], forge(honest[-1])])
    assert (ledger.head(), stored_transactions(db)) == (head, count)
    assert (balance(ledger, alice), ledger.nonce(issuer.address)) == (0, honest[0].tx.nonce)


@pytest.mark.parametrize("forge", FORGERIES.values(), ids=FORGERIES)
def test_forgery_of_a_transaction_checked_early_is_still_refused(
    ledger: LocalLedger,
    db: Engine,
    issuer: Submitter,
    holders: Holders,
    forge: Callable[[SignedTransaction], SignedTransaction],
) -> None:
    """What the ledger signed itself is known good and not checked again; a forged copy of one
    of them is another transaction, checked when it is submitted."""
    alice = holders[0]
    honest = [mint(issuer, alice, 1) for _ in range(150)]
    head, count = ledger.head(), stored_transactions(db)
    with pytest.raises(SignatureError):
        ledger.submit_many([*honest[:10], forge(honest[10]), *honest[11:]])
    assert (ledger.head(), stored_transactions(db)) == (head, count)

    receipts = ledger.submit_many(honest)
    assert all(receipt.ok for receipt in receipts)
    assert balance(ledger, alice) == 150
    assert ledger.verify().ok


@pytest.mark.parametrize("forge", FORGERIES.values(), ids=FORGERIES)
def test_forgery_among_transactions_signed_elsewhere_refuses_the_block_before_it_commits(
    ledger: LocalLedger,
    db: Engine,
    anchor: Account,
    issuer: Submitter,
    holders: Holders,
    forge: Callable[[SignedTransaction], SignedTransaction],
) -> None:
    """Signed outside the ledger, the block's 100 transactions are checked on the threads while
    it executes and its rows are written; the forgery rolls all of it back."""
    alice = holders[0]
    first = ledger.nonce(issuer.address)
    signed = [
        Transaction(
            ledger.chain_id,
            issuer.address,
            first + i,
            "token",
            "mint",
            {"symbol": SYMBOL, "to": alice.address, "amount": 1},
        ).sign(anchor)
        for i in range(100)
    ]
    head, count = ledger.head(), stored_transactions(db)
    with pytest.raises(SignatureError):
        ledger.submit_many([*signed[:60], forge(signed[60]), *signed[61:]])
    assert (ledger.head(), stored_transactions(db)) == (head, count)
    assert (balance(ledger, alice), ledger.nonce(issuer.address)) == (0, first)

    assert all(receipt.ok for receipt in ledger.submit_many(signed))
    assert balance(ledger, alice) == 100


def test_transactions_checked_early_may_go_to_any_block(
    ledger: LocalLedger, issuer: Submitter, holders: Holders
) -> None:
    """Chunks checked early do not follow block boundaries, nor the order of submission."""
    alice = holders[0]
    signed = [mint(issuer, alice, 1) for _ in range(150)]
    for start, end in ((0, 40), (40, 100), (100, 101), (101, 150)):
        assert all(receipt.ok for receipt in ledger.submit_many(signed[start:end]))
    assert balance(ledger, alice) == 150
    assert ledger.verify().ok


def test_transaction_for_another_chain_is_rejected(
    ledger: LocalLedger, db: Engine, issuer: Submitter, holders: Holders
) -> None:
    foreign = Transaction(
        ledger.chain_id + 1,
        issuer.address,
        ledger.nonce(issuer.address),
        "token",
        "mint",
        {"symbol": SYMBOL, "to": holders[0].address, "amount": 10},
    )
    head, count = ledger.head(), stored_transactions(db)
    with pytest.raises(ValidationError, match="chain"):
        ledger.submit(foreign.sign(issuer.account))
    assert (ledger.head(), stored_transactions(db)) == (head, count)


FAILURES: dict[str, tuple[str, dict[str, Any], str]] = {
    "overdraft": ("transfer", {"amount": 101}, "insufficient"),
    "unknown-method": ("steal", {"amount": 1}, "unknown method"),
    "amount-as-text": ("transfer", {"amount": "1"}, "amount"),
    "negative-amount": ("transfer", {"amount": -1}, "amount"),
}


@pytest.mark.parametrize(("method", "args", "error"), FAILURES.values(), ids=FAILURES)
def test_failing_method_is_kept_as_failed_receipt_and_advances_the_nonce(
    ledger: LocalLedger,
    issuer: Submitter,
    holders: Holders,
    method: str,
    args: dict[str, Any],
    error: str,
) -> None:
    alice, bob, _ = holders
    ledger.submit(mint(issuer, alice, 100)).raise_for_status()
    nonce = ledger.nonce(alice.address)

    receipt = ledger.submit(alice.sign("token", method, symbol=SYMBOL, to=bob.address, **args))

    assert not receipt.ok
    assert error in receipt.error
    assert (receipt.result, receipt.logs) == (None, [])
    assert receipt.block == ledger.head().height
    assert ledger.receipt(receipt.tx_hash) == receipt
    with pytest.raises(ExecutionError, match=error):
        receipt.raise_for_status()
    assert ledger.nonce(alice.address) == nonce + 1
    assert (balance(ledger, alice), balance(ledger, bob)) == (100, 0)
    ledger.submit(pay(alice, bob, 100)).raise_for_status()  # the next nonce is accepted
    assert (balance(ledger, alice), balance(ledger, bob)) == (0, 100)
    check_books(ledger)
    assert ledger.verify().ok


@pytest.fixture
def five_mints(ledger: LocalLedger, issuer: Submitter, holders: Holders) -> list[SignedTransaction]:
    """One block of five leaves: the odd one is carried up a level, the shape likeliest to break."""
    txs = [mint(issuer, holders[i % 3], i + 1) for i in range(5)]
    ledger.submit_many(txs)
    return txs


def test_inclusion_proof_checks_and_survives_json(
    ledger: LocalLedger, five_mints: list[SignedTransaction]
) -> None:
    for position, stx in enumerate(five_mints):
        proof = ledger.proof(stx.hash_hex)
        proof.check()
        assert (proof.tx_hash, proof.merkle.index) == (stx.hash_hex, position)
        assert proof.header == ledger.block(ledger.receipt(stx.hash_hex).block)
        copy = TransactionProof.from_json(json.loads(json.dumps(proof.to_json())))
        assert copy == proof
        copy.check()


def _other_hex(text: str) -> str:
    """The same hex string with its last digit changed."""
    return text[:-1] + ("1" if text[-1] == "0" else "0")


def _forge_tx_root(data: dict[str, Any]) -> str:
    """Give the header another tx root and a hash that matches it, as a careful forger would."""
    block = data["block"]
    block["tx_root"] = _other_hex(block["tx_root"])
    block["hash"] = BlockHeader(**{k: v for k, v in block.items() if k != "hash"}).compute_hash()
    forged: str = block["tx_root"]
    return forged


def _forge_root_everywhere(data: dict[str, Any]) -> None:
    data["merkle"]["root"] = _forge_tx_root(data)


def _change_second_sibling(data: dict[str, Any]) -> None:
    step = data["merkle"]["path"][1]
    step[1] = _other_hex(step[1])


def _swap_first_side(data: dict[str, Any]) -> None:
    step = data["merkle"]["path"][0]
    step[0] = "R" if step[0] == "L" else "L"


TAMPERINGS: dict[str, Callable[[dict[str, Any]], object]] = {
    "item": lambda d: d["merkle"].update(item=_other_hex(d["merkle"]["item"])),
    "sibling": _change_second_sibling,
    "side": _swap_first_side,
    "index": lambda d: d["merkle"].update(index=3),
    "dropped-step": lambda d: d["merkle"]["path"].pop(),
    "merkle-root": lambda d: d["merkle"].update(root=_other_hex(d["merkle"]["root"])),
    "header-tx-root": lambda d: d["block"].update(tx_root=_other_hex(d["block"]["tx_root"])),
    "header-rehashed": _forge_tx_root,
    "both-roots-rehashed": _forge_root_everywhere,
}


@pytest.mark.parametrize("tamper", TAMPERINGS.values(), ids=TAMPERINGS)
def test_tampered_inclusion_proof_fails(
    ledger: LocalLedger,
    five_mints: list[SignedTransaction],
    tamper: Callable[[dict[str, Any]], object],
) -> None:
    data = ledger.proof(five_mints[2].hash_hex).to_json()
    assert len(data["merkle"]["path"]) == 3
    tamper(data)
    with pytest.raises(ValidationError):
        TransactionProof.from_json(data).check()


def test_reopened_ledger_continues_from_its_head(
    ledger: LocalLedger,
    open_ledger: LedgerOpener,
    anchor: Account,
    issuer: Submitter,
    holders: Holders,
) -> None:
    alice, bob, carol = holders
    ledger.submit(mint(issuer, alice, 500)).raise_for_status()
    ledger.submit(pay(alice, bob, 200)).raise_for_status()
    assert not ledger.submit(pay(bob, carol, 1000)).ok
    head = ledger.head()
    everyone = (issuer, *holders)
    nonces = [ledger.nonce(s.address) for s in everyone]
    balances = [balance(ledger, s) for s in everyone]
    assert nonces == [3, 1, 1, 0] and balances == [0, 300, 200, 0]
    ledger.close()

    reopened = open_ledger(trust_anchors=[])  # the genesis block already names the anchors
    assert reopened.head() == head
    assert reopened.genesis().trust_anchors == (anchor.address,)
    assert [reopened.nonce(s.address) for s in everyone] == nonces
    assert [balance(reopened, s) for s in everyone] == balances
    receipt = Submitter(reopened, bob.account).call(
        "token", "transfer", symbol=SYMBOL, to=carol.address, amount=50
    )
    assert receipt.block == head.height + 1
    assert reopened.block(receipt.block).prev_hash == head.compute_hash()
    assert reopened.nonce(bob.address) == 2
    check_books(reopened)
    assert reopened.verify().ok


def test_read_racing_a_commit_leaves_no_stale_value_behind(
    ledger: LocalLedger, db: Engine, issuer: Submitter, holders: Holders
) -> None:
    """A query reads alice's balance from the database; before it stores what it read in the
    ledger's cache, a block spends from that balance. The old value must not stay cached, or
    the next block would spend money alice no longer has."""
    alice, bob, _ = holders
    ledger.submit(mint(issuer, alice, 100)).raise_for_status()
    racing = open_local_ledger(db, ledger.chain_id)  # nothing cached yet
    spender = Submitter(racing, alice.account)
    read, resume = threading.Event(), threading.Event()

    def hold_reader(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if threading.current_thread() is reader and "FROM ledger_state" in statement:
            read.set()
            resume.wait(10)

    reader = threading.Thread(target=balance, args=(racing, alice))
    event.listen(db, "after_cursor_execute", hold_reader)
    try:
        reader.start()
        assert read.wait(10)
        racing.submit(pay(spender, bob, 30)).raise_for_status()
    finally:
        resume.set()
        reader.join(10)
        event.remove(db, "after_cursor_execute", hold_reader)

    assert balance(racing, alice) == 70
    assert not racing.submit(pay(spender, bob, 80)).ok
    assert racing.verify().ok


def test_reopening_is_refused_for_another_chain(
    ledger: LocalLedger, open_ledger: LedgerOpener
) -> None:
    with pytest.raises(ConfigError, match="chain"):
        open_ledger(chain_id=ledger.chain_id + 1)


def test_new_ledger_needs_a_trust_anchor(open_ledger: LedgerOpener) -> None:
    with pytest.raises(ConfigError, match="trust anchor"):
        open_ledger(trust_anchors=[])


def test_blocks_are_cut_at_block_max_transactions(
    open_ledger: LedgerOpener, anchor: Account
) -> None:
    small = open_ledger(block_max_transactions=3)
    issuer = Submitter(small, anchor)
    found_token(issuer)
    holder = Submitter(small, Account.generate())
    start = small.head().height

    receipts = small.submit_many([mint(issuer, holder, 1) for _ in range(8)])

    assert [(r.block - start, r.position) for r in receipts] == [
        (1, 0),
        (1, 1),
        (1, 2),
        (2, 0),
        (2, 1),
        (2, 2),
        (3, 0),
        (3, 1),
    ]
    assert [small.block(start + i).tx_count for i in (1, 2, 3)] == [3, 3, 2]
    assert small.head().height == start + 3
    assert balance(small, holder) == 8
    assert small.verify().ok


def test_batch_keeps_blocks_before_the_one_that_is_refused(
    open_ledger: LedgerOpener, anchor: Account
) -> None:
    small = open_ledger(block_max_transactions=2)
    issuer = Submitter(small, anchor)
    found_token(issuer)
    holder = Submitter(small, Account.generate())
    start = small.head().height
    good = [mint(issuer, holder, 1) for _ in range(3)]
    gap = Transaction(
        small.chain_id,
        issuer.address,
        good[-1].tx.nonce + 2,
        "token",
        "mint",
        {"symbol": SYMBOL, "to": holder.address, "amount": 1},
    ).sign(anchor)

    with pytest.raises(NonceError):
        small.submit_many([*good, gap])

    assert small.head().height == start + 1  # the first block of two, not the third mint
    assert balance(small, holder) == 2
    assert small.nonce(issuer.address) == good[2].tx.nonce
    assert small.verify().ok
