"""Prepaid wallets: the charging token, its issuer, and the accounts of drivers, CPO and eMSP.

The charging token of a currency (`EVEUR` for EUR) counts integer minor units of it. The eMSP is
its issuer: it mints tokens into a driver's wallet against a top-up paid to it, and burns what a
driver withdraws (the driver's transfer back to the eMSP, then the burn), so the supply always
equals the money the eMSP holds for its drivers.

Custody: a driver's wallet is an account whose key the eMSP keeps in the platform keystore
(`wallet-<name>`), so the platform signs the driver's escrow when a linked id token starts a
session; id tokens are linked to a wallet by the eMSP (`link`). The CPO and the eMSP sign with
their own keys (`cpo`, `emsp`).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select

from evgi.core.canonical import parse_json
from evgi.core.clock import Clock, from_unix
from evgi.core.errors import NotFoundError, ValidationError
from evgi.core.keys import Account
from evgi.core.units import MINOR_UNITS, Money
from evgi.identity.keystore import Keystore
from evgi.ledger import Ledger, Receipt, Submitter
from evgi.storage.models import BLOCKS, TRANSACTIONS
from evgi.storage.settlement import SettlementStore, Wallet

if TYPE_CHECKING:
    from evgi.app import Platform

CPO_KEY = "cpo"
EMSP_KEY = "emsp"
_WALLET_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,56}$")
_ESCROW_EVENTS = ("EscrowOpened", "EscrowSettled", "EscrowRefunded")


def token_symbol(currency: str) -> str:
    """The charging token of an ISO 4217 currency."""
    if currency not in MINOR_UNITS:
        raise ValidationError(f"unsupported currency {currency!r} (ISO 4217 code)")
    return f"EV{currency}"


def wallet_key(name: str) -> str:
    """The keystore alias of a driver's custodied key."""
    if not _WALLET_NAME.match(name):
        raise ValidationError(
            f"wallet name {name!r}: up to 57 lower-case letters, digits, '.', '_' or '-'"
        )
    return f"wallet-{name}"


class InsufficientFunds(ValidationError):
    """A withdrawal of more than the wallet can spend: refused before anything is signed."""

    code = "insufficient_funds"


@dataclass(frozen=True)
class HistoryEntry:
    """One movement of a wallet's tokens, read from a ledger receipt."""

    at: datetime
    block: int
    tx_hash: str
    kind: str  # topup, withdrawal, transfer-in, transfer-out, escrow, payment, fee, refund
    amount_minor: int  # signed: what the account's spendable balance changed by
    reference: str  # counterparty address ("" for a top-up's mint) or escrow id

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "block": self.block,
            "tx_hash": self.tx_hash,
            "kind": self.kind,
            "amount_minor": self.amount_minor,
            "reference": self.reference,
        }


class Wallets:
    """Wallet accounts on the ledger, their keys and their id tokens."""

    def __init__(
        self,
        ledger: Ledger,
        keystore: Keystore,
        store: SettlementStore,
        clock: Clock,
        currency: str,
        anchor: Account,
        submitter: Callable[[Account], Submitter] | None = None,
    ) -> None:
        self.ledger = ledger
        self.keystore = keystore
        self.store = store
        self.clock = clock
        self.currency = currency
        self.symbol = token_symbol(currency)
        self.anchor = anchor
        self.emsp = keystore.get_or_create(EMSP_KEY)
        self.cpo = keystore.get_or_create(CPO_KEY)
        self._submitter = submitter or _submitter_cache(ledger)
        self._accounts: dict[str, Account] = {}
        self._lock = threading.Lock()
        self._token_ready = False

    @classmethod
    def for_platform(cls, platform: Platform, currency: str) -> Wallets:
        from evgi.app import GENESIS_KEY

        return cls(
            platform.ledger,
            platform.keystore,
            SettlementStore(platform.db),
            platform.clock,
            currency,
            platform.account(GENESIS_KEY),
            platform.submitter,
        )

    def submitter(self, account: Account) -> Submitter:
        return self._submitter(account)

    def ensure_token(self) -> None:
        """Create the charging token and make the eMSP its issuer, once per ledger."""
        if self._token_ready:
            return
        with self._lock:
            if self.ledger.query("token", "info", symbol=self.symbol) is None:
                admin = self.submitter(self.anchor)
                for receipt in self.ledger.submit_many(
                    [
                        admin.sign("token", "create", symbol=self.symbol, currency=self.currency),
                        admin.sign(
                            "token", "grant_issuer", symbol=self.symbol, issuer=self.emsp.address
                        ),
                    ]
                ):
                    receipt.raise_for_status()
            self._token_ready = True

    # wallets and their tokens

    def open(self, name: str) -> Wallet:
        """A new wallet: a custodied key in the keystore and its row."""
        alias = wallet_key(name)
        with self.store.engine.begin() as conn:
            if self.store.find_wallet(conn, name) is not None:
                raise ValidationError(f"a wallet named {name!r} already exists")
            account = self.keystore.get_or_create(alias)
            wallet = self.store.add_wallet(conn, name, account.address, self.clock.now())
        self._accounts[account.address] = account  # in hand: no need to decrypt it again
        return wallet

    def find(self, name: str) -> Wallet | None:
        with self.store.engine.connect() as conn:
            return self.store.find_wallet(conn, name)

    def get(self, name: str) -> Wallet:
        found = self.find(name)
        if found is None:
            raise NotFoundError(f"no wallet named {name!r} (top it up to open it)")
        return found

    def link(self, name: str, id_token: str) -> None:
        """Charge the sessions `id_token` starts to wallet `name`."""
        if not id_token or len(id_token) > 255:
            raise ValidationError("an id token has 1 to 255 characters")
        with self.store.engine.begin() as conn:
            self.store.link_token(conn, id_token, name, self.clock.now())

    def tokens(self, name: str) -> list[str]:
        with self.store.engine.connect() as conn:
            return self.store.tokens_of(conn, name)

    def account(self, wallet: Wallet) -> Account:
        """The wallet's custodied key, loaded once."""
        account = self._accounts.get(wallet.address)
        if account is None:
            account = self.keystore.load(wallet_key(wallet.name))
            self._accounts[wallet.address] = account
        return account

    def account_at(self, address: str) -> Account:
        """The custodied key of the wallet at `address`."""
        account = self._accounts.get(address)
        if account is not None:
            return account
        with self.store.engine.connect() as conn:
            wallet = self.store.find_wallet_at(conn, address)
        if wallet is None:
            raise NotFoundError(f"no wallet has address {address}")
        return self.account(wallet)

    # money

    def money(self, minor: int) -> Money:
        return Money(self.currency, minor)

    def _amount(self, amount: Money) -> int:
        if amount.currency != self.currency:
            raise ValidationError(f"wallets hold {self.currency}, not {amount.currency}")
        if amount.minor <= 0:
            raise ValidationError(f"amount must be positive, not {amount}")
        return amount.minor

    def balance_of(self, address: str) -> Money:
        minor = int(self.ledger.query("token", "balance_of", symbol=self.symbol, owner=address))
        return self.money(minor)

    def balance(self, name: str) -> Money:
        return self.balance_of(self.get(name).address)

    def topup(self, name: str, amount: Money) -> Receipt:
        """The eMSP mints `amount` into the wallet against the driver's payment; opens the
        wallet on its first top-up."""
        minor = self._amount(amount)
        wallet = self.find(name) or self.open(name)
        self.ensure_token()
        issuer = self.submitter(self.emsp)
        return issuer.call("token", "mint", symbol=self.symbol, to=wallet.address, amount=minor)

    def withdraw(self, name: str, amount: Money) -> list[Receipt]:
        """The driver returns `amount` to the eMSP, which burns it and pays the money out."""
        minor = self._amount(amount)
        wallet = self.get(name)
        balance = self.balance_of(wallet.address)
        if balance.minor < minor:
            raise InsufficientFunds(f"wallet {name!r} holds {balance}, less than {amount}")
        driver = self.submitter(self.account(wallet))
        returned = driver.call(
            "token", "transfer", symbol=self.symbol, to=self.emsp.address, amount=minor
        )
        burned = self.submitter(self.emsp).call("token", "burn", symbol=self.symbol, amount=minor)
        return [returned, burned]

    def history(self, name: str) -> list[HistoryEntry]:
        """Every movement of the wallet's tokens, oldest first, from the ledger's receipts: the
        local engine's journal, or on an EVM network the transactions its node finds by the
        token contract's Transfer events (each movement there is one)."""
        address = self.get(name).address
        if self.ledger.engine_name == "local":
            logged = self._journal(TRANSACTIONS.c.logs.contains(address, autoescape=True))
            # A settlement's log names the escrow, not its payer or payee.
            parties = {
                log["escrowId"]
                for row in logged
                for log in row.logs
                if log["event"] == "EscrowOpened" and address in (log["payer"], log["payee"])
            }
            if parties:
                seen = {row.tx_hash for row in logged}
                logged += [
                    row
                    for row in self._journal(
                        or_(
                            *(
                                TRANSACTIONS.c.logs.contains(f'"escrowId":"{e}"', autoescape=True)
                                for e in parties
                            )
                        )
                    )
                    if row.tx_hash not in seen
                ]
                logged.sort(key=lambda row: (row.block, row.position))
        else:
            logged = self._node_transactions(address)
        escrows: dict[str, dict[str, Any] | None] = {}
        entries = []
        for row in logged:
            in_escrow = any(log["event"] in _ESCROW_EVENTS for log in row.logs)
            for log in row.logs:
                if log["event"] in _ESCROW_EVENTS:
                    escrow_id = log["escrowId"]
                    if escrow_id not in escrows:
                        escrows[escrow_id] = self.ledger.query("escrow", "get", escrow_id=escrow_id)
                    moves = self._escrow_moves(log, escrows[escrow_id], address)
                elif log["event"] == "Transfer" and not in_escrow:
                    # On an EVM network an escrow's funds move through the escrow contract's
                    # balance; its events say what the parties' balances did.
                    moves = self._transfer_moves(log, address)
                else:
                    continue
                entries += [
                    HistoryEntry(row.at, row.block, row.tx_hash, kind, amount, reference)
                    for kind, amount, reference in moves
                ]
        return entries

    def escrowed(self, name: str) -> Money:
        """What the wallet's open escrows hold: paid in at a session's start, not yet settled
        or refunded, so neither spendable nor gone."""
        held = 0
        for escrow_id in {e.reference for e in self.history(name) if e.kind == "escrow"}:
            record = self.ledger.query("escrow", "get", escrow_id=escrow_id)
            if record is not None and record["state"] == "open":
                held += int(record["amount"])
        return self.money(held)

    def _journal(self, condition: Any) -> list[_Logged]:
        """Successful journal transactions matching `condition`, with their block times."""
        query = (
            select(
                TRANSACTIONS.c.hash,
                TRANSACTIONS.c.block_height,
                TRANSACTIONS.c.position,
                TRANSACTIONS.c.logs,
                BLOCKS.c.timestamp,
            )
            .join(BLOCKS, BLOCKS.c.height == TRANSACTIONS.c.block_height)
            .where(TRANSACTIONS.c.status == 1, condition)
            .order_by(TRANSACTIONS.c.block_height, TRANSACTIONS.c.position)
        )
        with self.store.engine.connect() as conn:
            return [
                _Logged(
                    r.hash, r.block_height, r.position, from_unix(r.timestamp), parse_json(r.logs)
                )
                for r in conn.execute(query)
            ]

    def _node_transactions(self, address: str) -> list[_Logged]:
        """The EVM node's transactions moving `address`'s tokens, with their receipts' logs."""
        from evgi.ledger.evm import EvmLedger

        if not isinstance(self.ledger, EvmLedger):
            raise ValidationError(f"no wallet history on the {self.ledger.engine_name} ledger")
        hashes = [
            tx_hash
            for field in ("from", "to")
            for tx_hash in self.ledger.event_transactions("token", "Transfer", {field: address})
        ]
        times: dict[int, datetime] = {}
        logged = []
        for tx_hash in dict.fromkeys(hashes):
            receipt = self.ledger.receipt(tx_hash)
            if receipt.block not in times:
                times[receipt.block] = from_unix(self.ledger.block(receipt.block).timestamp)
            logged.append(
                _Logged(
                    tx_hash, receipt.block, receipt.position, times[receipt.block], receipt.logs
                )
            )
        logged.sort(key=lambda row: (row.block, row.position))
        return logged

    def _transfer_moves(self, log: dict[str, Any], address: str) -> list[tuple[str, int, str]]:
        if log["symbol"] != self.symbol:
            return []
        amount = int(log["amount"])
        moves = []
        if log["from"] == address:
            kind = "withdrawal" if log["to"] == self.emsp.address else "transfer-out"
            moves.append((kind, -amount, log["to"] or ""))
        if log["to"] == address:
            moves.append(
                ("topup" if log["from"] is None else "transfer-in", amount, log["from"] or "")
            )
        return moves

    def _escrow_moves(
        self, log: dict[str, Any], record: dict[str, Any] | None, address: str
    ) -> list[tuple[str, int, str]]:
        """What one escrow event did to `address`'s balance; the escrow's record names its
        parties, which its settlement's event does not."""
        if record is None or record["symbol"] != self.symbol:
            return []
        event, escrow_id = log["event"], log["escrowId"]
        moves: list[tuple[str, int, str]] = []
        if event == "EscrowOpened" and record["payer"] == address:
            moves.append(("escrow", -int(log["amount"]), escrow_id))
        elif event == "EscrowSettled":
            for kind, party, amount in (
                ("payment", record["payee"], log["payeeAmount"]),
                ("fee", log["feePayee"], log["feeAmount"]),
                ("refund", record["payer"], log["refund"]),
            ):
                if party == address and int(amount):
                    moves.append((kind, int(amount), escrow_id))
        elif event == "EscrowRefunded" and record["payer"] == address:
            moves.append(("refund", int(log["amount"]), escrow_id))
        return moves


@dataclass(frozen=True)
class _Logged:
    """A successful transaction's place, time and logs (the local engine's log shape)."""

    tx_hash: str
    block: int
    position: int
    at: datetime
    logs: list[dict[str, Any]]


def _submitter_cache(ledger: Ledger) -> Callable[[Account], Submitter]:
    """One submitter per account, so nonces stay in step across calls."""
    submitters: dict[str, Submitter] = {}
    lock = threading.Lock()

    def submitter(account: Account) -> Submitter:
        with lock:
            if account.address not in submitters:
                submitters[account.address] = Submitter(ledger, account)
            return submitters[account.address]

    return submitter
