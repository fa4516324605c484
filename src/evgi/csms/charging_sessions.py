"""Transactions as every OCPP version reports them: started, updated with meter values, ended.

1.6 stations report a transaction in Start/StopTransaction and MeterValues; 2.x stations in a
stream of TransactionEvents numbered by seqNo, which may arrive late (queued while offline) or
not at all. Both become `TransactionChange`s, applied in one database transaction each, and the
events for settlement are published once the change is stored.

Sequence numbers: a number above the next expected one records the skipped numbers as missing;
a missing number arriving late is taken and struck off; any other number already seen is a
retransmission and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy import Connection

from evgi.core.clock import Clock
from evgi.core.events import EventBus
from evgi.csms.events import (
    MeterValuesReceived,
    TransactionEnded,
    TransactionStarted,
    TransactionUpdated,
)
from evgi.csms.metering import energy_register_wh
from evgi.storage.charging import ChargingStore, ChargingTransaction, MeterSample

ChangeKind = Literal["start", "update", "end"]


@dataclass(frozen=True)
class TransactionChange:
    station_id: str
    kind: ChangeKind
    at: datetime
    transaction_id: str | None = None  # None: a 1.6 start, numbered by the CSMS
    evse_id: int | None = None
    connector_id: int | None = None
    id_token: str | None = None
    group_id: str | None = None
    meter_wh: int | None = None  # meter start (start) or stop (end), when the station says
    samples: tuple[MeterSample, ...] = ()
    seq_no: int | None = None
    offline: bool = False
    charging_state: str | None = None
    stop_reason: str | None = None
    remote_start_id: int | None = None
    reservation_id: int | None = None


@dataclass(frozen=True)
class TransactionOutcome:
    transaction: ChargingTransaction
    created: bool = False
    ended: bool = False
    duplicate: bool = False
    missing: tuple[int, ...] = field(default=())


class ChargingSessions:
    def __init__(self, store: ChargingStore, bus: EventBus, clock: Clock) -> None:
        self._store = store
        self._bus = bus
        self._clock = clock

    async def apply(self, change: TransactionChange) -> TransactionOutcome:
        outcome = await self._store.apply(self._apply, change, self._clock.now())
        if not outcome.duplicate:
            self._publish(change, outcome)
        return outcome

    async def record_samples(
        self, station_id: str, evse_id: int, samples: tuple[MeterSample, ...]
    ) -> None:
        """Meter values outside any transaction."""
        await self._store.apply(self._store.add_meter_samples, station_id, evse_id, None, samples)
        if samples:
            self._bus.publish(MeterValuesReceived(station_id, evse_id, None, samples))

    def _apply(
        self, conn: Connection, change: TransactionChange, now: datetime
    ) -> TransactionOutcome:
        store = self._store
        found = (
            None
            if change.transaction_id is None
            else store.find_transaction(conn, change.station_id, change.transaction_id)
        )
        register = energy_register_wh(change.samples)
        if found is None:
            tx = store.start_transaction(
                conn,
                change.station_id,
                change.transaction_id,
                started_at=change.at,
                now=now,
                evse_id=change.evse_id,
                connector_id=change.connector_id,
                id_token=change.id_token,
                group_id=change.group_id,
                meter_start_wh=change.meter_wh if change.kind == "start" else register,
                remote_start_id=change.remote_start_id,
                reservation_id=change.reservation_id,
            )
            missing = (
                set(range(change.seq_no))
                if change.seq_no is not None and change.kind != "start"
                else set()
            )
            last_seq = change.seq_no
            created = True
        else:
            tx = found
            created = False
            missing = set(tx.missing)
            last_seq = tx.last_seq_no
            if change.seq_no is not None and last_seq is not None:
                if change.seq_no > last_seq:
                    missing |= set(range(last_seq + 1, change.seq_no))
                    last_seq = change.seq_no
                elif change.seq_no in missing:
                    missing.discard(change.seq_no)
                else:
                    return TransactionOutcome(tx, duplicate=True, missing=tuple(sorted(missing)))
            elif change.seq_no is not None:
                last_seq = change.seq_no
        values: dict[str, object] = {
            "updated_at": now,
            "last_seq_no": last_seq,
            "missing_seq_nos": missing,
            "offline_messages": tx.offline_messages + (1 if change.offline else 0),
        }
        for name in (
            "evse_id",
            "connector_id",
            "id_token",
            "group_id",
            "remote_start_id",
            "reservation_id",
        ):
            if getattr(tx, name) is None and getattr(change, name) is not None:
                values[name] = getattr(change, name)
        if change.charging_state is not None:
            values["charging_state"] = change.charging_state
        if not created:
            if change.kind == "start":
                values["started_at"] = change.at
            if tx.meter_start_wh is None:
                start = change.meter_wh if change.kind == "start" else register
                if start is not None:
                    values["meter_start_wh"] = start
        ended = change.kind == "end" and tx.state != "ended"
        if ended:
            stop = change.meter_wh if change.meter_wh is not None else register
            if stop is None:
                earlier = [
                    s.sample for s in store.meter_samples(conn, transaction_number=tx.number)
                ]
                stop = energy_register_wh(earlier)
            values.update(
                state="ended",
                stopped_at=change.at,
                meter_stop_wh=stop,
                stop_reason=change.stop_reason,
                stop_id_token=change.id_token,
            )
        tx = store.update_transaction(conn, tx, **values)
        store.add_meter_samples(
            conn, change.station_id, change.evse_id or tx.evse_id or 0, tx.number, change.samples
        )
        return TransactionOutcome(tx, created=created, ended=ended, missing=tuple(sorted(missing)))

    def _publish(self, change: TransactionChange, outcome: TransactionOutcome) -> None:
        tx = outcome.transaction
        if outcome.created:
            self._bus.publish(
                TransactionStarted(
                    tx.station_id,
                    tx.transaction_id,
                    tx.evse_id,
                    tx.connector_id,
                    tx.id_token,
                    tx.meter_start_wh,
                    tx.started_at,
                )
            )
        if change.samples:
            self._bus.publish(
                MeterValuesReceived(
                    tx.station_id,
                    change.evse_id or tx.evse_id or 0,
                    tx.transaction_id,
                    change.samples,
                )
            )
        if not outcome.created and not outcome.ended:
            self._bus.publish(
                TransactionUpdated(
                    tx.station_id,
                    tx.transaction_id,
                    energy_register_wh(change.samples),
                    tx.charging_state,
                    change.at,
                )
            )
        if outcome.ended:
            assert tx.stopped_at is not None
            self._bus.publish(
                TransactionEnded(
                    tx.station_id,
                    tx.transaction_id,
                    tx.evse_id,
                    tx.connector_id,
                    tx.id_token,
                    tx.meter_start_wh,
                    tx.meter_stop_wh,
                    tx.started_at,
                    tx.stopped_at,
                    tx.stop_reason,
                )
            )
