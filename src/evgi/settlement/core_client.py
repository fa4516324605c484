"""The core client: the CPO-side piece that turns CSMS events into escrow moves on the ledger.

Rules, in the order a session meets them:

- Only id tokens linked to a wallet (`Wallets.link`) are prepaid; any other token is left to the
  CSMS's own decision and never touches the ledger.
- Authorization (a CSMS hook): a prepaid token is refused `NoCredit` when its wallet holds less
  than the hold (the amount pre-authorised per session, `SettlementTerms.hold`), and
  `NotAtThisLocation` where the station has no tariff; the refusal carries the reason.
- Price before start: `quote` prices a planned session on the station's tariff and locks it; a
  start within `quote_validity` of the driver's quote at that station uses the quoted tariff,
  any other start locks the station's tariff of that moment.
- Start (TransactionStarted): the driver's custodied key signs `escrow.open` of the hold for the
  session, payable to the station's payee and operated by the CPO. The escrow id is derived from
  the session id, so one session can never hold two escrows.
- End (TransactionEnded): the cost under the locked tariff is priced from the station's stored
  meter values, the CDR is built and stored, and the CPO's `escrow.settle` pays the cost to the
  payee and the eMSP's fee (basis points of the cost, on top of it) to the eMSP, refunds the rest
  to the driver and cites the CDR's digest, in one ledger transaction. A cost above the hold is
  capped at the hold and the shortfall noted on the session.
- Timeout: a session whose transaction has not ended `session_timeout` after its start is
  settled on the meter values stored so far (its last reading taken as its end), or refunded if
  nothing was metered. The escrow's deadline on the ledger is `escrow_grace` later still, after
  which anyone may refund it, so a driver's money never stays locked by a CPO that went away.
- Crash safety: a session's row is written before each ledger transaction and updated after its
  receipt; `recover` asks the ledger about every session caught in between and finishes it. The
  ledger refuses a second settlement of an escrow, so nothing is ever paid twice.

Events are queued to one worker thread that drains the queue into batches: a batch's escrows go
to the ledger in one `submit_many` (one block on the local engine); its transactions and meter
values are read in one query each, and its CDRs and rows written in one database transaction, so
throughput grows with load instead of paying a commit or a query per session.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog

from evgi.config import Settings
from evgi.core.batches import take_batch
from evgi.core.clock import Clock
from evgi.core.digest import keccak256
from evgi.core.errors import NotFoundError, ValidationError
from evgi.core.events import EventBus
from evgi.core.keys import normalize_address
from evgi.core.units import Money
from evgi.csms import (
    AuthorizationRequest,
    Refusal,
    TransactionEnded,
    TransactionStarted,
)
from evgi.csms.authorization import Authorization
from evgi.csms.metering import energy_register_wh
from evgi.ledger import Receipt, SignedTransaction
from evgi.settlement.cdr import Cdr, build_cdr, session_id_of
from evgi.settlement.charging_session import ChargingSession, Interval, MeterSample, location_zone
from evgi.settlement.price_quote import LockedTariff, Quote, SessionPlan, quote_session
from evgi.settlement.tariff import Tariff, parse_tariff
from evgi.settlement.wallet import Wallets
from evgi.storage.charge_records import CdrStore
from evgi.storage.charging import ChargingStore, ChargingTransaction, StoredMeterSample
from evgi.storage.settlement import (
    FAILED,
    OPEN,
    OPENING,
    REFUNDED,
    SETTLED,
    SETTLING,
    SettlementSession,
    StationTariff,
    StoredQuote,
    Wallet,
)

if TYPE_CHECKING:
    from evgi.app import Platform

log = structlog.get_logger(__name__)

_SWEEP: Any = object()  # a wake-up with no event: time to apply the timeout rule

_BASIS_POINTS = 10_000


@dataclass(frozen=True)
class SettlementTerms:
    hold: Money  # pre-authorised per session
    fee_bp: int = 0  # the eMSP's fee, in basis points of the session's cost, paid on top of it
    session_timeout: timedelta = timedelta(hours=24)
    escrow_grace: timedelta = timedelta(hours=24)
    quote_validity: timedelta = timedelta(minutes=15)

    def __post_init__(self) -> None:
        if self.hold.minor <= 0:
            raise ValidationError(f"the hold per session must be positive, not {self.hold}")
        if not 0 <= self.fee_bp <= _BASIS_POINTS:
            raise ValidationError("the eMSP fee is 0 to 10000 basis points of the cost")
        if self.session_timeout <= timedelta(0) or self.escrow_grace < timedelta(0):
            raise ValidationError("the session timeout must be positive and the grace not negative")

    @classmethod
    def from_settings(cls, settings: Settings) -> SettlementTerms:
        return cls(
            Money.parse(settings.settlement_hold),
            settings.settlement_fee_bp,
            timedelta(seconds=settings.settlement_session_timeout),
            timedelta(seconds=settings.settlement_session_timeout),
        )

    @property
    def escrow_timeout_s(self) -> int:
        return int((self.session_timeout + self.escrow_grace).total_seconds())

    def shares(self, cost: int) -> tuple[int, int]:
        """(to the payee, to the eMSP) for a session that cost `cost`, within the hold."""
        fee = cost * self.fee_bp // _BASIS_POINTS
        payee = min(cost, self.hold.minor)
        return payee, min(fee, self.hold.minor - payee)


def escrow_id_of(session_id: str) -> str:
    """The one escrow id a session can have on the ledger."""
    return "chg-" + keccak256(session_id.encode()).hex()[:40]


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


class CoreClient:
    """Attach it to a CSMS (`attach`), run its worker (`start`), and give stations a tariff."""

    def __init__(
        self,
        wallets: Wallets,
        charging: ChargingStore,
        terms: SettlementTerms,
        clock: Clock,
        batch_size: int = 1000,
        sweep_interval: float = 60.0,
    ) -> None:
        if terms.hold.currency != wallets.currency:
            raise ValidationError(
                f"the hold is in {terms.hold.currency}, the wallets in {wallets.currency}"
            )
        self.wallets = wallets
        self.ledger = wallets.ledger
        self.store = wallets.store
        self.engine = wallets.store.engine
        self.charging = charging
        self.cdrs = CdrStore(self.engine, clock)
        self.terms = terms
        self.clock = clock
        self.batch_size = batch_size
        self.sweep_interval = sweep_interval
        self.operator = wallets.submitter(wallets.cpo)
        self._tariffs: dict[str, LockedTariff] = {}
        self._queue: queue.SimpleQueue[TransactionStarted | TransactionEnded | None] = (
            queue.SimpleQueue()
        )
        self._pending = 0
        self._idle = threading.Condition()
        self._thread: threading.Thread | None = None

    @classmethod
    def for_platform(cls, platform: Platform, charging: ChargingStore) -> CoreClient:
        """The core client of `evgi serve`, on the platform's ledger, keys and settings."""
        terms = SettlementTerms.from_settings(platform.settings)
        return cls(
            Wallets.for_platform(platform, terms.hold.currency), charging, terms, platform.clock
        )

    # tariffs and prices

    def set_tariff(
        self, station_id: str, tariff: Tariff, time_zone: str, payee: str | None = None
    ) -> StationTariff:
        """What `station_id` charges from now on; sessions already started keep their lock."""
        if tariff.currency != self.wallets.currency:
            raise ValidationError(
                f"tariff {tariff.id} is in {tariff.currency}; wallets here hold "
                f"{self.wallets.currency}"
            )
        location_zone(time_zone)
        document = tariff.model_dump_json(exclude_defaults=True)
        with self.engine.begin() as conn:
            return self.store.put_station_tariff(
                conn,
                station_id,
                document,
                time_zone,
                payee or self.wallets.cpo.address,
                self.clock.now(),
            )

    def _tariff(self, document: str) -> LockedTariff:
        """The parsed tariff, its digest and its pricing, worked out once per distinct document."""
        known = self._tariffs.get(document)
        if known is None:
            known = self._tariffs[document] = LockedTariff.of(parse_tariff(document))
        return known

    def quote(
        self,
        station_id: str,
        id_token: str,
        energy_wh: int,
        duration: timedelta,
        max_power_w: int,
    ) -> Quote:
        """The price of a planned session at `station_id`, locked for the token's next start
        there within the quote's validity."""
        now = self.clock.now()
        with self.engine.begin() as conn:
            station = self.store.station_tariff(conn, station_id)
            if station is None:
                raise NotFoundError(f"station {station_id} has no tariff")
            quote = quote_session(
                self._tariff(station.tariff).tariff,
                SessionPlan(now, energy_wh, duration, max_power_w, station.time_zone),
            )
            self.store.add_quote(
                conn,
                station_id,
                id_token,
                station.tariff,
                quote.locked.digest,
                quote.cost.total_incl_vat.minor,
                quote.cost.currency,
                now,
            )
        return quote

    # authorization

    async def authorize(self, request: AuthorizationRequest) -> Refusal | None:
        """The CSMS hook: refuse a prepaid token without the credit for a session's hold."""
        return await asyncio.to_thread(self.refusal, request.station_id, request.id_token)

    def refusal(self, station_id: str, id_token: str) -> Refusal | None:
        with self.engine.connect() as conn:
            wallet = self.store.wallet_of_token(conn, id_token)
            if wallet is None:
                return None
            running = self.store.sessions(conn, states=(OPENING, OPEN), id_token=id_token)
            if any(s.station_id == station_id for s in running):
                return None  # this session's hold is already in escrow
            tariff = self.store.station_tariff(conn, station_id)
        if tariff is None:
            return Refusal(
                "NotAtThisLocation",
                f"station {station_id} has no tariff, so prepaid wallets cannot pay there",
            )
        balance = self.wallets.balance_of(wallet.address)
        if balance.minor < self.terms.hold.minor:
            return Refusal(
                "NoCredit",
                f"wallet {wallet.name!r} holds {balance}, less than the {self.terms.hold} "
                "held for a session",
            )
        return None

    # events

    def attach(self, bus: EventBus, authorization: Authorization) -> Callable[[], None]:
        """Consult the balance on authorization and follow transactions; returns the detach."""
        detach = [
            authorization.add_hook(self.authorize),
            bus.subscribe(TransactionStarted, self.enqueue),
            bus.subscribe(TransactionEnded, self.enqueue),
        ]

        def undo() -> None:
            for remove in detach:
                remove()

        return undo

    def enqueue(self, event: TransactionStarted | TransactionEnded) -> None:
        with self._idle:
            self._pending += 1
        self._queue.put(event)

    def start(self) -> None:
        """Finish what a previous run left half done, then follow events on a worker thread."""
        if self._thread is not None:
            return
        self.wallets.ensure_token()
        self.recover()
        self._thread = threading.Thread(target=self._run, name="settlement", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Process what is queued, then stop the worker."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every queued event has been handled; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def _run(self) -> None:
        last_sweep = self.clock.now()
        while True:
            try:
                first = self._queue.get(timeout=self.sweep_interval)
            except queue.Empty:
                first = _SWEEP
            if first is None:
                return
            # A sweep wake-up found the queue empty: nothing to batch, only the timeout rule.
            batch, stop = (
                ([], False) if first is _SWEEP else take_batch(self._queue, first, self.batch_size)
            )
            self._handle(batch)
            now = self.clock.now()
            if (now - last_sweep).total_seconds() >= self.sweep_interval:
                last_sweep = now
                self._guarded(self.expire, now)
                self._guarded(self.recover)
            if stop:
                return

    def _handle(self, batch: list[Any]) -> None:
        starts = [e for e in batch if isinstance(e, TransactionStarted)]
        ends = [e for e in batch if isinstance(e, TransactionEnded)]
        try:
            if starts:
                self._guarded(self.open_sessions, starts)
            if ends:
                self._guarded(
                    self.settle, [session_id_of(e.station_id, e.transaction_id) for e in ends]
                )
        finally:
            with self._idle:
                self._pending -= len(batch)
                self._idle.notify_all()

    @staticmethod
    def _guarded(work: Callable[..., Any], *args: Any) -> None:
        try:
            work(*args)
        except Exception:
            # A session left half done stays in its state; `recover` finishes it.
            log.exception("settlement batch failed", work=work.__name__)

    # escrow at the start

    def open_sessions(self, events: Iterable[TransactionStarted]) -> list[SettlementSession]:
        """Lock the tariff and move each prepaid session's hold into its escrow."""
        now = self.clock.now()
        since = now - self.terms.quote_validity
        opened: list[SettlementSession] = []
        with self.engine.begin() as conn:
            wanted = {
                session_id_of(e.station_id, e.transaction_id): e
                for e in events
                if e.id_token is not None
            }
            known = self.store.find_sessions(conn, list(wanted))
            tokens = [e.id_token for e in wanted.values() if e.id_token is not None]
            quotes = self.store.open_quotes(conn, tokens, since)
            wallets = self.store.wallets_of_tokens(conn, tokens)
            stations: dict[str, StationTariff | None] = {}
            for session_id, event in wanted.items():
                if session_id in known:
                    continue  # an event delivered twice
                assert event.id_token is not None
                if event.station_id not in stations:
                    stations[event.station_id] = self.store.station_tariff(conn, event.station_id)
                quote = quotes.pop((event.id_token, event.station_id), None)
                session = self._new_session(
                    session_id,
                    event,
                    wallets.get(event.id_token),
                    stations[event.station_id],
                    quote,
                )
                if session is not None:
                    opened.append(session)
            self.store.add_sessions(conn, opened)
        return self._open_escrows(opened)

    def _new_session(
        self,
        session_id: str,
        event: TransactionStarted,
        wallet: Wallet | None,
        station: StationTariff | None,
        quote: StoredQuote | None,
    ) -> SettlementSession | None:
        assert event.id_token is not None
        if wallet is None:
            return None  # not a prepaid token
        if station is None:
            log.warning("prepaid session at a station without tariff", session=session_id)
            return None
        document = station.tariff if quote is None else quote.tariff
        digest = self._tariff(document).digest
        return SettlementSession(
            session_id=session_id,
            station_id=event.station_id,
            transaction_id=event.transaction_id,
            id_token=event.id_token,
            payer=wallet.address,
            payee=station.payee,
            escrow_id=escrow_id_of(session_id),
            currency=self.wallets.currency,
            hold_minor=self.terms.hold.minor,
            tariff=document,
            tariff_digest=digest,
            time_zone=station.time_zone,
            quote_id=None if quote is None else quote.id,
            state=OPENING,
            opened_at=self.clock.now(),
        )

    def _open_escrows(self, sessions: list[SettlementSession]) -> list[SettlementSession]:
        signed: list[SignedTransaction] = []
        for session in sessions:
            payer = self.wallets.submitter(self.wallets.account_at(session.payer))
            signed.append(
                payer.sign(
                    "escrow",
                    "open",
                    escrow_id=session.escrow_id,
                    symbol=self.wallets.symbol,
                    payee=session.payee,
                    operator=self.wallets.cpo.address,
                    amount=session.hold_minor,
                    timeout=self.terms.escrow_timeout_s,
                )
            )
        return self._record_outcomes(sessions, self._submit(signed), OPEN)

    # settlement at the end

    def settle(self, session_ids: Sequence[str]) -> list[SettlementSession]:
        """Settle the ended transactions' open escrows from their CDRs."""
        return self._close(session_ids, timed_out=False)

    def expire(self, now: datetime) -> list[SettlementSession]:
        """The timeout rule: settle (or refund) open sessions started `session_timeout` ago."""
        with self.engine.connect() as conn:
            stale = self.store.sessions(
                conn, states=(OPEN,), opened_before=now - self.terms.session_timeout
            )
        return self._close([s.session_id for s in stale], timed_out=True)

    def _close(self, session_ids: Sequence[str], timed_out: bool) -> list[SettlementSession]:
        """Price the batch's sessions on one read of their transactions and meter values, then
        store their CDRs and their settling rows in one database transaction, before the
        ledger sees any of them."""
        settling: list[tuple[SettlementSession, Cdr]] = []
        refunding: list[SettlementSession] = []
        with self.engine.connect() as conn:
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
        for session in sessions:
            transaction = transactions.get((session.station_id, session.transaction_id))
            readings = [] if transaction is None else samples.get(transaction.number, [])
            closing = self._closing(session, transaction, readings, timed_out)
            if isinstance(closing, tuple):
                settling.append(closing)
            elif closing is not None:
                refunding.append(closing)
        ready = [session for session, _cdr in settling]
        with self.engine.begin() as conn:
            # A refund needs no record kept before it: it is decided again after a crash.
            self.cdrs.save_many(conn, [cdr for _session, cdr in settling])
            self.store.update_sessions(conn, ready)
        return self._send_closings(ready, refunding)

    def _closing(
        self,
        session: SettlementSession,
        transaction: ChargingTransaction | None,
        samples: list[StoredMeterSample],
        timed_out: bool,
    ) -> tuple[SettlementSession, Cdr] | SettlementSession | None:
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
        pricing = self._tariff(session.tariff).pricing
        breakdown = pricing.price(metered_session(transaction, samples, session.time_zone))
        cost = breakdown.total_incl_vat
        cdr = build_cdr(
            transaction,
            samples,
            breakdown,
            session.tariff_digest,
            driver=session.payer,
            cpo=session.payee,
            emsp=self.wallets.emsp.address,
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
        return settling, cdr

    def _send_closings(
        self, settling: list[SettlementSession], refunding: list[SettlementSession]
    ) -> list[SettlementSession]:
        signed = [self._settle_tx(s) for s in settling]
        signed += [self.operator.sign("escrow", "refund", escrow_id=s.escrow_id) for s in refunding]
        receipts = self._submit(signed)
        return self._record_outcomes(
            settling, receipts[: len(settling)], SETTLED
        ) + self._record_outcomes(refunding, receipts[len(settling) :], REFUNDED)

    def _settle_tx(self, session: SettlementSession) -> SignedTransaction:
        assert session.payee_minor is not None and session.fee_minor is not None
        assert session.record_hash is not None
        return self.operator.sign(
            "escrow",
            "settle",
            escrow_id=session.escrow_id,
            payee_amount=session.payee_minor,
            fee_amount=session.fee_minor,
            fee_payee=self.wallets.emsp.address,
            record_hash=session.record_hash,
        )

    # ledger round trips

    def _submit(self, signed: list[SignedTransaction]) -> list[Receipt]:
        if not signed:
            return []
        try:
            return self.ledger.submit_many(signed)
        except Exception:
            # The batch did not reach the ledger: its signers must not count its nonces as
            # used, or every later transaction of theirs (`recover`'s too) leaves a gap.
            for sender in {stx.tx.sender for stx in signed}:
                if sender == normalize_address(self.operator.address):
                    self.operator.resync()
                else:
                    self.wallets.submitter(self.wallets.account_at(sender)).resync()
            raise

    def _record_outcomes(
        self, sessions: list[SettlementSession], receipts: list[Receipt], success: str
    ) -> list[SettlementSession]:
        """Store what the ledger did; a refused transaction is explained by the escrow's state
        (closed already: adopt it) or marks the session failed with the ledger's reason."""
        now = self.clock.now()
        closed = None if success == OPEN else now
        done: list[SettlementSession] = []
        moved: list[str] = []  # rows written in full before their transaction: only the state moves
        changed: list[SettlementSession] = []
        for session, receipt in zip(sessions, receipts, strict=True):
            if not receipt.ok:
                outcome = self._adopt(session, receipt.error, now)
                changed.append(outcome)
            else:
                outcome = replace(session, state=success, closed_at=closed)
                if session.state in (OPENING, SETTLING):
                    moved.append(session.session_id)
                else:
                    changed.append(outcome)
            done.append(outcome)
        with self.engine.begin() as conn:
            self.store.move_sessions(conn, moved, success, closed)
            self.store.update_sessions(conn, changed)
        return done

    def _adopt(self, session: SettlementSession, error: str, now: datetime) -> SettlementSession:
        escrow = self.ledger.query("escrow", "get", escrow_id=session.escrow_id)
        if escrow is None:
            return replace(session, state=FAILED, closed_at=now, note=error)
        state = {"open": OPEN, "settled": SETTLED, "refunded": REFUNDED}[escrow["state"]]
        if state == OPEN and session.state == SETTLING:
            return replace(session, note=error)  # retried by `recover`
        if state == OPEN:
            return replace(session, state=OPEN)
        return replace(
            session,
            state=state,
            closed_at=now,
            payee_minor=int(escrow["payeeAmount"]),
            fee_minor=int(escrow["feeAmount"]),
            record_hash=escrow["recordHash"],
        )

    # recovery

    def recover(self) -> list[SettlementSession]:
        """After a restart: learn from the ledger what became of sessions caught between their
        row and their receipt, resend what never reached it, and settle sessions whose
        transaction ended while nobody listened."""
        now = self.clock.now()
        with self.engine.connect() as conn:
            pending = self.store.sessions(conn, states=(OPENING, SETTLING))
        reopen: list[SettlementSession] = []
        resettle: list[SettlementSession] = []
        learned: list[SettlementSession] = []
        for session in pending:
            escrow = self.ledger.query("escrow", "get", escrow_id=session.escrow_id)
            if session.state == OPENING:
                if escrow is None:
                    reopen.append(session)
                else:
                    learned.append(replace(session, state=OPEN))
            elif escrow is not None and escrow["state"] == "open":
                resettle.append(session)
            else:
                learned.append(self._adopt(session, "closed before the restart", now))
        with self.engine.begin() as conn:
            self.store.update_sessions(conn, learned)
        self._open_escrows(reopen)
        self._send_closings(resettle, [])
        with self.engine.connect() as conn:
            open_ids = [s.session_id for s in self.store.sessions(conn, states=(OPEN,))]
        return self.settle(open_ids)

    # reading

    def sessions(self, id_token: str | None = None) -> list[SettlementSession]:
        with self.engine.connect() as conn:
            return self.store.sessions(conn, id_token=id_token)

    def session(self, station_id: str, transaction_id: str) -> SettlementSession:
        with self.engine.connect() as conn:
            return self.store.session(conn, session_id_of(station_id, transaction_id))
