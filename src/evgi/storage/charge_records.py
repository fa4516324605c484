"""Charge Detail Records kept for disputes, and the Merkle batches that anchor them.

A CDR is stored once under its session id, as the canonical document its digest covers, so the
exact bytes a proof needs are never rebuilt. A batch is written (its leaves numbered) before its
root goes to the ledger and marked anchored after: a crash in between leaves a pending batch
that the next run anchors, never a CDR in two batches.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, cast

import sqlalchemy.exc
from sqlalchemy import (
    BigInteger,
    Connection,
    Engine,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Mapped, mapped_column

from evgi.core.canonical import parse_json
from evgi.core.clock import Clock, SystemClock
from evgi.core.errors import NotFoundError, ValidationError
from evgi.storage.models import Base, SerialKey, UtcDateTime
from evgi.storage.rows import execute_many


class CdrBatchRow(Base):
    """CDRs anchored together: one ledger transaction carries their Merkle root. `tx_hash` is
    set when that transaction is signed, `block` once the ledger has taken it."""

    __tablename__ = "cdr_batches"

    id: Mapped[int] = mapped_column(SerialKey, primary_key=True, autoincrement=True)
    root: Mapped[str] = mapped_column(String(66), unique=True)
    size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    block: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    chain_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    anchored_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class CdrRow(Base):
    __tablename__ = "cdr_records"
    __table_args__ = (Index("ix_cdr_pending", "batch_id", "saved_at"),)

    session_id: Mapped[str] = mapped_column(String(120), primary_key=True)
    digest: Mapped[str] = mapped_column(String(66), unique=True)
    station_id: Mapped[str] = mapped_column(String(48))
    stop: Mapped[datetime] = mapped_column(UtcDateTime)
    body: Mapped[str] = mapped_column(Text)
    saved_at: Mapped[datetime] = mapped_column(UtcDateTime)
    batch_id: Mapped[int | None] = mapped_column(
        SerialKey, ForeignKey("cdr_batches.id", ondelete="RESTRICT"), nullable=True
    )
    leaf_index: Mapped[int | None] = mapped_column(Integer, nullable=True)


CDR_BATCHES = cast(Table, CdrBatchRow.__table__)
CDR_RECORDS = cast(Table, CdrRow.__table__)
_INSERT_CDRS = insert(CDR_RECORDS)


class CdrConflict(ValidationError):
    """A different CDR for a session that already has one: a stored CDR is never replaced."""

    code = "conflict"


class CdrDocument(Protocol):
    """What the store needs of a CDR (settlement.Cdr is one)."""

    @property
    def session_id(self) -> str: ...

    @property
    def station_id(self) -> str: ...

    @property
    def stop(self) -> datetime: ...

    @property
    def canonical(self) -> bytes:
        """The canonical JSON its digest covers."""
        ...

    def digest(self) -> str: ...


@dataclass(frozen=True)
class CdrBatch:
    id: int
    root: str
    size: int
    created_at: datetime
    tx_hash: str | None
    block: int | None
    chain_id: int | None
    anchored_at: datetime | None

    @property
    def anchored(self) -> bool:
        return self.block is not None


@dataclass(frozen=True)
class StoredCdr:
    session_id: str
    digest: str
    station_id: str
    stop: datetime
    document: dict[str, Any]
    saved_at: datetime
    batch_id: int | None
    leaf_index: int | None


def _stored(row: Any) -> StoredCdr:
    m = row._mapping
    return StoredCdr(
        session_id=m["session_id"],
        digest=m["digest"],
        station_id=m["station_id"],
        stop=m["stop"],
        document=parse_json(m["body"]),
        saved_at=m["saved_at"],
        batch_id=m["batch_id"],
        leaf_index=m["leaf_index"],
    )


def _batch(row: Any) -> CdrBatch:
    return CdrBatch(**dict(row._mapping))


class CdrStore:
    def __init__(self, engine: Engine, clock: Clock | None = None) -> None:
        self.engine = engine
        self.clock = clock or SystemClock()

    def save(self, cdr: CdrDocument) -> StoredCdr:
        """Keep `cdr` in its own transaction (see `save_many`) and return it as stored."""
        for retry in (False, True):
            try:
                with self.engine.begin() as conn:
                    self.save_many(conn, [cdr])
                break
            except sqlalchemy.exc.IntegrityError as exc:
                # Another writer stored this session's CDR meanwhile (the retry compares it),
                # or the digest is another session's (the retry fails again).
                if retry:
                    raise CdrConflict(
                        f"CDR {cdr.digest()} is already stored under another session"
                    ) from exc
        return self.get(cdr.session_id)

    def save_many(self, conn: Connection, cdrs: Sequence[CdrDocument]) -> list[str]:
        """Keep `cdrs` in the caller's transaction, one statement for the new ones, and return
        their digests. A CDR stored already is kept as it is; a different CDR for a session
        that has one raises CdrConflict, and a digest stored under another session fails the
        insert (IntegrityError)."""
        if not cdrs:
            return []
        digests = [cdr.digest() for cdr in cdrs]
        rows = conn.execute(
            select(CDR_RECORDS.c.session_id, CDR_RECORDS.c.digest).where(
                CDR_RECORDS.c.session_id.in_([cdr.session_id for cdr in cdrs])
            )
        )
        known: dict[str, str] = {row.session_id: row.digest for row in rows}
        now = self.clock.now()
        new = []
        for cdr, digest in zip(cdrs, digests, strict=True):
            stored = known.get(cdr.session_id)
            if stored is None:
                known[cdr.session_id] = digest
                new.append(
                    {
                        "session_id": cdr.session_id,
                        "digest": digest,
                        "station_id": cdr.station_id,
                        "stop": cdr.stop,
                        "body": cdr.canonical.decode(),
                        "saved_at": now,
                    }
                )
            elif stored != digest:
                raise CdrConflict(
                    f"session {cdr.session_id} already has CDR {stored}; refusing {digest}"
                )
        execute_many(conn, _INSERT_CDRS, new)
        return digests

    def get(self, session_id: str) -> StoredCdr:
        row = self._row(session_id)
        if row is None:
            raise NotFoundError(f"no CDR for session {session_id!r}")
        return _stored(row)

    def _row(self, session_id: str) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(
                select(CDR_RECORDS).where(CDR_RECORDS.c.session_id == session_id)
            ).first()

    def sessions(self, limit: int | None = None) -> list[StoredCdr]:
        """Stored CDRs, latest stop first."""
        query = select(CDR_RECORDS).order_by(CDR_RECORDS.c.stop.desc(), CDR_RECORDS.c.session_id)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [_stored(row) for row in conn.execute(query)]

    # anchoring

    def open_batch(
        self, root_of: Callable[[list[str]], str], until: datetime | None = None
    ) -> CdrBatch | None:
        """Number the CDRs not yet batched (saved up to `until`, if given) as the leaves of a
        new batch, in stop then session order, and record the root `root_of` gives for their
        digests; None when there is nothing to batch. Selecting by when a CDR was saved, not
        by its stop, keeps a station's clock out of it."""
        query = select(CDR_RECORDS.c.session_id, CDR_RECORDS.c.digest).where(
            CDR_RECORDS.c.batch_id.is_(None)
        )
        if until is not None:
            query = query.where(CDR_RECORDS.c.saved_at <= until)
        with self.engine.begin() as conn:
            rows = conn.execute(
                query.order_by(CDR_RECORDS.c.stop, CDR_RECORDS.c.session_id).with_for_update()
            ).all()
            if not rows:
                return None
            root = root_of([row.digest for row in rows])
            result = conn.execute(
                insert(CDR_BATCHES).values(root=root, size=len(rows), created_at=self.clock.now())
            )
            key = result.inserted_primary_key
            assert key is not None
            batch_id = int(key[0])
            for index, row in enumerate(rows):
                claimed = conn.execute(
                    update(CDR_RECORDS)
                    .where(
                        CDR_RECORDS.c.session_id == row.session_id,
                        CDR_RECORDS.c.batch_id.is_(None),
                    )
                    .values(batch_id=batch_id, leaf_index=index)
                ).rowcount
                if claimed != 1:
                    raise ValidationError(f"CDR {row.session_id} was batched concurrently")
            return self._batch(conn, batch_id)

    def pending_batches(self) -> list[CdrBatch]:
        """Batches whose root the ledger has not yet been seen to hold, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(CDR_BATCHES).where(CDR_BATCHES.c.block.is_(None)).order_by(CDR_BATCHES.c.id)
            )
            return [_batch(row) for row in rows]

    def record_submission(self, batch_id: int, tx_hash: str) -> None:
        """Note the transaction about to carry the batch's root, before it is sent: after a
        crash its receipt tells whether the root got through."""
        with self.engine.begin() as conn:
            conn.execute(
                update(CDR_BATCHES).where(CDR_BATCHES.c.id == batch_id).values(tx_hash=tx_hash)
            )

    def mark_anchored(self, batch_id: int, tx_hash: str, block: int, chain_id: int) -> CdrBatch:
        with self.engine.begin() as conn:
            conn.execute(
                update(CDR_BATCHES)
                .where(CDR_BATCHES.c.id == batch_id)
                .values(
                    tx_hash=tx_hash, block=block, chain_id=chain_id, anchored_at=self.clock.now()
                )
            )
            return self._batch(conn, batch_id)

    def batch(self, batch_id: int) -> CdrBatch:
        with self.engine.connect() as conn:
            return self._batch(conn, batch_id)

    def batch_digests(self, batch_id: int) -> list[str]:
        """The batch's leaves (CDR digests) in leaf order."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(CDR_RECORDS.c.digest)
                .where(CDR_RECORDS.c.batch_id == batch_id)
                .order_by(CDR_RECORDS.c.leaf_index)
            )
            return [row.digest for row in rows]

    def _batch(self, conn: Any, batch_id: int) -> CdrBatch:
        row = conn.execute(select(CDR_BATCHES).where(CDR_BATCHES.c.id == batch_id)).first()
        if row is None:
            raise NotFoundError(f"no CDR batch {batch_id}")
        return _batch(row)
