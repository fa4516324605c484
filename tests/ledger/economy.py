"""A small token economy: one issuer and a few holders of a EUR token paying each other.

Journal, audit and crash tests build their histories from it, and `check_books` tells whether what
the ledger stores agrees with the receipts it handed out.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from evgi.ledger import Ledger, Receipt, SignedTransaction, Submitter
from evgi.ledger.journal import LocalLedger

SYMBOL = "EUR"
Holders = tuple[Submitter, Submitter, Submitter]


def found_token(issuer: Submitter) -> list[Receipt]:
    """Create the token and make its creator, a trust anchor, its issuer, in one block."""
    receipts = issuer.ledger.submit_many(
        [
            issuer.sign("token", "create", symbol=SYMBOL, currency="EUR"),
            issuer.sign("token", "grant_issuer", symbol=SYMBOL, issuer=issuer.address),
        ]
    )
    return [receipt.raise_for_status() for receipt in receipts]


def balance(ledger: Ledger, owner: Submitter) -> int:
    value: int = ledger.query("token", "balance_of", symbol=SYMBOL, owner=owner.address)
    return value


def mint(issuer: Submitter, to: Submitter, amount: int) -> SignedTransaction:
    return issuer.sign("token", "mint", symbol=SYMBOL, to=to.address, amount=amount)


def pay(payer: Submitter, to: Submitter, amount: int) -> SignedTransaction:
    return payer.sign("token", "transfer", symbol=SYMBOL, to=to.address, amount=amount)


class Economy:
    """Random traffic: a mint, two payments and a burn per round, some beyond the payer's means,
    so histories hold failed receipts as well as successful ones."""

    def __init__(self, issuer: Submitter, holders: Sequence[Submitter], rng: random.Random) -> None:
        self.issuer = issuer
        self.holders = list(holders)
        self.rng = rng

    def round(self) -> list[SignedTransaction]:
        rng = self.rng
        everyone = [self.issuer, *self.holders]
        txs = [mint(self.issuer, rng.choice(everyone), rng.randint(1, 1000))]
        for payer in rng.sample(self.holders, k=min(2, len(self.holders))):
            txs.append(pay(payer, rng.choice(everyone), rng.randint(1, 800)))
        txs.append(self.issuer.sign("token", "burn", symbol=SYMBOL, amount=rng.randint(1, 300)))
        return txs


def check_books(ledger: LocalLedger) -> dict[str, Receipt]:
    """Check nonces, balances and supply against the committed receipts; return the receipts.

    Balances are replayed from the Transfer logs of successful receipts, apart from the state
    machine's own bookkeeping, and must equal the stored balances; the supply must equal both
    their sum and what was minted less what was burned; each sender's nonces must run 0, 1, ...
    """
    receipts: dict[str, Receipt] = {}
    nonces: dict[str, int] = {}
    replayed: dict[str, int] = {}
    minted = 0
    for header in ledger.iter_blocks():
        for position, (stx, receipt) in enumerate(ledger.block_transactions(header.height)):
            sender = stx.tx.sender
            assert stx.tx.nonce == nonces.get(sender, 0), f"nonce gap for {sender}"
            nonces[sender] = stx.tx.nonce + 1
            assert (receipt.tx_hash, receipt.block, receipt.position) == (
                stx.hash_hex,
                header.height,
                position,
            )
            receipts[receipt.tx_hash] = receipt
            if not receipt.ok:
                assert receipt.logs == [], "a failed transaction left logs"
                continue
            for log in receipt.logs:
                if log["event"] != "Transfer" or log["symbol"] != SYMBOL:
                    continue
                amount = int(log["amount"])
                if log["from"] is None:
                    minted += amount
                else:
                    replayed[log["from"]] = replayed.get(log["from"], 0) - amount
                if log["to"] is None:
                    minted -= amount
                else:
                    replayed[log["to"]] = replayed.get(log["to"], 0) + amount
    for sender, expected in nonces.items():
        assert ledger.nonce(sender) == expected, f"stored nonce of {sender}"
    prefix = f"token/{SYMBOL}/balance/"
    stored = {key.removeprefix(prefix): value for key, value in ledger.scan(prefix).items()}
    assert stored == replayed
    assert all(value >= 0 for value in stored.values())
    info = ledger.query("token", "info", symbol=SYMBOL)
    supply = info["supply"] if info is not None else 0
    assert supply == minted == sum(stored.values())
    return receipts
