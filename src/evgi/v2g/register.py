"""The register of the V2G consumer layer: programs, consents (with what each opt-out was sent
as) and every agreement-to-discharge decision, kept in the storage database."""

from __future__ import annotations

from sqlalchemy import Engine, insert, select, update

from evgi.core.errors import NotFoundError, ValidationError
from evgi.storage.v2g import CONSENTS, DECISIONS, PROGRAMS
from evgi.v2g.agreement import Decision, Refusal
from evgi.v2g.consent import Consent
from evgi.v2g.program import DischargeProgram, Executor, ProgramOperator


def _modes(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _text(values: frozenset[str]) -> str:
    return " ".join(sorted(values))


class V2gRegister:
    """Programs, consents and decisions in the storage database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add_program(self, program: DischargeProgram) -> None:
        with self.engine.begin() as conn:
            if conn.execute(select(PROGRAMS.c.id).where(PROGRAMS.c.id == program.id)).first():
                raise ValidationError(f"program {program.id} already exists")
            conn.execute(
                insert(PROGRAMS).values(
                    id=program.id,
                    name=program.name,
                    operator=program.operator.value,
                    operator_id=program.operator_id,
                    executed_by=program.executed_by.value,
                    priority=program.priority,
                    max_discharge_w=program.max_discharge_w,
                    evse_ids=_text(program.evse_ids),
                    created_at=program.created_at,
                )
            )

    def program(self, program_id: str) -> DischargeProgram:
        with self.engine.connect() as conn:
            row = conn.execute(select(PROGRAMS).where(PROGRAMS.c.id == program_id)).first()
        if row is None:
            raise NotFoundError(f"no discharge program {program_id}")
        return DischargeProgram(
            id=row.id,
            name=row.name,
            operator=ProgramOperator(row.operator),
            operator_id=row.operator_id,
            executed_by=Executor(row.executed_by),
            priority=row.priority,
            max_discharge_w=row.max_discharge_w,
            created_at=row.created_at,
            evse_ids=_modes(row.evse_ids),
        )

    def save_consent(self, consent: Consent) -> None:
        """Record a consent or its change (an opt-out keeps the row, with the opt-out time)."""
        self.program(consent.program_id)
        values = {
            "driver": consent.driver,
            "min_soc_percent": consent.min_soc_percent,
            "departure_at": consent.departure_at,
            "departure_energy_wh": consent.departure_energy_wh,
            "energy_transfer": _text(consent.energy_transfer),
            "given_at": consent.given_at,
            "opted_out_at": consent.opted_out_at,
            "sep2_status": consent.sep2_status,
            "allowed_energy_transfer": _text(consent.allowed_energy_transfer),
        }
        key = (CONSENTS.c.vehicle == consent.vehicle) & (
            CONSENTS.c.program_id == consent.program_id
        )
        with self.engine.begin() as conn:
            if conn.execute(select(CONSENTS.c.vehicle).where(key)).first():
                conn.execute(update(CONSENTS).where(key).values(**values))
            else:
                conn.execute(
                    insert(CONSENTS).values(
                        vehicle=consent.vehicle, program_id=consent.program_id, **values
                    )
                )

    def consent(self, vehicle: str, program_id: str) -> Consent | None:
        key = (CONSENTS.c.vehicle == vehicle) & (CONSENTS.c.program_id == program_id)
        with self.engine.connect() as conn:
            row = conn.execute(select(CONSENTS).where(key)).first()
        if row is None:
            return None
        return Consent(
            driver=row.driver,
            vehicle=row.vehicle,
            program_id=row.program_id,
            min_soc_percent=row.min_soc_percent,
            departure_at=row.departure_at,
            departure_energy_wh=row.departure_energy_wh,
            energy_transfer=_modes(row.energy_transfer),
            given_at=row.given_at,
            opted_out_at=row.opted_out_at,
        )

    def opt_out_record(self, vehicle: str, program_id: str) -> tuple[int, frozenset[str]]:
        """The 2030.5 status and OCPP 2.1 allowedEnergyTransfer stored with the consent."""
        key = (CONSENTS.c.vehicle == vehicle) & (CONSENTS.c.program_id == program_id)
        with self.engine.connect() as conn:
            row = conn.execute(
                select(CONSENTS.c.sep2_status, CONSENTS.c.allowed_energy_transfer).where(key)
            ).first()
        if row is None:
            raise NotFoundError(f"no consent of {vehicle} in {program_id}")
        return int(row.sep2_status), _modes(row.allowed_energy_transfer)

    def record(self, decision: Decision) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                insert(DECISIONS).values(
                    program_id=decision.program_id,
                    vehicle=decision.vehicle,
                    evse_id=decision.evse_id,
                    decided_at=decision.decided_at,
                    agreed=int(decision.agreed),
                    refusals=" ".join(r.value for r in decision.refusals),
                )
            )

    def decisions(self, vehicle: str) -> list[Decision]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(DECISIONS).where(DECISIONS.c.vehicle == vehicle).order_by(DECISIONS.c.id)
            ).all()
        return [
            Decision(
                program_id=row.program_id,
                vehicle=row.vehicle,
                evse_id=row.evse_id,
                decided_at=row.decided_at,
                refusals=tuple(Refusal(value) for value in row.refusals.split()),
            )
            for row in rows
        ]
