"""OCPP 2.1: the 2.0.1 station's behaviour bound to 2.1's payload classes and schemas, plus
bidirectional power transfer.

Every message the simulator exchanges exists in 2.1 with the shape it has in 2.0.1 (2.1 adds
optional fields and new messages around them), so only the version binding differs, except
for what 2.1 adds for V2X: the EV's charging needs, DER controls and alarms, and an export
register metered apart from the import register on EVSEs whose EV asked for bidirectional
transfer.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import ocpp.v21

from evgi.sim.stations.session import Session
from evgi.sim.stations.station import StationError, _as_delta, ocpp_time, on
from evgi.sim.stations.v201 import Ocpp2Station

EXPORT_REGISTER = "Energy.Active.Export.Register"


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
        self.export_registers: dict[int, int] = {}  # Wh sent back, per bidirectional EVSE
        self.der_controls: dict[str, tuple[str, dict[str, Any]]] = {}

    async def notify_ev_charging_needs(self, evse: int, needs: dict[str, Any]) -> str:
        """The EV at `evse` tells its needs (chargingNeeds, snake_case); returns the CSMS's
        status. A bidirectional request makes the EVSE meter its export register from here."""
        if "BPT" in needs["requested_energy_transfer"]:
            self.export_registers.setdefault(self.evse(evse).id, 0)
        result = await self._request(
            self._call.NotifyEVChargingNeeds(
                charging_needs=needs, evse_id=evse, timestamp=ocpp_time(self.clock.now())
            )
        )
        return str(result.status)

    async def notify_der_alarm(
        self, control_type: str, grid_event_fault: str | None = None, ended: bool = False
    ) -> None:
        await self._request(
            self._call.NotifyDERAlarm(
                control_type=control_type,
                timestamp=ocpp_time(self.clock.now()),
                grid_event_fault=grid_event_fault,
                alarm_ended=ended or None,
            )
        )

    async def discharge_for(self, duration: timedelta | float, power_w: int, evse: int = 1) -> int:
        """The EV sends `power_w` back for `duration`; the export register rises by the Wh
        sent and the transaction reports both registers. Returns the Wh exported."""
        target = self.evse(evse)
        session = target.session
        if session is None or target.id not in self.export_registers:
            raise StationError(f"no bidirectional transaction at EVSE {evse} of {self.id}")
        remaining = _as_delta(duration)
        exported = power_w * int(remaining.total_seconds()) // 3600
        target.meter.idle()
        while remaining > timedelta(0):
            step = min(remaining, self._step)
            await self._pass(step)
            remaining -= step
        self.export_registers[target.id] += exported
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
        export = self.export_registers.get(session.evse)
        if export is not None and readings:
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
