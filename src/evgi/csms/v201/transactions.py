"""2.x transactions: the TransactionEvent stream and MeterValues outside transactions."""

from __future__ import annotations

from typing import Any

from ocpp.v201.enums import Action

from evgi.csms.charge_point import ChargePoint, on
from evgi.csms.charging_sessions import ChangeKind, TransactionChange
from evgi.csms.metering import energy_register_wh, parse_time, samples_from_2x
from evgi.csms.v201.authorization import id_token_info

_KINDS: dict[str, ChangeKind] = {"Started": "start", "Updated": "update", "Ended": "end"}


class Transactions(ChargePoint):
    @on(Action.transaction_event)
    async def on_transaction_event(
        self,
        event_type: str,
        timestamp: str,
        trigger_reason: str,
        seq_no: int,
        transaction_info: dict[str, Any],
        meter_value: list[dict[str, Any]] | None = None,
        offline: bool = False,
        evse: dict[str, Any] | None = None,
        id_token: dict[str, Any] | None = None,
        reservation_id: int | None = None,
        **_: Any,
    ) -> Any:
        kind = _KINDS[event_type]
        token = None if id_token is None else id_token["id_token"]
        evse_id = None if evse is None else evse["id"]
        decision = None
        if token is not None:
            decision = await self.authorize(token, evse_id, starting=kind != "end")
        samples = tuple(samples_from_2x(meter_value or []))
        stop_reason = transaction_info.get("stopped_reason")
        await self.services.sessions.apply(
            TransactionChange(
                self.id,
                kind,
                parse_time(timestamp),
                transaction_id=transaction_info["transaction_id"],
                evse_id=evse_id,
                connector_id=None if evse is None else evse.get("connector_id"),
                id_token=token,
                group_id=None if decision is None else decision.group_id,
                meter_wh=energy_register_wh(samples),
                samples=samples,
                seq_no=seq_no,
                offline=offline,
                charging_state=transaction_info.get("charging_state"),
                stop_reason=stop_reason or ("Local" if kind == "end" else None),
                remote_start_id=transaction_info.get("remote_start_id"),
                reservation_id=reservation_id,
            )
        )
        if reservation_id is not None:
            await self.record_reservation_status(reservation_id, "Used")
        if decision is None:
            return self.dialect.call_result.TransactionEvent()
        return self.dialect.call_result.TransactionEvent(id_token_info=id_token_info(decision))

    @on(Action.meter_values)
    async def on_meter_values(
        self, evse_id: int, meter_value: list[dict[str, Any]], **_: Any
    ) -> Any:
        await self.services.sessions.record_samples(
            self.id, evse_id, tuple(samples_from_2x(meter_value))
        )
        return self.dialect.call_result.MeterValues()
