"""1.6 remote control: remote start and stop, unlock, reset and triggered messages."""

from __future__ import annotations

from typing import Any

from ocpp.v16 import call

from evgi.core.errors import ValidationError
from evgi.csms.charge_point import ChargePoint
from evgi.csms.errors import UnsupportedCommand
from evgi.csms.plug_and_charge import certificate_command

# The trigger of a station's V2G (SECC) certificate request, as 2.0.1 names it.
V2G_CERTIFICATE_REQUEST = "SignV2GCertificate"


class RemoteControl(ChargePoint):
    async def remote_start(
        self,
        id_token: str,
        evse_id: int | None,
        remote_start_id: int,
        charging_profile: dict[str, Any] | None,
    ) -> Any:
        return await self.call(
            call.RemoteStartTransaction(
                id_tag=id_token, connector_id=evse_id, charging_profile=charging_profile
            )
        )

    async def remote_stop(self, transaction_id: str) -> Any:
        if not transaction_id.isdecimal():
            raise ValidationError("an OCPP 1.6 transaction id is a number")
        return await self.call(call.RemoteStopTransaction(transaction_id=int(transaction_id)))

    async def unlock(self, evse_id: int, connector_id: int) -> Any:
        return await self.call(call.UnlockConnector(connector_id=evse_id))

    async def reset(self, immediate: bool, evse_id: int | None) -> Any:
        if evse_id is not None:
            raise UnsupportedCommand("OCPP 1.6 resets whole stations only")
        return await self.call(call.Reset(type="Hard" if immediate else "Soft"))

    async def trigger(self, message: str, evse_id: int | None) -> Any:
        if message == V2G_CERTIFICATE_REQUEST:
            # 1.6 knows no such trigger: Plug & Charge sends 2.0.1's in a DataTransfer.
            body = {"requestedMessage": message}
            return await certificate_command(self, "TriggerMessage", body)
        return await self.call(call.TriggerMessage(requested_message=message, connector_id=evse_id))
