"""A vehicle's dispatched power, as the message its station's OCPP version can carry.

OCPP 2.1 stations get a V2X charging profile: a transaction profile in CentralSetpoint mode
whose periods carry the setpoint and the charge and discharge limits that bound it, and the
grid security layer's caps as an ExternalLimits profile of external constraints; setpoints
stay within the powers the EV announced in its charging needs. OCPP 2.0.1
and 1.6 know no discharge: the same plan becomes a charging limit, and a period asking for
discharge becomes a 0 W limit, recorded with that reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import structlog

from evgi.core.clock import Clock
from evgi.core.errors import ValidationError
from evgi.csms import Commands, OcppVersion, UnsupportedCommand
from evgi.csms.metering import format_time
from evgi.v2g.dispatch import Dispatch

log = structlog.get_logger(__name__)

# Stack levels and profile ids of the V2G profiles: one profile per EVSE and purpose, replaced
# by every new dispatch, above the station's own default profiles.
STACK_LEVEL = 5
PROFILE_ID_BASE = 7_000_000
LIMITS_PROFILE_ID_BASE = 7_100_000
BOUNDED_BY_EV = "bounded by the EV's announced charge and discharge powers"
DISCHARGE_UNSUPPORTED = "discharge unsupported by OCPP {version}: 0 W charging limit"


@dataclass(frozen=True)
class Target:
    """Where a vehicle is plugged in: its station, EVSE (1.6: connector) and transaction."""

    station_id: str
    evse_id: int
    transaction_id: str | None


@dataclass(frozen=True)
class Period:
    """Power from `start_s` seconds after the schedule start: W, import positive."""

    start_s: int
    power_w: float


@dataclass(frozen=True)
class Sent:
    """What went to the station and why it differs from what was asked, if it does."""

    target: Target
    version: OcppVersion
    action: str
    purpose: str
    status: str
    body: dict[str, Any]
    reason: str | None = None


def vehicle_periods(dispatch: Dispatch, index: int) -> list[Period]:
    """One vehicle's share of a real-time dispatch, held from now."""
    return [Period(0, float(dispatch.power_w[index]))]


def plan_periods(power_w: Sequence[float], slot_s: int, elapsed_s: int = 0) -> list[Period]:
    """A vehicle's row of the fleet plan, one period per slot, merging equal neighbours; the
    first slot may be `elapsed_s` under way already (a vehicle plugged in mid-slot)."""
    if not 0 <= elapsed_s < slot_s:
        raise ValidationError("a slot under way has run for 0 s or more, less than the slot")
    periods: list[Period] = []
    for slot, power in enumerate(np.asarray(power_w, dtype=float)):
        if not periods or periods[-1].power_w != float(power):
            periods.append(Period(max(slot * slot_s - elapsed_s, 0), float(power)))
    return periods


class StationCommands:
    """Sends dispatched setpoints to stations through the CSMS's command API."""

    def __init__(self, commands: Commands, clock: Clock) -> None:
        self.commands = commands
        self.clock = clock
        self.sent: list[Sent] = []

    async def send_setpoints(self, target: Target, periods: Sequence[Period]) -> Sent:
        """The periods as the station's version can carry them (see the module's rules)."""
        if not periods or periods[0].start_s != 0:
            raise ValidationError("a schedule needs periods, the first starting at 0 s")
        version = self.commands.version(target.station_id)
        start = self.clock.now()
        if version is OcppVersion.V21:
            bounded = self._within_ev_needs(target, periods)
            profile = _v2x_profile(target, bounded, start)
            reason = BOUNDED_BY_EV if list(bounded) != list(periods) else None
        else:
            profile = _charging_only_profile(target, periods, start, version)
            discharging = any(p.power_w < 0 for p in periods)
            reason = DISCHARGE_UNSUPPORTED.format(version=version.value) if discharging else None
        return await self._set(target, version, profile, reason)

    def _within_ev_needs(self, target: Target, periods: Sequence[Period]) -> list[Period]:
        """The periods within the powers the EV announced (NotifyEVChargingNeeds); an EV that
        asked for no bidirectional transfer is never asked to discharge."""
        needs = self.commands.ev_charging_needs(target.station_id, target.evse_id)
        if needs is None:
            return list(periods)
        most_out = needs.max_discharge_w if needs.bidirectional else 0.0
        most_in = needs.max_charge_w
        bounded = []
        for period in periods:
            power = period.power_w
            if most_out is not None:
                power = max(power, -most_out)
            if most_in is not None:
                power = min(power, most_in)
            bounded.append(Period(period.start_s, power))
        return bounded

    async def send_grid_limits(
        self, target: Target, import_cap_w: float, export_cap_w: float
    ) -> Sent:
        """2.1: the grid security layer's caps as ExternalLimits external constraints."""
        if import_cap_w < 0 or export_cap_w < 0:
            raise ValidationError("grid caps are non-negative watts")
        version = self.commands.version(target.station_id)
        if version is not OcppVersion.V21:
            raise UnsupportedCommand(f"{version.value} has no external discharge limits")
        profile = {
            "id": LIMITS_PROFILE_ID_BASE + target.evse_id,
            "stackLevel": STACK_LEVEL,
            "chargingProfilePurpose": "ChargingStationExternalConstraints",
            "chargingProfileKind": "Absolute",
            "chargingSchedule": [
                {
                    "id": LIMITS_PROFILE_ID_BASE + target.evse_id,
                    "startSchedule": format_time(self.clock.now()),
                    "chargingRateUnit": "W",
                    "chargingSchedulePeriod": [
                        {
                            "startPeriod": 0,
                            "operationMode": "ExternalLimits",
                            "limit": float(import_cap_w),
                            "dischargeLimit": -float(export_cap_w),
                        }
                    ],
                }
            ],
        }
        return await self._set(target, version, profile, None)

    async def _set(
        self,
        target: Target,
        version: OcppVersion,
        profile: dict[str, Any],
        reason: str | None,
    ) -> Sent:
        answer = await self.commands.set_charging_profile(
            target.station_id, target.evse_id, profile
        )
        sent = Sent(
            target,
            version,
            "SetChargingProfile",
            str(profile["chargingProfilePurpose"]),
            str(answer.status),
            profile,
            reason,
        )
        self.sent.append(sent)
        # A dispatcher sends one per vehicle and change: only a refusal is worth an operator's eye.
        (log.debug if sent.status == "Accepted" else log.warning)(
            "v2g profile sent",
            station=target.station_id,
            evse=target.evse_id,
            version=version.value,
            status=sent.status,
            reason=reason,
        )
        return sent


def _v2x_profile(target: Target, periods: Sequence[Period], start: datetime) -> dict[str, Any]:
    profile_id = PROFILE_ID_BASE + target.evse_id
    profile: dict[str, Any] = {
        "id": profile_id,
        "stackLevel": STACK_LEVEL,
        "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Absolute",
        "chargingSchedule": [
            {
                "id": profile_id,
                "startSchedule": format_time(start),
                "chargingRateUnit": "W",
                "chargingSchedulePeriod": [
                    {
                        "startPeriod": p.start_s,
                        "operationMode": "CentralSetpoint",
                        "setpoint": p.power_w,
                        # The limits hold the EV to its setpoint, whichever way it flows.
                        "limit": max(p.power_w, 0.0),
                        "dischargeLimit": min(p.power_w, 0.0),
                    }
                    for p in periods
                ],
            }
        ],
    }
    if target.transaction_id is not None:
        profile["transactionId"] = target.transaction_id
    return profile


def _charging_only_profile(
    target: Target, periods: Sequence[Period], start: datetime, version: OcppVersion
) -> dict[str, Any]:
    limits = [{"startPeriod": p.start_s, "limit": max(p.power_w, 0.0)} for p in periods]
    if version is OcppVersion.V16:
        profile: dict[str, Any] = {
            "chargingProfileId": PROFILE_ID_BASE + target.evse_id,
            "stackLevel": STACK_LEVEL,
            "chargingProfilePurpose": "TxProfile",
            "chargingProfileKind": "Absolute",
            "chargingSchedule": {
                "startSchedule": format_time(start),
                "chargingRateUnit": "W",
                "chargingSchedulePeriod": limits,
            },
        }
        if target.transaction_id is not None:
            profile["transactionId"] = int(target.transaction_id)
        return profile
    profile = {
        "id": PROFILE_ID_BASE + target.evse_id,
        "stackLevel": STACK_LEVEL,
        "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Absolute",
        "chargingSchedule": [
            {
                "id": PROFILE_ID_BASE + target.evse_id,
                "startSchedule": format_time(start),
                "chargingRateUnit": "W",
                "chargingSchedulePeriod": limits,
            }
        ],
    }
    if target.transaction_id is not None:
        profile["transactionId"] = target.transaction_id
    return profile
