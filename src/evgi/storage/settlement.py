"""Settlement's own state: prepaid wallets and their id tokens, station tariffs, price quotes and
each session's escrow, locked tariff and progress.

A session row is written before its ledger transaction is sent and updated after its receipt,
so a restart finds every session whose ledger outcome is not yet recorded (`opening`,
`settling`) and asks the ledger what became of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Engine,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    bindparam,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Mapped, mapped_column

from evgi.core.errors import NotFoundError, ValidationError
from evgi.storage.models import Base, SerialKey, UtcDateTime
from evgi.storage.rows import execute_many

# Session states, in the order a session goes through them.
OPENING, OPEN, SETTLING, SETTLED, REFUNDED, FAILED = (
    "opening",
    "open",
    "settling",
    "settled",
    "refunded",
    "failed",
)
FINAL_STATES = frozenset({SETTLED, REFUNDED, FAILED})


class WalletRow(Base):
    """A driver's prepaid account; its key is custodied by the eMSP in the platform keystore."""

    __tablename__ = "settlement_wallets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    address: Mapped[str] = mapped_column(String(42), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class WalletTokenRow(Base):
    """An id token (RFID card, app token) that charges to a wallet."""

    __tablename__ = "settlement_wallet_tokens"

    id_token: Mapped[str] = mapped_column(String(255), primary_key=True)
    wallet: Mapped[str] = mapped_column(
        ForeignKey("settlement_wallets.name", ondelete="CASCADE"), index=True
    )
    linked_at: Mapped[datetime] = mapped_column(UtcDateTime)


class StationTariffRow(Base):
    """The OCPI tariff a station charges now, the zone its times are read in, and who is paid."""

    __tablename__ = "settlement_station_tariffs"

    station_id: Mapped[str] = mapped_column(String(48), primary_key=True)
    tariff: Mapped[str] = mapped_column(Text)
    time_zone: Mapped[str] = mapped_column(String(64))
    payee: Mapped[str] = mapped_column(String(42))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class QuoteRow(Base):
    """A price shown to a driver before a start; the start that follows locks its tariff."""

    __tablename__ = "settlement_quotes"
    __table_args__ = (Index("ix_settlement_quote_token", "id_token", "station_id", "id"),)

    id: Mapped[int] = mapped_column(SerialKey, primary_key=True, autoincrement=True)
    station_id: Mapped[str] = mapped_column(String(48))
    id_token: Mapped[str] = mapped_column(String(255))
    tariff: Mapped[str] = mapped_column(Text)
    tariff_digest: Mapped[str] = mapped_column(String(66))
    estimate_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    used: Mapped[bool] = mapped_column(Boolean)


class SessionRow(Base):
    __tablename__ = "settlement_sessions"
    __table_args__ = (Index("ix_settlement_session_state", "state", "opened_at"),)

    session_id: Mapped[str] = mapped_column(String(120), primary_key=True)
    station_id: Mapped[str] = mapped_column(String(48))
    transaction_id: Mapped[str] = mapped_column(String(36))
    id_token: Mapped[str] = mapped_column(String(255), index=True)
    payer: Mapped[str] = mapped_column(String(42))
    payee: Mapped[str] = mapped_column(String(42))
    escrow_id: Mapped[str] = mapped_column(String(64), unique=True)
    currency: Mapped[str] = mapped_column(String(3))
    hold_minor: Mapped[int] = mapped_column(BigInteger)
    tariff: Mapped[str] = mapped_column(Text)
    tariff_digest: Mapped[str] = mapped_column(String(66))
    time_zone: Mapped[str] = mapped_column(String(64))
    quote_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    state: Mapped[str] = mapped_column(String(16))
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime)
    cost_minor: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    payee_minor: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    fee_minor: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    record_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)


WALLETS = cast(Table, WalletRow.__table__)
WALLET_TOKENS = cast(Table, WalletTokenRow.__table__)
STATION_TARIFFS = cast(Table, StationTariffRow.__table__)
QUOTES = cast(Table, QuoteRow.__table__)
SESSIONS = cast(Table, SessionRow.__table__)


@dataclass(frozen=True)
class Wallet:
    name: str
    address: str
    created_at: datetime


@dataclass(frozen=True)
class StationTariff:
    station_id: str
    tariff: str  # OCPI Tariff JSON
    time_zone: str
    payee: str
    updated_at: datetime


@dataclass(frozen=True)
class StoredQuote:
    id: int
    station_id: str
    id_token: str
    tariff: str
    tariff_digest: str
    estimate_minor: int
    currency: str
    created_at: datetime
    used: bool


@dataclass(frozen=True)
class SettlementSession:
    session_id: str
    station_id: str
    transaction_id: str
    id_token: str
    payer: str
    payee: str
    escrow_id: str
    currency: str
    hold_minor: int
    tariff: str
    tariff_digest: str
    time_zone: str
    quote_id: int | None
    state: str
    opened_at: datetime
    cost_minor: int | None = None
    payee_minor: int | None = None
    fee_minor: int | None = None
    record_hash: str | None = None
    closed_at: datetime | None = None
    note: str | None = None

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES


def _columns(cls: type[Any], table: Table) -> list[Column[Any]]:
    """`table`'s columns in `cls`'s field order, so a row of them builds `cls` positionally."""
    return [table.c[field.name] for field in fields(cls)]


_WALLET = _columns(Wallet, WALLETS)
_STATION_TARIFF = _columns(StationTariff, STATION_TARIFFS)
_QUOTE = _columns(StoredQuote, QUOTES)
_SESSION = _columns(SettlementSession, SESSIONS)


def _of(cls: type[Any], row: Any) -> Any:
    return cls(*row)


class SettlementStore:
    """Reads and writes of settlement's tables; each takes the connection to run on, so one
    database transaction can carry a whole batch of sessions."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # wallets

    def add_wallet(self, conn: Connection, name: str, address: str, now: datetime) -> Wallet:
        if self.find_wallet(conn, name) is not None:
            raise ValidationError(f"a wallet named {name!r} already exists")
        conn.execute(insert(WALLETS).values(name=name, address=address, created_at=now))
        return Wallet(name, address, now)

    def find_wallet(self, conn: Connection, name: str) -> Wallet | None:
        row = conn.execute(select(*_WALLET).where(WALLETS.c.name == name)).first()
        return None if row is None else cast(Wallet, _of(Wallet, row))

    def find_wallet_at(self, conn: Connection, address: str) -> Wallet | None:
        row = conn.execute(select(*_WALLET).where(WALLETS.c.address == address)).first()
        return None if row is None else cast(Wallet, _of(Wallet, row))

    def wallet(self, conn: Connection, name: str) -> Wallet:
        found = self.find_wallet(conn, name)
        if found is None:
            raise NotFoundError(f"no wallet named {name!r}")
        return found

    def link_token(self, conn: Connection, id_token: str, wallet: str, now: datetime) -> None:
        self.wallet(conn, wallet)
        row = conn.execute(
            select(WALLET_TOKENS.c.wallet).where(WALLET_TOKENS.c.id_token == id_token)
        ).first()
        if row is not None and row.wallet != wallet:
            raise ValidationError(f"id token {id_token} already charges to wallet {row.wallet!r}")
        if row is None:
            conn.execute(
                insert(WALLET_TOKENS).values(id_token=id_token, wallet=wallet, linked_at=now)
            )

    def wallet_of_token(self, conn: Connection, id_token: str) -> Wallet | None:
        return self.wallets_of_tokens(conn, [id_token]).get(id_token)

    def wallets_of_tokens(self, conn: Connection, id_tokens: Sequence[str]) -> dict[str, Wallet]:
        """The wallets these id tokens charge to, a query per few hundred tokens; a token linked
        to none is left out."""
        found: dict[str, Wallet] = {}
        tokens = sorted(set(id_tokens))
        for start in range(0, len(tokens), _IN_CHUNK):
            rows = conn.execute(
                select(WALLET_TOKENS.c.id_token, *_WALLET)
                .join(WALLETS, WALLET_TOKENS.c.wallet == WALLETS.c.name)
                .where(WALLET_TOKENS.c.id_token.in_(tokens[start : start + _IN_CHUNK]))
            )
            found.update((row[0], _of(Wallet, row[1:])) for row in rows)
        return found

    def tokens_of(self, conn: Connection, wallet: str) -> list[str]:
        rows = conn.execute(
            select(WALLET_TOKENS.c.id_token)
            .where(WALLET_TOKENS.c.wallet == wallet)
            .order_by(WALLET_TOKENS.c.id_token)
        )
        return [row.id_token for row in rows]

    # tariffs and quotes

    def put_station_tariff(
        self,
        conn: Connection,
        station_id: str,
        tariff: str,
        time_zone: str,
        payee: str,
        now: datetime,
    ) -> StationTariff:
        values = {"tariff": tariff, "time_zone": time_zone, "payee": payee, "updated_at": now}
        changed = conn.execute(
            update(STATION_TARIFFS)
            .where(STATION_TARIFFS.c.station_id == station_id)
            .values(**values)
        ).rowcount
        if not changed:
            conn.execute(insert(STATION_TARIFFS).values(station_id=station_id, **values))
        return StationTariff(station_id, tariff, time_zone, payee, now)

    def station_tariff(self, conn: Connection, station_id: str) -> StationTariff | None:
        row = conn.execute(
            select(*_STATION_TARIFF).where(STATION_TARIFFS.c.station_id == station_id)
        ).first()
        return None if row is None else cast(StationTariff, _of(StationTariff, row))

    def add_quote(
        self,
        conn: Connection,
        station_id: str,
        id_token: str,
        tariff: str,
        tariff_digest: str,
        estimate_minor: int,
        currency: str,
        now: datetime,
    ) -> StoredQuote:
        values = {
            "station_id": station_id,
            "id_token": id_token,
            "tariff": tariff,
            "tariff_digest": tariff_digest,
            "estimate_minor": estimate_minor,
            "currency": currency,
            "created_at": now,
            "used": False,
        }
        key = conn.execute(insert(QUOTES).values(**values)).inserted_primary_key
        assert key is not None
        return StoredQuote(id=int(key[0]), **values)  # type: ignore[arg-type]

    # sessions

    def find_sessions(
        self, conn: Connection, session_ids: Sequence[str]
    ) -> dict[str, SettlementSession]:
        if not session_ids:
            return {}
        rows = conn.execute(select(*_SESSION).where(SESSIONS.c.session_id.in_(session_ids)))
        return {row.session_id: _of(SettlementSession, row) for row in rows}

    def session(self, conn: Connection, session_id: str) -> SettlementSession:
        found = self.find_sessions(conn, [session_id]).get(session_id)
        if found is None:
            raise NotFoundError(f"no settlement session {session_id!r}")
        return found

    def add_sessions(self, conn: Connection, sessions: Sequence[SettlementSession]) -> None:
        """Insert new sessions, marking the quotes they locked as used."""
        if not sessions:
            return
        execute_many(conn, _INSERT_SESSIONS, [_session_values(s) for s in sessions])
        used = [s.quote_id for s in sessions if s.quote_id is not None]
        if used:
            conn.execute(update(QUOTES).where(QUOTES.c.id.in_(used)).values(used=True))

    def update_sessions(self, conn: Connection, sessions: Sequence[SettlementSession]) -> None:
        """Store each session's progress (one statement for the whole batch)."""
        execute_many(
            conn,
            _UPDATE_PROGRESS,
            [{"sid": s.session_id, **{c: getattr(s, c) for c in _PROGRESS}} for s in sessions],
        )

    def move_sessions(
        self,
        conn: Connection,
        session_ids: Sequence[str],
        state: str,
        closed_at: datetime | None,
    ) -> None:
        """Set the state (and closing time) of sessions whose other progress is stored: what a
        batch's receipts do, in a statement per few hundred sessions rather than one each."""
        for start in range(0, len(session_ids), _IN_CHUNK):
            conn.execute(
                update(SESSIONS)
                .where(SESSIONS.c.session_id.in_(session_ids[start : start + _IN_CHUNK]))
                .values(state=state, closed_at=closed_at)
            )

    def open_quotes(
        self, conn: Connection, id_tokens: Sequence[str], since: datetime
    ) -> dict[tuple[str, str], StoredQuote]:
        """The newest unused quote per (id token, station) of `id_tokens`, not older than
        `since`: what a batch of starts may lock."""
        if not id_tokens:
            return {}
        rows = conn.execute(
            select(*_QUOTE)
            .where(
                QUOTES.c.id_token.in_(sorted(set(id_tokens))),
                QUOTES.c.used.is_(False),
                QUOTES.c.created_at >= since,
            )
            .order_by(QUOTES.c.id)
        )
        return {(row.id_token, row.station_id): _of(StoredQuote, row) for row in rows}

    def sessions(
        self,
        conn: Connection,
        states: Sequence[str] | None = None,
        opened_before: datetime | None = None,
        id_token: str | None = None,
    ) -> list[SettlementSession]:
        query = select(*_SESSION).order_by(SESSIONS.c.opened_at, SESSIONS.c.session_id)
        if states is not None:
            query = query.where(SESSIONS.c.state.in_(states))
        if opened_before is not None:
            query = query.where(SESSIONS.c.opened_at < opened_before)
        if id_token is not None:
            query = query.where(SESSIONS.c.id_token == id_token)
        return [_of(SettlementSession, row) for row in conn.execute(query)]


_SESSION_COLUMNS = tuple(column.name for column in SESSIONS.columns)
_IN_CHUNK = 500  # values per IN list, within every SQLite build's bound on parameters
_PROGRESS = ("state", "cost_minor", "payee_minor", "fee_minor", "record_hash", "closed_at", "note")
_INSERT_SESSIONS = insert(SESSIONS)
_UPDATE_PROGRESS = (
    update(SESSIONS)
    .where(SESSIONS.c.session_id == bindparam("sid"))
    .values({c: bindparam(c) for c in _PROGRESS})
)


def _session_values(session: SettlementSession) -> dict[str, Any]:
    return {name: getattr(session, name) for name in _SESSION_COLUMNS}
