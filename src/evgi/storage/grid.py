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
        with self.db.connect() as conn:
            return conn.execute(select(GRID_DEVICES).where(GRID_DEVICES.c.lfdi == lfdi)).first()

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
        with self.db.begin() as conn:
            key = conn.execute(insert(GRID_PROGRAMS).values(**values)).inserted_primary_key
            assert key is not None
            return int(key[0])

    def programs(self) -> list[Row[Any]]:
        with self.db.connect() as conn:
            return list(
                conn.execute(
                    select(GRID_PROGRAMS).order_by(GRID_PROGRAMS.c.primacy, GRID_PROGRAMS.c.id)
                )
            )

    def program(self, key: int | str) -> Row[Any] | None:
        """A program by id or by mRID."""
        column = GRID_PROGRAMS.c.id if isinstance(key, int) else GRID_PROGRAMS.c.mrid
        with self.db.connect() as conn:
            return conn.execute(select(GRID_PROGRAMS).where(column == key)).first()

    def add_control(self, values: dict[str, Any]) -> None:
        with self.db.begin() as conn:
            conn.execute(insert(GRID_CONTROLS).values(**values))

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
        with self.db.begin() as conn:
            conn.execute(insert(GRID_CURVES).values(**values))

    def curves(self, program_id: int) -> list[Row[Any]]:
        with self.db.connect() as conn:
            return list(
                conn.execute(
                    select(GRID_CURVES)
                    .where(GRID_CURVES.c.program_id == program_id)
                    .order_by(GRID_CURVES.c.id)
                )
            )

    # what devices report
    def put_document(self, lfdi: str, kind: str, body: str, now: datetime) -> bool:
        """Store a device's DER document; True when it replaced an earlier one."""
        with self.db.begin() as conn:
            replaced = conn.execute(
                update(GRID_DEVICE_DOCUMENTS)
                .where(GRID_DEVICE_DOCUMENTS.c.lfdi == lfdi, GRID_DEVICE_DOCUMENTS.c.kind == kind)
                .values(body=body, updated_at=now)
            ).rowcount
            if not replaced:
                conn.execute(
                    insert(GRID_DEVICE_DOCUMENTS).values(
                        lfdi=lfdi, kind=kind, body=body, updated_at=now
                    )
                )
            return bool(replaced)

    def documents(self, lfdi: str) -> dict[str, Row[Any]]:
        with self.db.connect() as conn:
            rows = conn.execute(
                select(GRID_DEVICE_DOCUMENTS).where(GRID_DEVICE_DOCUMENTS.c.lfdi == lfdi)
            )
            return {row.kind: row for row in rows}

    def add_response(self, values: dict[str, Any]) -> int:
        with self.db.begin() as conn:
            key = conn.execute(insert(GRID_RESPONSES).values(**values)).inserted_primary_key
            assert key is not None
            return int(key[0])

    def responses(self, subject: str | None = None, lfdi: str | None = None) -> list[Row[Any]]:
        query = select(GRID_RESPONSES).order_by(GRID_RESPONSES.c.id)
        if subject is not None:
            query = query.where(GRID_RESPONSES.c.subject == subject)
        if lfdi is not None:
            query = query.where(GRID_RESPONSES.c.lfdi == lfdi)
        with self.db.connect() as conn:
            return list(conn.execute(query))

    def add_usage_point(self, values: dict[str, Any]) -> int:
        with self.db.begin() as conn:
            key = conn.execute(
                insert(GRID_MIRROR_USAGE_POINTS).values(**values)
            ).inserted_primary_key
            assert key is not None
            return int(key[0])

    def usage_points(self, lfdi: str) -> list[Row[Any]]:
        with self.db.connect() as conn:
            return list(
                conn.execute(
                    select(GRID_MIRROR_USAGE_POINTS)
                    .where(GRID_MIRROR_USAGE_POINTS.c.lfdi == lfdi)
                    .order_by(GRID_MIRROR_USAGE_POINTS.c.id)
                )
            )

    def usage_point(self, key: int | str) -> Row[Any] | None:
        """A mirror usage point by id or by mRID."""
        table = GRID_MIRROR_USAGE_POINTS
        column = table.c.id if isinstance(key, int) else table.c.mrid
        with self.db.connect() as conn:
            return conn.execute(select(table).where(column == key)).first()

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
        with self.db.begin() as conn:
            key = conn.execute(insert(GRID_SUBSCRIPTIONS).values(**values)).inserted_primary_key
            assert key is not None
            return int(key[0])

    def subscriptions(self, lfdi: str | None = None, resource: str | None = None) -> list[Row[Any]]:
        query = select(GRID_SUBSCRIPTIONS).order_by(GRID_SUBSCRIPTIONS.c.id)
        if lfdi is not None:
            query = query.where(GRID_SUBSCRIPTIONS.c.lfdi == lfdi)
        if resource is not None:
            query = query.where(GRID_SUBSCRIPTIONS.c.resource == resource)
        with self.db.connect() as conn:
            return list(conn.execute(query))

    def add_log_event(self, values: dict[str, Any]) -> int:
        with self.db.begin() as conn:
            key = conn.execute(insert(GRID_LOG_EVENTS).values(**values)).inserted_primary_key
            assert key is not None
            return int(key[0])

    def log_events(self, lfdi: str) -> list[Row[Any]]:
        with self.db.connect() as conn:
            return list(
                conn.execute(
                    select(GRID_LOG_EVENTS)
                    .where(GRID_LOG_EVENTS.c.lfdi == lfdi)
                    .order_by(GRID_LOG_EVENTS.c.id)
                )
            )
