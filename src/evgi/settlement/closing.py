"""Closing sessions: an ended session priced from its meter values under its locked tariff, its
CDR built, and the CPO's settlement (or refund) of its escrow signed.

This is most of settlement's work, and none of it writes: the core client stores the CDRs and
sends the transactions. So on the local ledger engine a closer can run in a process of its own
(`ClosingProcess`), pricing one batch of sessions on one core while the core client's worker
stores and settles the previous batch on the other.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from datetime import datetime

from evgi.core.heap import settle_heap
from evgi.core.keys import Account
from evgi.core.units import Money
from evgi.csms.metering import energy_register_wh
from evgi.ledger import SignedTransaction, Transaction
from evgi.settlement.cdr import Cdr, build_cdr
from evgi.settlement.charging_session import ChargingSession, Interval, MeterSample
from evgi.settlement.price_quote import LockedTariff
from evgi.settlement.tariff import parse_tariff
from evgi.settlement.terms import SettlementTerms
from evgi.storage.charging import ChargingStore, ChargingTransaction, StoredMeterSample
from evgi.storage.database import create_database_engine
from evgi.storage.settlement import OPEN, REFUNDED, SETTLING, SettlementSession, SettlementStore

Signer = Callable[[Transaction, Account], SignedTransaction]


def metered_session(
    transaction: ChargingTransaction, samples: Sequence[StoredMeterSample], time_zone: str
) -> ChargingSession:
    """What the tariff is applied to: the transaction's energy register readings between its
    start and stop; it was charging wherever the register rose, parking elsewhere."""
    assert transaction.stopped_at is not None
    start, stop = transaction.started_at, transaction.stopped_at
    readings: dict[datetime, int] = {}
    if transaction.meter_start_wh is not None:
        readings[start] = transaction.meter_start_wh
    for stored in samples:
        at = stored.sample.timestamp
        if start < at < stop:
            wh = energy_register_wh((stored.sample,))
            if wh is not None:
                readings[at] = max(wh, readings.get(at, wh))
    if transaction.meter_stop_wh is not None:
        readings[stop] = transaction.meter_stop_wh
    points: list[MeterSample] = []
    rising: list[list[datetime]] = []  # [start, end] of each run of rising readings
    highest: int | None = None
    for at in sorted(readings):
        wh = readings[at] if highest is None else max(highest, readings[at])
        if points and wh > points[-1].energy_wh:
            if rising and rising[-1][1] == points[-1].at:
                rising[-1][1] = at
            else:
                rising.append([points[-1].at, at])
        points.append(MeterSample(at, wh))
        highest = wh
    charging = tuple(Interval(begin, end) for begin, end in rising)
    return ChargingSession(start, stop, time_zone, tuple(points), charging)


def _ended_by_timeout(
    transaction: ChargingTransaction, samples: Sequence[StoredMeterSample]
) -> ChargingTransaction:
    """A transaction that never ended, ended at its last stored reading (or its start)."""
    stop, register = transaction.started_at, transaction.meter_start_wh
    for stored in samples:
        wh = energy_register_wh((stored.sample,))
        if wh is not None and stored.sample.timestamp >= stop:
            stop, register = stored.sample.timestamp, wh
    return replace(
        transaction,
        state="ended",
        stopped_at=stop,
        meter_stop_wh=register,
        stop_reason="Timeout",
    )


@dataclass(frozen=True)
class SealedCdr:
    """A CDR as the store keeps it, its canonical bytes and their digest: what crosses back from
    the closing process, lighter than the parsed document."""

    session_id: str
    station_id: str
    stop: datetime
    canonical: bytes
    record_hash: str

    @classmethod
    def of(cls, cdr: Cdr) -> SealedCdr:
        return cls(cdr.session_id, cdr.station_id, cdr.stop, cdr.canonical, cdr.digest())

    def digest(self) -> str:
        return self.record_hash


@dataclass(frozen=True)
class Closings:
    """A batch's sessions settling (each with its CDR) and refunding, and their transactions
    signed in that order: the settlements, then the refunds."""

    settling: list[tuple[SettlementSession, SealedCdr]]
    refunding: list[SettlementSession]
    signed: list[SignedTransaction]


class Closer:
    """Closes sessions for the CPO's `operator` key, which signs their escrows' settlements."""

    def __init__(
        self,
        store: SettlementStore,
        charging: ChargingStore,
        terms: SettlementTerms,
        emsp: str,
        operator: Account,
        chain_id: int,
        sign: Signer,
    ) -> None:
        self.store = store
        self.charging = charging
        self.terms = terms
        self.emsp = emsp
        self.operator = operator
        self.chain_id = chain_id
        self._sign = sign
        self._tariffs: dict[str, LockedTariff] = {}

    def tariff(self, document: str) -> LockedTariff:
        """The parsed tariff, its digest and its pricing, worked out once per distinct document."""
        known = self._tariffs.get(document)
        if known is None:
            known = self._tariffs[document] = LockedTariff.of(parse_tariff(document))
        return known

    def close(self, session_ids: Sequence[str], timed_out: bool, first_nonce: int) -> Closings:
        """Price the open sessions among `session_ids` on one read of their transactions and
        meter values; their transactions take the operator's nonces from `first_nonce` on."""
        with self.store.engine.connect() as conn:
            found = self.store.find_sessions(conn, list(dict.fromkeys(session_ids)))
            # not prepaid, not yet funded, or already closed: nothing to do
            sessions = [s for s in found.values() if s.state == OPEN]
            transactions = self.charging.find_transactions(
                conn, [(s.station_id, s.transaction_id) for s in sessions]
            )
            samples: dict[int | None, list[StoredMeterSample]] = {}
            for sample in self.charging.meter_samples(
                conn, transaction_numbers=[t.number for t in transactions.values()]
            ):
                samples.setdefault(sample.transaction_number, []).append(sample)
        settling: list[tuple[SettlementSession, SealedCdr]] = []
        refunding: list[SettlementSession] = []
        for session in sessions:
            transaction = transactions.get((session.station_id, session.transaction_id))
            readings = [] if transaction is None else samples.get(transaction.number, [])
            closing = self._closing(session, transaction, readings, timed_out)
            if isinstance(closing, tuple):
                settling.append(closing)
            elif closing is not None:
                refunding.append(closing)
        signed = self.sign([session for session, _cdr in settling], refunding, first_nonce)
        return Closings(settling, refunding, signed)

    def _closing(
        self,
        session: SettlementSession,
        transaction: ChargingTransaction | None,
        samples: list[StoredMeterSample],
        timed_out: bool,
    ) -> tuple[SettlementSession, SealedCdr] | SettlementSession | None:
        """The session settling with its CDR, the CDR's digest and its shares fixed (stored with
        the CDR before the ledger sees it); refunding when nothing can be billed; None while its
        transaction is still running."""
        if transaction is None:
            return replace(session, state=REFUNDED, note="the CSMS has no such transaction")
        note = None
        if transaction.state != "ended":
            if not timed_out:
                return None
            transaction = _ended_by_timeout(transaction, samples)
            if transaction.stopped_at == transaction.started_at:
                return replace(
                    session, state=REFUNDED, note="refunded by timeout: nothing was ever metered"
                )
            note = (
                f"settled by timeout: no end {self.terms.session_timeout} after the start, "
                "billed up to the last meter reading"
            )
        if (
            transaction.meter_start_wh is None
            or transaction.meter_stop_wh is None
            or transaction.meter_stop_wh < transaction.meter_start_wh
        ):
            return replace(session, state=REFUNDED, note="no meter readings to bill")
        pricing = self.tariff(session.tariff).pricing
        breakdown = pricing.price(metered_session(transaction, samples, session.time_zone))
        cost = breakdown.total_incl_vat
        cdr = build_cdr(
            transaction,
            samples,
            breakdown,
            session.tariff_digest,
            driver=session.payer,
            cpo=session.payee,
            emsp=self.emsp,
            escrow_id=session.escrow_id,
        )
        payee, fee = self.terms.shares(cost.minor)
        if payee < cost.minor:
            note = (note + "; " if note else "") + (
                f"cost {cost} exceeds the {self.terms.hold} held: capped, "
                f"{Money(cost.currency, cost.minor - payee)} unpaid"
            )
        settling = replace(
            session,
            state=SETTLING,
            cost_minor=cost.minor,
            payee_minor=payee,
            fee_minor=fee,
            record_hash=cdr.digest(),
            note=note,
        )
        return settling, SealedCdr.of(cdr)

    def sign(
        self,
        settling: Sequence[SettlementSession],
        refunding: Sequence[SettlementSession],
        first_nonce: int,
    ) -> list[SignedTransaction]:
        """The operator's settlement of each settling escrow (its shares and CDR digest as
        stored), then its refund of each refunding one, from nonce `first_nonce` on."""
        calls: list[tuple[str, dict[str, object]]] = []
        for session in settling:
            assert session.payee_minor is not None and session.fee_minor is not None
            assert session.record_hash is not None
            calls.append(
                (
                    "settle",
                    {
                        "escrow_id": session.escrow_id,
                        "payee_amount": session.payee_minor,
                        "fee_amount": session.fee_minor,
                        "fee_payee": self.emsp,
                        "record_hash": session.record_hash,
                    },
                )
            )
        calls += [("refund", {"escrow_id": session.escrow_id}) for session in refunding]
        sender = self.operator.address
        return [
            self._sign(
                Transaction(self.chain_id, sender, first_nonce + i, "escrow", method, args),
                self.operator,
            )
            for i, (method, args) in enumerate(calls)
        ]


_closer: Closer | None = None  # the closing process's own


def _start_closer(
    url: str, terms: SettlementTerms, emsp: str, operator_key: bytes, chain_id: int
) -> None:
    global _closer
    # Ctrl-C reaches the whole process group: the parent is the one to stop it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is not None:  # a parent killed outright cannot stop it: it stops by itself
        threading.Thread(target=_exit_after, args=(parent,), daemon=True).start()
    engine = create_database_engine(url)
    _closer = Closer(
        SettlementStore(engine),
        ChargingStore(engine),
        terms,
        emsp,
        Account(operator_key),
        chain_id,
        Transaction.sign,
    )
    settle_heap()


def _exit_after(parent: multiprocessing.process.BaseProcess) -> None:
    parent.join()
    os._exit(0)


def _close_in_process(session_ids: Sequence[str], timed_out: bool, first_nonce: int) -> Closings:
    assert _closer is not None, "the closing process starts with its closer"
    return _closer.close(session_ids, timed_out, first_nonce)


def _ready() -> bool:
    return _closer is not None


class ClosingProcess:
    """A closer in a process of its own, for the local ledger engine, whose transactions any
    process can sign (the engine still checks every signature of a block before it commits).

    The process reads the database itself and gets the operator's key when it starts; it is
    started afresh if it dies, and whatever it was closing stays open for `recover`.
    """

    def __init__(
        self, url: str, terms: SettlementTerms, emsp: str, operator: Account, chain_id: int
    ) -> None:
        self._start_args = (url, terms, emsp, operator.private_key, chain_id)
        self._pool: ProcessPoolExecutor | None = None

    def start(self) -> None:
        """Start the process and wait until its closer is ready (imports take a second)."""
        if self._pool is None:
            # spawned, not forked: the parent runs threads (the CSMS, the ledger's checks)
            self._pool = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_closer,
                initargs=self._start_args,
            )
        self._pool.submit(_ready).result()

    def close(
        self, session_ids: Sequence[str], timed_out: bool, first_nonce: int
    ) -> Future[Closings]:
        args = (list(session_ids), timed_out, first_nonce)
        try:
            return self._running().submit(_close_in_process, *args)
        except BrokenProcessPool:  # it died since the last batch: start it again
            self.stop()
            return self._running().submit(_close_in_process, *args)

    def _running(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self.start()
        assert self._pool is not None
        return self._pool

    def stop(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
