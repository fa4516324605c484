"""Charging-station data the CSMS keeps: stations, connectors, tokens, transactions, meter values.

Tables are written through SQLAlchemy Core: the CSMS writes a row for nearly every message a
station sends, and the ORM's per-object bookkeeping would only cost time. Every operation takes
a `Connection`, so one database transaction can carry many of them (see `ChargingStore.apply`).
"""

from __future__ import annotations

import asyncio
import functools
import queue
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    Connection,
    Engine,
    Float,
    ForeignKey,
    Index,
    Insert,
    Integer,
    Select,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    Update,
    bindparam,
    delete,
    insert,
    select,
    tuple_,
    update,
)
from sqlalchemy.orm import Mapped, mapped_column

from evgi.core.batches import take_batch
from evgi.core.canonical import compact_json, parse_json
from evgi.core.errors import NotFoundError, ValidationError
from evgi.core.units import energy_between
from evgi.storage.models import Base, SerialKey, UtcDateTime
from evgi.storage.rows import execute, execute_many, fetch, insert_numbered

P = ParamSpec("P")
T = TypeVar("T")

# -- tables --------------------------------------------------------------------------------


class StationRow(Base):
    __tablename__ = "csms_stations"

    id: Mapped[str] = mapped_column(String(48), primary_key=True)
    ocpp_version: Mapped[str | None] = mapped_column(String(16))
    vendor: Mapped[str | None] = mapped_column(String(50))
    model: Mapped[str | None] = mapped_column(String(50))
    serial_number: Mapped[str | None] = mapped_column(String(50))
    firmware_version: Mapped[str | None] = mapped_column(String(50))
    # What a BootNotification is answered with: Accepted, Pending or Rejected.
    boot_status: Mapped[str] = mapped_column(String(16))
    boot_reason: Mapped[str | None] = mapped_column(String(40))
    password_hash: Mapped[str | None] = mapped_column(Text)
    security_profile: Mapped[int] = mapped_column(SmallInteger)
    registered_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_boot_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_seen: Mapped[datetime | None] = mapped_column(UtcDateTime)
    connected: Mapped[bool] = mapped_column(Boolean)


class EvseRow(Base):
    __tablename__ = "csms_evses"

    station_id: Mapped[str] = mapped_column(
        ForeignKey("csms_stations.id", ondelete="CASCADE"), primary_key=True
    )
    evse_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    operational_status: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ConnectorRow(Base):
    __tablename__ = "csms_connectors"

    station_id: Mapped[str] = mapped_column(
        ForeignKey("csms_stations.id", ondelete="CASCADE"), primary_key=True
    )
    evse_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    connector_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    status: Mapped[str] = mapped_column(String(32))
    error_code: Mapped[str | None] = mapped_column(String(50))
    info: Mapped[str | None] = mapped_column(String(50))
    vendor_error_code: Mapped[str | None] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class IdTokenRow(Base):
    __tablename__ = "csms_id_tokens"

    token: Mapped[str] = mapped_column(String(255), primary_key=True)
    token_type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32))
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    group_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class LocalListRow(Base):
    __tablename__ = "csms_local_lists"

    station_id: Mapped[str] = mapped_column(
        ForeignKey("csms_stations.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class LocalListEntryRow(Base):
    __tablename__ = "csms_local_list_entries"

    station_id: Mapped[str] = mapped_column(
        ForeignKey("csms_stations.id", ondelete="CASCADE"), primary_key=True
    )
    token: Mapped[str] = mapped_column(String(255), primary_key=True)
    status: Mapped[str] = mapped_column(String(32))


class TransactionRow(Base):
    __tablename__ = "csms_transactions"
    __table_args__ = (
        UniqueConstraint("station_id", "transaction_id", name="uq_csms_tx_station_id"),
        Index("ix_csms_tx_state", "station_id", "state"),
        # Every start looks up the token's active transactions (ConcurrentTx).
        Index("ix_csms_tx_token_state", "id_token", "state"),
    )

    # The 1.6 transactionId is this number; 2.x stations name their transactions themselves.
    number: Mapped[int] = mapped_column(SerialKey, primary_key=True, autoincrement=True)
    station_id: Mapped[str] = mapped_column(ForeignKey("csms_stations.id", ondelete="CASCADE"))
    transaction_id: Mapped[str] = mapped_column(String(36))
    evse_id: Mapped[int | None] = mapped_column(Integer)
    connector_id: Mapped[int | None] = mapped_column(Integer)
    id_token: Mapped[str | None] = mapped_column(String(255))
    group_id: Mapped[str | None] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16))
    charging_state: Mapped[str | None] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    stopped_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    meter_start_wh: Mapped[int | None] = mapped_column(BigInteger)
    meter_stop_wh: Mapped[int | None] = mapped_column(BigInteger)
    stop_reason: Mapped[str | None] = mapped_column(String(40))
    stop_id_token: Mapped[str | None] = mapped_column(String(255))
    last_seq_no: Mapped[int | None] = mapped_column(Integer)
    # JSON list of sequence numbers never received: a station that lost messages.
    missing_seq_nos: Mapped[str] = mapped_column(Text)
    offline_messages: Mapped[int] = mapped_column(Integer)
    remote_start_id: Mapped[int | None] = mapped_column(Integer)
    reservation_id: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class MeterValueRow(Base):
    __tablename__ = "csms_meter_values"
    __table_args__ = (
        Index("ix_csms_mv_tx", "transaction_number", "timestamp"),
        Index("ix_csms_mv_station", "station_id", "timestamp"),
    )

    id: Mapped[int] = mapped_column(SerialKey, primary_key=True, autoincrement=True)
    station_id: Mapped[str] = mapped_column(ForeignKey("csms_stations.id", ondelete="CASCADE"))
    transaction_number: Mapped[int | None] = mapped_column(
        ForeignKey("csms_transactions.number", ondelete="CASCADE")
    )
    evse_id: Mapped[int] = mapped_column(Integer)
    timestamp: Mapped[datetime] = mapped_column(UtcDateTime)
    measurand: Mapped[str] = mapped_column(String(64))
    phase: Mapped[str | None] = mapped_column(String(8))
    unit: Mapped[str | None] = mapped_column(String(20))
    multiplier: Mapped[int] = mapped_column(SmallInteger)
    context: Mapped[str | None] = mapped_column(String(32))
    location: Mapped[str | None] = mapped_column(String(16))
    value: Mapped[float | None] = mapped_column(Float)
    # Signed meter data exactly as the station sent it: the meter's signature covers these bytes.
    signed: Mapped[str | None] = mapped_column(Text)


class ChargingProfileRow(Base):
    __tablename__ = "csms_charging_profiles"

    station_id: Mapped[str] = mapped_column(
        ForeignKey("csms_stations.id", ondelete="CASCADE"), primary_key=True
    )
    profile_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    evse_id: Mapped[int] = mapped_column(Integer)
    purpose: Mapped[str] = mapped_column(String(48))
    stack_level: Mapped[int] = mapped_column(Integer)
    transaction_id: Mapped[str | None] = mapped_column(String(36))
    body: Mapped[str] = mapped_column(Text)
    installed_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ReservationRow(Base):
    __tablename__ = "csms_reservations"

    station_id: Mapped[str] = mapped_column(
        ForeignKey("csms_stations.id", ondelete="CASCADE"), primary_key=True
    )
    reservation_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    evse_id: Mapped[int | None] = mapped_column(Integer)
    id_token: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class FirmwareLogStatusRow(Base):
    __tablename__ = "csms_firmware_log_status"

    id: Mapped[int] = mapped_column(SerialKey, primary_key=True, autoincrement=True)
    station_id: Mapped[str] = mapped_column(ForeignKey("csms_stations.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # firmware, log or diagnostics
    request_id: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(48))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)


class SecurityEventRow(Base):
    __tablename__ = "csms_security_events"

    id: Mapped[int] = mapped_column(SerialKey, primary_key=True, autoincrement=True)
    station_id: Mapped[str] = mapped_column(ForeignKey("csms_stations.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(50))
    timestamp: Mapped[datetime] = mapped_column(UtcDateTime)
    tech_info: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)


class DataTransferRow(Base):
    __tablename__ = "csms_data_transfers"

    id: Mapped[int] = mapped_column(SerialKey, primary_key=True, autoincrement=True)
    station_id: Mapped[str] = mapped_column(ForeignKey("csms_stations.id", ondelete="CASCADE"))
    direction: Mapped[str] = mapped_column(String(8))  # "in" from the station, "out" to it
    vendor_id: Mapped[str] = mapped_column(String(255))
    message_id: Mapped[str | None] = mapped_column(String(50))
    data: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str | None] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UtcDateTime)


class VariableRow(Base):
    """A reported variable (2.x device model) or configuration key (1.6, component "")."""

    __tablename__ = "csms_variables"

    station_id: Mapped[str] = mapped_column(
        ForeignKey("csms_stations.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    component: Mapped[str] = mapped_column(String(50))
    component_instance: Mapped[str | None] = mapped_column(String(50))
    evse_id: Mapped[int | None] = mapped_column(Integer)
    connector_id: Mapped[int | None] = mapped_column(Integer)
    variable: Mapped[str] = mapped_column(String(50))
    variable_instance: Mapped[str | None] = mapped_column(String(50))
    attribute_type: Mapped[str] = mapped_column(String(16))
    value: Mapped[str | None] = mapped_column(Text)
    mutability: Mapped[str | None] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


def _table(row: type[Base]) -> Table:
    return cast(Table, row.__table__)


STATIONS = _table(StationRow)
EVSES = _table(EvseRow)
CONNECTORS = _table(ConnectorRow)
ID_TOKENS = _table(IdTokenRow)
LOCAL_LISTS = _table(LocalListRow)
LOCAL_LIST_ENTRIES = _table(LocalListEntryRow)
CHARGING_TRANSACTIONS = _table(TransactionRow)
METER_VALUES = _table(MeterValueRow)
CHARGING_PROFILES = _table(ChargingProfileRow)
RESERVATIONS = _table(ReservationRow)
FIRMWARE_LOG_STATUS = _table(FirmwareLogStatusRow)
SECURITY_EVENTS = _table(SecurityEventRow)
DATA_TRANSFERS = _table(DataTransferRow)
VARIABLES = _table(VariableRow)


# -- records -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Station:
    id: str
    ocpp_version: str | None
    vendor: str | None
    model: str | None
    serial_number: str | None
    firmware_version: str | None
    boot_status: str
    boot_reason: str | None
    password_hash: str | None
    security_profile: int
    registered_at: datetime
    last_boot_at: datetime | None
    last_seen: datetime | None
    connected: bool


@dataclass(frozen=True)
class Connector:
    station_id: str
    evse_id: int
    connector_id: int
    status: str
    error_code: str | None
    info: str | None
    vendor_error_code: str | None
    updated_at: datetime


@dataclass(frozen=True)
class IdToken:
    token: str
    token_type: str
    status: str
    expires_at: datetime | None
    group_id: str | None
    created_at: datetime


@dataclass(frozen=True)
class ChargingTransaction:
    number: int
    station_id: str
    transaction_id: str
    evse_id: int | None
    connector_id: int | None
    id_token: str | None
    group_id: str | None
    state: str  # "active" or "ended"
    charging_state: str | None
    started_at: datetime
    stopped_at: datetime | None
    meter_start_wh: int | None
    meter_stop_wh: int | None
    stop_reason: str | None
    stop_id_token: str | None
    last_seq_no: int | None
    missing_seq_nos: str
    offline_messages: int
    remote_start_id: int | None
    reservation_id: int | None
    updated_at: datetime

    @property
    def missing(self) -> list[int]:
        """Sequence numbers of messages the station never delivered."""
        values: list[int] = parse_json(self.missing_seq_nos)
        return values

    @property
    def energy_wh(self) -> int | None:
        return energy_between(self.meter_start_wh, self.meter_stop_wh)


@dataclass(frozen=True)
class MeterSample:
    """One sampled value; `signed` holds signed meter data verbatim when the meter signs."""

    timestamp: datetime
    measurand: str
    value: float | None
    unit: str | None = None
    multiplier: int = 0
    phase: str | None = None
    context: str | None = None
    location: str | None = None
    signed: str | None = None


@dataclass(frozen=True)
class StoredMeterSample:
    station_id: str
    transaction_number: int | None
    evse_id: int
    sample: MeterSample


@dataclass(frozen=True)
class ChargingProfileRecord:
    station_id: str
    profile_id: int
    evse_id: int
    purpose: str
    stack_level: int
    transaction_id: str | None
    body: dict[str, Any]
    installed_at: datetime


@dataclass(frozen=True)
class Reservation:
    station_id: str
    reservation_id: int
    evse_id: int | None
    id_token: str
    expires_at: datetime
    status: str
    updated_at: datetime


@dataclass(frozen=True)
class VariableRecord:
    component: str
    variable: str
    value: str | None
    attribute_type: str = "Actual"
    component_instance: str | None = None
    variable_instance: str | None = None
    evse_id: int | None = None
    connector_id: int | None = None
    mutability: str | None = None

    @property
    def key(self) -> str:
        parts = (
            self.component,
            self.component_instance or "",
            "" if self.evse_id is None else str(self.evse_id),
            "" if self.connector_id is None else str(self.connector_id),
            self.variable,
            self.variable_instance or "",
            self.attribute_type,
        )
        return "|".join(parts)


# Prepared statements. A CSMS runs the same few statements for nearly every message, and runs
# them on the store's writer thread, which shares the GIL with the event loop: building and
# cache-keying a fresh SQLAlchemy expression each time costs several times what the database
# spends on the statement itself. So each statement is built once here, and run prepared
# (`evgi.storage.rows.prepared`).


@functools.cache
def _select_by(table: Table, keys: tuple[str, ...]) -> Select[Any]:
    return select(table).where(*(table.c[k] == bindparam(f"k_{k}") for k in keys))


@functools.cache
def _update_by(table: Table, keys: tuple[str, ...], columns: tuple[str, ...]) -> Update:
    return (
        update(table)
        .where(*(table.c[k] == bindparam(f"k_{k}") for k in keys))
        .values({c: bindparam(f"v_{c}") for c in columns})
    )


@functools.cache
def _insert_into(table: Table) -> Insert:
    return insert(table)


def _select_all(conn: Connection, table: Table, **keys: Any) -> list[dict[str, Any]]:
    return fetch(conn, _select_by(table, tuple(keys)), {f"k_{k}": v for k, v in keys.items()})


def _select(conn: Connection, table: Table, **keys: Any) -> Mapping[Any, Any] | None:
    """The row with these key values (keys that identify at most one row)."""
    found = _select_all(conn, table, **keys)
    return found[0] if found else None


def _update(conn: Connection, table: Table, keys: dict[str, Any], values: dict[str, Any]) -> int:
    statement = _update_by(table, tuple(keys), tuple(values))
    params = {f"k_{k}": v for k, v in keys.items()} | {f"v_{c}": v for c, v in values.items()}
    return execute(conn, statement, params)


def _insert(conn: Connection, table: Table, values: Sequence[Mapping[str, Any]]) -> None:
    """Insert rows that all have the same columns, in one statement."""
    execute_many(conn, _insert_into(table), values)


def _record(cls: type[T], row: Mapping[Any, Any] | None) -> T:
    if row is None:
        raise NotFoundError(f"no such {cls.__name__}")
    return cls(**row)


# -- the store -----------------------------------------------------------------------------


class ChargingStore:
    """Reads and writes of the CSMS's tables; every method takes the connection to run on.

    `run` executes one operation in its own transaction (CLI, HTTP handlers, tests). `apply` is
    for the OCPP server: operations from every station queue up for one writer thread that
    commits them in batches, so the event loop never waits on the database and one commit
    carries many stations' messages. A batch that fails is replayed one operation at a time, so
    one bad operation fails alone.
    """

    def __init__(self, engine: Engine, batch_size: int = 256) -> None:
        self.engine = engine
        self._batch_size = batch_size
        self._queue: queue.SimpleQueue[_Work[Any] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # running operations

    def run(
        self, op: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        with self.engine.begin() as conn:
            return op(conn, *args, **kwargs)

    async def apply(
        self, op: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run `op` on the writer thread and wait until its transaction has committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._ensure_writer()
        self._queue.put(_Work(lambda conn: op(conn, *args, **kwargs), future, loop))
        return await future

    def close(self) -> None:
        """Finish queued work and stop the writer thread."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()

    def _ensure_writer(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._write_loop, name="csms-store", daemon=True
                )
                self._thread.start()

    def _write_loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, stop = take_batch(self._queue, first, self._batch_size)
            self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[_Work[Any]]) -> None:
        try:
            with self.engine.begin() as conn:
                results = [work.op(conn) for work in batch]
        except Exception as exc:
            if len(batch) == 1:
                batch[0].fail(exc)
            else:
                for work in batch:
                    self._commit([work])
            return
        _settle(batch, results)

    # stations

    def add_station(
        self,
        conn: Connection,
        station_id: str,
        password_hash: str | None,
        security_profile: int,
        boot_status: str,
        now: datetime,
    ) -> Station:
        if _select(conn, STATIONS, id=station_id):
            raise ValidationError(f"station {station_id!r} is already registered")
        _insert(
            conn,
            STATIONS,
            [
                {
                    "id": station_id,
                    "boot_status": boot_status,
                    "password_hash": password_hash,
                    "security_profile": security_profile,
                    "registered_at": now,
                    "connected": False,
                }
            ],
        )
        return self.station(conn, station_id)

    def update_station(self, conn: Connection, /, station_id: str, **values: Any) -> Station:
        """Change registration fields (password hash, profile, boot status) of a station."""
        allowed = {"password_hash", "security_profile", "boot_status"}
        if not values or set(values) - allowed:
            raise ValidationError(f"only {sorted(allowed)} can be changed")
        if _update(conn, STATIONS, {"id": station_id}, values) == 0:
            raise NotFoundError(f"no station {station_id!r}")
        return self.station(conn, station_id)

    def station(self, conn: Connection, station_id: str) -> Station:
        row = _select(conn, STATIONS, id=station_id)
        if row is None:
            raise NotFoundError(f"no station {station_id!r}")
        return _record(Station, row)

    def find_station(self, conn: Connection, station_id: str) -> Station | None:
        row = _select(conn, STATIONS, id=station_id)
        return None if row is None else _record(Station, row)

    def delete_station(self, conn: Connection, station_id: str) -> None:
        """Forget a station with everything stored about it (its rows cascade)."""
        if conn.execute(delete(STATIONS).where(STATIONS.c.id == station_id)).rowcount == 0:
            raise NotFoundError(f"no station {station_id!r}")

    def stations(self, conn: Connection) -> list[Station]:
        rows = conn.execute(select(STATIONS).order_by(STATIONS.c.id))
        return [_record(Station, row._mapping) for row in rows]

    def record_boot(
        self,
        conn: Connection,
        station_id: str,
        version: str,
        vendor: str,
        model: str,
        serial_number: str | None,
        firmware_version: str | None,
        reason: str | None,
        now: datetime,
    ) -> Station:
        _update(
            conn,
            STATIONS,
            {"id": station_id},
            {
                "ocpp_version": version,
                "vendor": vendor,
                "model": model,
                "serial_number": serial_number,
                "firmware_version": firmware_version,
                "boot_reason": reason,
                "last_boot_at": now,
                "last_seen": now,
            },
        )
        return self.station(conn, station_id)

    def record_connection(
        self, conn: Connection, station_id: str, version: str, connected: bool, now: datetime
    ) -> None:
        _update(
            conn,
            STATIONS,
            {"id": station_id},
            {"connected": connected, "ocpp_version": version, "last_seen": now},
        )

    def mark_all_disconnected(self, conn: Connection) -> None:
        """After a restart no station is connected until it connects again."""
        conn.execute(update(STATIONS).where(STATIONS.c.connected).values(connected=False))

    def touch(self, conn: Connection, station_id: str, now: datetime) -> None:
        _update(conn, STATIONS, {"id": station_id}, {"last_seen": now})

    # EVSEs and connectors

    def record_connector_status(
        self,
        conn: Connection,
        station_id: str,
        evse_id: int,
        connector_id: int,
        status: str,
        now: datetime,
        error_code: str | None = None,
        info: str | None = None,
        vendor_error_code: str | None = None,
    ) -> None:
        keys = {"station_id": station_id, "evse_id": evse_id, "connector_id": connector_id}
        values = {
            "status": status,
            "error_code": error_code,
            "info": info,
            "vendor_error_code": vendor_error_code,
            "updated_at": now,
        }
        if _update(conn, CONNECTORS, keys, values) == 0:
            self._ensure_evse(conn, station_id, evse_id, now)
            _insert(conn, CONNECTORS, [keys | values])

    def _ensure_evse(self, conn: Connection, station_id: str, evse_id: int, now: datetime) -> None:
        if _select(conn, EVSES, station_id=station_id, evse_id=evse_id) is None:
            conn.execute(
                insert(EVSES).values(
                    station_id=station_id,
                    evse_id=evse_id,
                    operational_status="Operative",
                    updated_at=now,
                )
            )

    def set_operational_status(
        self, conn: Connection, station_id: str, evse_id: int, status: str, now: datetime
    ) -> None:
        self._ensure_evse(conn, station_id, evse_id, now)
        conn.execute(
            update(EVSES)
            .where((EVSES.c.station_id == station_id) & (EVSES.c.evse_id == evse_id))
            .values(operational_status=status, updated_at=now)
        )

    def connectors(self, conn: Connection, station_id: str) -> list[Connector]:
        rows = conn.execute(
            select(CONNECTORS)
            .where(CONNECTORS.c.station_id == station_id)
            .order_by(CONNECTORS.c.evse_id, CONNECTORS.c.connector_id)
        )
        return [_record(Connector, row._mapping) for row in rows]

    def operational_status(self, conn: Connection, station_id: str) -> dict[int, str]:
        rows = conn.execute(
            select(EVSES.c.evse_id, EVSES.c.operational_status).where(
                EVSES.c.station_id == station_id
            )
        )
        return {row.evse_id: row.operational_status for row in rows}

    # id tokens and local lists

    def put_token(
        self,
        conn: Connection,
        token: str,
        status: str,
        now: datetime,
        token_type: str = "ISO14443",
        expires_at: datetime | None = None,
        group_id: str | None = None,
    ) -> IdToken:
        values = {
            "token_type": token_type,
            "status": status,
            "expires_at": expires_at,
            "group_id": group_id,
        }
        if self.find_token(conn, token) is None:
            conn.execute(insert(ID_TOKENS).values(token=token, created_at=now, **values))
        else:
            conn.execute(update(ID_TOKENS).where(ID_TOKENS.c.token == token).values(**values))
        return _record(IdToken, _select(conn, ID_TOKENS, token=token))

    def find_token(self, conn: Connection, token: str) -> IdToken | None:
        row = _select(conn, ID_TOKENS, token=token)
        return None if row is None else _record(IdToken, row)

    def delete_token(self, conn: Connection, token: str) -> None:
        if conn.execute(delete(ID_TOKENS).where(ID_TOKENS.c.token == token)).rowcount == 0:
            raise NotFoundError(f"no token {token!r}")

    def tokens(self, conn: Connection, tokens: Sequence[str] | None = None) -> list[IdToken]:
        query = select(ID_TOKENS).order_by(ID_TOKENS.c.token)
        if tokens is not None:
            query = query.where(ID_TOKENS.c.token.in_(list(tokens)))
        return [_record(IdToken, row._mapping) for row in conn.execute(query)]

    def local_list_version(self, conn: Connection, station_id: str) -> int:
        version = conn.execute(
            select(LOCAL_LISTS.c.version).where(LOCAL_LISTS.c.station_id == station_id)
        ).scalar()
        return int(version or 0)

    def local_list(self, conn: Connection, station_id: str) -> dict[str, str]:
        rows = conn.execute(
            select(LOCAL_LIST_ENTRIES.c.token, LOCAL_LIST_ENTRIES.c.status).where(
                LOCAL_LIST_ENTRIES.c.station_id == station_id
            )
        )
        return {row.token: row.status for row in rows}

    def record_local_list(
        self,
        conn: Connection,
        station_id: str,
        version: int,
        entries: dict[str, str | None],
        full: bool,
        now: datetime,
    ) -> None:
        """Remember what a station's local list holds after it accepted an update.

        In a differential update an entry whose status is None is removed from the list.
        """
        where = LOCAL_LIST_ENTRIES.c.station_id == station_id
        if full:
            conn.execute(delete(LOCAL_LIST_ENTRIES).where(where))
        for token, status in entries.items():
            conn.execute(
                delete(LOCAL_LIST_ENTRIES).where(where & (LOCAL_LIST_ENTRIES.c.token == token))
            )
            if status is not None:
                conn.execute(
                    insert(LOCAL_LIST_ENTRIES).values(
                        station_id=station_id, token=token, status=status
                    )
                )
        self._set_local_list_version(conn, station_id, version, now)

    def _set_local_list_version(
        self, conn: Connection, station_id: str, version: int, now: datetime
    ) -> None:
        where = LOCAL_LISTS.c.station_id == station_id
        if (
            conn.execute(
                update(LOCAL_LISTS).where(where).values(version=version, updated_at=now)
            ).rowcount
            == 0
        ):
            conn.execute(
                insert(LOCAL_LISTS).values(station_id=station_id, version=version, updated_at=now)
            )

    # transactions

    def start_transaction(
        self,
        conn: Connection,
        station_id: str,
        transaction_id: str | None,
        started_at: datetime,
        now: datetime,
        evse_id: int | None = None,
        connector_id: int | None = None,
        id_token: str | None = None,
        group_id: str | None = None,
        meter_start_wh: int | None = None,
        remote_start_id: int | None = None,
        reservation_id: int | None = None,
    ) -> ChargingTransaction:
        """Open a transaction; without a `transaction_id` its number becomes its id (1.6)."""
        values: dict[str, Any] = {
            "station_id": station_id,
            "transaction_id": transaction_id or uuid.uuid4().hex,
            "evse_id": evse_id,
            "connector_id": connector_id,
            "id_token": id_token,
            "group_id": group_id,
            "state": "active",
            "charging_state": None,
            "started_at": started_at.astimezone(UTC),
            "stopped_at": None,
            "meter_start_wh": meter_start_wh,
            "meter_stop_wh": None,
            "stop_reason": None,
            "stop_id_token": None,
            "last_seq_no": None,
            "missing_seq_nos": "[]",
            "offline_messages": 0,
            "remote_start_id": remote_start_id,
            "reservation_id": reservation_id,
            "updated_at": now.astimezone(UTC),
        }
        number = insert_numbered(conn, CHARGING_TRANSACTIONS, values)
        if transaction_id is None:
            values["transaction_id"] = str(number)
            _update(
                conn, CHARGING_TRANSACTIONS, {"number": number}, {"transaction_id": str(number)}
            )
        # What was written, as reading it back would give it.
        return ChargingTransaction(number=number, **values)

    def update_transaction(
        self, conn: Connection, /, transaction: ChargingTransaction, **values: Any
    ) -> ChargingTransaction:
        """Change columns of a transaction read in this database transaction; returns it."""
        if "missing_seq_nos" in values:
            values["missing_seq_nos"] = compact_json(sorted(values["missing_seq_nos"]))
        _update(conn, CHARGING_TRANSACTIONS, {"number": transaction.number}, values)
        return replace(transaction, **values)

    def transaction_by_number(self, conn: Connection, number: int) -> ChargingTransaction:
        row = _select(conn, CHARGING_TRANSACTIONS, number=number)
        if row is None:
            raise NotFoundError(f"no transaction number {number}")
        return _record(ChargingTransaction, row)

    def find_transaction(
        self, conn: Connection, station_id: str, transaction_id: str
    ) -> ChargingTransaction | None:
        row = _select(
            conn, CHARGING_TRANSACTIONS, station_id=station_id, transaction_id=transaction_id
        )
        return None if row is None else _record(ChargingTransaction, row)

    def find_transactions(
        self, conn: Connection, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], ChargingTransaction]:
        """The transactions of these (station id, transaction id) pairs that exist, in one
        query: what settling a batch of sessions reads."""
        if not keys:
            return {}
        t = CHARGING_TRANSACTIONS
        rows = conn.execute(select(t).where(tuple_(t.c.station_id, t.c.transaction_id).in_(keys)))
        found = (_record(ChargingTransaction, row._mapping) for row in rows)
        return {(tx.station_id, tx.transaction_id): tx for tx in found}

    def transactions(
        self,
        conn: Connection,
        station_id: str | None = None,
        state: str | None = None,
        id_token: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        after: int | None = None,
        limit: int | None = None,
    ) -> list[ChargingTransaction]:
        """In number order. `since` and `until` keep the transactions open at some time in
        [since, until); `after` (a number) and `limit` page through the rest."""
        t = CHARGING_TRANSACTIONS
        query = select(t).order_by(t.c.number)
        if station_id is not None:
            query = query.where(t.c.station_id == station_id)
        if state is not None:
            query = query.where(t.c.state == state)
        if id_token is not None:
            query = query.where(t.c.id_token == id_token)
        if since is not None:
            query = query.where(t.c.stopped_at.is_(None) | (t.c.stopped_at >= since))
        if until is not None:
            query = query.where(t.c.started_at < until)
        if after is not None:
            query = query.where(t.c.number > after)
        if limit is not None:
            query = query.limit(limit)
        return [_record(ChargingTransaction, row._mapping) for row in conn.execute(query)]

    def active_transactions_of_token(
        self, conn: Connection, token: str
    ) -> list[ChargingTransaction]:
        t = CHARGING_TRANSACTIONS
        rows = _select_all(conn, t, id_token=token, state="active")
        return [_record(ChargingTransaction, row) for row in rows]

    # meter values

    def add_meter_samples(
        self,
        conn: Connection,
        station_id: str,
        evse_id: int,
        transaction_number: int | None,
        samples: Sequence[MeterSample],
    ) -> None:
        if not samples:
            return
        _insert(
            conn,
            METER_VALUES,
            [
                {
                    "station_id": station_id,
                    "transaction_number": transaction_number,
                    "evse_id": evse_id,
                    "timestamp": s.timestamp,
                    "measurand": s.measurand,
                    "phase": s.phase,
                    "unit": s.unit,
                    "multiplier": s.multiplier,
                    "context": s.context,
                    "location": s.location,
                    "value": s.value,
                    "signed": s.signed,
                }
                for s in samples
            ],
        )

    def meter_samples(
        self,
        conn: Connection,
        station_id: str | None = None,
        transaction_number: int | None = None,
        transaction_numbers: Sequence[int] | None = None,
    ) -> list[StoredMeterSample]:
        query = select(METER_VALUES).order_by(METER_VALUES.c.timestamp, METER_VALUES.c.id)
        if station_id is not None:
            query = query.where(METER_VALUES.c.station_id == station_id)
        if transaction_number is not None:
            query = query.where(METER_VALUES.c.transaction_number == transaction_number)
        if transaction_numbers is not None:
            query = query.where(METER_VALUES.c.transaction_number.in_(transaction_numbers))
        out = []
        for row in conn.execute(query):
            m = row._mapping
            sample = MeterSample(
                timestamp=m["timestamp"],
                measurand=m["measurand"],
                value=m["value"],
                unit=m["unit"],
                multiplier=m["multiplier"],
                phase=m["phase"],
                context=m["context"],
                location=m["location"],
                signed=m["signed"],
            )
            out.append(
                StoredMeterSample(m["station_id"], m["transaction_number"], m["evse_id"], sample)
            )
        return out

    # charging profiles

    def install_profile(
        self,
        conn: Connection,
        station_id: str,
        evse_id: int,
        profile: dict[str, Any],
        purpose: str,
        now: datetime,
        transaction_id: str | None = None,
    ) -> None:
        """Keep a profile the station accepted, replacing what OCPP says it replaces.

        A profile replaces the one with the same id, and the one with the same purpose and
        stack level on the same EVSE (for TxProfiles: of the same transaction).
        """
        profile_id = int(profile["id"] if "id" in profile else profile["chargingProfileId"])
        level = int(profile["stackLevel"])
        t = CHARGING_PROFILES
        same_slot = (
            (t.c.station_id == station_id)
            & (t.c.evse_id == evse_id)
            & (t.c.purpose == purpose)
            & (t.c.stack_level == level)
        )
        if transaction_id is not None:
            same_slot &= t.c.transaction_id == transaction_id
        conn.execute(delete(t).where(same_slot))
        conn.execute(
            delete(t).where((t.c.station_id == station_id) & (t.c.profile_id == profile_id))
        )
        conn.execute(
            insert(t).values(
                station_id=station_id,
                profile_id=profile_id,
                evse_id=evse_id,
                purpose=purpose,
                stack_level=level,
                transaction_id=transaction_id,
                body=compact_json(profile),
                installed_at=now,
            )
        )

    def clear_profiles(
        self,
        conn: Connection,
        station_id: str,
        profile_id: int | None = None,
        evse_id: int | None = None,
        purpose: str | None = None,
        stack_level: int | None = None,
    ) -> int:
        t = CHARGING_PROFILES
        where = t.c.station_id == station_id
        if profile_id is not None:
            where &= t.c.profile_id == profile_id
        if evse_id is not None:
            where &= t.c.evse_id == evse_id
        if purpose is not None:
            where &= t.c.purpose == purpose
        if stack_level is not None:
            where &= t.c.stack_level == stack_level
        return int(conn.execute(delete(t).where(where)).rowcount)

    def profiles(self, conn: Connection, station_id: str) -> list[ChargingProfileRecord]:
        t = CHARGING_PROFILES
        rows = conn.execute(
            select(t).where(t.c.station_id == station_id).order_by(t.c.evse_id, t.c.profile_id)
        )
        out = []
        for row in rows:
            values = dict(row._mapping)
            values["body"] = parse_json(values["body"])
            out.append(ChargingProfileRecord(**values))
        return out

    # reservations

    def put_reservation(
        self,
        conn: Connection,
        station_id: str,
        reservation_id: int,
        evse_id: int | None,
        id_token: str,
        expires_at: datetime,
        status: str,
        now: datetime,
    ) -> None:
        t = RESERVATIONS
        where = (t.c.station_id == station_id) & (t.c.reservation_id == reservation_id)
        values = {
            "evse_id": evse_id,
            "id_token": id_token,
            "expires_at": expires_at,
            "status": status,
            "updated_at": now,
        }
        if conn.execute(update(t).where(where).values(**values)).rowcount == 0:
            conn.execute(
                insert(t).values(station_id=station_id, reservation_id=reservation_id, **values)
            )

    def set_reservation_status(
        self, conn: Connection, station_id: str, reservation_id: int, status: str, now: datetime
    ) -> bool:
        t = RESERVATIONS
        done = conn.execute(
            update(t)
            .where((t.c.station_id == station_id) & (t.c.reservation_id == reservation_id))
            .values(status=status, updated_at=now)
        )
        return bool(done.rowcount)

    def reservations(self, conn: Connection, station_id: str) -> list[Reservation]:
        t = RESERVATIONS
        rows = conn.execute(
            select(t).where(t.c.station_id == station_id).order_by(t.c.reservation_id)
        )
        return [_record(Reservation, row._mapping) for row in rows]

    # firmware, logs, security events, data transfers, variables

    def record_firmware_log_status(
        self,
        conn: Connection,
        station_id: str,
        kind: str,
        status: str,
        now: datetime,
        request_id: int | None = None,
    ) -> None:
        conn.execute(
            insert(FIRMWARE_LOG_STATUS).values(
                station_id=station_id,
                kind=kind,
                request_id=request_id,
                status=status,
                received_at=now,
            )
        )

    def firmware_log_status(self, conn: Connection, station_id: str) -> list[dict[str, Any]]:
        t = FIRMWARE_LOG_STATUS
        rows = conn.execute(select(t).where(t.c.station_id == station_id).order_by(t.c.id))
        return [dict(row._mapping) for row in rows]

    def record_security_event(
        self,
        conn: Connection,
        station_id: str,
        event_type: str,
        timestamp: datetime,
        tech_info: str | None,
        now: datetime,
    ) -> None:
        conn.execute(
            insert(SECURITY_EVENTS).values(
                station_id=station_id,
                type=event_type,
                timestamp=timestamp,
                tech_info=tech_info,
                received_at=now,
            )
        )

    def security_events(self, conn: Connection, station_id: str) -> list[dict[str, Any]]:
        t = SECURITY_EVENTS
        rows = conn.execute(select(t).where(t.c.station_id == station_id).order_by(t.c.id))
        return [dict(row._mapping) for row in rows]

    def record_data_transfer(
        self,
        conn: Connection,
        station_id: str,
        direction: str,
        vendor_id: str,
        message_id: str | None,
        data: Any,
        status: str | None,
        now: datetime,
    ) -> None:
        conn.execute(
            insert(DATA_TRANSFERS).values(
                station_id=station_id,
                direction=direction,
                vendor_id=vendor_id,
                message_id=message_id,
                data=None if data is None else compact_json(data),
                status=status,
                at=now,
            )
        )

    def data_transfers(self, conn: Connection, station_id: str) -> list[dict[str, Any]]:
        t = DATA_TRANSFERS
        rows = conn.execute(select(t).where(t.c.station_id == station_id).order_by(t.c.id))
        out = []
        for row in rows:
            values = dict(row._mapping)
            values["data"] = None if values["data"] is None else parse_json(values["data"])
            out.append(values)
        return out

    def record_variables(
        self, conn: Connection, station_id: str, variables: Sequence[VariableRecord], now: datetime
    ) -> None:
        t = VARIABLES
        for var in variables:
            values = {
                "component": var.component,
                "component_instance": var.component_instance,
                "evse_id": var.evse_id,
                "connector_id": var.connector_id,
                "variable": var.variable,
                "variable_instance": var.variable_instance,
                "attribute_type": var.attribute_type,
                "value": var.value,
                "mutability": var.mutability,
                "updated_at": now,
            }
            where = (t.c.station_id == station_id) & (t.c.key == var.key)
            if conn.execute(update(t).where(where).values(**values)).rowcount == 0:
                conn.execute(insert(t).values(station_id=station_id, key=var.key, **values))

    def variables(self, conn: Connection, station_id: str) -> list[VariableRecord]:
        t = VARIABLES
        rows = conn.execute(select(t).where(t.c.station_id == station_id).order_by(t.c.key))
        fields = VariableRecord.__dataclass_fields__
        return [
            VariableRecord(**{k: v for k, v in row._mapping.items() if k in fields}) for row in rows
        ]


@dataclass
class _Work(Generic[T]):
    op: Callable[[Connection], T]
    future: asyncio.Future[T]
    loop: asyncio.AbstractEventLoop

    def fail(self, error: BaseException) -> None:
        self.loop.call_soon_threadsafe(_resolve, self.future, None, error)


def _settle(batch: list[_Work[Any]], results: list[Any]) -> None:
    """Hand a committed batch's results to their loops, one wake-up per loop: each wake-up is a
    write to the loop's self-pipe that lets the loop thread take the GIL, so waking it once per
    operation would make the two threads trade the GIL hundreds of times per batch."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any]]] = {}
    for work, result in zip(batch, results, strict=True):
        by_loop.setdefault(work.loop, []).append((work.future, result))
    for loop, settled in by_loop.items():
        loop.call_soon_threadsafe(_resolve_all, settled)


def _resolve_all(settled: list[tuple[asyncio.Future[Any], Any]]) -> None:
    for future, result in settled:
        _resolve(future, result, None)


def _resolve(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # the waiter was cancelled
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)
