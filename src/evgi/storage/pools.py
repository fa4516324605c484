"""Tables of the Plug & Charge certificate pools: the pool's clients, the root certificate pool
and its trust list, the provisioning certificates OEMs publish, the signed contract data eMSPs
store per vehicle and the drivers' recorded choice of contract. Certificates are kept as DER;
no private key is ever stored here (contract keys arrive already encrypted for the vehicle).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Boolean,
    Engine,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Mapped, mapped_column

from evgi.core.canonical import compact_json, parse_json
from evgi.core.errors import NotFoundError, ValidationError
from evgi.storage.models import Base, UtcDateTime
from evgi.storage.rows import upsert


class PoolClientRow(Base):
    """A system the pools serve (an OEM, eMSP or CPO back end, or the pool's operator),
    known by the SHA-256 of its bearer token."""

    __tablename__ = "pool_clients"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class PoolRootRow(Base):
    """A root of the root certificate pool; `trusted` V2G roots form the trust list."""

    __tablename__ = "pool_roots"

    fingerprint: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    subject: Mapped[str] = mapped_column(String(400))
    der: Mapped[bytes] = mapped_column(LargeBinary)
    trusted: Mapped[bool] = mapped_column(Boolean)
    added_at: Mapped[datetime] = mapped_column(UtcDateTime)


class PoolProvisioningRow(Base):
    """An OEM provisioning certificate chain (leaf first, DER in a JSON list of base64)."""

    __tablename__ = "pool_provisioning_certificates"

    pcid: Mapped[str] = mapped_column(String(18), primary_key=True)
    oem: Mapped[str] = mapped_column(String(64))
    profile: Mapped[str] = mapped_column(String(24))
    chain: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class PoolContractRow(Base):
    """Signed contract data (a CertificateInstallationRes body) for one vehicle and eMAID."""

    __tablename__ = "pool_contracts"

    pcid: Mapped[str] = mapped_column(String(18), primary_key=True)
    emaid: Mapped[str] = mapped_column(String(18), primary_key=True)
    emsp: Mapped[str] = mapped_column(String(64))
    priority: Mapped[int] = mapped_column(Integer)
    signed_data: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class PoolConsentRow(Base):
    """The driver's recorded choice of default contract for a vehicle, and who recorded it."""

    __tablename__ = "pool_consents"

    pcid: Mapped[str] = mapped_column(String(18), primary_key=True)
    emaid: Mapped[str] = mapped_column(String(18))
    driver: Mapped[str] = mapped_column(String(128))
    consented_at: Mapped[datetime] = mapped_column(UtcDateTime)
    recorded_by: Mapped[str] = mapped_column(String(64))


POOL_CLIENTS = cast(Table, PoolClientRow.__table__)
POOL_ROOTS = cast(Table, PoolRootRow.__table__)
POOL_PROVISIONING = cast(Table, PoolProvisioningRow.__table__)
POOL_CONTRACTS = cast(Table, PoolContractRow.__table__)
POOL_CONSENTS = cast(Table, PoolConsentRow.__table__)
# What a PoolClient shows of its row: never the token's hash.
_CLIENT_FIELDS = (POOL_CLIENTS.c.name, POOL_CLIENTS.c.role, POOL_CLIENTS.c.created_at)


@dataclass(frozen=True)
class PoolClient:
    name: str
    role: str
    created_at: datetime


@dataclass(frozen=True)
class StoredRoot:
    fingerprint: str
    kind: str
    subject: str
    der: bytes
    trusted: bool
    added_at: datetime


@dataclass(frozen=True)
class StoredProvisioning:
    pcid: str
    oem: str
    profile: str
    chain: tuple[str, ...]
    updated_at: datetime


@dataclass(frozen=True)
class StoredContract:
    pcid: str
    emaid: str
    emsp: str
    priority: int
    signed_data: dict[str, Any]
    updated_at: datetime


@dataclass(frozen=True)
class Consent:
    pcid: str
    emaid: str
    driver: str
    consented_at: datetime
    recorded_by: str


class PoolStore:
    """Reads and writes of the pool tables, each in a transaction of its own."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- clients ---------------------------------------------------------------------------

    def add_client(self, name: str, role: str, token_hash: str, at: datetime) -> PoolClient:
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(POOL_CLIENTS).values(
                        name=name, role=role, token_hash=token_hash, created_at=at
                    )
                )
        except sa_exc.IntegrityError as exc:
            raise ValidationError(f"a pool client named {name!r} already exists") from exc
        return PoolClient(name, role, at)

    def client_by_token(self, token_hash: str) -> PoolClient | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(*_CLIENT_FIELDS).where(POOL_CLIENTS.c.token_hash == token_hash)
            ).first()
        return None if row is None else PoolClient(*row)

    def clients(self) -> list[PoolClient]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(*_CLIENT_FIELDS).order_by(POOL_CLIENTS.c.name))
            return [PoolClient(*row) for row in rows]

    # -- root certificate pool -------------------------------------------------------------

    def put_root(self, root: StoredRoot) -> StoredRoot:
        """Add a root, or keep the one already there (its trust flag included)."""
        with self.engine.begin() as conn:
            if self._root(conn, root.fingerprint) is None:
                conn.execute(insert(POOL_ROOTS).values(**root.__dict__))
            stored = self._root(conn, root.fingerprint)
        assert stored is not None
        return stored

    def roots(self, kind: str | None = None) -> list[StoredRoot]:
        query = select(POOL_ROOTS).order_by(POOL_ROOTS.c.kind, POOL_ROOTS.c.subject)
        if kind is not None:
            query = query.where(POOL_ROOTS.c.kind == kind)
        with self.engine.connect() as conn:
            return [StoredRoot(**row._mapping) for row in conn.execute(query)]

    def set_trust_list(self, fingerprints: Sequence[str]) -> None:
        """Trust exactly these V2G roots (all present, checked by the caller), in one step."""
        with self.engine.begin() as conn:
            conn.execute(update(POOL_ROOTS).values(trusted=False))
            if fingerprints:
                conn.execute(
                    update(POOL_ROOTS)
                    .where(POOL_ROOTS.c.fingerprint.in_(list(fingerprints)))
                    .values(trusted=True)
                )

    def _root(self, conn: Any, fingerprint: str) -> StoredRoot | None:
        row = conn.execute(
            select(POOL_ROOTS).where(POOL_ROOTS.c.fingerprint == fingerprint)
        ).first()
        return None if row is None else StoredRoot(**row._mapping)

    # -- provisioning certificate pool -----------------------------------------------------

    def put_provisioning(self, record: StoredProvisioning) -> None:
        values = {**record.__dict__, "chain": compact_json(list(record.chain))}
        with self.engine.begin() as conn:
            upsert(conn, POOL_PROVISIONING, {"pcid": record.pcid}, values)

    def provisioning(self, pcid: str) -> StoredProvisioning | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(POOL_PROVISIONING).where(POOL_PROVISIONING.c.pcid == pcid)
            ).first()
        if row is None:
            return None
        values = dict(row._mapping)
        values["chain"] = tuple(parse_json(values["chain"]))
        return StoredProvisioning(**values)

    def delete_provisioning(self, pcid: str) -> None:
        """Withdraw a vehicle: its certificate, its contracts and the driver's choice."""
        with self.engine.begin() as conn:
            for table in (POOL_CONSENTS, POOL_CONTRACTS, POOL_PROVISIONING):
                conn.execute(delete(table).where(table.c.pcid == pcid))

    # -- contract certificate pool ---------------------------------------------------------

    def put_contract(self, record: StoredContract) -> None:
        values = {**record.__dict__, "signed_data": compact_json(record.signed_data)}
        with self.engine.begin() as conn:
            upsert(conn, POOL_CONTRACTS, {"pcid": record.pcid, "emaid": record.emaid}, values)

    def contracts(self, pcid: str) -> list[StoredContract]:
        """A vehicle's contracts, highest priority (lowest number) first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(POOL_CONTRACTS)
                .where(POOL_CONTRACTS.c.pcid == pcid)
                .order_by(POOL_CONTRACTS.c.priority, POOL_CONTRACTS.c.emaid)
            )
            return [_contract(row._mapping) for row in rows]

    def contracts_named(self, emaid: str) -> list[StoredContract]:
        """The contracts of eMAID `emaid`, whichever vehicles they are for."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(POOL_CONTRACTS).where(POOL_CONTRACTS.c.emaid == emaid))
            return [_contract(row._mapping) for row in rows]

    def delete_contract(self, pcid: str, emaid: str) -> None:
        """Remove a contract, and the driver's choice of it."""
        with self.engine.begin() as conn:
            removed = conn.execute(
                delete(POOL_CONTRACTS).where(
                    POOL_CONTRACTS.c.pcid == pcid, POOL_CONTRACTS.c.emaid == emaid
                )
            ).rowcount
            if not removed:
                raise NotFoundError(f"no contract {emaid} for PCID {pcid}")
            conn.execute(
                delete(POOL_CONSENTS).where(
                    POOL_CONSENTS.c.pcid == pcid, POOL_CONSENTS.c.emaid == emaid
                )
            )

    def record_consent(self, consent: Consent) -> None:
        with self.engine.begin() as conn:
            upsert(conn, POOL_CONSENTS, {"pcid": consent.pcid}, consent.__dict__)

    def consent(self, pcid: str) -> Consent | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(POOL_CONSENTS).where(POOL_CONSENTS.c.pcid == pcid)).first()
        return None if row is None else Consent(**row._mapping)


def _contract(values: Any) -> StoredContract:
    row = dict(values)
    row["signed_data"] = parse_json(row["signed_data"])
    return StoredContract(**row)


__all__: Sequence[str] = (
    "POOL_CLIENTS",
    "POOL_CONSENTS",
    "POOL_CONTRACTS",
    "POOL_PROVISIONING",
    "POOL_ROOTS",
    "Consent",
    "PoolClient",
    "PoolStore",
    "StoredContract",
    "StoredProvisioning",
    "StoredRoot",
)
