"""2.x availability: connector status per EVSE, and switching EVSEs in and out of service."""

from __future__ import annotations

from typing import Any

from ocpp.v201.enums import Action

from evgi.csms.charge_point import ChargePoint, on


class Availability(ChargePoint):
    @on(Action.status_notification)
    async def on_status_notification(
        self, connector_status: str, evse_id: int, connector_id: int, **_: Any
    ) -> Any:
        await self.record_connector_status(evse_id, connector_id, connector_status)
        return self.dialect.call_result.StatusNotification()

    async def change_availability(self, operative: bool, evse_id: int | None) -> Any:
        status = "Operative" if operative else "Inoperative"
        answer = await self.call(
            self.dialect.call.ChangeAvailability(
                operational_status=status, evse=None if evse_id is None else {"id": evse_id}
            )
        )
        if answer.status in ("Accepted", "Scheduled"):
            await self.store(
                self.services.store.set_operational_status,
                self.id,
                evse_id or 0,
                status,
                self.now(),
            )
        return answer
