"""2.x provisioning: boot, heartbeat, device-model variables and base reports."""

from __future__ import annotations

from typing import Any

from ocpp.v201.enums import Action

from evgi.csms.charge_point import ChargePoint, VariableRef, on
from evgi.csms.metering import format_time
from evgi.csms.v201 import device_model


class Provisioning(ChargePoint):
    @on(Action.boot_notification)
    async def on_boot_notification(
        self, charging_station: dict[str, Any], reason: str, **_: Any
    ) -> Any:
        status, interval = await self.record_boot(
            charging_station["vendor_name"],
            charging_station["model"],
            charging_station.get("serial_number"),
            charging_station.get("firmware_version"),
            reason,
        )
        return self.dialect.call_result.BootNotification(
            current_time=format_time(self.now()), interval=interval, status=status
        )

    @on(Action.heartbeat)
    async def on_heartbeat(self, **_: Any) -> Any:
        await self.record_heartbeat()
        return self.dialect.call_result.Heartbeat(current_time=format_time(self.now()))

    @on(Action.notify_report)
    async def on_notify_report(
        self,
        request_id: int,
        generated_at: str,
        seq_no: int,
        report_data: list[dict[str, Any]] | None = None,
        **_: Any,
    ) -> Any:
        records = [
            device_model.record(
                item["component"],
                item["variable"],
                attribute.get("type"),
                attribute.get("value"),
                attribute.get("mutability"),
            )
            for item in report_data or []
            for attribute in item["variable_attribute"]
        ]
        await self.record_variables(records)
        return self.dialect.call_result.NotifyReport()

    async def get_variables(self, refs: list[VariableRef]) -> Any:
        answer = await self.call(
            self.dialect.call.GetVariables(
                get_variable_data=[
                    {
                        "component": device_model.component(ref),
                        "variable": device_model.variable(ref),
                        "attribute_type": ref.attribute_type,
                    }
                    for ref in refs
                ]
            )
        )
        await self.record_variables(
            [
                device_model.record(
                    r["component"], r["variable"], r.get("attribute_type"), r.get("attribute_value")
                )
                for r in answer.get_variable_result
                if r["attribute_status"] == "Accepted"
            ]
        )
        return answer

    async def set_variables(self, values: list[tuple[VariableRef, str]]) -> Any:
        answer = await self.call(
            self.dialect.call.SetVariables(
                set_variable_data=[
                    {
                        "component": device_model.component(ref),
                        "variable": device_model.variable(ref),
                        "attribute_type": ref.attribute_type,
                        "attribute_value": value,
                    }
                    for ref, value in values
                ]
            )
        )
        accepted = {
            (r["component"]["name"], r["variable"]["name"])
            for r in answer.set_variable_result
            if r["attribute_status"] in ("Accepted", "RebootRequired")
        }
        await self.record_variables(
            [
                device_model.record(
                    device_model.component(ref),
                    device_model.variable(ref),
                    ref.attribute_type,
                    value,
                )
                for ref, value in values
                if (ref.component, ref.variable) in accepted
            ]
        )
        return answer

    async def get_report(self, request_id: int) -> Any:
        """Ask for the full inventory; it arrives in NotifyReport calls, stored as they come."""
        return await self.call(
            self.dialect.call.GetBaseReport(request_id=request_id, report_base="FullInventory")
        )
