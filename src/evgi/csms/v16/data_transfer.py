"""1.6 DataTransfer in both directions, with the Plug & Charge messages of
`evgi.csms.plug_and_charge`; every transfer is logged."""

from __future__ import annotations

from typing import Any

from ocpp.v16 import call, call_result
from ocpp.v16.enums import Action

from evgi.csms.charge_point import ChargePoint, on
from evgi.csms.plug_and_charge import PNC_VENDOR, pnc_data_transfer


class DataTransfer(ChargePoint):
    @on(Action.data_transfer)
    async def on_data_transfer(
        self, vendor_id: str, message_id: str | None = None, data: str | None = None, **_: Any
    ) -> call_result.DataTransfer:
        # Plug & Charge is the one vendor extension; any other vendor is unknown (and logged).
        status, answer = "UnknownVendorId", None
        if vendor_id == PNC_VENDOR:
            status, answer = await pnc_data_transfer(self, message_id, data)
        await self.record_data_transfer("in", vendor_id, message_id, data, status)
        return call_result.DataTransfer(status=status, data=answer)

    async def data_transfer(self, vendor_id: str, message_id: str | None, data: Any) -> Any:
        answer = await self.call(
            call.DataTransfer(vendor_id=vendor_id, message_id=message_id, data=data)
        )
        await self.record_data_transfer("out", vendor_id, message_id, data, answer.status)
        return answer
