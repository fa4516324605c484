"""Agreement to discharge: both the EVSE and the EV must agree, and either may refuse. Every
decision keeps all the reasons it was refused for, so a driver, site owner or program operator
can see why a discharge did not happen."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from evgi.core.errors import ValidationError
from evgi.v2g.consent import Consent
from evgi.v2g.program import DischargeProgram


class Refusal(StrEnum):
    EVSE_NOT_GRID_INTEGRATED = "evse_not_grid_integrated"
    SITE_OWNER_NOT_ALLOWING = "site_owner_not_allowing"
    EV_CANNOT_RECEIVE_1547 = "ev_cannot_receive_1547"
    EV_BELOW_SOC_FLOOR = "ev_below_soc_floor"
    EVSE_NOT_RECOGNISED = "evse_not_recognised"
    DRIVER_OPTED_OUT = "driver_opted_out"


# Which side refuses: the EVSE for its own state and the AC EV's 1547 support, the EV otherwise.
REFUSED_BY = {
    Refusal.EVSE_NOT_GRID_INTEGRATED: "evse",
    Refusal.SITE_OWNER_NOT_ALLOWING: "evse",
    Refusal.EV_CANNOT_RECEIVE_1547: "evse",
    Refusal.EV_BELOW_SOC_FLOOR: "ev",
    Refusal.EVSE_NOT_RECOGNISED: "ev",
    Refusal.DRIVER_OPTED_OUT: "ev",
}


@dataclass(frozen=True)
class Evse:
    """`grid_integrated`: connected to a 2030.5 server its utility approves, with the grid
    interoperability functions in force. `current` is "AC" or "DC": with AC the EV's own
    inverter discharges, so it must be able to receive IEEE 1547 functions (e.g. SAE J3072)."""

    evse_id: str
    grid_integrated: bool
    site_owner_allows: bool
    current: str

    def __post_init__(self) -> None:
        if self.current not in ("AC", "DC"):
            raise ValidationError("an EVSE supplies AC or DC")


@dataclass(frozen=True)
class Vehicle:
    """`known_evses`: the EVSEs the EV (or its OEM) recognises by their 2030.5 or ISO 15118
    identity; None when it recognises any."""

    vehicle: str
    soc_wh: int
    capacity_wh: int
    receives_1547: bool
    known_evses: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if self.capacity_wh <= 0 or not 0 <= self.soc_wh <= self.capacity_wh:
            raise ValidationError("state of charge must lie within [0, capacity] Wh")


@dataclass(frozen=True)
class Decision:
    program_id: str
    vehicle: str
    evse_id: str
    decided_at: datetime
    refusals: tuple[Refusal, ...]

    @property
    def agreed(self) -> bool:
        return not self.refusals


def decide(
    program: DischargeProgram,
    evse: Evse,
    vehicle: Vehicle,
    consent: Consent | None,
    at: datetime,
) -> Decision:
    """Whether `vehicle` may discharge through `evse` in `program` now (seed rules, all kept)."""
    if at.tzinfo is None:
        raise ValidationError("times are timezone-aware UTC")
    if consent is not None and (
        consent.vehicle != vehicle.vehicle or consent.program_id != program.id
    ):
        raise ValidationError("the consent is for another vehicle or program")
    refusals: list[Refusal] = []
    if not evse.grid_integrated:
        refusals.append(Refusal.EVSE_NOT_GRID_INTEGRATED)
    if not evse.site_owner_allows:
        refusals.append(Refusal.SITE_OWNER_NOT_ALLOWING)
    if evse.current == "AC" and not vehicle.receives_1547:
        refusals.append(Refusal.EV_CANNOT_RECEIVE_1547)
    floor = consent.floor_wh(vehicle.capacity_wh) if consent is not None else 0
    if vehicle.soc_wh <= floor:
        refusals.append(Refusal.EV_BELOW_SOC_FLOOR)
    known = vehicle.known_evses
    if (known is not None and evse.evse_id not in known) or (
        program.evse_ids and evse.evse_id not in program.evse_ids
    ):
        refusals.append(Refusal.EVSE_NOT_RECOGNISED)
    if consent is None or not consent.opted_in:
        # Driver input is always necessary: no consent on record counts as opted out.
        refusals.append(Refusal.DRIVER_OPTED_OUT)
    return Decision(program.id, vehicle.vehicle, evse.evse_id, at, tuple(refusals))
