"""2.x firmware updates and log uploads, with their status notifications."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ocpp.v201.enums import Action

from evgi.csms.charge_point import ChargePoint, on
from evgi.csms.metering import format_time


class Firmware(ChargePoint):
    @on(Action.firmware_status_notification)
    async def on_firmware_status(self, status: str, request_id: int | None = None, **_: Any) -> Any:
        await self.record_firmware_log_status("firmware", status, request_id)
        return self.dialect.call_result.FirmwareStatusNotification()

    @on(Action.log_status_notification)
    async def on_log_status(self, status: str, request_id: int | None = None, **_: Any) -> Any:
        await self.record_firmware_log_status("log", status, request_id)
        return self.dialect.call_result.LogStatusNotification()

    async def update_firmware(self, location: str, retrieve_at: datetime, request_id: int) -> Any:
        return await self.call(
            self.dialect.call.UpdateFirmware(
                request_id=request_id,
                firmware={"location": location, "retrieve_date_time": format_time(retrieve_at)},
            )
        )

    async def get_log(self, location: str, request_id: int) -> Any:
        return await self.call(
            self.dialect.call.GetLog(
                log={"remote_location": location}, log_type="DiagnosticsLog", request_id=request_id
            )
        )
