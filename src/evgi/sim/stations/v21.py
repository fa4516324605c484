"""OCPP 2.1: the 2.0.1 station's behaviour bound to 2.1's payload classes and schemas, plus
bidirectional power transfer.

Every message the simulator exchanges exists in 2.1 with the shape it has in 2.0.1 (2.1 adds
optional fields and new messages around them), so only the version binding differs, except
for what 2.1 adds for V2X: the EV's charging needs, DER controls and alarms, and an export
register metered apart from the import register on EVSEs whose EV asked for bidirectional
transfer.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import ocpp.v21

from evgi.sim.stations.connector import Evse
from evgi.sim.stations.session import Session
from evgi.sim.stations.station import StationError, _as_delta, ocpp_time, on
from evgi.sim.stations.v201 import Ocpp2Station
from evgi.storage.bidirectional import transfers_back

EXPORT_REGISTER = "Energy.Active.Export.Register"
# A power stage delivering this much less export than its setpoint is held by a limit.
HELD_TOLERANCE_W = 1.0


class Station21(Ocpp2Station):
    """A charging station speaking OCPP 2.1."""

    version = "2.1"
    subprotocol = "ocpp2.1"
    _call = ocpp.v21.call
    _call_result = ocpp.v21.call_result
    _types = ocpp.v21.datatypes
    _ocpp_version = "2.1"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bidirectional: set[int] = set()  # EVSEs whose EV asked for bidirectional transfer
        self.held: set[int] = set()  # EVSEs whose export a limit holds below the setpoint
        self.der_controls: dict[str, tuple[str, dict[str, Any]]] = {}

    async def notify_ev_charging_needs(self, evse: int, needs: dict[str, Any]) -> str:
        """The EV at `evse` tells its needs (chargingNeeds, snake_case); returns the CSMS's
        status. A bidirectional request makes the EVSE meter its export register from here."""
        if transfers_back(needs["requested_energy_transfer"]):
            self.bidirectional.add(self.evse(evse).id)
        result = await self._request(
            self._call.NotifyEVChargingNeeds(
                charging_needs=needs, evse_id=evse, timestamp=ocpp_time(self.clock.now())
            )
        )
        return str(result.status)

    async def notify_der_alarm(
        self,
        control_type: str,
        grid_event_fault: str | None = None,
        ended: bool = False,
        extra_info: str | None = None,
    ) -> None:
        await self._request(
            self._call.NotifyDERAlarm(
                control_type=control_type,
                timestamp=ocpp_time(self.clock.now()),
                grid_event_fault=grid_event_fault,
                alarm_ended=ended or None,
                extra_info=extra_info,
            )
        )

    def _setpoint_w(self, evse: Evse, at: datetime) -> float:
        """A V2X profile's setpoint, within the charging limits in force; else what 2.0.1 does."""
        setpoint = self.profiles.setpoint_w(*self._profile_terms(evse, at))
        if setpoint is None:
            return super()._setpoint_w(evse, at)
        limit = self._limit_w(evse, at)
        return float(setpoint if limit is None else min(setpoint, limit))

    async def _held_to(self, evse: Evse, asked: float, flowed: float) -> None:
        """A setpoint for export the power stage could not keep raises a DER alarm, and its
        end clears it: the CSMS learns that a limit outside its profiles is in force."""
        held = asked < 0 and flowed > asked + HELD_TOLERANCE_W
        if held and evse.id not in self.held:
            self.held.add(evse.id)
            await self.notify_der_alarm(
                "LimitMaxDischarge",
                extra_info=f"discharge setpoint {-asked:.0f} W held at {max(-flowed, 0):.0f} W "
                "by the grid limit in force",
            )
        elif not held and evse.id in self.held:
            self.held.discard(evse.id)
            await self.notify_der_alarm("LimitMaxDischarge", ended=True)

    async def discharge_for(self, duration: timedelta | float, power_w: int, evse: int = 1) -> int:
        """The EV sends `power_w` back for `duration`; the export register rises by the Wh
        sent and the transaction reports both registers. Returns the Wh exported."""
        target = self.evse(evse)
        session = target.session
        if session is None or target.id not in self.bidirectional:
            raise StationError(f"no bidirectional transaction at EVSE {evse} of {self.id}")
        remaining = _as_delta(duration)
        before = target.meter.export_register_wh
        while remaining > timedelta(0):
            step = min(remaining, self._step)
            target.meter.export(power_w, step)
            await self._pass(step)
            remaining -= step
        exported = target.meter.export_register_wh - before
        if target.vehicle is not None:
            target.vehicle.energy_wh = max(0, target.vehicle.energy_wh - exported)
        await self._transaction_sample(target, session, target.reading(self.clock.now()))
        return exported

    def _event(
        self,
        event_type: str,
        trigger: str,
        session: Session,
        info: dict[str, Any],
        readings: list[Any],
        **extra: Any,
    ) -> Any:
        if session.evse in self.bidirectional and readings:
            export = self.evse(session.evse).meter.export_register_wh
            types = self._types
            first = readings[0]
            first.sampled_value.append(
                types.SampledValueType(
                    value=export,
                    context=first.sampled_value[0].context if first.sampled_value else None,
                    measurand=EXPORT_REGISTER,
                    location="Outlet",
                    unit_of_measure=types.UnitOfMeasureType(unit="Wh"),
                )
            )
        return super()._event(event_type, trigger, session, info, readings, **extra)

    @on("SetDERControl")
    def on_set_der_control(
        self, control_id: str, control_type: str, is_default: bool, **settings: Any
    ) -> Any:
        settings.pop("custom_data", None)
        self.der_controls[control_id] = (control_type, settings)
        return self._call_result.SetDERControl(status="Accepted")
