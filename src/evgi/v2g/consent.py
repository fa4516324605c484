"""Driver consent to discharge: opt-in with a state-of-charge floor and a departure time and
energy, and opt-out at any moment. An opt-out is kept with what it means on the wire: the IEEE
2030.5 Response status for an opted-out event, and the OCPP 2.1 energy transfer modes left
once bidirectional transfer is withdrawn."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from evgi.core.errors import ValidationError

# IEEE 2030.5 Response.status (Table 27): the user has chosen to opt out of the event.
SEP2_STATUS_OPTED_OUT = 4
SEP2_STATUS_RECEIVED = 1

# OCPP 2.1 EnergyTransferModeEnumType values that carry power back to the grid.
BIDIRECTIONAL_MODES = frozenset({"AC_BPT", "AC_BPT_DER", "DC_BPT", "DC_BPT_DER", "DC_ACDP_BPT"})
OCPP21_MODES = BIDIRECTIONAL_MODES | frozenset(
    {
        "AC_single_phase",
        "AC_two_phase",
        "AC_three_phase",
        "AC_DER",
        "DC",
        "DC_ACDP",
        "WPT",
    }
)


def without_discharging(modes: frozenset[str]) -> frozenset[str]:
    """The OCPP 2.1 allowedEnergyTransfer that keeps charging but never discharges."""
    unknown = modes - OCPP21_MODES
    if unknown:
        raise ValidationError(f"unknown OCPP 2.1 energy transfer modes: {sorted(unknown)}")
    return modes - BIDIRECTIONAL_MODES


@dataclass(frozen=True)
class Consent:
    """A driver's standing consent for one vehicle in one program."""

    driver: str
    vehicle: str
    program_id: str
    min_soc_percent: int
    departure_at: datetime
    departure_energy_wh: int
    energy_transfer: frozenset[str]
    given_at: datetime
    opted_out_at: datetime | None = None

    def __post_init__(self) -> None:
        if not self.driver or not self.vehicle or not self.program_id:
            raise ValidationError("a consent names the driver, the vehicle and the program")
        if not 0 <= self.min_soc_percent <= 100:
            raise ValidationError("the state-of-charge floor is a percentage from 0 to 100")
        if self.departure_energy_wh < 0:
            raise ValidationError("the departure energy is a non-negative number of Wh")
        for moment in (self.departure_at, self.given_at, self.opted_out_at):
            if moment is not None and moment.tzinfo is None:
                raise ValidationError("times are timezone-aware UTC")
        without_discharging(self.energy_transfer)

    @property
    def opted_in(self) -> bool:
        return self.opted_out_at is None

    def opt_out(self, at: datetime) -> Consent:
        """Withdraw consent now; discharge stops and charging goes on."""
        if at.tzinfo is None:
            raise ValidationError("times are timezone-aware UTC")
        if not self.opted_in:
            return self
        return replace(self, opted_out_at=at)

    @property
    def sep2_status(self) -> int:
        """The 2030.5 Response status to send for this vehicle's discharge events."""
        return SEP2_STATUS_RECEIVED if self.opted_in else SEP2_STATUS_OPTED_OUT

    @property
    def allowed_energy_transfer(self) -> frozenset[str]:
        """OCPP 2.1 allowedEnergyTransfer for the vehicle's charging sessions."""
        return self.energy_transfer if self.opted_in else without_discharging(self.energy_transfer)

    def floor_wh(self, capacity_wh: int) -> int:
        return capacity_wh * self.min_soc_percent // 100
