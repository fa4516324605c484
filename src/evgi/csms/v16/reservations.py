"""1.6 reservations: ReserveNow and CancelReservation."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ocpp.v16 import call

from evgi.csms.charge_point import ChargePoint
from evgi.csms.metering import format_time


class Reservations(ChargePoint):
    async def reserve(
        self, reservation_id: int, id_token: str, expires_at: datetime, evse_id: int | None
    ) -> Any:
        answer = await self.call(
            call.ReserveNow(
                connector_id=evse_id or 0,
                expiry_date=format_time(expires_at),
                id_tag=id_token,
                reservation_id=reservation_id,
            )
        )
        await self.record_reservation(answer.status, reservation_id, id_token, expires_at, evse_id)
        return answer

    async def cancel_reservation(self, reservation_id: int) -> Any:
        answer = await self.call(call.CancelReservation(reservation_id=reservation_id))
        if answer.status == "Accepted":
            await self.record_reservation_status(reservation_id, "Cancelled")
        return answer
