"""V2G consumer-layer records: discharge programs, driver consents and every agreement-to-
discharge decision with its refusal reasons. Consumer data: it never reaches the grid layer."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import BigInteger, Index, Integer, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column

from evgi.storage.models import Base, SerialKey, UtcDateTime


class ProgramRow(Base):
    __tablename__ = "v2g_programs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    operator: Mapped[str] = mapped_column(String(16))
    operator_id: Mapped[str] = mapped_column(String(100))
    executed_by: Mapped[str] = mapped_column(String(8))
    priority: Mapped[int] = mapped_column(Integer)
    max_discharge_w: Mapped[int] = mapped_column(BigInteger)
    evse_ids: Mapped[str] = mapped_column(Text)  # space-separated; empty for any EVSE
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ConsentRow(Base):
    __tablename__ = "v2g_consents"

    vehicle: Mapped[str] = mapped_column(String(64), primary_key=True)
    program_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    driver: Mapped[str] = mapped_column(String(100))
    min_soc_percent: Mapped[int] = mapped_column(Integer)
    departure_at: Mapped[datetime] = mapped_column(UtcDateTime)
    departure_energy_wh: Mapped[int] = mapped_column(BigInteger)
    energy_transfer: Mapped[str] = mapped_column(Text)
    given_at: Mapped[datetime] = mapped_column(UtcDateTime)
    opted_out_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # What the opt-out was sent as: 2030.5 Response status and OCPP 2.1 allowedEnergyTransfer.
    sep2_status: Mapped[int] = mapped_column(Integer)
    allowed_energy_transfer: Mapped[str] = mapped_column(Text)


class DecisionRow(Base):
    __tablename__ = "v2g_decisions"
    __table_args__ = (Index("ix_v2g_decisions_vehicle", "vehicle", "id"),)

    id: Mapped[int] = mapped_column(SerialKey, primary_key=True, autoincrement=True)
    program_id: Mapped[str] = mapped_column(String(64))
    vehicle: Mapped[str] = mapped_column(String(64))
    evse_id: Mapped[str] = mapped_column(String(64))
    decided_at: Mapped[datetime] = mapped_column(UtcDateTime)
    agreed: Mapped[int] = mapped_column(Integer)
    refusals: Mapped[str] = mapped_column(Text)  # space-separated Refusal values


PROGRAMS = cast(Table, ProgramRow.__table__)
CONSENTS = cast(Table, ConsentRow.__table__)
DECISIONS = cast(Table, DecisionRow.__table__)
