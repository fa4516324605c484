"""2.x remote control: request start and stop, unlock, reset and triggered messages."""

from __future__ import annotations

from typing import Any

from evgi.csms.charge_point import ChargePoint


class RemoteControl(ChargePoint):
    async def remote_start(
        self,
        id_token: str,
        evse_id: int | None,
        remote_start_id: int,
        charging_profile: dict[str, Any] | None,
    ) -> Any:
        return await self.call(
            self.dialect.call.RequestStartTransaction(
                id_token={"id_token": id_token, "type": "Central"},
                remote_start_id=remote_start_id,
                evse_id=evse_id,
                charging_profile=charging_profile,
            )
        )

    async def remote_stop(self, transaction_id: str) -> Any:
        return await self.call(
            self.dialect.call.RequestStopTransaction(transaction_id=transaction_id)
        )

    async def unlock(self, evse_id: int, connector_id: int) -> Any:
        return await self.call(
            self.dialect.call.UnlockConnector(evse_id=evse_id, connector_id=connector_id)
        )

    async def reset(self, immediate: bool, evse_id: int | None) -> Any:
        return await self.call(
            self.dialect.call.Reset(type="Immediate" if immediate else "OnIdle", evse_id=evse_id)
        )

    async def trigger(self, message: str, evse_id: int | None) -> Any:
        return await self.call(
            self.dialect.call.TriggerMessage(
                requested_message=message, evse=None if evse_id is None else {"id": evse_id}
            )
        )
