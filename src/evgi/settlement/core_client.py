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

Events are queued to one worker thread that drains the queue into batches (up to 3,000 events,
about a second and a half of work under full load): a batch's escrows go to the ledger in one
`submit_many` (one block on the local engine); its transactions and meter values are read in one
query each, and its CDRs and rows written in one database transaction, so throughput grows with
load instead of paying a commit or a query per session. The closing of a batch's ends (pricing,
CDRs, the CPO's signatures: `evgi.settlement.closing`) runs in a process of its own on the local
engine, while the worker stores and settles the batch before.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog

from evgi.core.batches import take_batch
from evgi.core.clock import Clock
from evgi.core.digest import keccak256
from evgi.core.errors import NotFoundError, ValidationError
from evgi.core.events import EventBus
from evgi.core.keys import normalize_address
from evgi.csms import (
    AuthorizationRequest,
    Refusal,
    TransactionEnded,
    TransactionStarted,
)
from evgi.csms.authorization import Authorization
from evgi.ledger import Receipt, SignedTransaction
from evgi.settlement.cdr import session_id_of
from evgi.settlement.charging_session import location_zone
from evgi.settlement.closing import Closer, ClosingProcess, Closings
from evgi.settlement.price_quote import Quote, SessionPlan, quote_session
from evgi.settlement.tariff import Tariff
from evgi.settlement.terms import SettlementTerms
from evgi.settlement.wallet import Wallets
from evgi.storage.charge_records import CdrStore
from evgi.storage.charging import ChargingStore
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


@dataclass(frozen=True)
class _InFlight:
    """A batch of `count` events whose ends are being closed; its closings' transactions take
    the operator's nonces from `first_nonce` on."""

    count: int
    future: Future[Closings] | None = None
    first_nonce: int = 0


def escrow_id_of(session_id: str) -> str:
    """The one escrow id a session can have on the ledger."""
    return "chg-" + keccak256(session_id.encode()).hex()[:40]


class CoreClient:
    """Attach it to a CSMS (`attach`), run its worker (`start`), and give stations a tariff."""

    def __init__(
        self,
        wallets: Wallets,
        charging: ChargingStore,
        terms: SettlementTerms,
        clock: Clock,
        batch_size: int = 3000,
        sweep_interval: float = 60.0,
        closing_process: bool = False,
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
        chain_id = self.ledger.chain_id
        emsp = wallets.emsp.address
        self.closer = Closer(
            self.store, charging, terms, emsp, wallets.cpo, chain_id, self.ledger.sign
        )
        self._process: ClosingProcess | None = None
        if closing_process:
            if self.ledger.engine_name != "local":
                raise ValidationError(
                    "a closing process signs for the local ledger engine only, "
                    f"not for the {self.ledger.engine_name} engine"
                )
            url = self.engine.url.render_as_string(hide_password=False)
            self._process = ClosingProcess(url, terms, emsp, wallets.cpo, chain_id)
        self._queue: queue.SimpleQueue[TransactionStarted | TransactionEnded | None] = (
            queue.SimpleQueue()
        )
        self._pending = 0
        self._idle = threading.Condition()
        self._thread: threading.Thread | None = None

    @classmethod
    def for_platform(cls, platform: Platform, charging: ChargingStore) -> CoreClient:
        """The core client of `evgi serve`, on the platform's ledger, keys and settings."""
        settings = platform.settings
        terms = SettlementTerms.from_settings(settings)
        return cls(
            Wallets.for_platform(platform, terms.hold.currency),
            charging,
            terms,
            platform.clock,
            closing_process=settings.settlement_closing_process and settings.ledger == "local",
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
                self.closer.tariff(station.tariff).tariff,
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
        if self._process is not None:
            self._process.start()
        self._thread = threading.Thread(target=self._run, name="settlement", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Process what is queued, then stop the worker (and the closing process)."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()
        if self._process is not None:
            self._process.stop()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every queued event has been handled; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def _run(self) -> None:
        """Batches flow through two stages: a batch's ends are closed (by the closing process,
        when there is one) while the worker opens the next batch's escrows and settles the
        previous batch's closings; a batch waits for the next one only while events queue."""
        last_sweep = self.clock.now()
        closing: _InFlight | None = None
        while True:
            if closing is not None and self._queue.empty():
                self._land(self._collect(closing))
                closing = None
            try:
                first = self._queue.get(timeout=self.sweep_interval)
            except queue.Empty:
                first = _SWEEP
            # A sweep wake-up found the queue empty: nothing to batch, only the timeout rule.
            batch, stop = (
                ([], False)
                if first is _SWEEP or first is None
                else take_batch(self._queue, first, self.batch_size)
            )
            closing = self._handle(batch, closing)
            now = self.clock.now()
            sweep = (now - last_sweep).total_seconds() >= self.sweep_interval
            if closing is not None and (sweep or stop or first is None):
                self._land(self._collect(closing))
                closing = None
            if sweep:
                last_sweep = now
                self._guarded(self.expire, now)
                self._guarded(self.recover)
            if stop or first is None:
                return

    def _handle(self, batch: list[Any], previous: _InFlight | None) -> _InFlight | None:
        """Open the batch's escrows, send its ends to be closed, and settle what `previous`
        closed meanwhile; returns the batch's closing, still under way."""
        starts = [e for e in batch if isinstance(e, TransactionStarted)]
        ends = [e for e in batch if isinstance(e, TransactionEnded)]
        if starts:
            self._guarded(self.open_sessions, starts)
        landing = None if previous is None else self._collect(previous)
        # The operator's nonces of the previous batch are known now: this batch's follow them.
        ended = [session_id_of(e.station_id, e.transaction_id) for e in ends]
        closing = self._send_to_close(ended, len(batch)) if ended else _InFlight(len(batch))
        if landing is not None:
            self._land(landing)
        return closing

    def _send_to_close(self, session_ids: list[str], count: int) -> _InFlight:
        first = self.operator.next_nonce()
        future: Future[Closings]
        try:
            if self._process is not None:
                future = self._process.close(session_ids, False, first)
            else:
                future = Future()
                future.set_result(self.closer.close(session_ids, False, first))
        except Exception:
            log.exception("settlement batch failed", work="close")
            return _InFlight(count)
        return _InFlight(count, future, first)

    def _collect(self, closing: _InFlight) -> tuple[int, Closings | None]:
        """The closings of a batch sent to be closed, its signed transactions counted as the
        operator's; None when closing failed (its sessions stay open for `recover`)."""
        if closing.future is None:
            return closing.count, None
        try:
            closings = closing.future.result()
        except Exception:
            log.exception("settlement batch failed", work="close")
            return closing.count, None
        self.operator.used(closing.first_nonce, len(closings.signed))
        return closing.count, closings

    def _land(self, landing: tuple[int, Closings | None]) -> None:
        """Store and settle a batch's closings, then count its events as handled."""
        count, closings = landing
        try:
            if closings is not None:
                self._guarded(self._settle_closings, closings)
        finally:
            with self._idle:
                self._pending -= count
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
        digest = self.closer.tariff(document).digest
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
        first = self.operator.next_nonce()
        closings = self.closer.close(session_ids, timed_out, first)
        self.operator.used(first, len(closings.signed))
        return self._settle_closings(closings)

    def _settle_closings(self, closings: Closings) -> list[SettlementSession]:
        """Store the CDRs and the settling rows in one database transaction before the ledger
        sees any of their settlements."""
        ready = [session for session, _cdr in closings.settling]
        with self.engine.begin() as conn:
            # A refund needs no record kept before it: it is decided again after a crash.
            self.cdrs.save_many(conn, [cdr for _session, cdr in closings.settling])
            self.store.update_sessions(conn, ready)
        return self._send_closings(ready, closings.refunding, closings.signed)

    def _send_closings(
        self,
        settling: list[SettlementSession],
        refunding: list[SettlementSession],
        signed: list[SignedTransaction],
    ) -> list[SettlementSession]:
        receipts = self._submit(signed)
        return self._record_outcomes(
            settling, receipts[: len(settling)], SETTLED
        ) + self._record_outcomes(refunding, receipts[len(settling) :], REFUNDED)

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
        first = self.operator.next_nonce()
        signed = self.closer.sign(resettle, [], first)
        self.operator.used(first, len(signed))
        self._send_closings(resettle, [], signed)
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
