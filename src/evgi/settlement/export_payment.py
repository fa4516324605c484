"""Paying drivers for the energy their vehicles sent back to the grid.

Exported energy is metered apart from imported energy (Energy.Active.Export.Register against
Energy.Active.Import.Register), so a V2G session's import is charged by the tariff and its
export paid here: when the transaction ends, the rise of the export register over the
session, times the export price, goes from the payer's account (the CPO's or an aggregator's)
to the wallet of the driver's id token, in one ledger token transfer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import structlog

from evgi.core.errors import ValidationError
from evgi.core.events import EventBus
from evgi.core.keys import Account
from evgi.core.units import Money, energy_between
from evgi.csms import TransactionEnded
from evgi.csms.metering import ENERGY_REGISTER, energy_register_wh
from evgi.settlement.cdr import session_id_of
from evgi.settlement.wallet import Wallets
from evgi.storage.charging import ChargingStore, StoredMeterSample

log = structlog.get_logger(__name__)

EXPORT_REGISTER = "Energy.Active.Export.Register"


@dataclass(frozen=True)
class ExportPayment:
    """One session's export paid: Wh, minor units and the ledger transaction that paid them."""

    session_id: str
    station_id: str
    transaction_id: str
    id_token: str
    driver_address: str
    export_wh: int
    amount_minor: int
    tx_hash: str
    paid_at: datetime


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
        self.payments: dict[str, ExportPayment] = {}
        self._lock = asyncio.Lock()

    def attach(self, bus: EventBus) -> Callable[[], None]:
        return bus.subscribe(TransactionEnded, self.on_transaction_ended)

    def amount_minor(self, export_wh: int) -> int:
        """Export Wh at the price per kWh, rounded down to the minor unit: never overpaid."""
        return export_wh * self.price_per_kwh.minor // 1000

    async def on_transaction_ended(self, event: TransactionEnded) -> ExportPayment | None:
        async with self._lock:
            try:
                return await asyncio.to_thread(self.pay, event)
            except Exception:
                log.exception("export payment failed", transaction=event.transaction_id)
                return None

    def pay(self, event: TransactionEnded) -> ExportPayment | None:
        """Pay the session's export to the wallet of its id token; None when there is nothing
        to pay (no export, no wallet, or paid already)."""
        session_id = session_id_of(event.station_id, event.transaction_id)
        if session_id in self.payments or event.id_token is None:
            return None
        with self.wallets.store.engine.connect() as conn:
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
        self.wallets.ensure_token()
        receipt = self.wallets.submitter(self.payer).call(
            "token", "transfer", symbol=self.wallets.symbol, to=wallet.address, amount=amount
        )
        receipt.raise_for_status()
        payment = ExportPayment(
            session_id,
            event.station_id,
            event.transaction_id,
            event.id_token,
            wallet.address,
            export_wh,
            amount,
            receipt.tx_hash,
            self.wallets.clock.now(),
        )
        self.payments[session_id] = payment
        log.info("export paid", session=session_id, export_wh=export_wh, amount=amount)
        return payment
