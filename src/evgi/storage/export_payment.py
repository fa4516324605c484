"""Export payments: what was paid for the energy a V2G session sent back, one row per session.

The session id is the key, so the database itself refuses a second payment for a session, from
any process. A row is claimed before anything is signed, and the payer's nonce and the hash of
each signed transfer are recorded before it is sent: all of a session's transfers share that
nonce, so at most one of them can ever be on the ledger, and a restart finds the payments whose
outcome is not yet recorded and asks the ledger by those hashes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import BigInteger, Connection, Index, String, Table, Text, insert, select, update
from sqlalchemy.orm import Mapped, mapped_column

from evgi.storage.models import Base, UtcDateTime

# Payment states: claimed (nothing signed yet), sending (signed, outcome unknown), then paid, or
# failed when the ledger refused the transfer.
CLAIMED, SENDING, PAID, FAILED = "claimed", "sending", "paid", "failed"
UNSETTLED = (CLAIMED, SENDING)


class ExportPaymentRow(Base):
    __tablename__ = "settlement_export_payments"
    __table_args__ = (
        Index("ix_settlement_export_wallet", "wallet", "claimed_at"),
        Index("ix_settlement_export_state", "state"),
    )

    session_id: Mapped[str] = mapped_column(String(120), primary_key=True)
    station_id: Mapped[str] = mapped_column(String(48))
    transaction_id: Mapped[str] = mapped_column(String(36))
    id_token: Mapped[str] = mapped_column(String(255))
    wallet: Mapped[str] = mapped_column(String(64))
    driver_address: Mapped[str] = mapped_column(String(42))
    payer: Mapped[str] = mapped_column(String(42))
    export_wh: Mapped[int] = mapped_column(BigInteger)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    state: Mapped[str] = mapped_column(String(16))
    nonce: Mapped[int | None] = mapped_column(BigInteger)
    # Space-separated hashes of every transfer signed at `nonce`; `tx_hash` is the one on the
    # ledger once its receipt is read.
    sent_hashes: Mapped[str] = mapped_column(Text)
    tx_hash: Mapped[str | None] = mapped_column(String(66))
    claimed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    paid_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    note: Mapped[str | None] = mapped_column(Text)


EXPORT_PAYMENTS = cast(Table, ExportPaymentRow.__table__)


@dataclass(frozen=True)
class ExportPayment:
    """One session's export payment: Wh, minor units, and the ledger transfer that paid them
    (`tx_hash`, once `state` is paid)."""

    session_id: str
    station_id: str
    transaction_id: str
    id_token: str
    wallet: str
    driver_address: str
    payer: str
    export_wh: int
    amount_minor: int
    currency: str
    state: str
    nonce: int | None
    sent_hashes: str
    tx_hash: str | None
    claimed_at: datetime
    paid_at: datetime | None
    note: str | None

    @property
    def hashes(self) -> list[str]:
        return self.sent_hashes.split()


def _of(row: Any) -> ExportPayment:
    return ExportPayment(**row._mapping)


def claim_export_payment(conn: Connection, payment: ExportPayment) -> None:
    """Insert the claimed row; raises IntegrityError when the session has a payment already."""
    conn.execute(insert(EXPORT_PAYMENTS).values(**asdict(payment)))


def record_sending(conn: Connection, before: ExportPayment, after: ExportPayment) -> bool:
    """Record a signed transfer's nonce and hashes, if the row still holds what `before` read;
    False when another process changed it first."""
    t = EXPORT_PAYMENTS
    changed = conn.execute(
        update(t)
        .where(
            t.c.session_id == before.session_id,
            t.c.state == before.state,
            t.c.sent_hashes == before.sent_hashes,
        )
        .values(state=after.state, nonce=after.nonce, sent_hashes=after.sent_hashes)
    ).rowcount
    return bool(changed)


def record_outcome(
    conn: Connection,
    session_id: str,
    state: str,
    tx_hash: str | None,
    at: datetime | None,
    note: str | None = None,
) -> None:
    conn.execute(
        update(EXPORT_PAYMENTS)
        .where(EXPORT_PAYMENTS.c.session_id == session_id)
        .values(state=state, tx_hash=tx_hash, paid_at=at, note=note)
    )


def export_payment(conn: Connection, session_id: str) -> ExportPayment | None:
    row = conn.execute(
        select(EXPORT_PAYMENTS).where(EXPORT_PAYMENTS.c.session_id == session_id)
    ).first()
    return None if row is None else _of(row)


def export_payments(
    conn: Connection,
    wallet: str | None = None,
    states: Sequence[str] | None = None,
    limit: int | None = None,
) -> list[ExportPayment]:
    """Payments, newest claim first; of one wallet, or in some states, when given."""
    t = EXPORT_PAYMENTS
    query = select(t).order_by(t.c.claimed_at.desc(), t.c.session_id).limit(limit)
    if wallet is not None:
        query = query.where(t.c.wallet == wallet)
    if states is not None:
        query = query.where(t.c.state.in_(states))
    return [_of(row) for row in conn.execute(query)]
