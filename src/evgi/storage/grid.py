"""Tables of the IEEE 2030.5 server: registered devices, DER programs, their controls and
curves, and what devices report (DER status documents, responses, mirrored meter readings,
subscriptions, log events). No consumer data: a device is known only by its certificate's LFDI.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Engine,
    ForeignKey,
    Index,
    Integer,
    Row,
    SmallInteger,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Mapped, mapped_column

from evgi.storage.models import Base, SerialKey, UtcDateTime
from evgi.storage.rows import insert_numbered, upsert


class GridDeviceRow(Base):
    """An EndDevice the operator registered (with its PIN) or that registered itself."""

    __tablename__ = "grid_devices"

    lfdi: Mapped[str] = mapped_column(String(40), primary_key=True)
    sfdi: Mapped[int] = mapped_column(BigInteger, unique=True)
    pin: Mapped[int | None] = mapped_column(Integer, nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    registered_at: Mapped[datetime] = mapped_column(UtcDateTime)
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class GridProgramRow(Base):
    """A DERProgram; `default_control` is the DefaultDERControl's DERControlBase as JSON."""

    __tablename__ = "grid_programs"

    id: Mapped[int] = mapped_column(SerialKey, primary_key=True, autoincrement=True)
    mrid: Mapped[str] = mapped_column(String(32), unique=True)
    description: Mapped[str] = mapped_column(String(32))
    primacy: Mapped[int] = mapped_column(SmallInteger)
    default_control: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class GridControlRow(Base):
    """A DERControl event; `base` holds its DERControlBase setpoints as JSON."""

    __tablename__ = "grid_controls"
    __table_args__ = (Index("ix_grid_controls_program", "program_id", "start"),)

    id: Mapped[int] = mapped_column(SerialKey, primary_key=True, autoincrement=True)
    program_id: Mapped[int] = mapped_column(
        SerialKey,
        ForeignKey("grid_programs.id", ondelete="CASCADE"),
    )
    mrid: Mapped[str] = mapped_column(String(32), unique=True)
    description: Mapped[str] = mapped_column(String(32))
    creation_time: Mapped[datetime] = mapped_column(UtcDateTime)
    start: Mapped[datetime] = mapped_column(UtcDateTime)
    duration_s: Mapped[int] = mapped_column(Integer)
    randomize_start_s: Mapped[int | None] = mapped_column(Integer, nullable=True)
    randomize_duration_s: Mapped[int | None] = mapped_column(Integer, nullable=True)
    base: Mapped[str] = mapped_column(Text)
    cancelled_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class GridCurveRow(Base):
    """A DERCurve of a program; `points` is the list of [x, y] pairs as JSON."""

    __tablename__ = "grid_curves"

    id: Mapped[int] = mapped_column(SerialKey, primary_key=True, autoincrement=True)
    program_id: Mapped[int] = mapped_column(
        SerialKey,
        ForeignKey("grid_programs.id", ondelete="CASCADE"),
    )
    mrid: Mapped[str] = mapped_column(String(32), unique=True)
    description: Mapped[str] = mapped_column(String(32))
    curve_type: Mapped[int] = mapped_column(SmallInteger)
    creation_time: Mapped[datetime] = mapped_column(UtcDateTime)
    points: Mapped[str] = mapped_column(Text)
    x_multiplier: Mapped[int] = mapped_column(SmallInteger)
    y_multiplier: Mapped[int] = mapped_column(SmallInteger)
    y_ref_type: Mapped[int] = mapped_column(SmallInteger)


class GridDeviceDocumentRow(Base):
    """The latest DERCapability, DERSettings, DERStatus or DERAvailability a device PUT, kept
    as the validated XML it sent (`kind` is the resource name)."""

    __tablename__ = "grid_device_documents"

    lfdi: Mapped[str] = mapped_column(
        String(40), ForeignKey("grid_devices.lfdi", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(24), primary_key=True)
    body: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class GridResponseRow(Base):
    """A device's Response to an event: received, started, completed, opted out, ..."""

    __tablename__ = "grid_responses"
    __table_args__ = (Index("ix_grid_responses_subject", "subject", "id"),)

    id: Mapped[int] = mapped_column(SerialKey, primary_key=True, autoincrement=True)
    lfdi: Mapped[str] = mapped_column(String(40), index=True)
    subject: Mapped[str] = mapped_column(String(32))
    status: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    created_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)


class GridMirrorUsagePointRow(Base):
    """A MirrorUsagePoint a device created to post its own meter readings."""

    __tablename__ = "grid_mirror_usage_points"

    id: Mapped[int] = mapped_column(SerialKey, primary_key=True, autoincrement=True)
    lfdi: Mapped[str] = mapped_column(String(40), index=True)
    mrid: Mapped[str] = mapped_column(String(32), unique=True)
    description: Mapped[str] = mapped_column(String(32))
    role_flags: Mapped[str] = mapped_column(String(4))
    service_kind: Mapped[int] = mapped_column(SmallInteger)
    status: Mapped[int] = mapped_column(SmallInteger)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class GridMirrorReadingRow(Base):
    """One reading of a MirrorMeterReading: value x 10^power_of_ten in `uom` (2030.5 codes)."""

    __tablename__ = "grid_mirror_readings"
    __table_args__ = (Index("ix_grid_mirror_readings_point", "usage_point_id", "id"),)

    id: Mapped[int] = mapped_column(SerialKey, primary_key=True, autoincrement=True)
    usage_point_id: Mapped[int] = mapped_column(
        SerialKey,
        ForeignKey("grid_mirror_usage_points.id", ondelete="CASCADE"),
    )
    meter_reading: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(String(32))
    uom: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    power_of_ten: Mapped[int] = mapped_column(SmallInteger)
    value: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(UtcDateTime)


class GridSubscriptionRow(Base):
    """A device's Subscription: the server POSTs a Notification to `notification_uri`."""

    __tablename__ = "grid_subscriptions"

    id: Mapped[int] = mapped_column(SerialKey, primary_key=True, autoincrement=True)
    lfdi: Mapped[str] = mapped_column(String(40), index=True)
    resource: Mapped[str] = mapped_column(String(200))
    notification_uri: Mapped[str] = mapped_column(String(400))
    level: Mapped[str] = mapped_column(String(16))
    limit: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class GridLogEventRow(Base):
    """A LogEvent a device posted."""

    __tablename__ = "grid_log_events"

    id: Mapped[int] = mapped_column(SerialKey, primary_key=True, autoincrement=True)
    lfdi: Mapped[str] = mapped_column(String(40), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    function_set: Mapped[int] = mapped_column(SmallInteger)
    code: Mapped[int] = mapped_column(SmallInteger)
    event_id: Mapped[int] = mapped_column(Integer)
    pen: Mapped[int] = mapped_column(BigInteger)
    profile_id: Mapped[int] = mapped_column(SmallInteger)
    details: Mapped[str | None] = mapped_column(String(32), nullable=True)


GRID_DEVICES = cast(Table, GridDeviceRow.__table__)
GRID_PROGRAMS = cast(Table, GridProgramRow.__table__)
GRID_CONTROLS = cast(Table, GridControlRow.__table__)
GRID_CURVES = cast(Table, GridCurveRow.__table__)
GRID_DEVICE_DOCUMENTS = cast(Table, GridDeviceDocumentRow.__table__)
GRID_RESPONSES = cast(Table, GridResponseRow.__table__)
GRID_MIRROR_USAGE_POINTS = cast(Table, GridMirrorUsagePointRow.__table__)
GRID_MIRROR_READINGS = cast(Table, GridMirrorReadingRow.__table__)
GRID_SUBSCRIPTIONS = cast(Table, GridSubscriptionRow.__table__)
GRID_LOG_EVENTS = cast(Table, GridLogEventRow.__table__)


class GridStore:
    """Reads and writes of the 2030.5 server, each in its own short transaction."""

    def __init__(self, db: Engine) -> None:
        self.db = db

    # devices
    def add_device(self, lfdi: str, sfdi: int, pin: int | None, now: datetime) -> None:
        with self.db.begin() as conn:
            conn.execute(
                insert(GRID_DEVICES).values(
                    lfdi=lfdi,
                    sfdi=sfdi,
                    pin=pin,
                    enabled=True,
                    registered_at=now,
                    changed_at=now,
                )
            )

    def device(self, lfdi: str) -> Row[Any] | None:
        return self._first(GRID_DEVICES, GRID_DEVICES.c.lfdi, lfdi)

    def devices(self) -> list[Row[Any]]:
        with self.db.connect() as conn:
            return list(conn.execute(select(GRID_DEVICES).order_by(GRID_DEVICES.c.registered_at)))

    def seen(self, lfdi: str, now: datetime) -> None:
        with self.db.begin() as conn:
            conn.execute(
                update(GRID_DEVICES).where(GRID_DEVICES.c.lfdi == lfdi).values(last_seen=now)
            )

    def remove_device(self, lfdi: str) -> bool:
        with self.db.begin() as conn:
            return (
                conn.execute(delete(GRID_DEVICES).where(GRID_DEVICES.c.lfdi == lfdi)).rowcount > 0
            )

    # programs, controls, curves
    def add_program(self, values: dict[str, Any]) -> int:
        return self._add(GRID_PROGRAMS, values)

    def programs(self) -> list[Row[Any]]:
        with self.db.connect() as conn:
            return list(
                conn.execute(
                    select(GRID_PROGRAMS).order_by(GRID_PROGRAMS.c.primacy, GRID_PROGRAMS.c.id)
                )
            )

    def program(self, key: int | str) -> Row[Any] | None:
        """A program by id or by mRID."""
        return self._by_id_or_mrid(GRID_PROGRAMS, key)

    def add_control(self, values: dict[str, Any]) -> None:
        self._add(GRID_CONTROLS, values)

    def controls(self, program_id: int | None = None) -> list[Row[Any]]:
        """Controls joined with their program's primacy and mRID, of one program or all."""
        query = (
            select(
                GRID_CONTROLS,
                GRID_PROGRAMS.c.primacy,
                GRID_PROGRAMS.c.mrid.label("program_mrid"),
            )
            .join(GRID_PROGRAMS, GRID_PROGRAMS.c.id == GRID_CONTROLS.c.program_id)
            .order_by(GRID_CONTROLS.c.start, GRID_CONTROLS.c.id)
        )
        if program_id is not None:
            query = query.where(GRID_CONTROLS.c.program_id == program_id)
        with self.db.connect() as conn:
            return list(conn.execute(query))

    def cancel_control(self, mrid: str, now: datetime) -> bool:
        """Cancel a control not already cancelled; False when there is none such."""
        with self.db.begin() as conn:
            result = conn.execute(
                update(GRID_CONTROLS)
                .where(GRID_CONTROLS.c.mrid == mrid, GRID_CONTROLS.c.cancelled_at.is_(None))
                .values(cancelled_at=now)
            )
            return result.rowcount > 0

    def control_watermark(self) -> tuple[int, datetime | None]:
        """The newest control id and cancellation time: a change of either is news."""
        with self.db.connect() as conn:
            row = conn.execute(
                select(func.max(GRID_CONTROLS.c.id), func.max(GRID_CONTROLS.c.cancelled_at))
            ).one()
            return int(row[0] or 0), row[1]

    def add_curve(self, values: dict[str, Any]) -> None:
        self._add(GRID_CURVES, values)

    def curves(self, program_id: int) -> list[Row[Any]]:
        return self._rows(GRID_CURVES, program_id=program_id)

    # what devices report
    def put_document(self, lfdi: str, kind: str, body: str, now: datetime) -> bool:
        """Store a device's DER document; True when it replaced an earlier one."""
        with self.db.begin() as conn:
            return upsert(
                conn,
                GRID_DEVICE_DOCUMENTS,
                {"lfdi": lfdi, "kind": kind},
                {"body": body, "updated_at": now},
            )

    def documents(self, lfdi: str) -> dict[str, Row[Any]]:
        with self.db.connect() as conn:
            rows = conn.execute(
                select(GRID_DEVICE_DOCUMENTS).where(GRID_DEVICE_DOCUMENTS.c.lfdi == lfdi)
            )
            return {row.kind: row for row in rows}

    def add_response(self, values: dict[str, Any]) -> int:
        return self._add(GRID_RESPONSES, values)

    def responses(self, subject: str | None = None, lfdi: str | None = None) -> list[Row[Any]]:
        return self._rows(GRID_RESPONSES, subject=subject, lfdi=lfdi)

    def add_usage_point(self, values: dict[str, Any]) -> int:
        return self._add(GRID_MIRROR_USAGE_POINTS, values)

    def usage_points(self, lfdi: str) -> list[Row[Any]]:
        return self._rows(GRID_MIRROR_USAGE_POINTS, lfdi=lfdi)

    def usage_point(self, key: int | str) -> Row[Any] | None:
        """A mirror usage point by id or by mRID."""
        return self._by_id_or_mrid(GRID_MIRROR_USAGE_POINTS, key)

    def add_readings(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            with self.db.begin() as conn:
                conn.execute(insert(GRID_MIRROR_READINGS), rows)

    def latest_readings(self, usage_point_id: int) -> list[Row[Any]]:
        """The newest reading of each meter reading of a usage point."""
        table = GRID_MIRROR_READINGS
        newest = (
            select(func.max(table.c.id))
            .where(table.c.usage_point_id == usage_point_id)
            .group_by(table.c.meter_reading)
        )
        with self.db.connect() as conn:
            return list(
                conn.execute(select(table).where(table.c.id.in_(newest)).order_by(table.c.id))
            )

    def add_subscription(self, values: dict[str, Any]) -> int:
        return self._add(GRID_SUBSCRIPTIONS, values)

    def subscriptions(self, lfdi: str | None = None, resource: str | None = None) -> list[Row[Any]]:
        return self._rows(GRID_SUBSCRIPTIONS, lfdi=lfdi, resource=resource)

    def add_log_event(self, values: dict[str, Any]) -> int:
        return self._add(GRID_LOG_EVENTS, values)

    def log_events(self, lfdi: str) -> list[Row[Any]]:
        return self._rows(GRID_LOG_EVENTS, lfdi=lfdi)

    def _add(self, table: Table, values: dict[str, Any]) -> int:
        """Insert one row in a transaction of its own; its serial key."""
        with self.db.begin() as conn:
            return insert_numbered(conn, table, values)

    def _first(self, table: Table, column: Column[Any], value: object) -> Row[Any] | None:
        with self.db.connect() as conn:
            return conn.execute(select(table).where(column == value)).first()

    def _by_id_or_mrid(self, table: Table, key: int | str) -> Row[Any] | None:
        return self._first(table, table.c.id if isinstance(key, int) else table.c.mrid, key)

    def _rows(self, table: Table, **filters: object) -> list[Row[Any]]:
        """The rows matching every filter given (None matches all), oldest first."""
        query = select(table).order_by(table.c.id)
        for name, value in filters.items():
            if value is not None:
                query = query.where(table.c[name] == value)
        with self.db.connect() as conn:
            return list(conn.execute(query))
