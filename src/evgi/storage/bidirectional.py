"""OCPP 2.1 bidirectional records the CSMS keeps: every NotifyEVChargingNeeds and NotifyDERAlarm.

The needs are kept as a history per station and EVSE, the newest being the EV's current needs
while the transaction it came in is running: dispatch in any process bounds its setpoints by
them, and they survive a restart of the CSMS, which the station does not repeat them after.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Boolean,
    Connection,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    insert,
    select,
)
from sqlalchemy.orm import Mapped, mapped_column

from evgi.core.canonical import compact_json, parse_json
from evgi.storage.charging import CHARGING_TRANSACTIONS
from evgi.storage.models import Base, SerialKey, UtcDateTime

ACTIVE = "active"


class EvChargingNeedsRow(Base):
    __tablename__ = "csms_ev_charging_needs"
    __table_args__ = (Index("ix_csms_ev_needs_evse", "station_id", "evse_id", "id"),)

    id: Mapped[int] = mapped_column(SerialKey, primary_key=True, autoincrement=True)
    station_id: Mapped[str] = mapped_column(ForeignKey("csms_stations.id", ondelete="CASCADE"))
    evse_id: Mapped[int] = mapped_column(Integer)
    # The transaction running at the EVSE when the needs came, if one was.
    transaction_id: Mapped[str | None] = mapped_column(String(36))
    requested_energy_transfer: Mapped[str] = mapped_column(String(32))
    control_mode: Mapped[str | None] = mapped_column(String(32))
    departure_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    max_charge_w: Mapped[float | None] = mapped_column(Float)
    max_discharge_w: Mapped[float | None] = mapped_column(Float)
    needs: Mapped[str] = mapped_column(Text)  # the chargingNeeds object, snake_case JSON
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    answer: Mapped[str] = mapped_column(String(32))


class DerAlarmRow(Base):
    __tablename__ = "csms_der_alarms"
    __table_args__ = (Index("ix_csms_der_alarms_station", "station_id", "id"),)

    id: Mapped[int] = mapped_column(SerialKey, primary_key=True, autoincrement=True)
    station_id: Mapped[str] = mapped_column(ForeignKey("csms_stations.id", ondelete="CASCADE"))
    control_type: Mapped[str] = mapped_column(String(48))
    grid_event_fault: Mapped[str | None] = mapped_column(String(48))
    alarm_ended: Mapped[bool] = mapped_column(Boolean)
    timestamp: Mapped[datetime] = mapped_column(UtcDateTime)
    extra_info: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)


EV_CHARGING_NEEDS = cast(Table, EvChargingNeedsRow.__table__)
DER_ALARMS = cast(Table, DerAlarmRow.__table__)


def transfers_back(mode: str) -> bool:
    """Whether an EnergyTransferMode carries power back: 2.1 names every such mode *_BPT*."""
    return "BPT" in mode


@dataclass(frozen=True)
class EvChargingNeeds:
    """NotifyEVChargingNeeds as stored: the whole chargingNeeds object (snake_case) plus what
    discharge needs at hand. `max_discharge_w` is the EV's maxDischargePower, if it sent one."""

    station_id: str
    evse_id: int
    transaction_id: str | None
    requested_energy_transfer: str
    control_mode: str | None
    departure_at: datetime | None
    max_charge_w: float | None
    max_discharge_w: float | None
    needs: dict[str, Any]
    received_at: datetime
    answer: str

    @property
    def bidirectional(self) -> bool:
        return transfers_back(self.requested_energy_transfer)


@dataclass(frozen=True)
class DerAlarm:
    """NotifyDERAlarm: a DER control the station could not keep, or its end."""

    station_id: str
    control_type: str
    grid_event_fault: str | None
    alarm_ended: bool
    timestamp: datetime
    extra_info: str | None
    received_at: datetime


def _needs_of(row: Any) -> EvChargingNeeds:
    values = dict(row._mapping)
    del values["id"]
    values["needs"] = parse_json(values["needs"])
    return EvChargingNeeds(**values)


def _alarm_of(row: Any) -> DerAlarm:
    values = dict(row._mapping)
    del values["id"]
    return DerAlarm(**values)


def _running_transaction(conn: Connection, station_id: str, evse_id: int) -> str | None:
    """The station's id of the transaction running at the EVSE, if one is."""
    t = CHARGING_TRANSACTIONS
    return conn.execute(
        select(t.c.transaction_id)
        .where(t.c.station_id == station_id, t.c.evse_id == evse_id, t.c.state == ACTIVE)
        .order_by(t.c.number.desc())
        .limit(1)
    ).scalar()


def record_charging_needs(conn: Connection, needs: EvChargingNeeds) -> EvChargingNeeds:
    """Store the needs with the transaction running at their EVSE; returns them as stored."""
    stored = replace(
        needs, transaction_id=_running_transaction(conn, needs.station_id, needs.evse_id)
    )
    values = asdict(stored) | {"needs": compact_json(stored.needs)}
    conn.execute(insert(EV_CHARGING_NEEDS).values(**values))
    return stored


def current_charging_needs(
    conn: Connection, station_id: str, evse_id: int
) -> EvChargingNeeds | None:
    """The newest needs of the EV at the EVSE; None once the transaction they came in has
    ended (the EV has left). Needs that came with no transaction running hold until newer
    needs come."""
    latest = charging_needs(conn, station_id, evse_id, limit=1)
    if not latest or latest[0].transaction_id is None:
        return latest[0] if latest else None
    t = CHARGING_TRANSACTIONS
    state = conn.execute(
        select(t.c.state).where(
            t.c.station_id == station_id, t.c.transaction_id == latest[0].transaction_id
        )
    ).scalar()
    return latest[0] if state == ACTIVE else None


def charging_needs(
    conn: Connection, station_id: str, evse_id: int | None = None, limit: int = 100
) -> list[EvChargingNeeds]:
    """The station's needs, newest first; of one EVSE when `evse_id` is given."""
    t = EV_CHARGING_NEEDS
    query = select(t).where(t.c.station_id == station_id).order_by(t.c.id.desc()).limit(limit)
    if evse_id is not None:
        query = query.where(t.c.evse_id == evse_id)
    return [_needs_of(row) for row in conn.execute(query)]


def record_der_alarm(conn: Connection, alarm: DerAlarm) -> None:
    conn.execute(insert(DER_ALARMS).values(**asdict(alarm)))


def der_alarms(conn: Connection, station_id: str, limit: int = 100) -> list[DerAlarm]:
    """The station's alarms and their ends, newest first."""
    t = DER_ALARMS
    query = select(t).where(t.c.station_id == station_id).order_by(t.c.id.desc()).limit(limit)
    return [_alarm_of(row) for row in conn.execute(query)]
