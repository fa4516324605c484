"""1.6 firmware and diagnostics, with the security extension's signed firmware and logs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ocpp.v16 import call, call_result
from ocpp.v16.enums import Action

from evgi.csms.charge_point import ChargePoint, on
from evgi.csms.metering import format_time


class Firmware(ChargePoint):
    @on(Action.firmware_status_notification)
    async def on_firmware_status(
        self, status: str, **_: Any
    ) -> call_result.FirmwareStatusNotification:
        await self.record_firmware_log_status("firmware", status)
        return call_result.FirmwareStatusNotification()

    @on(Action.signed_firmware_status_notification)
    async def on_signed_firmware_status(
        self, status: str, request_id: int | None = None, **_: Any
    ) -> call_result.SignedFirmwareStatusNotification:
        await self.record_firmware_log_status("firmware", status, request_id)
        return call_result.SignedFirmwareStatusNotification()

    @on(Action.diagnostics_status_notification)
    async def on_diagnostics_status(
        self, status: str, **_: Any
    ) -> call_result.DiagnosticsStatusNotification:
        await self.record_firmware_log_status("diagnostics", status)
        return call_result.DiagnosticsStatusNotification()

    @on(Action.log_status_notification)
    async def on_log_status(
        self, status: str, request_id: int | None = None, **_: Any
    ) -> call_result.LogStatusNotification:
        await self.record_firmware_log_status("log", status, request_id)
        return call_result.LogStatusNotification()

    async def update_firmware(self, location: str, retrieve_at: datetime, request_id: int) -> Any:
        return await self.call(
            call.UpdateFirmware(location=location, retrieve_date=format_time(retrieve_at))
        )

    async def get_log(self, location: str, request_id: int) -> Any:
        return await self.call(call.GetDiagnostics(location=location))
