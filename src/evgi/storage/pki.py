"""Tables of the Plug & Charge PKI: the certificate authorities of the ISO 15118 hierarchies,
every certificate they issued (so OCSP can tell "good" from "unknown") with its revocation,
and the contracts behind contract certificates. CA private keys stay in files, never here.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import (
    Engine,
    Index,
    LargeBinary,
    String,
    Table,
    bindparam,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Mapped, mapped_column

from evgi.storage.data_version import DataVersion
from evgi.storage.models import Base, UtcDateTime
from evgi.storage.rows import fetch, upsert


class PkiAuthorityRow(Base):
    """One CA of a hierarchy: its role (root, sub-ca-1, sub-ca-2), its branch (v2g, mo, oem
    for roots; cpo, cps, mo, oem for sub-CAs) and its parent, None for a root."""

    __tablename__ = "pki_authorities"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    branch: Mapped[str] = mapped_column(String(8))
    profile: Mapped[str] = mapped_column(String(16))
    parent: Mapped[str | None] = mapped_column(String(64), nullable=True)
    key_algorithm: Mapped[str] = mapped_column(String(16))
    certificate: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class PkiCertificateRow(Base):
    """A certificate a CA issued, keyed by issuer and serial (hex: serials run to 159 bits)."""

    __tablename__ = "pki_certificates"
    __table_args__ = (
        Index("ix_pki_certificates_role_cn", "role", "common_name"),
        Index("ix_pki_certificates_revoked_at", "revoked_at"),
    )

    issuer: Mapped[str] = mapped_column(String(64), primary_key=True)
    serial: Mapped[str] = mapped_column(String(42), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    common_name: Mapped[str] = mapped_column(String(64))
    not_after: Mapped[datetime] = mapped_column(UtcDateTime)
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime)
    der: Mapped[bytes] = mapped_column(LargeBinary)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    reason: Mapped[str | None] = mapped_column(String(32), nullable=True)


class PkiContractRow(Base):
    """A charging contract by eMAID: active, or cancelled by its mobility operator."""

    __tablename__ = "pki_contracts"

    emaid: Mapped[str] = mapped_column(String(18), primary_key=True)
    authority: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


PKI_AUTHORITIES = cast(Table, PkiAuthorityRow.__table__)
PKI_CERTIFICATES = cast(Table, PkiCertificateRow.__table__)
PKI_CONTRACTS = cast(Table, PkiContractRow.__table__)

# Every OCSP answer and every contract authorization reads one row: statements built once, so a
# read skips constructing and keying a new statement (half its cost).
_CERTIFICATE = select(PKI_CERTIFICATES).where(
    PKI_CERTIFICATES.c.issuer == bindparam("issuer"),
    PKI_CERTIFICATES.c.serial == bindparam("serial"),
)
_CONTRACT_STATE = select(PKI_CONTRACTS.c.state).where(PKI_CONTRACTS.c.emaid == bindparam("emaid"))
_AUTHORITY_COUNT = select(func.count().label("authorities")).select_from(PKI_AUTHORITIES)
_REVOCATIONS = select(func.count().label("revocations")).where(
    PKI_CERTIFICATES.c.revoked_at.is_not(None)
)


@dataclass(frozen=True)
class AuthorityRecord:
    name: str
    role: str
    branch: str
    profile: str
    parent: str | None
    key_algorithm: str
    certificate: bytes
    created_at: datetime


@dataclass(frozen=True)
class CertificateRecord:
    issuer: str
    serial: int
    role: str
    common_name: str
    not_after: datetime
    issued_at: datetime
    der: bytes
    revoked_at: datetime | None = None
    reason: str | None = None


class PkiStore:
    """Reads and writes of the PKI tables, each in its own transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self._commits: DataVersion | None = None  # opened on the first count of revocations
        self._revocations = 0

    def add_authority(self, record: AuthorityRecord) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(PKI_AUTHORITIES).values(**record.__dict__))

    def authorities(self) -> list[AuthorityRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(PKI_AUTHORITIES).order_by(PKI_AUTHORITIES.c.name))
            return [AuthorityRecord(**row._mapping) for row in rows]

    def authority_count(self) -> int:
        """How many CAs there are: CAs are never removed, so a new count means a new CA."""
        with self.engine.connect() as conn:
            return int(fetch(conn, _AUTHORITY_COUNT, {})[0]["authorities"])

    def record(self, certificate: CertificateRecord) -> None:
        values = {**certificate.__dict__, "serial": f"{certificate.serial:x}"}
        with self.engine.begin() as conn:
            conn.execute(insert(PKI_CERTIFICATES).values(**values))

    def certificate(self, issuer: str, serial: int) -> CertificateRecord | None:
        with self.engine.connect() as conn:
            rows = fetch(conn, _CERTIFICATE, {"issuer": issuer, "serial": f"{serial:x}"})
        return _certificate(rows[0]) if rows else None

    def revoke(
        self, issuer: str, serial: int, reason: str, at: datetime
    ) -> CertificateRecord | None:
        """Mark a certificate revoked, keeping the first time and reason; None if unknown."""
        with self.engine.begin() as conn:
            conn.execute(
                update(PKI_CERTIFICATES)
                .where(
                    PKI_CERTIFICATES.c.issuer == issuer,
                    PKI_CERTIFICATES.c.serial == f"{serial:x}",
                    PKI_CERTIFICATES.c.revoked_at.is_(None),
                )
                .values(revoked_at=at, reason=reason)
            )
        return self.certificate(issuer, serial)

    def revoked(self, issuer: str) -> list[CertificateRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(PKI_CERTIFICATES)
                .where(
                    PKI_CERTIFICATES.c.issuer == issuer, PKI_CERTIFICATES.c.revoked_at.is_not(None)
                )
                .order_by(PKI_CERTIFICATES.c.revoked_at)
            )
            return [_certificate(row._mapping) for row in rows]

    def find(self, role: str, common_name: str) -> list[CertificateRecord]:
        """Certificates of one role naming `common_name` (an eMAID, PCID or SECC id), newest
        first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(PKI_CERTIFICATES)
                .where(
                    PKI_CERTIFICATES.c.role == role, PKI_CERTIFICATES.c.common_name == common_name
                )
                .order_by(PKI_CERTIFICATES.c.issued_at.desc())
            )
            return [_certificate(row._mapping) for row in rows]

    def set_contract(self, emaid: str, authority: str, state: str, at: datetime) -> None:
        with self.engine.begin() as conn:
            upsert(
                conn,
                PKI_CONTRACTS,
                {"emaid": emaid},
                {"authority": authority, "state": state, "updated_at": at},
            )

    def contract_state(self, emaid: str) -> str | None:
        with self.engine.connect() as conn:
            rows = fetch(conn, _CONTRACT_STATE, {"emaid": emaid})
        return cast("str | None", rows[0]["state"]) if rows else None

    def revocations(self) -> int:
        """How many certificates were ever revoked: it only grows, so a relying party that
        saw it move knows a revocation happened since it last asked. Counted again only once
        something was committed (`DataVersion`), by any process."""
        with self._lock:
            if self._commits is None:
                self._commits = DataVersion(self.engine)
            if self._commits.changed():
                with self.engine.connect() as conn:
                    self._revocations = int(fetch(conn, _REVOCATIONS, {})[0]["revocations"])
            return self._revocations


def _certificate(values: object) -> CertificateRecord:
    row = dict(cast("dict[str, object]", values))
    row["serial"] = int(cast(str, row["serial"]), 16)
    return CertificateRecord(**row)  # type: ignore[arg-type]
