"""EVSEs and their connectors: what is plugged in, who is authorized, what the meter sees."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from evgi.core.units import WattHours, Watts
from evgi.sim.stations.charging_profile import ChargingProfile
from evgi.sim.stations.meter import Meter, Reading
from evgi.sim.stations.session import Session
from evgi.sim.stations.vehicle import Vehicle


class ConnectorStatus(StrEnum):
    """OCPP 1.6's connector states; OCPP 2.x folds the in-use ones into `Occupied`."""

    AVAILABLE = "Available"
    PREPARING = "Preparing"
    CHARGING = "Charging"
    SUSPENDED_EV = "SuspendedEV"
    SUSPENDED_EVSE = "SuspendedEVSE"
    FINISHING = "Finishing"
    RESERVED = "Reserved"
    UNAVAILABLE = "Unavailable"
    FAULTED = "Faulted"


@dataclass
class Reservation:
    id: int
    token: str
    expires: datetime
    group: str | None = None

    def admits(self, token: str, group: str | None = None) -> bool:
        token = token.upper()
        return token == self.token.upper() or (
            self.group is not None and group is not None and group.upper() == self.group.upper()
        )


@dataclass
class PendingStart:
    """A token authorized for this EVSE before the cable was plugged in (or by the CSMS)."""

    token: str
    token_type: str
    since: datetime
    remote_start_id: int | None = None
    group: str | None = None
    profile: ChargingProfile | None = None  # a TxProfile sent with a remote start


@dataclass
class Evse:
    """One EVSE with one connector, its meter and whatever happens at it."""

    id: int
    max_power_w: int
    dc: bool = False
    phases: int = 3
    evse_id: str | None = None  # the eMI3 EVSE ID, e.g. DE*VCH*E0001*1
    connector_id: int = 1
    meter: Meter = field(init=False)
    operative: bool = True
    pending_operative: bool | None = None  # ChangeAvailability while a transaction runs
    plugged: bool = False
    vehicle: Vehicle | None = None
    pending: PendingStart | None = None
    session: Session | None = None
    reservation: Reservation | None = None
    finishing: bool = False  # the transaction ended but the cable is still in
    charging_state: ConnectorStatus = ConnectorStatus.CHARGING
    reported: str | None = None  # the status the CSMS last heard of, in its version's words

    def __post_init__(self) -> None:
        self.meter = Meter(phases=self.phases, dc=self.dc)
        if self.dc:
            self.phases = 1

    @property
    def status(self) -> ConnectorStatus:
        """The status follows from the state, so it can never disagree with it."""
        if self.session is not None:
            return self.charging_state
        if not self.operative:
            return ConnectorStatus.UNAVAILABLE
        if self.plugged and self.finishing:
            return ConnectorStatus.FINISHING
        if self.plugged or self.pending is not None:
            return ConnectorStatus.PREPARING
        if self.reservation is not None:
            return ConnectorStatus.RESERVED
        return ConnectorStatus.AVAILABLE

    def deliver(self, requested_w: int, limit_w: int | None, duration: timedelta) -> Watts:
        """Let the EV draw power for `duration`, within the EVSE's rating, the charging-profile
        limit and what the battery accepts; meters it and returns the power that flowed."""
        power = min(requested_w, self.max_power_w)
        if limit_w is not None:
            power = min(power, max(0, limit_w))
        ev_wants = requested_w > 0
        if self.vehicle is not None:
            acceptance = self.vehicle.acceptance_w()
            ev_wants = ev_wants and acceptance > 0
            power = min(power, acceptance)
            seconds = duration.total_seconds()
            room_wh = self.vehicle.capacity_wh - self.vehicle.energy_wh
            if seconds > 0 and power * seconds > room_wh * 3600:
                power = int(room_wh * 3600 / seconds)
        power = max(0, power)
        stored = self.meter.run(power, duration)
        if self.vehicle is not None:
            self.vehicle.store(stored)
        if power > 0:
            self.charging_state = ConnectorStatus.CHARGING
        elif ev_wants:
            self.charging_state = ConnectorStatus.SUSPENDED_EVSE
        else:
            self.charging_state = ConnectorStatus.SUSPENDED_EV
        return Watts(power)

    def reading(self, at: datetime) -> Reading:
        soc = self.vehicle.soc_percent if self.vehicle is not None else None
        return self.meter.reading(at, soc)

    @property
    def register_wh(self) -> WattHours:
        return self.meter.register_wh
