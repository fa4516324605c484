"""2.x DataTransfer in both directions; every transfer is logged."""

from __future__ import annotations

from typing import Any

from ocpp.v201.enums import Action

from evgi.csms.charge_point import ChargePoint, on


class DataTransfer(ChargePoint):
    @on(Action.data_transfer)
    async def on_data_transfer(
        self, vendor_id: str, message_id: str | None = None, data: Any = None, **_: Any
    ) -> Any:
        # No vendor extension is installed, so every vendor is unknown (and still logged).
        await self.record_data_transfer("in", vendor_id, message_id, data, "UnknownVendorId")
        return self.dialect.call_result.DataTransfer(status="UnknownVendorId")

    async def data_transfer(self, vendor_id: str, message_id: str | None, data: Any) -> Any:
        answer = await self.call(
            self.dialect.call.DataTransfer(vendor_id=vendor_id, message_id=message_id, data=data)
        )
        await self.record_data_transfer("out", vendor_id, message_id, data, answer.status)
        return answer
