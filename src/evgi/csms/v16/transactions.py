"""1.6 transactions: Start/StopTransaction and MeterValues, numbered by the CSMS."""

from __future__ import annotations

from typing import Any

from ocpp.v16 import call_result
from ocpp.v16.enums import Action

from evgi.csms.charge_point import ChargePoint, on
from evgi.csms.charging_sessions import TransactionChange
from evgi.csms.metering import parse_time, samples_from_16
from evgi.csms.v16.authorization import id_tag_info
from evgi.csms.v16.availability import evse_connector


class Transactions(ChargePoint):
    @on(Action.start_transaction)
    async def on_start_transaction(
        self,
        connector_id: int,
        id_tag: str,
        meter_start: int,
        timestamp: str,
        reservation_id: int | None = None,
        **_: Any,
    ) -> call_result.StartTransaction:
        evse_id, connector = evse_connector(connector_id)
        decision = await self.authorize(id_tag, evse_id, starting=True)
        # The transaction is kept whatever the decision: the station has started it, and stops
        # it itself when the answer is not Accepted.
        outcome = await self.services.sessions.apply(
            TransactionChange(
                self.id,
                "start",
                parse_time(timestamp),
                evse_id=evse_id,
                connector_id=connector,
                id_token=id_tag,
                group_id=decision.group_id,
                meter_wh=meter_start,
                reservation_id=reservation_id,
            )
        )
        if reservation_id is not None:
            await self.record_reservation_status(reservation_id, "Used")
        return call_result.StartTransaction(
            transaction_id=outcome.transaction.number, id_tag_info=id_tag_info(decision)
        )

    @on(Action.stop_transaction)
    async def on_stop_transaction(
        self,
        meter_stop: int,
        timestamp: str,
        transaction_id: int,
        reason: str | None = None,
        id_tag: str | None = None,
        transaction_data: list[dict[str, Any]] | None = None,
        **_: Any,
    ) -> call_result.StopTransaction:
        await self.services.sessions.apply(
            TransactionChange(
                self.id,
                "end",
                parse_time(timestamp),
                transaction_id=str(transaction_id),
                id_token=id_tag,
                meter_wh=meter_stop,
                samples=tuple(samples_from_16(transaction_data or [])),
                stop_reason=reason or "Local",
            )
        )
        if id_tag is None:
            return call_result.StopTransaction()
        return call_result.StopTransaction(id_tag_info=id_tag_info(await self.authorize(id_tag)))

    @on(Action.meter_values)
    async def on_meter_values(
        self,
        connector_id: int,
        meter_value: list[dict[str, Any]],
        transaction_id: int | None = None,
        **_: Any,
    ) -> call_result.MeterValues:
        evse_id, _connector = evse_connector(connector_id)
        samples = tuple(samples_from_16(meter_value))
        if transaction_id is None:
            await self.services.sessions.record_samples(self.id, evse_id, samples)
        else:
            await self.services.sessions.apply(
                TransactionChange(
                    self.id,
                    "update",
                    samples[0].timestamp if samples else self.now(),
                    transaction_id=str(transaction_id),
                    evse_id=evse_id,
                    samples=samples,
                )
            )
        return call_result.MeterValues()
