"""Discharge programs: who runs them (an OEM, a utility, or a CPO, aggregator or other third
party) and where their discharge commands are executed (by the EVSE or by the EV)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from evgi.core.errors import ValidationError


class ProgramOperator(StrEnum):
    OEM = "oem"
    UTILITY = "utility"
    CPO = "cpo"
    AGGREGATOR = "aggregator"


class Executor(StrEnum):
    """The device that follows the discharge commands and checks they are being followed."""

    EVSE = "evse"
    EV = "ev"


@dataclass(frozen=True)
class DischargeProgram:
    """A program offering drivers discharge opportunities.

    `priority` orders programs a driver is enrolled in (lower first), so an OEM can always put,
    say, a local utility's emergency program ahead of the others. `evse_ids` restricts an
    EV-executed program to EVSEs it recognises; empty means any grid-integrated EVSE.
    """

    id: str
    name: str
    operator: ProgramOperator
    operator_id: str
    executed_by: Executor
    priority: int
    max_discharge_w: int
    created_at: datetime
    evse_ids: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not self.id or len(self.id) > 64:
            raise ValidationError("a program id has 1 to 64 characters")
        if not self.name.strip():
            raise ValidationError("a program needs a name")
        if not self.operator_id:
            raise ValidationError("a program names the entity that runs it")
        if self.max_discharge_w <= 0:
            raise ValidationError("a program's discharge power limit must be positive (W)")
        if self.priority < 0:
            raise ValidationError("program priority is a non-negative integer")
        if self.created_at.tzinfo is None:
            raise ValidationError("times are timezone-aware UTC")
        if self.operator is ProgramOperator.UTILITY and self.executed_by is Executor.EV:
            # A utility reaches EVs only through an OEM or telematics aggregator, which then
            # runs the program towards the EV.
            raise ValidationError("a utility program is executed by the EVSE; an OEM runs EV ones")
