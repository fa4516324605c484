"""Tables of the storage database; the schema itself is created by the Alembic migrations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from sqlalchemy import (
    BigInteger,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import DateTime, TypeDecorator

# Autoincrementing keys: BIGSERIAL on PostgreSQL, SQLite's INTEGER PRIMARY KEY rowid.
SerialKey = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, on SQLite too (which stores no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; use timezone-aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class BlockRow(Base):
    __tablename__ = "ledger_blocks"

    height: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(String(66), unique=True)
    prev_hash: Mapped[str] = mapped_column(String(66))
    timestamp: Mapped[int] = mapped_column(BigInteger)
    tx_root: Mapped[str] = mapped_column(String(66))
    receipts_root: Mapped[str] = mapped_column(String(66))
    writes_root: Mapped[str] = mapped_column(String(66))
    tx_count: Mapped[int] = mapped_column(Integer)
    extra: Mapped[str] = mapped_column(Text, default="")


class TransactionRow(Base):
    __tablename__ = "ledger_transactions"
    __table_args__ = (
        UniqueConstraint("sender", "nonce", name="uq_ledger_tx_sender_nonce"),
        Index("ix_ledger_tx_block", "block_height", "position"),
    )

    hash: Mapped[str] = mapped_column(String(66), primary_key=True)
    block_height: Mapped[int] = mapped_column(BigInteger)
    position: Mapped[int] = mapped_column(Integer)
    sender: Mapped[str] = mapped_column(String(42))
    nonce: Mapped[int] = mapped_column(BigInteger)
    body: Mapped[str] = mapped_column(Text)
    signature: Mapped[str] = mapped_column(String(132))
    status: Mapped[int] = mapped_column(SmallInteger)
    result: Mapped[str] = mapped_column(Text)
    error: Mapped[str] = mapped_column(Text)
    logs: Mapped[str] = mapped_column(Text)


class StateRow(Base):
    __tablename__ = "ledger_state"

    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    block_height: Mapped[int] = mapped_column(BigInteger)


# Core tables for bulk statements, where the ORM's per-row bookkeeping would only cost time.
BLOCKS = cast(Table, BlockRow.__table__)
TRANSACTIONS = cast(Table, TransactionRow.__table__)
STATE = cast(Table, StateRow.__table__)
