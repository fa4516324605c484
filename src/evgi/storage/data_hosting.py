"""Tables of a data host: containers, their records, archived stream segments, the certificates
delivered to the host and the owners' access log. Data content lives here, never on the ledger.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from evgi.storage.models import Base, SerialKey, UtcDateTime


class DataContainerRow(Base):
    """A Data Bucket (persistent) or Data Stream (ephemeral, aged to nearline then offline)."""

    __tablename__ = "data_containers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    owner: Mapped[str] = mapped_column(String(42), index=True)
    host: Mapped[str] = mapped_column(String(42))
    data_type: Mapped[str] = mapped_column(String(64))
    schema: Mapped[str] = mapped_column(String(200))
    uri: Mapped[str] = mapped_column(String(400))
    dbc: Mapped[str] = mapped_column(String(66))
    retention_s: Mapped[int | None] = mapped_column(Integer, nullable=True)
    nearline_s: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class DataRecordRow(Base):
    """One record of a container while it is online."""

    __tablename__ = "data_records"
    __table_args__ = (UniqueConstraint("container_id", "seq", name="uq_data_record_seq"),)

    id: Mapped[int] = mapped_column(SerialKey, primary_key=True, autoincrement=True)
    container_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("data_containers.id", ondelete="CASCADE")
    )
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    hash: Mapped[str] = mapped_column(String(66))
    registration: Mapped[str] = mapped_column(String(66))
    body: Mapped[str] = mapped_column(Text)


class DataArchiveRow(Base):
    """A segment of a stream past its retention: compressed in the database (nearline), then
    written to a file (offline) and only its hash and path kept here."""

    __tablename__ = "data_archives"
    __table_args__ = (Index("ix_data_archive_container", "container_id", "first_seq"),)

    id: Mapped[int] = mapped_column(SerialKey, primary_key=True, autoincrement=True)
    container_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("data_containers.id", ondelete="CASCADE")
    )
    tier: Mapped[str] = mapped_column(String(8))
    first_seq: Mapped[int] = mapped_column(Integer)
    last_seq: Mapped[int] = mapped_column(Integer)
    count: Mapped[int] = mapped_column(Integer)
    first_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_at: Mapped[datetime] = mapped_column(UtcDateTime)
    hash: Mapped[str] = mapped_column(String(66))
    blob: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    path: Mapped[str | None] = mapped_column(String(400), nullable=True)
    moved_at: Mapped[datetime] = mapped_column(UtcDateTime)


class DataCertificateRow(Base):
    """A signed certificate (DBC, AC, RC, GPC) delivered to the host, kept as evidence."""

    __tablename__ = "data_certificates"

    hash: Mapped[str] = mapped_column(String(66), primary_key=True)
    type: Mapped[str] = mapped_column(String(8))
    issuer: Mapped[str] = mapped_column(String(42))
    subject: Mapped[str | None] = mapped_column(String(42), nullable=True)
    document: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)


class DataAccessRow(Base):
    """One entry of the owners' audit log: who tried what on which container, when, and how it
    ended (refusals included, with their reason). `at_us` is unix time in microseconds: entries
    are written in thousands per second, and an integer needs no conversion on the way in."""

    __tablename__ = "data_access_log"
    __table_args__ = (
        Index("ix_data_access_owner", "owner", "id"),
        Index("ix_data_access_at", "at_us"),
    )

    id: Mapped[int] = mapped_column(SerialKey, primary_key=True, autoincrement=True)
    at_us: Mapped[int] = mapped_column(BigInteger)
    owner: Mapped[str] = mapped_column(String(42))
    container_id: Mapped[str] = mapped_column(String(64))
    accessor: Mapped[str] = mapped_column(String(42))
    action: Mapped[str] = mapped_column(String(16))
    role: Mapped[str | None] = mapped_column(String(16), nullable=True)
    outcome: Mapped[str] = mapped_column(String(8))
    reason: Mapped[str] = mapped_column(String(32))
    via: Mapped[str] = mapped_column(String(80))
    request_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    records: Mapped[int] = mapped_column(Integer, default=0)


DATA_CONTAINERS = cast(Table, DataContainerRow.__table__)
DATA_RECORDS = cast(Table, DataRecordRow.__table__)
DATA_ARCHIVES = cast(Table, DataArchiveRow.__table__)
DATA_CERTIFICATES = cast(Table, DataCertificateRow.__table__)
DATA_ACCESS_LOG = cast(Table, DataAccessRow.__table__)
