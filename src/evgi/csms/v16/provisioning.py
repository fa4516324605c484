"""1.6 core profile, provisioning: boot, heartbeat and configuration keys."""

from __future__ import annotations

from typing import Any

from ocpp.v16 import call, call_result
from ocpp.v16.enums import Action

from evgi.csms.charge_point import ChargePoint, VariableRef, on
from evgi.csms.metering import format_time
from evgi.storage.charging import VariableRecord


class Provisioning(ChargePoint):
    @on(Action.boot_notification)
    async def on_boot_notification(
        self,
        charge_point_vendor: str,
        charge_point_model: str,
        charge_point_serial_number: str | None = None,
        charge_box_serial_number: str | None = None,
        firmware_version: str | None = None,
        **_: Any,
    ) -> call_result.BootNotification:
        status, interval = await self.record_boot(
            charge_point_vendor,
            charge_point_model,
            charge_point_serial_number or charge_box_serial_number,
            firmware_version,
            None,
        )
        return call_result.BootNotification(
            current_time=format_time(self.now()), interval=interval, status=status
        )

    @on(Action.heartbeat)
    async def on_heartbeat(self, **_: Any) -> call_result.Heartbeat:
        await self.record_heartbeat()
        return call_result.Heartbeat(current_time=format_time(self.now()))

    async def get_variables(self, refs: list[VariableRef]) -> Any:
        """GetConfiguration for the keys named by the refs' variables."""
        return await self._configuration([ref.variable for ref in refs] or None)

    async def get_report(self, request_id: int) -> Any:
        """1.6 has no reports: every configuration key is what GetConfiguration returns."""
        return await self._configuration(None)

    async def _configuration(self, keys: list[str] | None) -> Any:
        result = await self.call(call.GetConfiguration(key=keys))
        await self.record_variables(
            [
                VariableRecord(
                    component="",
                    variable=entry["key"],
                    value=entry.get("value"),
                    mutability="ReadOnly" if entry.get("readonly") else "ReadWrite",
                )
                for entry in result.configuration_key or []
            ]
        )
        return result

    async def set_variables(self, values: list[tuple[VariableRef, str]]) -> Any:
        """One ChangeConfiguration per key (1.6 changes one at a time); the answers in order."""
        answers = []
        for ref, value in values:
            answer = await self.call(call.ChangeConfiguration(key=ref.variable, value=value))
            if answer.status in ("Accepted", "RebootRequired"):
                await self.record_variables(
                    [VariableRecord(component="", variable=ref.variable, value=value)]
                )
            answers.append(answer)
        return answers
