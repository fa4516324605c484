"""2.x reservations: ReserveNow, CancelReservation and the station's status updates."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ocpp.v201.enums import Action

from evgi.csms.charge_point import ChargePoint, on
from evgi.csms.metering import format_time


class Reservations(ChargePoint):
    @on(Action.reservation_status_update)
    async def on_reservation_status_update(
        self, reservation_id: int, reservation_update_status: str, **_: Any
    ) -> Any:
        await self.record_reservation_status(reservation_id, reservation_update_status)
        return self.dialect.call_result.ReservationStatusUpdate()

    async def reserve(
        self, reservation_id: int, id_token: str, expires_at: datetime, evse_id: int | None
    ) -> Any:
        answer = await self.call(
            self.dialect.call.ReserveNow(
                id=reservation_id,
                expiry_date_time=format_time(expires_at),
                id_token={"id_token": id_token, "type": "Central"},
                evse_id=evse_id,
            )
        )
        await self.record_reservation(answer.status, reservation_id, id_token, expires_at, evse_id)
        return answer

    async def cancel_reservation(self, reservation_id: int) -> Any:
        answer = await self.call(self.dialect.call.CancelReservation(reservation_id=reservation_id))
        if answer.status == "Accepted":
            await self.record_reservation_status(reservation_id, "Cancelled")
        return answer
