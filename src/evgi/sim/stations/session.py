"""A charging session (an OCPP transaction) as a station records it, whatever the version."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from evgi.core.units import WattHours


class StopReason(StrEnum):
    """Why a transaction ended; each OCPP version spells these its own way."""

    LOCAL = "Local"  # the driver presented the token again
    REMOTE = "Remote"  # the CSMS asked for it
    EV_DISCONNECTED = "EVDisconnected"
    HARD_RESET = "HardReset"
    SOFT_RESET = "SoftReset"
    UNLOCK = "UnlockCommand"
    DEAUTHORIZED = "DeAuthorized"
    REBOOT = "Reboot"  # a firmware update restarts the station


class StartTrigger(StrEnum):
    """What completed the conditions for a transaction (OCPP 2.x reports it)."""

    AUTHORIZED = "Authorized"
    CABLE_PLUGGED_IN = "CablePluggedIn"
    REMOTE_START = "RemoteStart"


@dataclass
class Session:
    """One transaction on one EVSE, from authorization to its end."""

    evse: int
    connector: int
    token: str
    token_type: str
    started: datetime
    meter_start_wh: WattHours
    transaction_id: str | None  # OCPP 1.6: assigned by the CSMS, so unknown while offline
    remote_start_id: int | None = None
    reservation_id: int | None = None
    stopped: datetime | None = None
    meter_stop_wh: WattHours | None = None
    stop_reason: StopReason | None = None
    authorization: str = "Accepted"  # the CSMS's verdict on the token when it started
    seconds_charging: int = 0
    seq_no: int = field(default=0, repr=False)

    @property
    def energy_wh(self) -> WattHours:
        """Energy delivered so far (or in total, once stopped)."""
        end = self.meter_stop_wh if self.meter_stop_wh is not None else self.meter_start_wh
        return WattHours(end - self.meter_start_wh)

    def next_seq_no(self) -> int:
        """OCPP 2.x numbers a transaction's events 0, 1, 2… so the CSMS can spot gaps."""
        number = self.seq_no
        self.seq_no += 1
        return number
