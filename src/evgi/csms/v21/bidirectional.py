"""2.1 bidirectional power transfer: the EV's charging needs, DER controls and DER alarms.

The EV's needs (with its V2X limits) and every alarm are stored (`evgi.storage.bidirectional`),
so whoever dispatches discharge, in any process and after a restart, bounds its setpoints by
the needs; both are also published on the bus for consumers that react as they come.
"""

from __future__ import annotations

from typing import Any

from ocpp.v21.enums import Action

from evgi.csms.charge_point import ChargePoint, on
from evgi.csms.connection import to_snake_case
from evgi.csms.metering import parse_time
from evgi.storage.bidirectional import (
    DerAlarm,
    EvChargingNeeds,
    record_charging_needs,
    record_der_alarm,
    transfers_back,
)


class Bidirectional(ChargePoint):
    """Handlers and commands of 2.1's bidirectional and DER control blocks."""

    @on(Action.notify_ev_charging_needs)
    async def on_notify_ev_charging_needs(
        self,
        charging_needs: dict[str, Any],
        evse_id: int,
        timestamp: str | None = None,
        **_: Any,
    ) -> Any:
        mode = charging_needs["requested_energy_transfer"]
        v2x = charging_needs.get("v2x_charging_parameters") or {}
        departure = charging_needs.get("departure_time")
        # Processing: a V2X profile follows once dispatch has a setpoint for this EV. Otherwise
        # the CSMS sends no profile for these needs, which 2.1 says with NoChargingProfile.
        answer = "Processing" if transfers_back(mode) and v2x else "NoChargingProfile"
        needs = EvChargingNeeds(
            station_id=self.id,
            evse_id=evse_id,
            transaction_id=None,  # the store sets the transaction running at the EVSE
            requested_energy_transfer=mode,
            control_mode=charging_needs.get("control_mode"),
            departure_at=None if departure is None else parse_time(departure),
            max_charge_w=v2x.get("max_charge_power"),
            max_discharge_w=v2x.get("max_discharge_power"),
            needs=charging_needs,
            received_at=parse_time(timestamp) if timestamp else self.now(),
            answer=answer,
        )
        self.publish(await self.store(record_charging_needs, needs))
        return self.dialect.call_result.NotifyEVChargingNeeds(status=answer)

    @on(Action.notify_der_alarm)
    async def on_notify_der_alarm(
        self,
        control_type: str,
        timestamp: str,
        grid_event_fault: str | None = None,
        alarm_ended: bool | None = None,
        extra_info: str | None = None,
        **_: Any,
    ) -> Any:
        alarm = DerAlarm(
            station_id=self.id,
            control_type=control_type,
            grid_event_fault=grid_event_fault,
            alarm_ended=bool(alarm_ended),
            timestamp=parse_time(timestamp),
            extra_info=extra_info,
            received_at=self.now(),
        )
        await self.store(record_der_alarm, alarm)
        self.publish(alarm)
        return self.dialect.call_result.NotifyDERAlarm()

    @on(Action.notify_der_start_stop)
    async def on_notify_der_start_stop(self, **_: Any) -> Any:
        return self.dialect.call_result.NotifyDERStartStop()

    async def set_der_control(
        self, control_id: str, control_type: str, is_default: bool, settings: dict[str, Any]
    ) -> Any:
        """`settings`: the control's own field (e.g. {"limitMaxDischarge": {...}}), camelCase."""
        return await self.call(
            self.dialect.call.SetDERControl(
                control_id=control_id,
                control_type=control_type,
                is_default=is_default,
                **to_snake_case(settings),
            )
        )
