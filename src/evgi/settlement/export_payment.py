"""Paying drivers for the energy their vehicles sent back to the grid.

Exported energy is metered apart from imported energy (Energy.Active.Export.Register against
Energy.Active.Import.Register), so a V2G session's import is charged by the tariff and its
export paid here: when the transaction ends, the rise of the export register over the
session, times the export price, goes from the payer's account (the CPO's or an aggregator's)
to the wallet of the driver's id token, in one ledger token transfer.

Each payment is a row of the settlement database (`evgi.storage.export_payment`), claimed
before the transfer is signed: the session id keys it, so no two processes, and no restart,
pay a session twice. A crash between the transfer and its row is settled by `recover`, which
reads the ledger by the transfer's recorded nonce and hashes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.exc import IntegrityError

from evgi.config import Settings
from evgi.core.errors import NotFoundError, ValidationError
from evgi.core.events import EventBus
from evgi.core.keys import Account
from evgi.core.units import Money, energy_between
from evgi.csms import TransactionEnded
from evgi.csms.metering import ENERGY_REGISTER, energy_register_wh
from evgi.ledger import Receipt, SignedTransaction, Transaction
from evgi.settlement.cdr import session_id_of
from evgi.settlement.wallet import Wallets
from evgi.storage.charging import ChargingStore, StoredMeterSample
from evgi.storage.export_payment import (
    CLAIMED,
    FAILED,
    PAID,
    SENDING,
    UNSETTLED,
    ExportPayment,
    claim_export_payment,
    export_payment,
    export_payments,
    record_outcome,
    record_sending,
)

log = structlog.get_logger(__name__)

EXPORT_REGISTER = "Energy.Active.Export.Register"


def exported_wh(samples: Sequence[StoredMeterSample]) -> int:
    """Rise of the whole-meter export register over the samples (0 when it never rose).

    Each export reading is read by the import register's own rules (units, multiplier, phase),
    and the rise taken as any energy between two register readings."""
    readings: list[tuple[datetime, int]] = []
    for stored in samples:
        sample = stored.sample
        if sample.measurand == EXPORT_REGISTER:
            wh = energy_register_wh((replace(sample, measurand=ENERGY_REGISTER),))
            if wh is not None:
                readings.append((sample.timestamp, wh))
    if not readings:
        return 0
    readings.sort(key=lambda reading: reading[0])
    return max(0, energy_between(readings[0][1], readings[-1][1]) or 0)


class ExportPayments:
    """Subscribe it to the bus (`attach`); each ended transaction with export is paid once."""

    def __init__(
        self,
        wallets: Wallets,
        charging: ChargingStore,
        price_per_kwh: Money,
        payer: Account | None = None,
    ) -> None:
        if price_per_kwh.currency != wallets.currency:
            raise ValidationError(
                f"the export price is in {price_per_kwh.currency}, wallets in {wallets.currency}"
            )
        if price_per_kwh.minor < 0:
            raise ValidationError("the export price must not be negative")
        self.wallets = wallets
        self.charging = charging
        self.price_per_kwh = price_per_kwh
        self.payer = payer or wallets.cpo
        self.db = wallets.store.engine
        self._lock = asyncio.Lock()

    @classmethod
    def of_settings(
        cls, wallets: Wallets, charging: ChargingStore, settings: Settings
    ) -> ExportPayments | None:
        """The payments of `evgi serve` (`settlement_export_price`, `settlement_export_payer`);
        None when no export price is set."""
        if settings.settlement_export_price is None:
            return None
        name = settings.settlement_export_payer
        payer = None if name is None else wallets.account(wallets.get(name))
        return cls(wallets, charging, Money.parse(settings.settlement_export_price), payer)

    def attach(self, bus: EventBus) -> Callable[[], None]:
        """Settle what an earlier run left unsettled, then pay each transaction that ends."""
        self.recover()
        return bus.subscribe(TransactionEnded, self.on_transaction_ended)

    def amount_minor(self, export_wh: int) -> int:
        """Export Wh at the price per kWh, rounded down to the minor unit: never overpaid."""
        return export_wh * self.price_per_kwh.minor // 1000

    def payment(self, session_id: str) -> ExportPayment | None:
        with self.db.connect() as conn:
            return export_payment(conn, session_id)

    def payments(self, wallet: str | None = None) -> list[ExportPayment]:
        """Payments, newest first; of one wallet when given."""
        with self.db.connect() as conn:
            return export_payments(conn, wallet=wallet)

    async def on_transaction_ended(self, event: TransactionEnded) -> ExportPayment | None:
        async with self._lock:
            try:
                return await asyncio.to_thread(self.pay, event)
            except Exception:
                log.exception("export payment failed", transaction=event.transaction_id)
                return None

    def pay(self, event: TransactionEnded) -> ExportPayment | None:
        """Pay the session's export to the wallet of its id token; None when there is nothing
        to pay (no export, no wallet) or the session's payment is claimed already."""
        session_id = session_id_of(event.station_id, event.transaction_id)
        if event.id_token is None or self.payment(session_id) is not None:
            return None
        with self.db.connect() as conn:
            wallet = self.wallets.store.wallet_of_token(conn, event.id_token)
        if wallet is None:
            return None
        transaction = self.charging.run(
            self.charging.find_transaction, event.station_id, event.transaction_id
        )
        if transaction is None:
            return None
        samples = self.charging.run(
            self.charging.meter_samples, transaction_number=transaction.number
        )
        export_wh = exported_wh(samples)
        amount = self.amount_minor(export_wh)
        if amount <= 0:
            return None
        claim = ExportPayment(
            session_id=session_id,
            station_id=event.station_id,
            transaction_id=event.transaction_id,
            id_token=event.id_token,
            wallet=wallet.name,
            driver_address=wallet.address,
            payer=self.payer.address,
            export_wh=export_wh,
            amount_minor=amount,
            currency=self.wallets.currency,
            state=CLAIMED,
            nonce=None,
            sent_hashes="",
            tx_hash=None,
            claimed_at=self.wallets.clock.now(),
            paid_at=None,
            note=None,
        )
        try:
            with self.db.begin() as conn:
                claim_export_payment(conn, claim)
        except IntegrityError:
            return None  # another process claimed the session's payment first
        return self._send(claim, self.wallets.submitter(self.payer).sign)

    def recover(self) -> list[ExportPayment]:
        """Settle the payments whose outcome is not recorded (a crash, or the ledger out of
        reach); returns them as they are now. One the ledger cannot settle yet waits for the
        next call."""
        with self.db.connect() as conn:
            unsettled = export_payments(conn, states=UNSETTLED)
        settled = []
        for payment in unsettled:
            if payment.payer != self.payer.address:
                log.warning("export payment of another payer", session=payment.session_id)
                continue
            try:
                settled.append(self._settle(payment))
            except Exception:
                log.exception("export payment still unsettled", session=payment.session_id)
        return settled

    def _settle(self, payment: ExportPayment) -> ExportPayment:
        """Finish a claimed or sent payment. Its transfers share one nonce of the payer, so at
        most one of them can be on the ledger: one with a receipt is the payment. With none,
        the transfer is signed again at the payer's next nonce: the recorded one while it is
        free, or a later one once another transaction took it, which leaves none of the
        earlier transfers a way onto the ledger."""
        ledger = self.wallets.ledger
        following = ledger.nonce(self.payer.address)
        if payment.state == SENDING:
            # The hashes are read after the nonce: a transfer landing between the two reads is
            # found here, so a taken nonce without a receipt is another transaction's.
            for tx_hash in payment.hashes:
                receipt = self._receipt(tx_hash)
                if receipt is not None:
                    return self._record(payment.session_id, receipt)
            # A transfer still in an EVM node's pool holds the recorded nonce and may land:
            # signing another now could pay twice. It is settled by a later call.
            if any(ledger.pending(tx_hash) for tx_hash in payment.hashes):
                log.info("export transfer not in a block yet", session=payment.session_id)
                return payment
        return self._send(payment, self._signer_at(following))

    def _signer_at(self, nonce: int) -> Callable[..., SignedTransaction]:
        ledger = self.wallets.ledger

        def sign(module: str, method: str, **args: Any) -> SignedTransaction:
            tx = Transaction(ledger.chain_id, self.payer.address, nonce, module, method, args)
            return ledger.sign(tx, self.payer)

        return sign

    def _send(
        self, payment: ExportPayment, sign: Callable[..., SignedTransaction]
    ) -> ExportPayment:
        """Sign the transfer, record its nonce and hash, then send it. The record is a compare-
        and-set on what the payment's row held: a process that lost a race sends nothing."""
        self.wallets.ensure_token()
        stx = sign(
            "token",
            "transfer",
            symbol=self.wallets.symbol,
            to=payment.driver_address,
            amount=payment.amount_minor,
        )
        nonce = stx.tx.nonce
        known = payment.hashes if nonce == payment.nonce else []
        hashes = known if stx.hash_hex in known else [*known, stx.hash_hex]
        sent = replace(payment, state=SENDING, nonce=nonce, sent_hashes=" ".join(hashes))
        with self.db.begin() as conn:
            if not record_sending(conn, payment, sent):
                current = export_payment(conn, payment.session_id)
                assert current is not None
                return current
        try:
            receipt = self.wallets.ledger.submit(stx)
        except Exception:
            log.exception("export transfer unconfirmed, left to recover", session=sent.session_id)
            return sent
        return self._record(payment.session_id, receipt)

    def _receipt(self, tx_hash: str) -> Receipt | None:
        try:
            return self.wallets.ledger.receipt(tx_hash)
        except NotFoundError:
            return None

    def _record(self, session_id: str, receipt: Receipt) -> ExportPayment:
        state, note = (PAID, None) if receipt.ok else (FAILED, receipt.error)
        at = self.wallets.clock.now()
        with self.db.begin() as conn:
            record_outcome(conn, session_id, state, receipt.tx_hash, at, note)
            paid = export_payment(conn, session_id)
        assert paid is not None
        if receipt.ok:
            log.info("export paid", session=session_id, amount=paid.amount_minor)
        else:
            log.warning("export transfer refused by the ledger", session=session_id, error=note)
        return paid
