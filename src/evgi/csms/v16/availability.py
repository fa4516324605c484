"""1.6 availability: connector status, and switching connectors in and out of service.

A 1.6 connector N is kept as EVSE N with connector 1; connector 0, the whole station, as EVSE 0.
"""

from __future__ import annotations

from typing import Any

from ocpp.v16 import call, call_result
from ocpp.v16.enums import Action

from evgi.csms.charge_point import ChargePoint, on


def evse_connector(connector_id: int) -> tuple[int, int]:
    return (0, 0) if connector_id == 0 else (connector_id, 1)


class Availability(ChargePoint):
    @on(Action.status_notification)
    async def on_status_notification(
        self,
        connector_id: int,
        error_code: str,
        status: str,
        info: str | None = None,
        vendor_error_code: str | None = None,
        **_: Any,
    ) -> call_result.StatusNotification:
        evse_id, connector = evse_connector(connector_id)
        await self.record_connector_status(
            evse_id, connector, status, error_code, info, vendor_error_code
        )
        return call_result.StatusNotification()

    async def change_availability(self, operative: bool, evse_id: int | None) -> Any:
        status = "Operative" if operative else "Inoperative"
        answer = await self.call(call.ChangeAvailability(connector_id=evse_id or 0, type=status))
        if answer.status in ("Accepted", "Scheduled"):
            await self.store(
                self.services.store.set_operational_status,
                self.id,
                evse_id or 0,
                status,
                self.now(),
            )
        return answer
